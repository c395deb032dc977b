"""Repository for identity: Patient→Person links with history, the review queue, blinded
match keys, resource subjects and merges.

The link table is the truth of who is who; ``resource.person_id`` is kept in step with it
(for the Patient rows and every resource about them) so "resources of person X" is one
indexed query that reflects a merge or unmerge as soon as its transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, and_, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from bridge.store.crypto import StoreCrypto
from bridge.store.models import (
    IdentityLink,
    IdentityMerge,
    MatchCandidate,
    MatchKey,
    ResourceCurrent,
    ResourceSubject,
)

# The statements linking on ingest runs for every Patient and resource, built once
# (SQLAlchemy caches their compiled form) and on the tables rather than the ORM classes:
# plain rows skip the ORM's loading layer and are never stale identity-map objects.
_LINK = IdentityLink.__table__
_KEY = MatchKey.__table__
_SUBJECT = ResourceSubject.__table__
_CANDIDATE = MatchCandidate.__table__
_RESOURCE = ResourceCurrent.__table__
_ACTIVE_LINK = (
    select(_LINK)
    .where(_LINK.c.patient_id == bindparam("b_patient"), _LINK.c.ended_at.is_(None))
    .limit(1)
)
_ACTIVE_LINKS = select(_LINK).where(
    _LINK.c.patient_id.in_(bindparam("b_patients", expanding=True)), _LINK.c.ended_at.is_(None)
)
_LINKS_OF_PERSON = (
    select(_LINK)
    .where(_LINK.c.person_id == bindparam("b_person"), _LINK.c.ended_at.is_(None))
    .order_by(_LINK.c.id)
)
_LINK_HISTORY = (
    select(_LINK).where(_LINK.c.patient_id == bindparam("b_patient")).order_by(_LINK.c.id)
)
_GET_LINK = select(_LINK).where(_LINK.c.id == bindparam("b_id"))
_ADD_LINK = insert(_LINK).returning(_LINK.c.id)
_END_LINK = (
    update(_LINK)
    .where(_LINK.c.id == bindparam("b_id"), _LINK.c.ended_at.is_(None))
    .values(ended_at=bindparam("b_at"), ended_reason=bindparam("b_reason"))
)
_DELETE_SUBJECT = delete(_SUBJECT).where(
    _SUBJECT.c.resource_type == bindparam("b_type"), _SUBJECT.c.resource_id == bindparam("b_id")
)
_INSERT_SUBJECT = insert(_SUBJECT)
_POINT_AT_PERSON = update(_RESOURCE).where(
    or_(
        and_(
            _RESOURCE.c.resource_type == "Patient",
            _RESOURCE.c.id.in_(bindparam("b_patients", expanding=True)),
        ),
        tuple_(_RESOURCE.c.resource_type, _RESOURCE.c.id).in_(
            select(_SUBJECT.c.resource_type, _SUBJECT.c.resource_id).where(
                _SUBJECT.c.patient_id.in_(bindparam("b_patients_about", expanding=True))
            )
        ),
    )
)
_DELETE_KEYS = delete(_KEY).where(_KEY.c.patient_id == bindparam("b_patient"))
_INSERT_KEYS = insert(_KEY)
_SHARED = func.count(_KEY.c.key)
_PATIENTS_SHARING_KEYS = (
    select(_KEY.c.patient_id, _SHARED)
    .where(
        _KEY.c.key.in_(bindparam("b_keys", expanding=True)),
        _KEY.c.patient_id != bindparam("b_exclude"),
    )
    .group_by(_KEY.c.patient_id)
    .order_by(_SHARED.desc(), _KEY.c.patient_id)
    .limit(bindparam("b_limit"))
)
_MATCH_KEYS = (
    select(_KEY.c.key).where(_KEY.c.patient_id == bindparam("b_patient")).order_by(_KEY.c.key)
)
_EITHER_PATIENT = or_(
    _CANDIDATE.c.patient_a == bindparam("b_patient"),
    _CANDIDATE.c.patient_b == bindparam("b_patient"),
)
_REJECTED_PARTNERS = select(_CANDIDATE.c.patient_a, _CANDIDATE.c.patient_b).where(
    _CANDIDATE.c.status == "rejected", _EITHER_PATIENT
)
_OPEN_CANDIDATES_OF = (
    select(_CANDIDATE)
    .where(_CANDIDATE.c.status == "open", _EITHER_PATIENT)
    .order_by(_CANDIDATE.c.id)
)
_CANDIDATE_FOR = select(_CANDIDATE).where(
    _CANDIDATE.c.patient_a == bindparam("b_a"), _CANDIDATE.c.patient_b == bindparam("b_b")
)
_INSERT_CANDIDATE = insert(_CANDIDATE).returning(_CANDIDATE.c.id)
_REFRESH_CANDIDATE = (
    update(_CANDIDATE)
    .where(_CANDIDATE.c.id == bindparam("b_id"))
    .values(
        score=bindparam("b_score"),
        evidence=bindparam("b_evidence"),
        status="open",
        updated_at=bindparam("b_at"),
    )
)
_SET_CANDIDATE_STATUS = (
    update(_CANDIDATE)
    .where(_CANDIDATE.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), updated_at=bindparam("b_at"))
)


def dump_json(value: Any) -> str:
    """Serialise evidence or merge changes canonically (sorted keys)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True)
class LinkRow:
    """One link of a Patient to a Person (active while ``ended_at`` is None)."""

    id: int
    patient_id: str
    person_id: str
    rule: str
    score: float | None
    evidence: dict[str, Any]
    created_at: datetime
    created_by: str
    ended_at: datetime | None
    ended_reason: str | None
    merge_id: int | None


@dataclass(frozen=True)
class CandidateRow:
    """A pair in the review queue, with its decision once made."""

    id: int
    patient_a: str
    patient_b: str
    score: float
    evidence: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    reviewer: str | None
    decided_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class MergeRow:
    """A merge and what it changed."""

    id: int
    surviving_patient_id: str
    retired_patient_id: str
    surviving_person_id: str
    retired_person_id: str
    reason: str
    actor: str
    merged_at: datetime
    changes: dict[str, Any]
    unmerged_at: datetime | None
    unmerged_by: str | None


def _link(row: IdentityLink | Row[Any]) -> LinkRow:
    return LinkRow(
        id=row.id,
        patient_id=row.patient_id,
        person_id=row.person_id,
        rule=row.rule,
        score=row.score,
        evidence=orjson.loads(row.evidence or "{}"),
        created_at=row.created_at,
        created_by=row.created_by,
        ended_at=row.ended_at,
        ended_reason=row.ended_reason,
        merge_id=row.merge_id,
    )


def _note_aad(candidate_id: int) -> str:
    return f"identity-match/{candidate_id}"


class IdentityRepository:
    """Identity tables, built per session (the caller owns the transaction)."""

    def __init__(self, session: Session, *, crypto: StoreCrypto) -> None:
        self.session = session
        self.crypto = crypto

    # -- links --------------------------------------------------------------------------
    def active_link(self, patient_id: str) -> LinkRow | None:
        """Return the Patient's current link, or None when it is not linked."""
        row = self.session.execute(_ACTIVE_LINK, {"b_patient": patient_id}).first()
        return _link(row) if row else None

    def active_links(self, patient_ids: Iterable[str]) -> dict[str, LinkRow]:
        """Return the current link of each of the given Patients that has one."""
        ids = sorted(set(patient_ids))
        if not ids:
            return {}
        rows = self.session.execute(_ACTIVE_LINKS, {"b_patients": ids})
        return {r.patient_id: _link(r) for r in rows}

    def links_of_person(self, person_id: str) -> list[LinkRow]:
        """Return the Person's current links, oldest first."""
        rows = self.session.execute(_LINKS_OF_PERSON, {"b_person": person_id})
        return [_link(r) for r in rows]

    def link_history(self, patient_id: str) -> list[LinkRow]:
        """Return every link the Patient has had, oldest first."""
        rows = self.session.execute(_LINK_HISTORY, {"b_patient": patient_id})
        return [_link(r) for r in rows]

    def get_link(self, link_id: int) -> LinkRow | None:
        """Return one link by id."""
        row = self.session.execute(_GET_LINK, {"b_id": link_id}).one_or_none()
        return _link(row) if row else None

    def add_link(
        self,
        *,
        patient_id: str,
        person_id: str,
        rule: str,
        score: float | None,
        evidence: dict[str, Any],
        at: datetime,
        by: str,
        merge_id: int | None = None,
    ) -> int:
        """Insert an active link and return its id (end the old one first)."""
        result = self.session.execute(
            _ADD_LINK,
            {
                "patient_id": patient_id,
                "person_id": person_id,
                "rule": rule,
                "score": score,
                "evidence": dump_json(evidence),
                "created_at": at,
                "created_by": by,
                "merge_id": merge_id,
            },
        )
        return int(result.scalar_one())

    def end_link(self, link_id: int, *, at: datetime, reason: str) -> None:
        """Close a link (it stays as history)."""
        self.session.execute(_END_LINK, {"b_id": link_id, "b_at": at, "b_reason": reason})

    # -- resource pointers --------------------------------------------------------------
    def set_subject(
        self, resource_type: str, resource_id: str, patient_id: str | None, *, new: bool = False
    ) -> None:
        """Record which Patient a resource is about (None forgets it).

        ``new=True`` says the resource was only just created, so it has no row to replace.
        """
        if not new:
            self.session.execute(_DELETE_SUBJECT, {"b_type": resource_type, "b_id": resource_id})
        if patient_id is not None:
            self.session.execute(
                _INSERT_SUBJECT,
                {
                    "resource_type": resource_type,
                    "resource_id": resource_id,
                    "patient_id": patient_id,
                },
            )

    def point_at_person(self, patient_ids: Sequence[str], person_id: str | None) -> int:
        """Set ``person_id`` on the Patients and every resource about them; return rows."""
        if not patient_ids:
            return 0
        ids = sorted(set(patient_ids))
        result = self.session.execute(
            _POINT_AT_PERSON,
            {"person_id": person_id, "b_patients": ids, "b_patients_about": ids},
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def resources_of_person(self, person_id: str) -> list[tuple[str, str]]:
        """Return (type, id) of every current resource of a Person, Patients first."""
        rows = self.session.execute(
            select(ResourceCurrent.resource_type, ResourceCurrent.id)
            .where(ResourceCurrent.person_id == person_id, ResourceCurrent.deleted.is_(False))
            .order_by(
                (ResourceCurrent.resource_type != "Patient"),
                ResourceCurrent.resource_type,
                ResourceCurrent.id,
            )
        ).all()
        return [(str(t), str(i)) for t, i in rows]

    # -- match keys ---------------------------------------------------------------------
    def set_match_keys(self, patient_id: str, keys: Iterable[str], *, new: bool = False) -> None:
        """Replace the Patient's blocking keys (``new=True``: it has none to replace)."""
        if not new:
            self.session.execute(_DELETE_KEYS, {"b_patient": patient_id})
        wanted = sorted(set(keys))
        if wanted:
            self.session.execute(
                _INSERT_KEYS, [{"patient_id": patient_id, "key": k} for k in wanted]
            )

    def patients_sharing_keys(
        self, keys: Iterable[str], *, exclude: str, limit: int = 200
    ) -> list[str]:
        """Return Patients sharing any blocking key, most keys in common first."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        rows = self.session.execute(
            _PATIENTS_SHARING_KEYS, {"b_keys": wanted, "b_exclude": exclude, "b_limit": limit}
        ).all()
        return [str(p) for p, _ in rows]

    def match_keys(self, patient_id: str) -> list[str]:
        """Return the Patient's blocking keys."""
        return list(self.session.scalars(_MATCH_KEYS, {"b_patient": patient_id}))

    # -- review queue -------------------------------------------------------------------
    def _candidate(self, row: MatchCandidate | Row[Any]) -> CandidateRow:
        note = None
        if row.payload is not None:
            note = self.crypto.open(row.payload, _note_aad(row.id)).decode()
        return CandidateRow(
            id=row.id,
            patient_a=row.patient_a,
            patient_b=row.patient_b,
            score=row.score,
            evidence=orjson.loads(row.evidence or "{}"),
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            reviewer=row.reviewer,
            decided_at=row.decided_at,
            note=note,
        )

    def candidate_for(self, patient_x: str, patient_y: str) -> CandidateRow | None:
        """Return the queue row of a pair (in either order), if any."""
        a, b = sorted((patient_x, patient_y))
        row = self.session.execute(_CANDIDATE_FOR, {"b_a": a, "b_b": b}).one_or_none()
        return self._candidate(row) if row else None

    def rejected_partners(self, patient_id: str) -> set[str]:
        """Return the Patients a reviewer said are not this one."""
        rows = self.session.execute(_REJECTED_PARTNERS, {"b_patient": patient_id}).all()
        return {b if a == patient_id else a for a, b in rows}

    def upsert_open(
        self,
        patient_x: str,
        patient_y: str,
        *,
        score: float,
        evidence: dict[str, Any],
        at: datetime,
    ) -> tuple[int, bool]:
        """Queue a pair for review, or refresh its score; return (id, newly queued).

        A pair a reviewer has decided keeps its decision: it is not queued again.
        """
        a, b = sorted((patient_x, patient_y))
        row = self.session.execute(_CANDIDATE_FOR, {"b_a": a, "b_b": b}).one_or_none()
        if row is None:
            result = self.session.execute(
                _INSERT_CANDIDATE,
                {
                    "patient_a": a,
                    "patient_b": b,
                    "score": score,
                    "evidence": dump_json(evidence),
                    "status": "open",
                    "created_at": at,
                    "updated_at": at,
                },
            )
            return int(result.scalar_one()), True
        if row.status in ("open", "resolved"):
            self.session.execute(
                _REFRESH_CANDIDATE,
                {"b_id": row.id, "b_score": score, "b_evidence": dump_json(evidence), "b_at": at},
            )
            return int(row.id), row.status == "resolved"
        return int(row.id), False

    def resolve_open(self, patient_id: str, *, at: datetime) -> int:
        """Close the open pairs of a Patient that was linked some other way; return how many."""
        result = self.session.execute(
            update(MatchCandidate)
            .where(
                MatchCandidate.status == "open",
                or_(MatchCandidate.patient_a == patient_id, MatchCandidate.patient_b == patient_id),
            )
            .values(status="resolved", updated_at=at)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def get_candidate(self, candidate_id: int, *, for_update: bool = False) -> CandidateRow | None:
        """Return one queue row (locked until the transaction ends with ``for_update``)."""
        stmt = select(MatchCandidate).where(MatchCandidate.id == candidate_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
        return self._candidate(row) if row else None

    def list_candidates(
        self, *, status: str = "open", after_id: int | None = None, limit: int = 50
    ) -> list[CandidateRow]:
        """Return queue rows of a status in id order, ``limit`` after ``after_id``."""
        stmt = select(MatchCandidate).where(MatchCandidate.status == status)
        if after_id is not None:
            stmt = stmt.where(MatchCandidate.id > after_id)
        rows = self.session.scalars(stmt.order_by(MatchCandidate.id).limit(limit))
        return [self._candidate(r) for r in rows]

    def count_candidates(self, status: str = "open") -> int:
        """Count queue rows of a status."""
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(MatchCandidate)
                .where(MatchCandidate.status == status)
            )
            or 0
        )

    def decide(
        self,
        candidate_id: int,
        *,
        status: str,
        reviewer: str,
        note: str | None,
        at: datetime,
    ) -> bool:
        """Record a reviewer's decision on an open pair; False when it was not open."""
        payload: bytes | None = None
        key_id: str | None = None
        if note:
            payload, key_id = self.crypto.seal(note.encode(), _note_aad(candidate_id))
        result = self.session.execute(
            update(MatchCandidate)
            .where(MatchCandidate.id == candidate_id, MatchCandidate.status == "open")
            .values(
                status=status,
                reviewer=reviewer,
                decided_at=at,
                updated_at=at,
                payload=payload,
                key_id=key_id,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- merges -------------------------------------------------------------------------
    def add_merge(
        self,
        *,
        surviving_patient_id: str,
        retired_patient_id: str,
        surviving_person_id: str,
        retired_person_id: str,
        reason: str,
        actor: str,
        at: datetime,
    ) -> int:
        """Insert a merge row (its changes are filled in by ``set_merge_changes``)."""
        result = self.session.execute(
            insert(IdentityMerge)
            .values(
                surviving_patient_id=surviving_patient_id,
                retired_patient_id=retired_patient_id,
                surviving_person_id=surviving_person_id,
                retired_person_id=retired_person_id,
                reason=reason,
                actor=actor,
                merged_at=at,
                changes="{}",
            )
            .returning(IdentityMerge.id)
        )
        return int(result.scalar_one())

    def set_merge_changes(self, merge_id: int, changes: dict[str, Any]) -> None:
        """Record what a merge changed."""
        self.session.execute(
            update(IdentityMerge)
            .where(IdentityMerge.id == merge_id)
            .values(changes=dump_json(changes))
        )

    def get_merge(self, merge_id: int, *, for_update: bool = False) -> MergeRow | None:
        """Return one merge."""
        stmt = select(IdentityMerge).where(IdentityMerge.id == merge_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
        if row is None:
            return None
        return MergeRow(
            id=row.id,
            surviving_patient_id=row.surviving_patient_id,
            retired_patient_id=row.retired_patient_id,
            surviving_person_id=row.surviving_person_id,
            retired_person_id=row.retired_person_id,
            reason=row.reason,
            actor=row.actor,
            merged_at=row.merged_at,
            changes=orjson.loads(row.changes or "{}"),
            unmerged_at=row.unmerged_at,
            unmerged_by=row.unmerged_by,
        )

    def merge_ids(
        self, *, retired_patient_id: str, surviving_patient_id: str | None = None
    ) -> list[int]:
        """Return ids of merges (undone ones too) that retired this Patient, oldest first."""
        stmt = select(IdentityMerge.id).where(
            IdentityMerge.retired_patient_id == retired_patient_id
        )
        if surviving_patient_id is not None:
            stmt = stmt.where(IdentityMerge.surviving_patient_id == surviving_patient_id)
        return list(self.session.scalars(stmt.order_by(IdentityMerge.id)))

    def open_candidates_of(self, patient_id: str) -> list[CandidateRow]:
        """Return the open queue rows a Patient is in."""
        rows = self.session.execute(_OPEN_CANDIDATES_OF, {"b_patient": patient_id})
        return [self._candidate(r) for r in rows]

    def set_candidate_status(self, candidate_id: int, status: str, *, at: datetime) -> None:
        """Change a queue row's status (e.g. resolved once linked another way)."""
        self.session.execute(
            _SET_CANDIDATE_STATUS, {"b_id": candidate_id, "b_status": status, "b_at": at}
        )

    def mark_unmerged(self, merge_id: int, *, at: datetime, by: str) -> None:
        """Record that a merge was undone."""
        self.session.execute(
            update(IdentityMerge)
            .where(IdentityMerge.id == merge_id)
            .values(unmerged_at=at, unmerged_by=by)
        )


__all__: Sequence[str] = [
    "CandidateRow",
    "IdentityRepository",
    "LinkRow",
    "MergeRow",
    "dump_json",
]
