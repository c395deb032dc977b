"""Scheduled sync: jobs with their lease, runs, checkpoints, and the alert outbox.

A checkpoint row is written in the same transaction as the records it covers, so what a
job has read and what the store holds never disagree, whenever the process dies. The
outbox payload may carry health data (an alert about an admission), so it is kept
encrypted (AAD ``outbox/<idempotency key>``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.models.base import Base, UTCDateTime


class SyncJob(Base):
    """One configured job: its lease (who runs it, until when) and its schedule state."""

    __tablename__ = "sync_job"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # SHA-256 of the job's definition: a changed definition is noticed (and shown).
    definition_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failing: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class SyncRun(Base):
    """One run of a job: when, by which worker, what it read and applied, how it ended."""

    __tablename__ = "sync_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100), nullable=False)
    worker: Mapped[str] = mapped_column(String(200), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # running | succeeded | failed | stopped | interrupted
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    records_read: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    applied: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    duplicate: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    dead_lettered: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The watermarks reached, as JSON text ({"person": "2026-11-01T09:00:00+00:00", ...}).
    watermark: Mapped[str | None] = mapped_column(Text)
    # What went wrong, about the job (never a record's content).
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_sync_run_job", "job", "started_at"),)


class SyncCheckpoint(Base):
    """How far a job has read one source unit (a file, or an HTTP collection)."""

    __tablename__ = "sync_checkpoint"
    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    # "file:<path relative to the job's directory>" or "kind:<record kind>".
    source_key: Mapped[str] = mapped_column(String(500), primary_key=True)
    watermark: Mapped[str | None] = mapped_column(String(100))
    # Items (records and unreadable rows) of the file already applied, in read order.
    offset: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # "<size>:<mtime ns>:<sha256>" of the file the offset is about.
    fingerprint: Mapped[str | None] = mapped_column(String(200))
    done: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class OutboxMessage(Base):
    """An alert for the other system, written with the change that caused it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Unique: the same trigger seen again (a re-applied record) makes no second alert.
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    person_id: Mapped[str] = mapped_column(String(64), nullable=False)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    team: Mapped[str | None] = mapped_column(String(64))
    org: Mapped[str | None] = mapped_column(String(64))
    # Whether the payload carries the triggering record's content (consent permitted it).
    detailed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # pending | delivered
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    __table_args__ = (
        Index("ix_outbox_status", "status", "next_attempt_at"),
        Index("ix_outbox_person", "person_id", "id"),
        Index("ix_outbox_key_id", "key_id"),
    )
