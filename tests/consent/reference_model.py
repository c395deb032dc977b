"""An independent model of the consent decision table (docs/consent.md).

Written from the documented rules, not from the engine: it reads the generated world
(plain dicts) and the policy as parsed YAML, and never imports the engine's evaluation
code. It favours being obviously right over being fast: every condition is checked
directly against the request and the record, provisions are resolved recursively with
their paths, and "latest applicable" is computed by filtering then taking the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tests.consent.worlds import World

VIEW_ACTIONS = {"access", "use", "disclose"}


@dataclass(frozen=True)
class Expected:
    """What the engine should decide for one record (compared field by field)."""

    effect: str
    rule: str
    codes: tuple[str, ...]
    deny_rules: tuple[str, ...]
    consent: str | None
    provision: str | None
    break_glass: bool
    expires_at: datetime | None
    alert_ig: bool
    redactions: tuple[str, ...]
    categories: frozenset[str]


@dataclass(frozen=True)
class Resolved:
    """The provision that decides a record within one consent."""

    effect: str
    path: str
    node: dict[str, Any]
    labels: frozenset[tuple[str, str]]


class Reference:
    """The decision table applied to one world."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.policy = world.policy
        self.req = world.request
        self.at: datetime = world.request["at"]
        self.label_cat: dict[tuple[str, str], str] = {}
        self.rescat_cat: dict[str, str] = {}
        self.tier: dict[str, str] = {}
        for name, cat in self.policy["categories"].items():
            self.tier[name] = cat["tier"]
            for token in cat.get("labels", []):
                system, _, code = token.rpartition("|")
                self.label_cat[(system, code)] = name
            for code in cat.get("resource_categories", []):
                self.rescat_cat[code] = name

    # -- the request ------------------------------------------------------------------

    def known_roles(self) -> list[str]:
        return [r for r in self.req["roles"] if r in self.policy["roles"]]

    def has_relationship(self) -> bool:
        for rel in self.w.relationships:
            started = rel["start"] is None or rel["start"] <= self.at
            not_ended = rel["end"] is None or self.at < rel["end"]
            if not (started and not_ended):
                continue
            if rel["kind"] == "allocated_worker":
                if rel["user"] == self.req["user"]:
                    return True
            elif self.req["team"] is not None and rel["team"] == self.req["team"]:
                return True
        return False

    def break_glass(self) -> tuple[list[str], datetime | None]:
        """Return the break-glass problems and, when valid, the expiry."""
        bg = self.req["break_glass"]
        rules = self.policy["break_glass"]
        problems = []
        if not set(self.req["roles"]) & set(rules["roles"]):
            problems.append("break-glass-role")
        if len(bg["reason"].strip()) < rules["min_reason_length"]:
            problems.append("break-glass-reason")
        start = bg["started_at"] if bg["started_at"] is not None else self.at
        expires = start + timedelta(minutes=rules["duration_minutes"])
        if not (start <= self.at and self.at < expires):
            problems.append("break-glass-expired")
        return problems, (None if problems else expires)

    # -- consents ---------------------------------------------------------------------

    def applies(self, prov: dict[str, Any], cand: dict[str, Any]) -> bool:
        """Return whether every condition of a provision holds for this request and record."""
        at = self.at
        if prov["start"] is not None and at < prov["start"]:
            return False
        # A full date-time period end is inclusive (to the second; request times are whole).
        if prov["end"] is not None and at > prov["end"]:
            return False
        recipients = [a for a in prov["actors"] if a["kind"] == "recipient"]
        if recipients:
            matched = False
            for a in recipients:
                org_ok = a["org"] is None or a["org"] == self.req["org"]
                team_ok = a["team"] is None or a["team"] == self.req["team"]
                role_ok = not a["roles"] or bool(set(a["roles"]) & set(self.req["roles"]))
                if org_ok and team_ok and role_ok:
                    matched = True
            if not matched:
                return False
        custodians = [a["org"] for a in prov["actors"] if a["kind"] == "custodian"]
        if custodians:
            holder = self.policy["sources"][cand["source"]].get("organisation")
            if holder not in custodians:
                return False
        if prov["purposes"] and self.req["purpose"] not in prov["purposes"]:
            return False
        if prov["actions"] and not VIEW_ACTIONS & set(prov["actions"]):
            return False
        if prov["classes"] and cand["type"] not in prov["classes"]:
            return False
        if prov["labels"] and not set(prov["labels"]) & set(cand["labels"]):
            return False
        return not (prov["data"] and f"{cand['type']}/{cand['id']}" not in prov["data"])

    def resolve(
        self,
        prov: dict[str, Any],
        cand: dict[str, Any],
        path: str,
        above: frozenset[tuple[str, str]],
    ) -> Resolved:
        """Return what an applying provision decides, looking at its exceptions first."""
        labels = above | frozenset(prov["labels"])
        results = [
            self.resolve(child, cand, f"{path}.provision[{i}]", labels)
            for i, child in enumerate(prov["children"])
            if self.applies(child, cand)
        ]
        denies = [r for r in results if r.effect == "deny"]
        if denies:
            return denies[0]
        if results:
            return results[0]
        return Resolved(prov["type"], path, prov, labels)

    def usable(self, consent: dict[str, Any]) -> bool:
        return bool(consent["status"] == "active" and consent["scope"] == "patient-privacy")

    def unreadable(self) -> list[dict[str, Any]]:
        return [c for c in self.w.consents if c["unreadable"] and self.usable(c)]

    def outcome(self, cand: dict[str, Any]) -> tuple[dict[str, Any], Resolved] | None:
        """Return the deciding consent and provision for a record, if any consent applies."""
        applicable = [
            c
            for c in self.w.consents
            if self.usable(c)
            and not c["unreadable"]
            and c["recorded"] <= self.at
            and self.applies(c["root"], cand)
        ]
        if not applicable:
            return None
        latest = max(c["recorded"] for c in applicable)
        tied = sorted(
            (c for c in applicable if c["recorded"] == latest),
            key=lambda c: (c["id"], c["version"] or ""),
        )
        resolved = [(c, self.resolve(c["root"], cand, "provision", frozenset())) for c in tied]
        for c, r in resolved:
            if r.effect == "deny":
                return c, r
        return resolved[0]

    @staticmethod
    def ref(consent: dict[str, Any]) -> str:
        if consent["version"]:
            return f"Consent/{consent['id']}/_history/{consent['version']}"
        return f"Consent/{consent['id']}"

    # -- decisions --------------------------------------------------------------------

    def decide(self) -> list[Expected]:
        """Return the expected decision for every candidate record, in order."""
        bg_requested = self.req["break_glass"] is not None
        problems, expires = self.break_glass() if bg_requested else ([], None)
        bg_valid = bg_requested and not problems
        related = self.has_relationship()

        screen_denies: list[tuple[str, list[str]]] = []
        if not self.known_roles():
            screen_denies.append(("role", ["role-not-permitted"]))
        if self.req["purpose"] not in self.policy["purposes"]:
            screen_denies.append(("purpose", ["purpose-not-permitted"]))
        if not related and not bg_valid:
            screen_denies.append(("relationship", ["no-care-relationship"]))
        if problems:
            screen_denies.append(("break-glass", problems))
        if screen_denies:
            denied = Expected(
                effect="deny",
                rule=screen_denies[0][0],
                codes=tuple(code for _, codes in screen_denies for code in codes),
                deny_rules=tuple(rule for rule, _ in screen_denies),
                consent=None,
                provision=None,
                break_glass=bg_requested,
                expires_at=expires,
                alert_ig=False,
                redactions=(),
                categories=frozenset(),
            )
            return [denied for _ in self.w.candidates]
        return [
            self.decide_one(c, related, bg_requested, bg_valid, expires) for c in self.w.candidates
        ]

    def decide_one(
        self,
        cand: dict[str, Any],
        related: bool,
        bg_requested: bool,
        bg_valid: bool,
        expires: datetime | None,
    ) -> Expected:
        def result(
            effect: str,
            rule: str,
            codes: tuple[str, ...],
            deny_rules: tuple[str, ...] = (),
            consent: str | None = None,
            provision: str | None = None,
            alert_ig: bool = False,
            redactions: tuple[str, ...] = (),
            categories: frozenset[str] = frozenset(),
        ) -> Expected:
            return Expected(
                effect,
                rule,
                codes,
                deny_rules,
                consent,
                provision,
                bg_requested,
                expires,
                alert_ig,
                redactions,
                categories,
            )

        policy = self.policy
        if cand["source"] not in policy["sources"]:
            return result("deny", "source", ("unknown-source",), ("source",))
        cats = {self.label_cat[tuple(lb)] for lb in cand["labels"] if tuple(lb) in self.label_cat}
        if cand["category"] in self.rescat_cat:
            cats.add(self.rescat_cat[cand["category"]])
        categories = frozenset(cats)
        restricted = {c for c in cats if self.tier[c] == "restricted"}
        never = {c for c in cats if self.tier[c] == "never-shared"}
        shared = policy["sources"][cand["source"]]["consent_required"]
        found = self.outcome(cand) if shared else None

        role_sources = set()
        grants = set()
        for r in self.known_roles():
            role_sources |= set(policy["roles"][r]["sources"])
            grants |= set(policy["roles"][r].get("restricted_categories", []))

        denies: list[tuple[str, str, str | None, str | None]] = []
        if cand["source"] not in role_sources:
            denies.append(("role", "role-source-not-permitted", None, None))
        if never:
            denies.append(("never-shared", "never-shared", None, None))
        if bg_valid and restricted & set(policy["break_glass"]["excluded_categories"]):
            denies.append(("break-glass-scope", "break-glass-excluded", None, None))
        unreadable = self.unreadable()
        if shared and unreadable:
            denies.append(
                ("unreadable-consent", "unreadable-consent", f"Consent/{unreadable[0]['id']}", None)
            )
        if found is not None and found[1].effect == "deny":
            consent, res = found
            node = res.node
            partial = bool(
                node["classes"]
                or node["labels"]
                or node["data"]
                or any(a["kind"] == "custodian" for a in node["actors"])
            )
            code = "excluded-by-consent" if partial else "consent-refused"
            denies.append(("objection", code, self.ref(consent), res.path))
        uncovered = restricted - grants
        if found is not None and found[1].effect == "permit":
            named = {self.label_cat[lb] for lb in found[1].labels if lb in self.label_cat}
            uncovered -= named
        if uncovered:
            denies.append(("restricted-categories", "restricted-category", None, None))
        if denies:
            rule, code, consent_ref, path = denies[0]
            return result(
                "deny",
                rule,
                (code,),
                tuple(d[0] for d in denies),
                consent_ref,
                path,
                categories=categories,
            )

        permit: tuple[str, str, str | None, str | None] | None = None
        if found is not None and found[1].effect == "permit":
            permit = ("consent", "consent-permits", self.ref(found[0]), found[1].path)
        elif policy["basis"] == "direct-care-implied" and shared and related:
            permit = ("implied-direct-care", "implied-direct-care", None, None)
        elif not shared:
            permit = ("own-records", "own-record", None, None)
        elif bg_valid:
            permit = ("break-glass", "break-glass", None, None)
        elif policy.get("default", "deny") == "permit":
            permit = ("default", "policy-default", None, None)
        if permit is None:
            code = "no-consent" if shared and found is None else "policy-default"
            return result("deny", "default", (code,), ("default",), categories=categories)

        rule, code, consent_ref, path = permit
        codes = [code]
        if restricted:
            codes.append("ig-alert")
        redactions: tuple[str, ...] = ()
        redact = policy["restricted_demographics"]["redact"]
        if self.w.restricted_demographics and cand["type"] in redact:
            redactions = tuple(f"{cand['type']}.{e}" for e in redact[cand["type"]])
            codes.append("restricted-demographics")
        return result(
            "permit",
            rule,
            tuple(codes),
            (),
            consent_ref,
            path,
            alert_ig=bool(restricted),
            redactions=redactions,
            categories=categories,
        )


def expected_decisions(world: World) -> list[Expected]:
    """Return the reference model's decisions for every candidate in the world."""
    return Reference(world).decide()
