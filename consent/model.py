"""The engine's inputs and outputs: small frozen types, no behaviour beyond checks.

Times are timezone-aware ``datetime`` values passed in by the caller: the engine has no
clock. Periods are half-open, ``start <= at < end``, and ``None`` means unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from consent.record import ConsentRecord, UnreadableConsent


class Effect(StrEnum):
    """What a voter or a decision says; a decision is never ``ABSTAIN``."""

    PERMIT = "permit"
    DENY = "deny"
    ABSTAIN = "abstain"


class Label(NamedTuple):
    """A FHIR security label (``meta.security`` coding): system and code."""

    system: str
    code: str

    @classmethod
    def parse(cls, token: str) -> Label:
        """Return the label written as a FHIR token ``system|code``."""
        system, sep, code = token.rpartition("|")
        if not sep or not system or not code:
            raise ValueError(f"{token!r} is not a 'system|code' token")
        return cls(system, code)

    def __str__(self) -> str:
        return f"{self.system}|{self.code}"


def _aware(value: datetime | None, what: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open time range ``[start, end)``; ``None`` leaves that side open."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self.start, "Period.start")
        _aware(self.end, "Period.end")

    def contains(self, at: datetime) -> bool:
        """Return whether ``at`` falls inside the period."""
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)

    @classmethod
    def of_dates(cls, start: date | None, end: date | None, tz: tzinfo) -> Period:
        """Return the period from the start of ``start`` to the end of ``end`` (inclusive dates)."""
        return cls(
            None if start is None else datetime.combine(start, time(), tz),
            None if end is None else datetime.combine(end + timedelta(days=1), time(), tz),
        )


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision went the way it did: a stable code and a sentence for a social worker.

    The text never contains the withheld content itself (no record text, no resource id).
    """

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one resource (or, from ``screen``, for the person as a whole).

    ``rule`` is the policy rule (voter) that decided, ``consent``/``provision`` the Consent
    version and provision when a recorded consent decided. ``break_glass`` is set on every
    decision of a break-glass request (audit it as break-glass and queue it for IG review);
    ``expires_at`` is when that emergency access ends. ``alert_ig`` asks the caller to alert
    IG (a restricted category was released). ``redactions`` are element paths to strip
    before the resource leaves (``Patient.address``). ``categories`` are the sensitive
    categories the resource carries.
    """

    effect: Effect
    reasons: tuple[Reason, ...]
    rule: str
    policy: str
    consent: str | None = None
    provision: str | None = None
    break_glass: bool = False
    expires_at: datetime | None = None
    alert_ig: bool = False
    redactions: tuple[str, ...] = ()
    categories: frozenset[str] = frozenset()
    deny_rules: tuple[str, ...] = ()

    @property
    def permitted(self) -> bool:
        """Return whether the resource may be released."""
        return self.effect is Effect.PERMIT

    @property
    def decided_by(self) -> str:
        """Return the consent version that decided, else ``policy#rule``."""
        if self.consent is not None:
            return self.consent
        return f"{self.policy}#{self.rule}"

    @property
    def codes(self) -> tuple[str, ...]:
        """Return the reason codes, in order."""
        return tuple(r.code for r in self.reasons)


@dataclass(frozen=True, slots=True)
class BreakGlass:
    """An emergency-access request: a written reason and when the emergency access began.

    ``started_at`` is ``None`` for a new request (it starts at the request's ``at``); later
    requests in the same emergency pass the original start so the time limit holds.
    """

    reason: str
    started_at: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self.started_at, "BreakGlass.started_at")


@dataclass(frozen=True, slots=True)
class BreakGlassGrant:
    """Emergency access in effect: what the audit and the IG review queue record.

    ``withheld_categories`` are the categories it never exposes (the policy's excluded
    restricted categories and every never-shared one).
    """

    reason: str
    started_at: datetime
    expires_at: datetime
    withheld_categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """Who is asking, for what purpose and when.

    ``roles`` are the user's role names as the policy knows them (``social_worker``,
    ``safeguarding_lead``); ``org`` the ODS code of the user's organisation; ``team`` the
    user's team id; ``purpose`` an HL7 v3 PurposeOfUse code (``TREAT`` is direct care).
    """

    user: str
    roles: frozenset[str]
    org: str
    team: str | None
    purpose: str
    at: datetime
    break_glass: BreakGlass | None = None

    def __post_init__(self) -> None:
        _aware(self.at, "AccessRequest.at")
        if not isinstance(self.roles, frozenset):
            object.__setattr__(self, "roles", frozenset(self.roles))


class RelationshipKind(StrEnum):
    """How a worker or team is involved in a person's care."""

    ALLOCATED_WORKER = "allocated_worker"
    ALLOCATED_TEAM = "allocated_team"
    OPEN_REFERRAL = "open_referral"
    OPEN_EPISODE = "open_episode"


@dataclass(frozen=True, slots=True)
class Relationship:
    """A care relationship: an allocated worker (``user``) or a team (``team``) over a period."""

    kind: RelationshipKind
    period: Period
    user: str | None = None
    team: str | None = None

    def __post_init__(self) -> None:
        if self.kind is RelationshipKind.ALLOCATED_WORKER:
            if not self.user:
                raise ValueError("an allocated_worker relationship needs a user")
        elif not self.team:
            raise ValueError(f"a {self.kind.value} relationship needs a team")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A resource the caller may release: what it is, its labels and where it came from.

    ``category`` is the resource's own category code where it has one (a policy may map it
    to a sensitive category); ``source_system`` the code of the system it came from.
    """

    resource_type: str
    resource_id: str
    source_system: str
    security_labels: frozenset[Label] = frozenset()
    category: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.security_labels, frozenset):
            object.__setattr__(self, "security_labels", frozenset(self.security_labels))

    @property
    def reference(self) -> str:
        """Return the relative reference ``Type/id``."""
        return f"{self.resource_type}/{self.resource_id}"


@dataclass(frozen=True, slots=True)
class PersonContext:
    """What the engine needs to know about the person: consents, relationships, flags.

    ``consents`` are the person's Consent resources as read by ``read_consents`` (an
    unreadable active Consent stays in the list as ``UnreadableConsent`` and withholds
    shared data: it must never be dropped silently). ``restricted_demographics`` is true
    when the person's address and contact details must be withheld from every view.
    """

    person_id: str
    consents: tuple[ConsentRecord | UnreadableConsent, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    restricted_demographics: bool = False

    def __post_init__(self) -> None:
        # Accept any sequence; tuples keep the context immutable.
        object.__setattr__(self, "consents", tuple(self.consents))
        object.__setattr__(self, "relationships", tuple(self.relationships))
