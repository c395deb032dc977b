"""Repository for the audit log: ordered appends under the chain-head lock, reads, queries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge.store.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
_HEAD_ID = 1
# Every audited write runs these, built once (SQLAlchemy caches their compiled form) and
# on the tables rather than the ORM classes, which skips the ORM's DML layer.
_HEAD = AuditHead.__table__
_ENTRY = AuditEntry.__table__
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == _HEAD_ID).with_for_update()
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == _HEAD_ID)
_INSERT_ENTRY = insert(_ENTRY)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == _HEAD_ID)
    .values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
)


@dataclass(frozen=True)
class AuditFilter:
    """What an IG officer searches the audit log by (all optional, combined with AND)."""

    person_id: str | None = None
    actor_user: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    break_glass: bool | None = None


class AuditRepository:
    """The audit log table; only the audit service appends (it computes the chain)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_head(self) -> tuple[int, str]:
        """Lock and return the chain tip (seq, hash); held until the transaction ends.

        The lock orders concurrent appends: on PostgreSQL a row lock, on SQLite the
        database write lock every carebridge transaction takes at BEGIN.
        """
        row = self.session.execute(_LOCK_HEAD).one_or_none()
        if row is not None:
            return int(row.seq), str(row.hash)
        try:
            with self.session.begin_nested():
                self.session.execute(
                    insert(AuditHead).values(id=_HEAD_ID, seq=0, hash=GENESIS_HASH)
                )
        except IntegrityError:
            pass  # another transaction created it first; lock theirs
        row = self.session.execute(_LOCK_HEAD).one()
        return int(row.seq), str(row.hash)

    def append(self, values: dict[str, Any]) -> None:
        """Insert one chained entry and move the head to it (caller holds the head lock)."""
        self.session.execute(_INSERT_ENTRY, values)
        self.session.execute(_MOVE_HEAD, {"b_seq": values["seq"], "b_hash": values["hash"]})

    def head(self) -> tuple[int, str]:
        """Return the chain tip without locking ((0, genesis) for an empty log)."""
        row = self.session.execute(_READ_HEAD).one_or_none()
        return (int(row.seq), str(row.hash)) if row else (0, GENESIS_HASH)

    def iter_all(self, *, batch: int = 5000) -> Iterator[Row[Any]]:
        """Stream every entry in sequence order as plain rows (bounded memory, no ORM cost)."""
        table = AuditEntry.__table__
        last = -1
        while True:
            rows = self.session.execute(
                select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)
            ).all()
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def get(self, seq: int) -> AuditEntry | None:
        """Return one entry by sequence number."""
        return self.session.get(AuditEntry, seq)

    def max_seq(self) -> int:
        """Return the highest stored sequence number (0 when empty)."""
        return int(self.session.scalar(select(func.max(AuditEntry.seq))) or 0)

    def search(
        self, flt: AuditFilter, *, limit: int = 100, before_seq: int | None = None
    ) -> Sequence[AuditEntry]:
        """Return matching entries, newest first, paged by sequence number."""
        stmt = select(AuditEntry)
        if flt.person_id is not None:
            stmt = stmt.where(AuditEntry.person_id == flt.person_id)
        if flt.actor_user is not None:
            stmt = stmt.where(AuditEntry.actor_user == flt.actor_user)
        if flt.action is not None:
            stmt = stmt.where(AuditEntry.action == flt.action)
        if flt.outcome is not None:
            stmt = stmt.where(AuditEntry.outcome == flt.outcome)
        if flt.since is not None:
            stmt = stmt.where(AuditEntry.recorded_at >= flt.since)
        if flt.until is not None:
            stmt = stmt.where(AuditEntry.recorded_at < flt.until)
        if flt.break_glass is not None:
            stmt = stmt.where(AuditEntry.break_glass.is_(flt.break_glass))
        if before_seq is not None:
            stmt = stmt.where(AuditEntry.seq < before_seq)
        return self.session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit)).all()
