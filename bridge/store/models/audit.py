"""The append-only, hash-chained audit log and its chain head."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.models.base import Base, UTCDateTime


class AuditEntry(Base):
    """One audited event. Rows are only ever inserted; ``hash`` chains each to the last.

    Holds who did what to which person and why — internal ids only, never names, NHS
    numbers or record content — so IG officers can query it directly.
    """

    __tablename__ = "audit_entry"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor_user: Mapped[str] = mapped_column(String(200), nullable=False)
    actor_roles: Mapped[str] = mapped_column(String(400), nullable=False, default="")
    actor_org: Mapped[str | None] = mapped_column(String(64))
    actor_team: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    person_id: Mapped[str | None] = mapped_column(String(64))
    # permit | deny | partial | success | failure
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    purpose: Mapped[str | None] = mapped_column(String(64))
    break_glass: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    # Canonical JSON: resources touched with per-resource decisions, reasons, extra detail.
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    __table_args__ = (
        Index("ix_audit_entry_person", "person_id", "seq"),
        Index("ix_audit_entry_actor", "actor_user", "seq"),
        Index("ix_audit_entry_action", "action", "seq"),
        Index("ix_audit_entry_recorded_at", "recorded_at"),
    )


class AuditHead(Base):
    """The single row holding the chain's tip; locking it orders concurrent appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
