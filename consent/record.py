"""FHIR R4 Consent resources read into the small types the engine evaluates.

Reading is strict: whatever cannot be interpreted raises ``ConsentParseError`` naming the
element, because a Consent the engine misunderstands could release data the person
refused. ``read_consents`` keeps an unreadable *active* Consent as ``UnreadableConsent``,
which withholds all shared data until someone fixes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from consent import codes
from consent.errors import ConsentParseError
from consent.model import Effect, Label, Period

LONDON = ZoneInfo("Europe/London")

_DATETIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<t>\d{2}:\d{2}:\d{2})(?P<f>\.\d+)?(?P<z>Z|[+-]\d{2}:\d{2}))?)?)?"
)


def parse_fhir_time(value: str, tz: tzinfo, *, end: bool = False) -> datetime:
    """Return a FHIR date/dateTime as an aware datetime; ``end=True`` gives its exclusive end.

    A partial value covers its whole unit (FHIR: "2027-03-01" as a period end includes all
    of that day), so as an end it becomes the start of the next year, month or day in
    ``tz``; a full date-time as an end includes its last second (or fraction).
    """
    m = _DATETIME.fullmatch(value)
    if not m:
        raise ValueError(f"{value!r} is not a FHIR date or dateTime")
    year = int(m["y"])
    if m["t"]:
        at = datetime.fromisoformat(f"{value[:10]}T{m['t']}{m['f'] or ''}{m['z']}")
        if end:
            at += timedelta(microseconds=1) if m["f"] else timedelta(seconds=1)
        return at.astimezone(UTC)
    if m["d"]:
        day = date(year, int(m["m"]), int(m["d"]))
        if end:
            day += timedelta(days=1)
    elif m["m"]:
        month = int(m["m"])
        day = date(year, month, 1)
        if end:
            day = date(year + month // 12, month % 12 + 1, 1)
    else:
        day = date(year + 1 if end else year, 1, 1)
    return datetime.combine(day, time(), tz)


class ActorKind(StrEnum):
    """Whether a provision actor receives the data or holds it."""

    RECIPIENT = "recipient"
    CUSTODIAN = "custodian"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a provision is about: an organisation (ODS code) or a team, optionally by role.

    A recipient actor matches a request from that organisation or team whose user holds one
    of ``roles`` (any role when empty). A custodian actor (ParticipationType ``CST``) names
    the organisation whose records the provision covers.
    """

    kind: ActorKind
    organisation: str | None = None
    team: str | None = None
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Provision:
    """One rule of a Consent: permit or deny, when its conditions all hold.

    Empty condition sets mean "any". ``path`` names the provision inside its Consent
    (``provision``, ``provision.provision[0]``) for decisions and errors.
    """

    type: Effect
    path: str
    period: Period | None = None
    actors: tuple[Actor, ...] = ()
    actions: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    labels: frozenset[Label] = frozenset()
    data: frozenset[str] = frozenset()
    provisions: tuple[Provision, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A person's recorded decision, as read from a FHIR R4 Consent.

    Only an ``active`` Consent with scope ``patient-privacy`` has a ``provision``; others
    are kept (``provision is None``) but never decide anything.
    """

    id: str
    status: str
    scope: str | None
    recorded: datetime | None
    provision: Provision | None
    version: str | None = None
    recorded_by: str | None = None
    patient: str | None = None

    @property
    def reference(self) -> str:
        """Return ``Consent/id/_history/version`` (without the history part when unversioned)."""
        base = f"Consent/{self.id}"
        return f"{base}/_history/{self.version}" if self.version else base

    @property
    def in_use(self) -> bool:
        """Return whether this Consent can decide anything (active, about privacy)."""
        return self.provision is not None

    @classmethod
    def from_fhir(cls, data: Mapping[str, Any], *, tz: tzinfo = LONDON) -> ConsentRecord:
        """Return the Consent read from FHIR R4 JSON; raise ``ConsentParseError`` if unclear.

        ``tz`` is the time zone of date-only values (a consent "until 2027-03-01" ends at
        midnight local time).
        """
        return _Reader(data, tz).read()


@dataclass(frozen=True, slots=True)
class UnreadableConsent:
    """An active Consent that could not be interpreted: it withholds all shared data."""

    id: str | None
    error: ConsentParseError

    @property
    def reference(self) -> str:
        """Return ``Consent/id`` (or ``Consent`` when even the id is missing)."""
        return f"Consent/{self.id}" if self.id else "Consent"


def read_consents(
    resources: Iterable[Mapping[str, Any]], *, tz: tzinfo = LONDON
) -> list[ConsentRecord | UnreadableConsent]:
    """Read a person's Consent resources, keeping every active one that cannot be read.

    A Consent that fails to read but is plainly not active (draft, inactive, rejected,
    entered-in-error) is dropped: it could not decide anything anyway.
    """
    out: list[ConsentRecord | UnreadableConsent] = []
    for data in resources:
        try:
            out.append(ConsentRecord.from_fhir(data, tz=tz))
        except ConsentParseError as exc:
            status = data.get("status") if isinstance(data, Mapping) else None
            if isinstance(status, str) and status != "active":
                continue
            raw_id = data.get("id") if isinstance(data, Mapping) else None
            out.append(UnreadableConsent(raw_id if isinstance(raw_id, str) else None, exc))
    return out


def _loc(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class _Reader:
    """Interpret one Consent; every failure names the element."""

    def __init__(self, data: Mapping[str, Any], tz: tzinfo) -> None:
        self.data = data
        self.tz = tz
        raw_id = data.get("id") if isinstance(data, Mapping) else None
        self.id = raw_id if isinstance(raw_id, str) else None

    def fail(self, element: str, message: str) -> ConsentParseError:
        return ConsentParseError(message, element=element, consent_id=self.id)

    def read(self) -> ConsentRecord:
        data = self.data
        if not isinstance(data, Mapping) or data.get("resourceType") != "Consent":
            raise self.fail("resourceType", "not a Consent resource")
        self.validate()
        if self.id is None:
            raise self.fail("id", "a Consent needs an id so decisions can name it")
        status = data["status"]
        scope = self.scope()
        meta = data.get("meta") or {}
        record = ConsentRecord(
            id=self.id,
            status=status,
            scope=scope,
            recorded=None,
            provision=None,
            version=meta.get("versionId"),
            recorded_by=self.recorded_by(),
            patient=(data.get("patient") or {}).get("reference"),
        )
        if status != "active" or scope != codes.PRIVACY_SCOPE:
            # Never used to decide, so nothing else needs to be understood.
            return record
        self.no_modifier_extensions(data, [])
        raw_time = data.get("dateTime")
        if raw_time is None:
            raise self.fail("dateTime", "an active Consent needs dateTime to order decisions")
        root = data.get("provision") or {}
        default = self.root_type()
        provision = self.provision(root, ["provision"], default)
        return ConsentRecord(
            id=record.id,
            status=status,
            scope=scope,
            recorded=self.time(raw_time, "dateTime"),
            provision=provision,
            version=record.version,
            recorded_by=record.recorded_by,
            patient=record.patient,
        )

    def validate(self) -> None:
        # Imported here: fhir.resources is slow to import and only reading needs it.
        from fhir.resources.R4B.consent import Consent

        try:
            Consent.model_validate(dict(self.data))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise self.fail(_loc([p for p in err["loc"] if p != "__root__"]), err["msg"]) from None

    def scope(self) -> str | None:
        for coding in self.data["scope"].get("coding") or ():
            if coding.get("system") == codes.CONSENT_SCOPE:
                return str(coding.get("code"))
        return None

    def recorded_by(self) -> str | None:
        for ext in self.data.get("extension") or ():
            if ext.get("url") == codes.RECORDED_BY:
                value = ext.get("valueString") or (ext.get("valueReference") or {}).get("display")
                if value:
                    return str(value)
        for org in self.data.get("organization") or ():
            if org.get("display"):
                return str(org["display"])
        return None

    def no_modifier_extensions(self, node: Any, path: list[str | int]) -> None:
        # FHIR: a reader that does not understand a modifier extension must not process it.
        if isinstance(node, Mapping):
            if node.get("modifierExtension"):
                raise self.fail(
                    _loc([*path, "modifierExtension"]), "modifier extensions are not understood"
                )
            for key, value in node.items():
                self.no_modifier_extensions(value, [*path, key])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self.no_modifier_extensions(value, [*path, i])

    def root_type(self) -> Effect | None:
        for coding in (self.data.get("policyRule") or {}).get("coding") or ():
            if coding.get("system") == codes.ACT_CODE:
                if coding.get("code") in codes.POLICY_RULE_PERMIT:
                    return Effect.PERMIT
                if coding.get("code") in codes.POLICY_RULE_DENY:
                    return Effect.DENY
        return None

    def time(self, value: str, element: str, *, end: bool = False) -> datetime:
        try:
            return parse_fhir_time(value, self.tz, end=end)
        except ValueError as exc:
            raise self.fail(element, str(exc)) from None

    def provision(
        self, node: Mapping[str, Any], path: list[str | int], default: Effect | None
    ) -> Provision:
        where = _loc(path)
        raw_type = node.get("type")
        if raw_type is None:
            if default is None:
                hint = (
                    "set provision.type, or policyRule OPTIN/OPTOUT"
                    if len(path) == 1
                    else "set type"
                )
                raise self.fail(
                    f"{where}.type", f"cannot tell whether it permits or denies ({hint})"
                )
            kind = default
        elif raw_type in ("permit", "deny"):
            kind = Effect(raw_type)
        else:
            raise self.fail(f"{where}.type", f"{raw_type!r} is not permit or deny")
        for unsupported in ("dataPeriod", "code"):
            if node.get(unsupported):
                raise self.fail(f"{where}.{unsupported}", "this condition is not supported")
        period = None
        if node.get("period"):
            raw = node["period"]
            period = Period(
                self.time(raw["start"], f"{where}.period.start") if raw.get("start") else None,
                self.time(raw["end"], f"{where}.period.end", end=True) if raw.get("end") else None,
            )
        children = tuple(
            self.provision(child, [*path, "provision", i], None)
            for i, child in enumerate(node.get("provision") or ())
        )
        return Provision(
            type=kind,
            path=where,
            period=period,
            actors=tuple(
                self.actor(a, f"{where}.actor[{i}]") for i, a in enumerate(node.get("actor") or ())
            ),
            actions=self.codes(node.get("action") or (), f"{where}.action", codes.CONSENT_ACTION),
            purposes=self.coding_codes(
                node.get("purpose") or (), f"{where}.purpose", codes.ACT_REASON
            ),
            classes=self.coding_codes(
                node.get("class") or (), f"{where}.class", codes.RESOURCE_TYPES
            ),
            labels=self.labels(node.get("securityLabel") or (), f"{where}.securityLabel"),
            data=self.data_refs(node.get("data") or (), f"{where}.data"),
            provisions=children,
        )

    def actor(self, raw: Mapping[str, Any], where: str) -> Actor:
        kind = ActorKind.RECIPIENT
        roles: set[str] = set()
        for coding in (raw.get("role") or {}).get("coding") or ():
            system, code = coding.get("system"), coding.get("code")
            if system == codes.CARE_ROLE and code:
                roles.add(code)
            elif system == codes.PARTICIPATION_TYPE and code == codes.CUSTODIAN:
                kind = ActorKind.CUSTODIAN
            # Other role codings (PRCP, IRCP…) describe the participation, not who it is.
        ident = (raw.get("reference") or {}).get("identifier") or {}
        system, value = ident.get("system"), ident.get("value")
        if not value or system not in (codes.ODS_ORGANISATION, codes.TEAM):
            raise self.fail(
                f"{where}.reference",
                "name the organisation by ODS code or the team by team id "
                "(reference.identifier); other references cannot be resolved here",
            )
        if kind is ActorKind.CUSTODIAN and (system != codes.ODS_ORGANISATION or roles):
            raise self.fail(where, "a custodian actor names an organisation by ODS code only")
        if system == codes.ODS_ORGANISATION:
            return Actor(kind, organisation=value, roles=frozenset(roles))
        return Actor(kind, team=value, roles=frozenset(roles))

    def codes(
        self, concepts: Iterable[Mapping[str, Any]], where: str, system: str
    ) -> frozenset[str]:
        out: set[str] = set()
        for i, concept in enumerate(concepts):
            out |= self.coding_codes(concept.get("coding") or (), f"{where}[{i}].coding", system)
        return frozenset(out)

    def coding_codes(
        self, codings: Iterable[Mapping[str, Any]], where: str, system: str
    ) -> frozenset[str]:
        out: set[str] = set()
        for i, coding in enumerate(codings):
            if coding.get("system") != system or not coding.get("code"):
                raise self.fail(f"{where}[{i}]", f"expected a code from {system}")
            out.add(coding["code"])
        return frozenset(out)

    def labels(self, codings: Iterable[Mapping[str, Any]], where: str) -> frozenset[Label]:
        out: set[Label] = set()
        for i, coding in enumerate(codings):
            if not coding.get("system") or not coding.get("code"):
                raise self.fail(f"{where}[{i}]", "a security label needs a system and a code")
            out.add(Label(coding["system"], coding["code"]))
        return frozenset(out)

    def data_refs(self, items: Iterable[Mapping[str, Any]], where: str) -> frozenset[str]:
        out: set[str] = set()
        for i, item in enumerate(items):
            ref = (item.get("reference") or {}).get("reference") or ""
            if item.get("meaning") != "instance" or ref.count("/") != 1:
                raise self.fail(
                    f"{where}[{i}]",
                    "only meaning 'instance' with a 'Type/id' reference is supported",
                )
            out.add(ref)
        return frozenset(out)
