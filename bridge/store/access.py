"""Repository for break-glass records (emergency access and its IG review)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bridge.store.crypto import StoreCrypto
from bridge.store.models import BreakGlassRecord

REVIEW_STATUSES = ("open", "accepted", "challenged")


@dataclass(frozen=True)
class BreakGlassRow:
    """A break-glass record with its free text decrypted."""

    id: str
    user: str
    roles: tuple[str, ...]
    org: str | None
    team: str | None
    person_id: str
    started_at: datetime
    expires_at: datetime
    audit_seq: int | None
    review_status: str
    reviewer: str | None
    reviewed_at: datetime | None
    reason: str
    review_note: str | None

    def active(self, at: datetime) -> bool:
        """Return whether the emergency access is in effect at ``at``."""
        return self.started_at <= at < self.expires_at


def _aad(record_id: str) -> str:
    return f"break-glass/{record_id}"


class BreakGlassRepository:
    """Store and review break-glass records (built per session)."""

    def __init__(self, session: Session, *, crypto: StoreCrypto) -> None:
        self.session = session
        self.crypto = crypto

    def _seal(self, record_id: str, text: dict[str, Any]) -> tuple[bytes, str]:
        return self.crypto.seal(orjson.dumps(text, option=orjson.OPT_SORT_KEYS), _aad(record_id))

    def _row(self, r: BreakGlassRecord) -> BreakGlassRow:
        text: dict[str, Any] = {}
        if r.payload is not None:
            text = orjson.loads(self.crypto.open(r.payload, _aad(r.id)))
        return BreakGlassRow(
            id=r.id,
            user=r.user_id,
            roles=tuple(r.roles.split()),
            org=r.org,
            team=r.team,
            person_id=r.person_id,
            started_at=r.started_at,
            expires_at=r.expires_at,
            audit_seq=r.audit_seq,
            review_status=r.review_status,
            reviewer=r.reviewer,
            reviewed_at=r.reviewed_at,
            reason=str(text.get("reason", "")),
            review_note=text.get("review_note"),
        )

    def add(
        self,
        *,
        record_id: str,
        user: str,
        roles: tuple[str, ...],
        org: str | None,
        team: str | None,
        person_id: str,
        reason: str,
        started_at: datetime,
        expires_at: datetime,
        audit_seq: int | None,
    ) -> BreakGlassRow:
        """Record a new emergency access (open for review)."""
        payload, key_id = self._seal(record_id, {"reason": reason})
        row = BreakGlassRecord(
            id=record_id,
            user_id=user,
            roles=" ".join(sorted(roles)),
            org=org,
            team=team,
            person_id=person_id,
            started_at=started_at,
            expires_at=expires_at,
            audit_seq=audit_seq,
            review_status="open",
            key_id=key_id,
            payload=payload,
        )
        self.session.add(row)
        self.session.flush()
        return self._row(row)

    def get(self, record_id: str, *, for_update: bool = False) -> BreakGlassRow | None:
        """Return one record, or None."""
        stmt = select(BreakGlassRecord).where(BreakGlassRecord.id == record_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.session.scalars(stmt).one_or_none()
        return self._row(row) if row is not None else None

    def active_for(self, user: str, person_id: str, at: datetime) -> BreakGlassRow | None:
        """Return the user's emergency access to a person in effect at ``at`` (latest)."""
        row = self.session.scalars(
            select(BreakGlassRecord)
            .where(
                BreakGlassRecord.user_id == user,
                BreakGlassRecord.person_id == person_id,
                BreakGlassRecord.started_at <= at,
                BreakGlassRecord.expires_at > at,
            )
            .order_by(BreakGlassRecord.started_at.desc())
            .limit(1)
        ).one_or_none()
        return self._row(row) if row is not None else None

    def list(
        self, *, status: str | None = "open", limit: int = 50, offset: int = 0
    ) -> list[BreakGlassRow]:
        """Return records (oldest first), of one review status or all."""
        stmt = select(BreakGlassRecord)
        if status is not None:
            stmt = stmt.where(BreakGlassRecord.review_status == status)
        stmt = stmt.order_by(BreakGlassRecord.started_at, BreakGlassRecord.id)
        return [self._row(r) for r in self.session.scalars(stmt.limit(limit).offset(offset))]

    def count(self, *, status: str | None = "open") -> int:
        """Count records of one review status (or all)."""
        stmt = select(func.count()).select_from(BreakGlassRecord)
        if status is not None:
            stmt = stmt.where(BreakGlassRecord.review_status == status)
        return int(self.session.scalar(stmt) or 0)

    def review(
        self, record_id: str, *, status: str, reviewer: str, note: str | None, at: datetime
    ) -> None:
        """Record IG's decision on an emergency access (the reason is kept)."""
        current = self.get(record_id, for_update=True)
        if current is None:
            raise KeyError(record_id)
        payload, key_id = self._seal(record_id, {"reason": current.reason, "review_note": note})
        self.session.execute(
            update(BreakGlassRecord)
            .where(BreakGlassRecord.id == record_id)
            .values(
                review_status=status,
                reviewer=reviewer,
                reviewed_at=at,
                key_id=key_id,
                payload=payload,
            )
        )
