"""Raw inbound messages (deduplication, replay) and the dead-letter store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.models.base import Base, UTCDateTime


class InboundMessage(Base):
    """One message or record received from a source, kept encrypted, deduplicated by key."""

    __tablename__ = "inbound_message"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_system: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    # e.g. the HL7 control id (MSH-10) or "<kind>:<id>:<version>" for extract rows.
    dedupe_key: Mapped[str] = mapped_column(String(200), nullable=False)
    # received | applied | failed
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    key_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # The reply sent for it (an HL7 ACK): a re-delivery gets exactly the same answer.
    reply: Mapped[bytes | None] = mapped_column(LargeBinary)
    __table_args__ = (
        UniqueConstraint("source_system", "dedupe_key"),
        Index("ix_inbound_message_key_id", "key_id"),
    )


class DeadLetter(Base):
    """Input that could not be parsed or mapped: kept whole with the reason, never lost."""

    __tablename__ = "dead_letter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_system: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    source_kind: Mapped[str | None] = mapped_column(String(64))
    # Where it came from: "persons.jsonl:12", "mllp" (lets it be re-read for reprocessing).
    origin: Mapped[str | None] = mapped_column(String(300))
    # Keyed hash of the raw input: the same bad input seen again bumps `attempts`.
    raw_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    error_code: Mapped[str] = mapped_column(String(16), nullable=False)
    error_field: Mapped[str | None] = mapped_column(String(200))
    # The reason is text about the input's shape, never the input's content.
    error_message: Mapped[str] = mapped_column(Text, nullable=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # open | reprocessed | discarded
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    key_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    __table_args__ = (
        UniqueConstraint("source_system", "raw_hash"),
        Index("ix_dead_letter_status", "status", "last_seen"),
        Index("ix_dead_letter_key_id", "key_id"),
    )
