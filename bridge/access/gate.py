"""The access gate: every read of a person's data goes through here.

``AccessGate.open`` loads what the consent engine needs about the person (their Consent
resources, the care relationships their records show, whether their demographics are
restricted, the caller's break-glass in effect), asks the engine about each of the
person's records, strips redacted elements from those released, and appends one audit
entry with the decision for every record, in the caller's transaction. A request that
cannot be audited fails, and so returns nothing (fail closed).

Nothing reads person data around the gate: the person view, person search, FHIR search
for social care users and ``$everything`` all call ``open`` (tests/access check that each
person-data route records a decision).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bridge.access.candidates import candidate_of, redact
from bridge.access.relationships import AccessConfig, relationships_of
from bridge.audit.service import AuditLog, AuditRecord
from bridge.auth.principal import Principal
from bridge.core.clock import Clock
from bridge.core.errors import (
    AccessDeniedError,
    InvalidIdentifierError,
    NotFoundError,
    ValidationError,
)
from bridge.core.ids import is_fhir_id
from bridge.store.access import BreakGlassRepository, BreakGlassRow
from bridge.store.crypto import StoreCrypto
from bridge.store.resources import ResourceRepository, StoredResource
from consent import (
    AccessRequest,
    BreakGlass,
    ConsentEngine,
    ConsentRecord,
    Decision,
    Label,
    PersonContext,
    Relationship,
    UnreadableConsent,
    read_consents,
)
from consent.reasons import ReasonCode

# Direct care: the only purpose the person view serves (HL7 v3 PurposeOfUse).
DIRECT_CARE = "TREAT"
# Resources that are not records of care: the identity link (Person) and the consent
# decisions themselves, which the engine reads as input rather than releases.
NOT_CANDIDATES = frozenset({"Person", "Consent"})
CONSENT_CACHE_SIZE = 20_000
RESTRICTED_LABELS = frozenset(
    {
        Label("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
        Label("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "V"),
    }
)


def check_person_id(person_id: str) -> None:
    """Refuse (422) a person id that is not a FHIR id, before anything is looked up."""
    if not is_fhir_id(person_id):
        raise InvalidIdentifierError(
            "A person id is 1-64 characters of A-Z, a-z, 0-9, '-' and '.'.", field="id"
        )


def denied(decision: Decision) -> AccessDeniedError:
    """Return the 403 error for a screen refusal, with every reason as code and sentence."""
    return AccessDeniedError(
        " ".join(r.text for r in decision.reasons),
        extra={"reasons": [{"code": r.code, "text": r.text} for r in decision.reasons]},
    )


@dataclass(frozen=True)
class Released:
    """A record the caller may see: its content with redacted elements removed."""

    stored: StoredResource
    content: dict[str, Any]
    decision: Decision


@dataclass(frozen=True)
class Withheld:
    """A record the caller may not see, and why (never shown beyond counts and reasons)."""

    stored: StoredResource
    decision: Decision


@dataclass
class PersonAccess:
    """What one request may see of one person, with every decision."""

    person_id: str
    at: datetime
    screen: Decision
    released: list[Released] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    relationships: tuple[Relationship, ...] = ()
    break_glass: BreakGlassRow | None = None
    restricted_demographics: bool = False
    audit_seq: int | None = None

    def of_type(self, *types: str) -> list[Released]:
        """Return the released records of the given resource types."""
        return [r for r in self.released if r.stored.resource_type in types]


def _outcome(access: PersonAccess) -> str:
    if not access.screen.permitted or (access.withheld and not access.released):
        return "deny"
    return "partial" if access.withheld else "permit"


def _decision_entry(ref: str, d: Decision) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": ref,
        "effect": d.effect.value,
        "rule": d.rule,
        "reasons": list(d.codes),
    }
    if d.consent:
        entry["consent"] = d.consent
    if d.alert_ig:
        entry["ig_alert"] = True
    if d.redactions:
        entry["redacted"] = list(d.redactions)
    return entry


class AccessGate:
    """Consent-checked, audited access to a person's records (built once per app)."""

    def __init__(
        self,
        engine: ConsentEngine,
        audit: AuditLog,
        config: AccessConfig,
        *,
        crypto: StoreCrypto,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.crypto = crypto
        self.clock = clock
        # Consents as the engine reads them, by (id, version): a stored version never
        # changes, and a change is a new version, so this cannot serve a stale decision.
        # Reading one validates it against the FHIR model, the costliest step of a view.
        self._consents: OrderedDict[tuple[str, int], tuple[ConsentRecord | UnreadableConsent, ...]]
        self._consents = OrderedDict()

    @property
    def policy_tz(self) -> Any:
        """Return the sharing policy's time zone (dates in reasons and periods)."""
        return self.engine.policy.time_zone

    def _request(
        self, principal: Principal, at: datetime, bg: BreakGlassRow | None
    ) -> AccessRequest:
        return AccessRequest(
            user=principal.user,
            roles=principal.policy_roles,
            org=principal.org or "",
            team=principal.team,
            purpose=DIRECT_CARE,
            at=at,
            break_glass=BreakGlass(bg.reason, bg.started_at) if bg is not None else None,
        )

    def _person_context(
        self, person_id: str, records: Sequence[StoredResource]
    ) -> tuple[PersonContext, bool]:
        contents = [r.content for r in records if r.content is not None]
        consents = [
            c
            for r in records
            if r.resource_type == "Consent" and r.content is not None
            for c in self._read_consent(r)
        ]
        relationships = relationships_of(contents, self.config, self.policy_tz)
        restricted = any(
            r.resource_type == "Patient"
            and not RESTRICTED_LABELS.isdisjoint(candidate_of(r).security_labels)
            for r in records
        )
        context = PersonContext(
            person_id,
            consents=tuple(consents),
            relationships=tuple(relationships),
            restricted_demographics=restricted,
        )
        return context, restricted

    def _read_consent(
        self, stored: StoredResource
    ) -> tuple[ConsentRecord | UnreadableConsent, ...]:
        key = (stored.id, stored.version_id)
        cached = self._consents.get(key)
        if cached is None:
            cached = tuple(read_consents([stored.content or {}], tz=self.policy_tz))
            self._consents[key] = cached
            while len(self._consents) > CONSENT_CACHE_SIZE:
                self._consents.popitem(last=False)
        return cached

    def records(self, session: Session, person_id: str) -> list[StoredResource]:
        """Return every current record of a person (NotFound when there is no such person)."""
        records = ResourceRepository(session, crypto=self.crypto, clock=self.clock).find_by_person(
            person_id
        )
        if not records:
            raise NotFoundError(f"Person {person_id} does not exist", field="id")
        return records

    def open(
        self,
        session: Session,
        principal: Principal,
        person_id: str,
        *,
        audit: AuditRecord,
        types: Iterable[str] | None = None,
        records: Sequence[StoredResource] | None = None,
        at: datetime | None = None,
    ) -> PersonAccess:
        """Decide what the caller may see of a person, audit it, and return it.

        ``types`` limits which records are looked at (all when None); ``audit`` carries
        who and how (action, request id, client address) and is completed here with the
        outcome and every decision. When the caller may see nothing of this person the
        refusal is audited and ``screen`` says why (``denied`` makes the 403): the caller
        must still commit, so that the refusal stays in the log. ``NotFoundError`` when
        there is no such person.

        A caller with work to do between deciding and answering (building the person
        view) may ``decide`` first and ``record`` just before it returns: the audit entry
        takes the chain-head lock, which is then held only for the rest of the commit.
        """
        access = self.decide(session, principal, person_id, types=types, records=records, at=at)
        self.record(session, access, audit)
        return access

    def decide(
        self,
        session: Session,
        principal: Principal,
        person_id: str,
        *,
        types: Iterable[str] | None = None,
        records: Sequence[StoredResource] | None = None,
        at: datetime | None = None,
    ) -> PersonAccess:
        """Decide what the caller may see of a person; ``record`` must audit it before
        anything of it is returned (``open`` does both)."""
        at = at or self.clock.now()
        if records is None:
            records = self.records(session, person_id)
        bg = BreakGlassRepository(session, crypto=self.crypto).active_for(
            principal.user, person_id, at
        )
        context, restricted = self._person_context(person_id, records)
        evaluation = self.engine.evaluate(self._request(principal, at, bg), context)
        access = PersonAccess(
            person_id=person_id,
            at=at,
            screen=evaluation.screen,
            relationships=tuple(r for r in context.relationships if r.period.contains(at)),
            break_glass=bg if evaluation.break_glass is not None else None,
            restricted_demographics=restricted,
        )
        wanted = None if types is None else frozenset(types)
        if evaluation.screen.permitted:
            for stored in records:
                rtype = stored.resource_type
                if rtype in NOT_CANDIDATES or stored.content is None:
                    continue
                if wanted is not None and rtype not in wanted:
                    continue
                decision = evaluation.decide(candidate_of(stored))
                if decision.permitted:
                    content = redact(stored.content, decision.redactions)
                    access.released.append(Released(stored, content, decision))
                else:
                    access.withheld.append(Withheld(stored, decision))
        return access

    def record(self, session: Session, access: PersonAccess, audit: AuditRecord) -> int:
        """Append the audit entry of a decided access (and IG's alert); return its seq."""
        if access.audit_seq is not None:
            raise RuntimeError("this access is already audited")
        decisions = [
            _decision_entry(
                f"{item.stored.resource_type}/{item.stored.id}/{item.stored.version_id}",
                item.decision,
            )
            for item in sorted(
                [*access.released, *access.withheld],
                key=lambda i: (i.stored.resource_type, i.stored.id),
            )
        ]
        screen = access.screen
        detail = dict(audit.detail)
        detail["decisions"] = decisions
        detail["screen"] = {
            "effect": screen.effect.value,
            "rule": screen.rule,
            "reasons": list(screen.codes),
        }
        detail["shown"] = len(access.released)
        detail["withheld"] = len(access.withheld)
        bg = access.break_glass
        if bg is not None:
            detail["break_glass_id"] = bg.id
        alerts = [r for r in access.released if r.decision.alert_ig]
        if alerts:
            detail["ig_alert"] = True
        person_id = access.person_id
        access.audit_seq = self.audit.record(
            session,
            dataclasses.replace(
                audit,
                outcome=_outcome(access),
                person_id=person_id,
                purpose=DIRECT_CARE,
                break_glass=bg is not None,
                detail=detail,
            ),
        )
        if alerts:
            # Restricted categories (mental health, safeguarding…) were shown: IG are told
            # of every such access, as an entry of its own that they can list.
            self.audit.record(
                session,
                dataclasses.replace(
                    audit,
                    action="ig.alert",
                    outcome="permit",
                    person_id=person_id,
                    purpose=DIRECT_CARE,
                    break_glass=bg is not None,
                    detail={
                        "audit_seq": access.audit_seq,
                        "categories": sorted({c for r in alerts for c in r.decision.categories}),
                        "resources": [
                            f"{r.stored.resource_type}/{r.stored.id}/{r.stored.version_id}"
                            for r in alerts
                        ],
                    },
                ),
            )
        return access.audit_seq

    def screen(
        self,
        session: Session,
        principal: Principal,
        person_id: str,
        *,
        at: datetime,
        records: Sequence[StoredResource] | None = None,
    ) -> Decision:
        """Return whether the caller may see anything of a person (no audit: nothing shown).

        The caller's break-glass in effect counts, as it does for ``open``.
        """
        if records is None:
            records = self.records(session, person_id)
        bg = BreakGlassRepository(session, crypto=self.crypto).active_for(
            principal.user, person_id, at
        )
        context, _ = self._person_context(person_id, records)
        return self.engine.evaluate(self._request(principal, at, bg), context).screen

    def break_glass(
        self,
        session: Session,
        principal: Principal,
        person_id: str,
        *,
        reason: str,
        audit: AuditRecord,
    ) -> BreakGlassRow:
        """Start emergency access to a person: checked, recorded, audited, queued for IG."""
        at = self.clock.now()
        records = self.records(session, person_id)
        context, _ = self._person_context(person_id, records)
        request = dataclasses.replace(
            self._request(principal, at, None), break_glass=BreakGlass(reason.strip())
        )
        evaluation = self.engine.evaluate(request, context)
        grant = evaluation.break_glass
        if grant is None:
            problems = [
                r for r in evaluation.screen.reasons if r.code.startswith(ReasonCode.BREAK_GLASS)
            ]
            raise ValidationError(
                " ".join(r.text for r in problems) or "Emergency access is not available.",
                field="reason",
                extra={"reasons": [{"code": r.code, "text": r.text} for r in problems]},
            )
        record_id = str(uuid.uuid4())
        detail = dict(audit.detail)
        detail.update(
            {
                "break_glass_id": record_id,
                "expires_at": grant.expires_at.isoformat(),
                "withheld_categories": sorted(grant.withheld_categories),
            }
        )
        seq = self.audit.record(
            session,
            dataclasses.replace(
                audit,
                action="break-glass",
                outcome="success",
                person_id=person_id,
                purpose=DIRECT_CARE,
                break_glass=True,
                detail=detail,
            ),
        )
        return BreakGlassRepository(session, crypto=self.crypto).add(
            record_id=record_id,
            user=principal.user,
            roles=tuple(sorted(principal.policy_roles)),
            org=principal.org,
            team=principal.team,
            person_id=person_id,
            reason=reason.strip(),
            started_at=grant.started_at,
            expires_at=grant.expires_at,
            audit_seq=seq,
        )
