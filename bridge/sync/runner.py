"""Run one sync job: take its lease, read its source from the checkpoint, apply, release.

Records are applied in batches, each batch one transaction that also writes the
checkpoint it reaches and renews the lease (the heartbeat). So a process killed anywhere
loses at most an uncommitted batch, which the next run (this worker's or, after the
lease expires, another's) reads again from the committed checkpoint: every record is
applied exactly once in effect. Re-reading is also harmless by construction, since the
inbound store treats a record already seen as a duplicate; the checkpoint keeps
unreadable rows from being dead-lettered twice and spares the work.

A file is remembered by path, size, modification time and content hash: a file read to
the end is not read again while it is unchanged (a copy with a new time but the same
content included); a half-read one resumes after the last committed item.
"""

from __future__ import annotations

import hashlib
import os
import random as random_module
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adapters.asc import AscAdapter
from adapters.asc.http_pull import AscFetchError, AscHttpSource
from adapters.base import AdapterError, SourceRecord
from adapters.chs import ChsAdapter
from bridge.audit.service import Actor, AuditLog, AuditRecord
from bridge.core.clock import Clock
from bridge.ingest.service import Ingestor, IngestOutcome
from bridge.store.resources import ResourceRepository, StoredResource
from bridge.store.sync import RunCounts, SyncRepository
from bridge.sync.jobs import JobDefinition

Item = SourceRecord | AdapterError
AlertHook = Callable[[Session, list[StoredResource]], int]


class LeaseLostError(Exception):
    """Another worker took the job's lease (ours expired): stop without committing."""


class StopRequested(Exception):
    """The worker was asked to stop (SIGTERM): stop after the batch just committed."""


class SourceUnavailableError(Exception):
    """The job's source cannot be read now (missing directory): worth trying again later."""


@dataclass
class RunResult:
    """How a run ended."""

    job: str
    status: str  # succeeded | failed | stopped | busy | not-due | lost
    run_id: int | None = None
    counts: RunCounts = field(default_factory=RunCounts)
    watermarks: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    alerts: int = 0

    def as_text(self) -> str:
        """Describe the run in one line."""
        if self.status == "busy":
            return f"{self.job}: another worker holds the lease; not run"
        if self.status == "not-due":
            return f"{self.job}: another worker has just run it; not due"
        c = self.counts
        text = (
            f"{self.job}: {self.status} — {c.records_read} read, {c.applied} applied,"
            f" {c.duplicate} duplicate, {c.dead_lettered} dead-lettered"
        )
        if self.alerts:
            text += f", {self.alerts} alerts queued"
        if self.error:
            text += f"; error: {self.error}"
        return text


@dataclass
class _Unit:
    """One checkpointed part of a source: a file, or an HTTP pull (checkpoint per kind)."""

    key: str
    fingerprint: str | None
    items: Callable[[], Iterator[Item]]
    system: str


def worker_id() -> str:
    """Return this process's worker name: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def file_fingerprint(path: Path, known: str | None = None) -> str:
    """Return ``size:mtime_ns:sha256`` of a file, trusting ``known`` if size and time match."""
    st = path.stat()
    head = f"{st.st_size}:{st.st_mtime_ns}:"
    if known is not None and known.startswith(head):
        return known
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return head + digest.hexdigest()


def same_content(a: str | None, b: str) -> bool:
    """Say whether two fingerprints describe the same content (size and hash agree)."""
    if a is None:
        return False
    size_a, _, hash_a = a.split(":", 2)
    size_b, _, hash_b = b.split(":", 2)
    return size_a == size_b and hash_a == hash_b


class JobRunner:
    """Runs jobs for one worker: ingestor, audit, lease length and an optional alert hook."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        ingestor: Ingestor,
        audit: AuditLog,
        clock: Clock,
        owner: str | None = None,
        lease_seconds: float = 60.0,
        alert_hook: AlertHook | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.factory = factory
        self.ingestor = ingestor
        self.audit = audit
        self.clock = clock
        self.owner = owner or worker_id()
        self.lease_seconds = lease_seconds
        self.alert_hook = alert_hook
        self.should_stop = should_stop
        self._random = random

    # -- one run ------------------------------------------------------------------------
    def run(self, job: JobDefinition, *, if_due: bool = False) -> RunResult:
        """Run the job once now if its lease is free; record the run and its outcome.

        With ``if_due`` (the scheduler) only if it is still due once its lease is held;
        otherwise the result's status is ``not-due``.
        """
        with self.factory() as session, session.begin():
            repo = SyncRepository(session, clock=self.clock)
            repo.ensure_job(job.name, job.definition_hash)
            row = repo.job(job.name)
            if not repo.acquire(job.name, self.owner, ttl=self.lease_seconds, if_due=if_due):
                held = row is not None and row.lease_owner not in (None, self.owner)
                return RunResult(job.name, "busy" if held or not if_due else "not-due")
            run_id = repo.start_run(job.name, self.owner).id
        result = RunResult(job.name, "running", run_id)
        counts = _Counts()
        permanent = False
        try:
            for unit in self._units(job):
                self._run_unit(job, unit, run_id, counts, result)
            status, error = "succeeded", None
        except LeaseLostError:
            result.status = "lost"
            result.counts = counts.freeze()
            result.error = "the lease expired and another worker took the job"
            return result
        except StopRequested:
            status, error = "stopped", None
        except (AscFetchError, SourceUnavailableError, OperationalError, OSError) as exc:
            status, error = "failed", _describe(exc)
            permanent = (
                isinstance(exc, AscFetchError)
                and exc.status is not None
                and (400 <= exc.status < 500 and exc.status != 429)
            )
        except DBAPIError as exc:
            status, error = "failed", _describe(exc)
        result.status, result.error, result.counts = status, error, counts.freeze()
        self._finish(job, result, permanent=permanent)
        return result

    def _finish(self, job: JobDefinition, result: RunResult, *, permanent: bool) -> None:
        failed = result.status == "failed"
        now = self.clock.now()
        with self.factory() as session, session.begin():
            repo = SyncRepository(session, clock=self.clock)
            current = repo.job(job.name)
            failures = current.consecutive_failures if current is not None else 0
            if failed:
                next_due = now + timedelta(seconds=self._backoff(job, failures))
            elif result.status == "stopped":
                next_due = now
            else:
                next_due = job.schedule.next_after(now)
            assert result.run_id is not None
            repo.update_run(
                result.run_id,
                result.counts,
                watermark=result.watermarks or None,
                status=result.status,
                error=result.error,
            )
            repo.release(
                job.name,
                self.owner,
                next_due_at=next_due,
                failed=failed,
                error=result.error,
                max_failures=1 if permanent else job.options.max_failures,
            )
            self.audit.record(
                session,
                AuditRecord(
                    actor=Actor(user=f"sync-worker:{self.owner}", roles=("sync_service",)),
                    action="sync.run",
                    outcome="failure" if failed else "success",
                    detail={
                        "job": job.name,
                        "run": result.run_id,
                        "status": result.status,
                        "read": result.counts.records_read,
                        "applied": result.counts.applied,
                        "duplicate": result.counts.duplicate,
                        "dead_lettered": result.counts.dead_lettered,
                        **({"error": result.error} if result.error else {}),
                    },
                ),
            )

    def _backoff(self, job: JobDefinition, failures: int) -> float:
        """Exponential backoff with jitter: between half and all of base * 2**failures."""
        ceiling = min(job.options.retry_max_seconds, job.options.retry_base_seconds * 2.0**failures)
        return ceiling * (0.5 + self._random() / 2)

    # -- sources ------------------------------------------------------------------------
    def _units(self, job: JobDefinition) -> Iterator[_Unit]:
        if job.source == "asc-http":
            yield self._http_unit(job)
            return
        assert job.path is not None
        if not job.path.is_dir():
            raise SourceUnavailableError(f"{job.path} is not a directory")
        with self.factory() as session:
            known = SyncRepository(session, clock=self.clock).checkpoints(job.name)
        if job.source == "asc-export":
            files = [export.path for export in AscAdapter(job.path).files]
        else:
            files = list(ChsAdapter(job.path).files)
        for path in files:
            key = f"file:{path.relative_to(job.path).as_posix()}"
            stored = known.get(key)
            fingerprint = file_fingerprint(path, stored.fingerprint if stored else None)
            if stored is not None and stored.done and same_content(stored.fingerprint, fingerprint):
                continue
            yield _Unit(key, fingerprint, _file_reader(job, path), job.source[:3])

    def _http_unit(self, job: JobDefinition) -> _Unit:
        with self.factory() as session:
            known = SyncRepository(session, clock=self.clock).checkpoints(job.name)
        since = {
            key.removeprefix("kind:"): cp.watermark
            for key, cp in known.items()
            if key.startswith("kind:")
        }
        token = job.token_file.read_text().strip() if job.token_file else None
        assert job.url is not None
        source = AscHttpSource(
            job.url, kinds=job.kinds, since=since, page_size=job.page_size, auth_token=token
        )
        return _Unit("http", None, source.read, "asc")

    def _run_unit(
        self, job: JobDefinition, unit: _Unit, run_id: int, counts: _Counts, result: RunResult
    ) -> None:
        is_file = unit.key.startswith("file:")
        with self.factory() as session:
            stored = SyncRepository(session, clock=self.clock).checkpoints(job.name).get(unit.key)
        offset = 0
        if (
            is_file
            and stored is not None
            and same_content(stored.fingerprint, unit.fingerprint or "")
        ):
            offset = stored.offset
        watermarks: dict[str, str | None] = {}
        items = islice(unit.items(), offset, None)
        batch = job.options.batch_size
        session = self.factory()
        try:
            session.begin()
            pending = 0
            for item in items:
                outcome = self._apply(session, item, unit.system)
                counts.add(outcome)
                offset += 1
                if isinstance(item, SourceRecord) and "watermark" in item.meta:
                    watermarks[item.kind] = item.meta["watermark"]
                if outcome.status == "applied" and job.options.alerts and self.alert_hook:
                    result.alerts += self._alerts(session, outcome)
                pending += 1
                if pending >= batch:
                    self._commit(session, job, unit, run_id, counts, offset, watermarks, result)
                    pending = 0
                    if self.should_stop():
                        raise StopRequested
            self._commit(session, job, unit, run_id, counts, offset, watermarks, result, done=True)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _apply(self, session: Session, item: Item, system: str) -> IngestOutcome:
        if isinstance(item, AdapterError):
            return self.ingestor.reject(session, item, system=system, channel="sync")
        return self.ingestor.apply(session, item, channel="sync")

    def _alerts(self, session: Session, outcome: IngestOutcome) -> int:
        assert self.alert_hook is not None
        repo = ResourceRepository(session, crypto=self.ingestor.crypto, clock=self.clock)
        stored = []
        for ref in outcome.resources:
            rtype, rid = ref.split("/", 1)
            stored.append(repo.read(rtype, rid))
        return self.alert_hook(session, stored)

    def _commit(
        self,
        session: Session,
        job: JobDefinition,
        unit: _Unit,
        run_id: int,
        counts: _Counts,
        offset: int,
        watermarks: dict[str, str | None],
        result: RunResult,
        *,
        done: bool = False,
    ) -> None:
        """Commit the batch with its checkpoint, fenced by (and renewing) the lease."""
        repo = SyncRepository(session, clock=self.clock)
        if not repo.renew(job.name, self.owner, ttl=self.lease_seconds):
            raise LeaseLostError(job.name)
        if unit.key.startswith("file:"):
            repo.save_checkpoint(
                job.name, unit.key, offset=offset, fingerprint=unit.fingerprint, done=done
            )
        for kind, mark in watermarks.items():
            repo.save_checkpoint(job.name, f"kind:{kind}", watermark=mark)
        result.watermarks.update(watermarks)
        repo.update_run(run_id, counts.freeze(), watermark=result.watermarks or None)
        session.commit()
        session.begin()


@dataclass
class _Counts:
    records_read: int = 0
    applied: int = 0
    duplicate: int = 0
    dead_lettered: int = 0

    def add(self, outcome: IngestOutcome) -> None:
        self.records_read += 1
        if outcome.status == "applied":
            self.applied += 1
        elif outcome.status == "duplicate":
            self.duplicate += 1
        elif outcome.status == "dead_lettered":
            self.dead_lettered += 1

    def freeze(self) -> RunCounts:
        return RunCounts(self.records_read, self.applied, self.duplicate, self.dead_lettered)


def _file_reader(job: JobDefinition, path: Path) -> Callable[[], Iterator[Item]]:
    if job.source == "asc-export":
        return lambda: AscAdapter([path]).read()
    return lambda: ChsAdapter([path]).read()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AdapterError):
        return exc.reason
    if isinstance(exc, DBAPIError):
        # The driver's message can quote statement parameters: name the failure only.
        return f"database error ({type(exc.orig).__name__})"
    return f"{type(exc).__name__}: {exc}"


def due(job: JobDefinition, next_due_at: datetime | None, now: datetime) -> bool:
    """Say whether a job is due (never run, or its due time has come)."""
    return next_due_at is None or next_due_at <= now
