"""Record audit entries in the caller's transaction and verify the chain.

Recording is fail-closed: it runs inside the transaction of what it audits, so if the
entry cannot be written the whole request fails and nothing it would have returned leaves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.orm import Session

from bridge.audit import chain
from bridge.audit.checkpoint import Checkpoint
from bridge.core.clock import Clock
from bridge.core.crypto import Hasher
from bridge.core.settings import Settings
from bridge.store.audit import GENESIS_HASH, AuditRepository

# The actions the log knows; docs/audit.md explains each (tested).
ACTIONS: frozenset[str] = frozenset(
    {
        "auth.failure",
        "break-glass",
        "consent.create",
        "consent.update",
        "dead-letter.reprocess",
        "fhir.read",
        "fhir.write",
        "identity.link",
        "ig.alert",
        "identity.merge",
        "mapping.change",
        "person.read",
        "sync.run",
    }
)
OUTCOMES: frozenset[str] = frozenset({"permit", "deny", "partial", "success", "failure"})


@dataclass(frozen=True)
class Actor:
    """Who did it: a user with roles, organisation and team, or a named system process."""

    user: str
    roles: tuple[str, ...] = ()
    org: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One event to audit."""

    actor: Actor
    action: str
    outcome: str
    person_id: str | None = None
    purpose: str | None = None
    break_glass: bool = False
    request_id: str | None = None
    client_address: str | None = None
    # Resources touched with per-resource decisions, reasons, counts: ids and codes only.
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifyReport:
    """Result of walking the chain."""

    ok: bool
    entries: int
    last_seq: int
    last_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints_checked: int = 0

    def as_text(self) -> str:
        """Describe the result in one or two lines."""
        if self.ok:
            return (
                f"audit log intact: {self.entries} entries, last #{self.last_seq}"
                f" hash {self.last_hash[:16]}…, {self.checkpoints_checked} checkpoints matched"
            )
        return f"audit log NOT intact at entry #{self.first_bad_seq}: {self.problem}"


class AuditLog:
    """Appends chained entries and verifies the chain."""

    def __init__(self, hasher: Hasher, clock: Clock) -> None:
        self.hasher = hasher
        self.clock = clock

    def record(self, session: Session, rec: AuditRecord) -> int:
        """Append an entry in the session's transaction; return its sequence number."""
        if rec.action not in ACTIONS:
            raise ValueError(f"unknown audit action {rec.action!r}")
        if rec.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {rec.outcome!r}")
        repo = AuditRepository(session)
        seq, prev = repo.lock_head()
        values: dict[str, Any] = {
            "seq": seq + 1,
            "recorded_at": self.clock.now(),
            "actor_user": rec.actor.user,
            "actor_roles": " ".join(sorted(rec.actor.roles)),
            "actor_org": rec.actor.org,
            "actor_team": rec.actor.team,
            "action": rec.action,
            "person_id": rec.person_id,
            "outcome": rec.outcome,
            "purpose": rec.purpose,
            "break_glass": rec.break_glass,
            "request_id": rec.request_id,
            "client_address": rec.client_address,
            "detail": orjson.dumps(dict(rec.detail), option=orjson.OPT_SORT_KEYS).decode(),
        }
        values["prev_hash"] = prev
        values["hash"] = chain.link(self.hasher, prev, values)
        repo.append(values)
        session.flush()
        return int(values["seq"])

    def verify(self, session: Session, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
        """Walk the whole chain; name the first entry altered, removed, inserted or moved."""
        repo = AuditRepository(session)
        wanted = {cp.seq: cp for cp in checkpoints}
        prev, expected, count = GENESIS_HASH, 1, 0

        def bad(seq: int, problem: str) -> VerifyReport:
            return VerifyReport(False, count, expected - 1, prev, seq, problem)

        for row in repo.iter_all():
            if row.seq != expected:
                return bad(expected, f"entry #{expected} is missing (the next entry is #{row.seq})")
            if row.prev_hash != prev:
                return bad(
                    row.seq,
                    f"entry #{row.seq} does not follow entry #{row.seq - 1}"
                    " (an entry was removed, inserted or moved)",
                )
            computed = chain.link(self.hasher, prev, chain.entry_values(row))
            if computed != row.hash:
                return bad(row.seq, f"entry #{row.seq} was altered after it was written")
            cp = wanted.get(row.seq)
            if cp is not None and cp.hash != row.hash:
                return bad(
                    row.seq,
                    f"entry #{row.seq} differs from the signed checkpoint of {cp.at}"
                    " (the chain was rewritten)",
                )
            prev, expected, count = row.hash, expected + 1, count + 1
        last = expected - 1
        head_seq, head_hash = repo.head()
        if (head_seq, head_hash) != (last, prev):
            return bad(
                last + 1,
                f"the log ends at entry #{last} but its head records #{head_seq}"
                " (entries were removed from the end)",
            )
        beyond = [cp for cp in checkpoints if cp.seq > last]
        if beyond:
            cp = max(beyond, key=lambda c: c.seq)
            return bad(
                last + 1,
                f"a signed checkpoint of {cp.at} records entry #{cp.seq}, but the log ends at"
                f" #{last} (entries were removed from the end)",
            )
        return VerifyReport(True, count, last, prev, checkpoints_checked=len(wanted))


def audit_log_from_settings(settings: Settings, clock: Clock) -> AuditLog:
    """Load the audit chain key (created on first run in development)."""
    hasher = Hasher.load_or_create(
        settings.effective_audit_key_file, allow_create=not settings.is_production
    )
    return AuditLog(hasher, clock)
