"""Care relationships read from a person's stored resources (pure: no database, no clock).

The consent engine asks whether the requesting worker or their team is involved in the
person's care. Involvement is recorded by the source systems and arrives as FHIR:

- an allocation (social care) or key professional (community health) is a CareTeam whose
  participants name a worker (Practitioner identifier) or a team (Organization
  identifier): ``allocated_worker`` / ``allocated_team`` for the participant's period;
- an open referral or front-door contact is a ServiceRequest (status ``active`` or
  ``on-hold``) whose performer names the team holding it: ``open_referral``;
- an open episode is an EpisodeOfCare (``planned``, ``waiting``, ``active`` or
  ``onhold``) whose ``team`` or ``careManager`` names a team or worker: ``open_episode``
  (a care manager named as a worker is an ``allocated_worker``).

Workers and teams are recognised by their identifier system (``AccessConfig``), so an id
from one system never matches a user of another.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from consent import Period, Relationship, RelationshipKind
from consent.codes import TEAM
from consent.record import parse_fhir_time

OPEN_REFERRAL = frozenset({"active", "on-hold"})
OPEN_EPISODE = frozenset({"planned", "waiting", "active", "onhold"})


@dataclass(frozen=True)
class AccessConfig:
    """Which identifier systems name workers (token ``sub``) and teams (token ``team``)."""

    worker_systems: frozenset[str]
    team_systems: frozenset[str]

    @classmethod
    def from_mapping_config(cls, values: Mapping[str, Any]) -> AccessConfig:
        """Return the systems the shipped mapping specs write workers and teams with."""
        workers = {values.get("asc_worker_system"), values.get("chs_staff_system")}
        teams = {TEAM, values.get("chs_team_system")}
        return cls(
            worker_systems=frozenset(str(s) for s in workers if s),
            team_systems=frozenset(str(s) for s in teams if s),
        )


def _period(raw: Any, tz: tzinfo) -> Period | None:
    """Return a FHIR Period as a half-open period (dates inclusive); None when unreadable."""
    if not isinstance(raw, Mapping):
        return Period()
    try:
        start = raw.get("start")
        end = raw.get("end")
        return Period(
            parse_fhir_time(start, tz) if isinstance(start, str) else None,
            parse_fhir_time(end, tz, end=True) if isinstance(end, str) else None,
        )
    except ValueError:
        # An unreadable period grants nothing rather than everything.
        return None


def _identifier(ref: Any) -> tuple[str, str] | None:
    ident = ref.get("identifier") if isinstance(ref, Mapping) else None
    if isinstance(ident, Mapping) and ident.get("system") and ident.get("value"):
        return str(ident["system"]), str(ident["value"])
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _involved(
    refs: Iterable[Any], config: AccessConfig, period: Period, team_kind: RelationshipKind
) -> Iterator[Relationship]:
    for ref in refs:
        found = _identifier(ref)
        if found is None:
            continue
        system, value = found
        if system in config.worker_systems:
            yield Relationship(RelationshipKind.ALLOCATED_WORKER, period, user=value)
        elif system in config.team_systems:
            yield Relationship(team_kind, period, team=value)


def relationships_of(
    resources: Iterable[Mapping[str, Any]], config: AccessConfig, tz: tzinfo
) -> list[Relationship]:
    """Return the care relationships the resources record (duplicates removed, in order)."""
    out: dict[Relationship, None] = {}
    for res in resources:
        rtype = res.get("resourceType")
        status = res.get("status")
        if status == "entered-in-error":
            continue
        if rtype == "CareTeam":
            team_period = _period(res.get("period"), tz)
            for participant in _as_list(res.get("participant")):
                if not isinstance(participant, Mapping):
                    continue
                period = (
                    _period(participant["period"], tz) if "period" in participant else team_period
                )
                if period is None:
                    continue
                refs = [participant.get("member")]
                found = _involved(refs, config, period, RelationshipKind.ALLOCATED_TEAM)
                out.update(dict.fromkeys(found))
        elif rtype == "ServiceRequest" and status in OPEN_REFERRAL:
            found = _involved(
                _as_list(res.get("performer")), config, Period(), RelationshipKind.OPEN_REFERRAL
            )
            out.update(dict.fromkeys(found))
        elif rtype == "EpisodeOfCare" and status in OPEN_EPISODE:
            period = _period(res.get("period"), tz)
            if period is None:
                continue
            refs = [*_as_list(res.get("careManager")), *_as_list(res.get("team"))]
            out.update(
                dict.fromkeys(_involved(refs, config, period, RelationshipKind.OPEN_EPISODE))
            )
    return list(out)


def in_force(relationships: Iterable[Relationship], at: datetime) -> list[Relationship]:
    """Return the relationships whose period contains ``at``."""
    return [r for r in relationships if r.period.contains(at)]
