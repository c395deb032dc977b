"""Break-glass: emergency access a worker asked for, and IG's review of it.

The reason the worker wrote and the reviewer's note are free text that may name the
person, so they are kept encrypted together in ``payload`` (JSON, AAD ``break-glass/<id>``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.models.base import Base, UTCDateTime


class BreakGlassRecord(Base):
    """One emergency access: who, for whom, from when until when, and its review."""

    __tablename__ = "break_glass"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), nullable=False)
    roles: Mapped[str] = mapped_column(String(400), nullable=False)
    org: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # The audit entry that recorded the request.
    audit_seq: Mapped[int | None] = mapped_column(Integer)
    # open | accepted | challenged
    review_status: Mapped[str] = mapped_column(String(16), nullable=False)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    key_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    __table_args__ = (
        Index("ix_break_glass_user_person", "user_id", "person_id", "expires_at"),
        Index("ix_break_glass_review", "review_status", "started_at"),
        Index("ix_break_glass_key_id", "key_id"),
    )
