"""What the review queue API reads and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic

from bridge.store.identity import CandidateRow


class FieldEvidenceRead(pydantic.BaseModel):
    """How one field compared, in words a reviewer can check against the two records."""

    field: str
    agreement: str
    weight: float
    explanation: str


class MatchPatient(pydantic.BaseModel):
    """One side of a pair: the Patient and the Person it is linked to now."""

    reference: str = pydantic.Field(examples=["Patient/5ff777f4-32d5-5575-89bc-6641ac03b1af"])
    person: str | None = pydantic.Field(None, examples=["Person/0d6c…"])


class MatchRead(pydantic.BaseModel):
    """A pair of Patients that may be the same human, with the evidence for and against."""

    id: int
    status: str
    score: float
    patients: list[MatchPatient]
    fields: list[FieldEvidenceRead]
    summary: str
    thresholds: dict[str, float]
    created_at: datetime
    updated_at: datetime
    reviewer: str | None = None
    decided_at: datetime | None = None

    @classmethod
    def from_row(cls, row: CandidateRow, persons: dict[str, str]) -> MatchRead:
        """Build the API view of a queue row (no demographic values, only how they agree)."""
        evidence: dict[str, Any] = row.evidence
        return cls(
            id=row.id,
            status=row.status,
            score=row.score,
            patients=[
                MatchPatient(
                    reference=f"Patient/{p}",
                    person=f"Person/{persons[p]}" if p in persons else None,
                )
                for p in (row.patient_a, row.patient_b)
            ],
            fields=[FieldEvidenceRead(**f) for f in evidence.get("fields", [])],
            summary=str(evidence.get("summary", "")),
            thresholds={k: float(v) for k, v in (evidence.get("thresholds") or {}).items()},
            created_at=row.created_at,
            updated_at=row.updated_at,
            reviewer=row.reviewer,
            decided_at=row.decided_at,
        )


class MatchPage(pydantic.BaseModel):
    """A page of the review queue, oldest first."""

    matches: list[MatchRead]
    open: int
    next: str | None = None


class MatchDecision(pydantic.BaseModel):
    """A reviewer's decision on a pair."""

    model_config = pydantic.ConfigDict(extra="forbid")

    decision: Literal["accept", "reject"] = pydantic.Field(
        description="accept: the two records are one human (their Persons are merged);"
        " reject: they are not (never linked automatically afterwards)"
    )
    note: str | None = pydantic.Field(
        None, max_length=2000, description="why; stored encrypted, shown to reviewers only"
    )


class MatchDecisionRead(pydantic.BaseModel):
    """The decided pair and what it did."""

    match: MatchRead
    person: str | None = None
    merge_id: int | None = None
