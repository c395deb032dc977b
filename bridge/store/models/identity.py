"""Identity: links of Patients to Persons (with history), the review queue, blinded match
keys, the Patient each resource is about, and merges.

Nothing here identifies anyone in clear: ids are internal resource ids, match keys are
keyed hashes (HMAC) of normalised demographics, evidence says which fields agreed and how
strongly (never their values), and a reviewer's free-text note is encrypted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.models.base import Base, UTCDateTime


class IdentityLink(Base):
    """One Patient belonging to one Person for a time; ended rows are the link history."""

    __tablename__ = "identity_link"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    person_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # new | nhs-number | score | reviewer | merge
    rule: Mapped[str] = mapped_column(String(16), nullable=False)
    score: Mapped[float | None] = mapped_column(Float)
    # Canonical JSON: per-field agreement and explanation (no demographic values).
    evidence: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # relinked | merged | unmerged
    ended_reason: Mapped[str | None] = mapped_column(String(16))
    merge_id: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("ix_identity_link_patient", "patient_id", "ended_at"),
        Index("ix_identity_link_person", "person_id", "ended_at"),
    )


class MatchCandidate(Base):
    """A pair of Patients that may be the same human: the review queue and its decisions."""

    __tablename__ = "identity_match"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The pair in sorted order, so a pair has one row whichever record arrived first.
    patient_a: Mapped[str] = mapped_column(String(64), nullable=False)
    patient_b: Mapped[str] = mapped_column(String(64), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    evidence: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    # open | accepted | rejected | resolved (linked some other way before review)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The reviewer's note, encrypted (free text may name the person).
    key_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    __table_args__ = (
        UniqueConstraint("patient_a", "patient_b"),
        Index("ix_identity_match_status", "status", "id"),
        Index("ix_identity_match_patient_b", "patient_b"),
        Index("ix_identity_match_key_id", "key_id"),
    )


class MatchKey(Base):
    """A blocking key of a Patient: HMAC of a normalised demographic (never the value)."""

    __tablename__ = "identity_match_key"
    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    __table_args__ = (Index("ix_identity_match_key_key", "key"),)


class ResourceSubject(Base):
    """The Patient a stored resource is about (its subject or patient reference)."""

    __tablename__ = "identity_subject"
    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    __table_args__ = (Index("ix_identity_subject_patient", "patient_id"),)


class IdentityMerge(Base):
    """A merge of two Persons (ADT A40 or manual) and what it changed, so it can be undone."""

    __tablename__ = "identity_merge"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    surviving_patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    retired_patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    surviving_person_id: Mapped[str] = mapped_column(String(64), nullable=False)
    retired_person_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # A short reason without names or numbers, e.g. "hl7-a40 0000000034" or "manual".
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # Canonical JSON: links ended and made, Person versions before the merge.
    changes: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    unmerged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unmerged_by: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (
        Index("ix_identity_merge_retired_patient", "retired_patient_id"),
        Index("ix_identity_merge_surviving_person", "surviving_person_id"),
    )
