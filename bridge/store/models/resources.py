"""FHIR resources: the current version, every version's history, and the identifier index.

Payloads are AES-GCM ciphertext (see ``bridge.core.crypto``); the clear columns hold only
what queries need and nothing identifying: type, id, version, timestamps, source keys,
security labels, keyed hashes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.models.base import Base, UTCDateTime


class _ResourceColumns:
    """Columns shared by the current and history tables."""

    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    source_system: Mapped[str | None] = mapped_column(String(64))
    source_kind: Mapped[str | None] = mapped_column(String(64))
    source_id: Mapped[str | None] = mapped_column(String(200))
    # The source's own ordering of changes (UTC ISO 8601 instant), so an older message
    # arriving late never overwrites newer data.
    source_version: Mapped[str | None] = mapped_column(String(40))
    person_id: Mapped[str | None] = mapped_column(String(64))
    # Space-separated sensitivity codes, e.g. "PSY SDV"; empty when none.
    security_labels: Mapped[str] = mapped_column(String(400), nullable=False, default="")
    content_hash: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)


class ResourceCurrent(_ResourceColumns, Base):
    """The current version of each resource (deleted ones stay, flagged)."""

    __tablename__ = "resource"
    __table_args__ = (
        PrimaryKeyConstraint("resource_type", "id"),
        UniqueConstraint("source_system", "source_kind", "source_id", "resource_type"),
        Index("ix_resource_person", "person_id"),
        Index("ix_resource_last_updated", "resource_type", "last_updated"),
        Index("ix_resource_key_id", "key_id"),
    )


class ResourceHistory(_ResourceColumns, Base):
    """Every version of every resource, the current one included."""

    __tablename__ = "resource_history"
    __table_args__ = (
        PrimaryKeyConstraint("resource_type", "id", "version_id"),
        Index("ix_resource_history_key_id", "key_id"),
    )


class IdentifierIndex(Base):
    """Blind index: keyed hashes of a resource's identifiers (NHS numbers never in clear)."""

    __tablename__ = "identifier_index"
    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    __table_args__ = (Index("ix_identifier_index_token", "token"),)
