"""Repositories for raw inbound messages and the dead-letter store (used by the adapters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.core.clock import Clock
from bridge.core.errors import BridgeError, NotFoundError
from bridge.store.crypto import StoreCrypto
from bridge.store.models import DeadLetter, InboundMessage

INBOUND_STATUSES = ("received", "applied", "failed")
DEAD_LETTER_STATUSES = ("open", "reprocessed", "discarded")

# Every message goes through these on the ingest path: built once (SQLAlchemy caches their
# compiled form), and on the table, not the ORM class, which skips the ORM's DML layer.
_INBOUND = InboundMessage.__table__
_FIND = select(_INBOUND.c.id, _INBOUND.c.status).where(
    _INBOUND.c.source_system == bindparam("source_system"),
    _INBOUND.c.dedupe_key == bindparam("dedupe_key"),
)
_MARK = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("message_id"))
    .values(status=bindparam("status"), processed_at=bindparam("processed_at"))
)
_SET_REPLY = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("message_id"))
    .values(reply=bindparam("reply"))
)


def _insert_new_key(dialect: str) -> Insert:
    """Return an INSERT that does nothing when the key is already stored (and says so)."""
    # One statement instead of a SELECT and a savepoint round a plain INSERT. PostgreSQL
    # waits for a concurrent transaction inserting the same key, then does nothing if it
    # committed; SQLite writers are serialised anyway (BEGIN IMMEDIATE).
    ins = postgresql.insert(_INBOUND) if dialect == "postgresql" else sqlite.insert(_INBOUND)
    return ins.on_conflict_do_nothing(index_elements=["source_system", "dedupe_key"]).returning(
        _INBOUND.c.id
    )


_INSERT_NEW_KEY = {d: _insert_new_key(d) for d in ("postgresql", "sqlite")}


@dataclass(frozen=True)
class Received:
    """Result of recording an inbound message: its row id and whether it was seen before."""

    id: int
    duplicate: bool
    status: str


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter with its raw input decrypted (for operators with the right role)."""

    id: int
    source_system: str
    channel: str
    source_kind: str | None
    origin: str | None
    error_code: str
    error_field: str | None
    error_message: str
    first_seen: datetime
    last_seen: datetime
    attempts: int
    status: str
    raw: bytes


class InboundRepository:
    """Raw inbound messages, deduplicated per source by a key (e.g. HL7 MSH-10)."""

    def __init__(self, session: Session, *, crypto: StoreCrypto, clock: Clock) -> None:
        self.session = session
        self.crypto = crypto
        self.clock = clock

    @staticmethod
    def _aad(source_system: str, dedupe_key: str) -> str:
        return f"inbound/{source_system}/{dedupe_key}"

    def record(self, *, source_system: str, channel: str, dedupe_key: str, raw: bytes) -> Received:
        """Keep a raw message; a repeat of a known key is reported as a duplicate, not stored."""
        payload, key_id = self.crypto.seal(raw, self._aad(source_system, dedupe_key))
        dialect = self.session.get_bind().dialect.name
        new_id = self.session.execute(
            _INSERT_NEW_KEY[dialect],
            {
                "source_system": source_system,
                "channel": channel,
                "dedupe_key": dedupe_key,
                "status": "received",
                "received_at": self.clock.now(),
                "key_id": key_id,
                "payload": payload,
            },
        ).scalar_one_or_none()
        if new_id is not None:
            return Received(new_id, duplicate=False, status="received")
        existing = self.session.execute(
            _FIND, {"source_system": source_system, "dedupe_key": dedupe_key}
        ).one()
        # A record that failed before (e.g. before a mapping fix) may be applied again.
        retry = existing.status == "failed"
        return Received(existing.id, duplicate=not retry, status=existing.status)

    def mark(self, message_id: int, status: str) -> None:
        """Set a message's processing status (received, applied or failed)."""
        if status not in INBOUND_STATUSES:
            raise ValueError(f"unknown inbound status {status!r}")
        result = self.session.execute(
            _MARK,
            {"message_id": message_id, "status": status, "processed_at": self.clock.now()},
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFoundError(f"inbound message {message_id} does not exist")

    def set_reply(self, message_id: int, reply: bytes) -> None:
        """Keep the reply sent for a message (answered again on re-delivery)."""
        self.session.execute(_SET_REPLY, {"message_id": message_id, "reply": reply})

    def reply(self, message_id: int) -> bytes | None:
        """Return the reply kept for a message, if any."""
        return self.session.scalar(
            select(InboundMessage.reply).where(InboundMessage.id == message_id)
        )

    def raw(self, message_id: int) -> bytes:
        """Return a message's raw bytes."""
        row = self.session.get(InboundMessage, message_id)
        if row is None:
            raise NotFoundError(f"inbound message {message_id} does not exist")
        return self.crypto.open(row.payload, self._aad(row.source_system, row.dedupe_key))


class DeadLetterRepository:
    """Input that failed: raw bytes kept encrypted with the error naming field and reason."""

    def __init__(self, session: Session, *, crypto: StoreCrypto, clock: Clock) -> None:
        self.session = session
        self.crypto = crypto
        self.clock = clock

    @staticmethod
    def _aad(source_system: str, raw_hash: str) -> str:
        return f"dead-letter/{source_system}/{raw_hash}"

    def add(
        self,
        *,
        source_system: str,
        channel: str,
        raw: bytes,
        error: BridgeError,
        source_kind: str | None = None,
        origin: str | None = None,
    ) -> int:
        """Keep failed input; the same input failing again bumps its attempts and reason."""
        now = self.clock.now()
        raw_hash = self.crypto.hasher.content_hash(raw)
        existing = self.session.scalars(
            select(DeadLetter).where(
                DeadLetter.source_system == source_system, DeadLetter.raw_hash == raw_hash
            )
        ).one_or_none()
        if existing is not None:
            existing.attempts += 1
            existing.last_seen = now
            existing.error_code = error.code
            existing.error_field = error.field
            existing.error_message = error.detail
            existing.status = "open"
            existing.source_kind = source_kind or existing.source_kind
            existing.origin = origin or existing.origin
            self.session.flush()
            return existing.id
        payload, key_id = self.crypto.seal(raw, self._aad(source_system, raw_hash))
        row = DeadLetter(
            source_system=source_system,
            channel=channel,
            source_kind=source_kind,
            origin=origin,
            raw_hash=raw_hash,
            error_code=error.code,
            error_field=error.field,
            error_message=error.detail,
            first_seen=now,
            last_seen=now,
            attempts=1,
            status="open",
            key_id=key_id,
            payload=payload,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def get(self, dead_letter_id: int) -> DeadLetterView:
        """Return one dead letter with its raw input."""
        row = self.session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise NotFoundError(f"dead letter {dead_letter_id} does not exist", field="id")
        return self._view(row)

    def list(self, *, status: str | None = "open", limit: int = 100) -> Sequence[DeadLetterView]:
        """Return dead letters, most recently seen first."""
        stmt = select(DeadLetter).order_by(DeadLetter.last_seen.desc(), DeadLetter.id.desc())
        if status is not None:
            stmt = stmt.where(DeadLetter.status == status)
        return [self._view(r) for r in self.session.scalars(stmt.limit(limit))]

    def set_status(self, dead_letter_id: int, status: str) -> None:
        """Mark a dead letter reprocessed or discarded (it is never deleted)."""
        if status not in DEAD_LETTER_STATUSES:
            raise ValueError(f"unknown dead-letter status {status!r}")
        row = self.session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise NotFoundError(f"dead letter {dead_letter_id} does not exist", field="id")
        row.status = status
        self.session.flush()

    def _view(self, row: DeadLetter) -> DeadLetterView:
        return DeadLetterView(
            id=row.id,
            source_system=row.source_system,
            channel=row.channel,
            source_kind=row.source_kind,
            origin=row.origin,
            error_code=row.error_code,
            error_field=row.error_field,
            error_message=row.error_message,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            attempts=row.attempts,
            status=row.status,
            raw=self.crypto.open(row.payload, self._aad(row.source_system, row.raw_hash)),
        )
