"""Sync jobs, their leases, runs and checkpoints, and the alert outbox: all their SQL.

Leases: a job row is taken with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
ignores the clause and its single writer serialises the same logic), so two workers
racing for a job never both win; a lease names its owner and an expiry, renewed on every
batch commit (the heartbeat), and a lease whose expiry has passed may be taken by anyone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bridge.core.clock import Clock
from bridge.store.crypto import StoreCrypto
from bridge.store.models import OutboxMessage, SyncCheckpoint, SyncJob, SyncRun


@dataclass(frozen=True)
class RunCounts:
    """What a run has done so far."""

    records_read: int = 0
    applied: int = 0
    duplicate: int = 0
    dead_lettered: int = 0


class SyncRepository:
    """Jobs, leases, runs and checkpoints, in the caller's transaction."""

    def __init__(self, session: Session, *, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    # -- jobs and leases ----------------------------------------------------------------
    def ensure_job(self, name: str, definition_hash: str) -> SyncJob:
        """Return the job's row, creating it (due now) or noting a changed definition.

        Workers starting together may all create it: the insert does nothing on conflict.
        """
        now = self.clock.now()
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert(SyncJob)
            .values(
                name=name,
                definition_hash=definition_hash,
                next_due_at=now,
                failing=False,
                consecutive_failures=0,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        job = self.session.get(SyncJob, name, populate_existing=True)
        assert job is not None
        if job.definition_hash != definition_hash:
            job.definition_hash = definition_hash
            job.updated_at = now
        return job

    def acquire(self, name: str, owner: str, *, ttl: float, if_due: bool = False) -> bool:
        """Take the job's lease for ``owner`` unless another live lease holds it.

        With ``if_due``, only when the job is due now, checked under the row lock: a worker
        that found the job due a moment ago does not run it again after another worker
        has just run it (each due time runs once).
        """
        now = self.clock.now()
        job = self.session.scalars(
            select(SyncJob)
            .where(SyncJob.name == name)
            .with_for_update(skip_locked=True)
            # Read the row as it is once locked, not as this session saw it before.
            .execution_options(populate_existing=True)
        ).one_or_none()
        if job is None:
            # Absent, or locked by a worker taking it right now (SKIP LOCKED).
            return False
        held = (
            job.lease_owner is not None
            and job.lease_owner != owner
            and job.lease_expires_at is not None
            and job.lease_expires_at > now
        )
        if held:
            return False
        if if_due and (job.failing or (job.next_due_at is not None and job.next_due_at > now)):
            return False
        job.lease_owner = owner
        job.lease_expires_at = now + timedelta(seconds=ttl)
        job.updated_at = now
        self.session.flush()
        return True

    def renew(self, name: str, owner: str, *, ttl: float) -> bool:
        """Extend the lease if ``owner`` still holds it (the heartbeat); else return False."""
        now = self.clock.now()
        result = self.session.execute(
            update(SyncJob)
            .where(SyncJob.name == name, SyncJob.lease_owner == owner)
            .values(lease_expires_at=now + timedelta(seconds=ttl), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release(
        self,
        name: str,
        owner: str,
        *,
        next_due_at: datetime | None,
        failed: bool,
        error: str | None = None,
        max_failures: int = 5,
    ) -> SyncJob | None:
        """Give the lease back and record the outcome (failures counted, failing marked)."""
        job = self.session.get(SyncJob, name, with_for_update=True, populate_existing=True)
        if job is None or job.lease_owner != owner:
            return job
        now = self.clock.now()
        job.lease_owner = None
        job.lease_expires_at = None
        job.next_due_at = next_due_at
        job.updated_at = now
        if failed:
            job.consecutive_failures += 1
            job.last_error = error
            job.failing = job.consecutive_failures >= max_failures
        else:
            job.consecutive_failures = 0
            job.failing = False
            job.last_error = None
        self.session.flush()
        return job

    def reset(self, name: str) -> bool:
        """Clear a job's failing state so the scheduler runs it again (due now)."""
        job = self.session.get(SyncJob, name)
        if job is None:
            return False
        job.failing = False
        job.consecutive_failures = 0
        job.next_due_at = self.clock.now()
        job.updated_at = self.clock.now()
        return True

    def jobs(self) -> Sequence[SyncJob]:
        """Return every job row, by name."""
        return self.session.scalars(select(SyncJob).order_by(SyncJob.name)).all()

    def job(self, name: str) -> SyncJob | None:
        """Return one job row."""
        return self.session.get(SyncJob, name)

    # -- runs ---------------------------------------------------------------------------
    def start_run(self, job: str, worker: str) -> SyncRun:
        """Record a run as started; earlier runs of the job left running were interrupted."""
        now = self.clock.now()
        self.session.execute(
            update(SyncRun)
            .where(SyncRun.job == job, SyncRun.status == "running")
            .values(status="interrupted", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        run = SyncRun(job=job, worker=worker, started_at=now, status="running")
        self.session.add(run)
        self.session.flush()
        return run

    def update_run(
        self,
        run_id: int,
        counts: RunCounts,
        *,
        watermark: dict[str, Any] | None = None,
        status: str | None = None,
        error: str | None = None,
    ) -> None:
        """Store a run's counts (each batch), and its end when ``status`` is given."""
        values: dict[str, Any] = {
            "records_read": counts.records_read,
            "applied": counts.applied,
            "duplicate": counts.duplicate,
            "dead_lettered": counts.dead_lettered,
        }
        if watermark:
            values["watermark"] = json.dumps(watermark, sort_keys=True)
        if status is not None:
            values["status"] = status
            values["finished_at"] = self.clock.now()
            values["error"] = error
        self.session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def runs(self, *, job: str | None = None, limit: int = 50) -> Sequence[SyncRun]:
        """Return the latest runs, newest first."""
        query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
        if job is not None:
            query = query.where(SyncRun.job == job)
        return self.session.scalars(query).all()

    # -- checkpoints --------------------------------------------------------------------
    def checkpoints(self, job: str) -> dict[str, SyncCheckpoint]:
        """Return the job's checkpoints by source key."""
        rows = self.session.scalars(select(SyncCheckpoint).where(SyncCheckpoint.job == job))
        return {row.source_key: row for row in rows}

    def save_checkpoint(
        self,
        job: str,
        source_key: str,
        *,
        watermark: str | None = None,
        offset: int = 0,
        fingerprint: str | None = None,
        done: bool = False,
    ) -> None:
        """Write a checkpoint in the caller's transaction (with the data it covers)."""
        row = self.session.get(SyncCheckpoint, (job, source_key))
        now = self.clock.now()
        if row is None:
            row = SyncCheckpoint(job=job, source_key=source_key)
            self.session.add(row)
        row.watermark = watermark
        row.offset = offset
        row.fingerprint = fingerprint
        row.done = done
        row.updated_at = now
        self.session.flush()


@dataclass(frozen=True)
class OutboxItem:
    """An outbox row with its payload opened."""

    id: int
    idempotency_key: str
    person_id: str
    rule: str
    team: str | None
    org: str | None
    detailed: bool
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    payload: dict[str, Any]


class OutboxRepository:
    """The alert outbox: rows written with their trigger, delivered in order per person."""

    def __init__(self, session: Session, *, crypto: StoreCrypto, clock: Clock) -> None:
        self.session = session
        self.crypto = crypto
        self.clock = clock

    def exists(self, idempotency_key: str) -> bool:
        """Say whether an alert with this key was ever written."""
        found = self.session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
        )
        return found is not None

    def add(
        self,
        *,
        idempotency_key: str,
        person_id: str,
        rule: str,
        team: str | None,
        org: str | None,
        detailed: bool,
        payload: dict[str, Any],
    ) -> bool:
        """Add an alert unless one with the key exists; return whether it was added."""
        if self.exists(idempotency_key):
            return False
        blob, key_id = self.crypto.seal(
            json.dumps(payload, sort_keys=True).encode(), f"outbox/{idempotency_key}"
        )
        now = self.clock.now()
        self.session.add(
            OutboxMessage(
                idempotency_key=idempotency_key,
                person_id=person_id,
                rule=rule,
                team=team,
                org=org,
                detailed=detailed,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
                key_id=key_id,
                payload=blob,
            )
        )
        self.session.flush()
        return True

    def _item(self, row: OutboxMessage) -> OutboxItem:
        payload = json.loads(self.crypto.open(row.payload, f"outbox/{row.idempotency_key}"))
        return OutboxItem(
            id=row.id,
            idempotency_key=row.idempotency_key,
            person_id=row.person_id,
            rule=row.rule,
            team=row.team,
            org=row.org,
            detailed=row.detailed,
            status=row.status,
            attempts=row.attempts,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            delivered_at=row.delivered_at,
            last_error=row.last_error,
            payload=payload,
        )

    def deliverable(self, *, limit: int = 100) -> list[OutboxItem]:
        """Return pending alerts due now, oldest first, at most the first one per person.

        Only each person's oldest pending alert is offered, so a later alert never
        overtakes an earlier one that is still being retried (in order per person).
        """
        now = self.clock.now()
        pending = self.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
            .limit(limit * 10)
        ).all()
        seen: set[str] = set()
        out: list[OutboxItem] = []
        for row in pending:
            if row.person_id in seen:
                continue
            seen.add(row.person_id)
            if row.next_attempt_at <= now:
                out.append(self._item(row))
            if len(out) >= limit:
                break
        return out

    def mark_delivered(self, outbox_id: int) -> None:
        """Record a successful delivery."""
        row = self.session.get(OutboxMessage, outbox_id)
        if row is not None:
            row.status = "delivered"
            row.attempts += 1
            row.delivered_at = self.clock.now()
            row.last_error = None

    def mark_failed(self, outbox_id: int, *, error: str, retry_at: datetime) -> None:
        """Record a failed attempt and when to try again."""
        row = self.session.get(OutboxMessage, outbox_id)
        if row is not None:
            row.attempts += 1
            row.last_error = error
            row.next_attempt_at = retry_at

    def rows(self, *, status: str | None = None, limit: int = 100) -> Sequence[OutboxMessage]:
        """Return alert rows, newest first, payloads still sealed (for the operator view)."""
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if status is not None:
            query = query.where(OutboxMessage.status == status)
        return self.session.scalars(query).all()

    def lag_seconds(self) -> float:
        """Return the age of the oldest pending alert in seconds (0 if none)."""
        oldest = self.session.scalar(
            select(OutboxMessage.created_at)
            .where(OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
            .limit(1)
        )
        if oldest is None:
            return 0.0
        return max(0.0, (self.clock.now() - oldest).total_seconds())
