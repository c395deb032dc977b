"""The job runner: checkpoints with the data, files remembered, resume, leases, failures."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bridge.core.clock import FixedClock
from bridge.store.models import AuditEntry, DeadLetter, SyncCheckpoint, SyncRun
from bridge.store.sync import SyncRepository
from bridge.sync.worker import Worker
from tests.sync.conftest import RunnerFactory
from tests.sync.helpers import job, store_state


def asc_job(path: Path, **options: object) -> str:
    opts = json.dumps(options) if options else "{}"
    return (
        "jobs:\n  - name: asc\n    source: asc-export\n"
        f"    path: {path}\n    schedule: 15m\n    options: {opts}\n"
    )


def lines(directory: Path) -> int:
    return sum(
        1 for p in directory.iterdir() for line in p.read_text().splitlines() if line.strip()
    )


class TestFiles:
    def test_a_first_run_applies_everything_and_a_second_reads_nothing(
        self,
        make_runner: RunnerFactory,
        asc_dir: Path,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
    ) -> None:
        definition = job(asc_job(asc_dir), asc_dir)
        first = make_runner().run(definition)
        assert first.status == "succeeded"
        assert first.counts.records_read == lines(asc_dir)
        assert first.counts.applied + first.counts.dead_lettered == first.counts.records_read
        state = store_state(session_factory)
        second = make_runner().run(definition)
        assert second.status == "succeeded"
        assert second.counts.records_read == 0
        assert store_state(session_factory) == state
        with session_factory() as s:
            runs = SyncRepository(s, clock=clock).runs()
            assert [r.status for r in runs] == ["succeeded", "succeeded"]
            assert runs[1].applied == first.counts.applied
            audits = s.scalars(select(AuditEntry).where(AuditEntry.action == "sync.run")).all()
            assert len(audits) == 2

    def test_a_touched_but_unchanged_file_is_not_read_and_a_grown_one_is(
        self, make_runner: RunnerFactory, asc_dir: Path
    ) -> None:
        definition = job(asc_job(asc_dir), asc_dir)
        make_runner().run(definition)
        persons = asc_dir / "persons.jsonl"
        os.utime(persons, ns=(1, 1))
        assert make_runner().run(definition).counts.records_read == 0
        rows = persons.read_text().splitlines()
        extra = json.loads(rows[0])
        extra["person_id"] = "ASC0000001"
        persons.write_text("\n".join([*rows, json.dumps(extra)]) + "\n")
        again = make_runner().run(definition)
        # The changed file is read again: its old rows are duplicates, the new one applies.
        assert again.counts.records_read == len(rows) + 1
        assert again.counts.duplicate == len(rows)
        assert again.counts.applied == 1

    def test_a_stopped_run_resumes_after_its_last_committed_batch(
        self, make_runner: RunnerFactory, asc_dir: Path, session_factory: sessionmaker[Session]
    ) -> None:
        definition = job(asc_job(asc_dir, batch_size=10), asc_dir)
        stopped = make_runner(should_stop=lambda: True).run(definition)
        assert stopped.status == "stopped"
        assert stopped.counts.records_read == 10
        with session_factory() as s:
            (cp,) = s.scalars(select(SyncCheckpoint)).all()
            assert (cp.source_key, cp.offset, cp.done) == ("file:persons.jsonl", 10, False)
        rest = make_runner().run(definition)
        assert rest.status == "succeeded"
        # Nothing is read twice: the checkpoint says where the stopped run got to.
        assert rest.counts.duplicate == 0
        assert stopped.counts.records_read + rest.counts.records_read == lines(asc_dir)

    def test_unreadable_rows_are_dead_lettered_once_across_a_resume(
        self, make_runner: RunnerFactory, chs_dir: Path, session_factory: sessionmaker[Session]
    ) -> None:
        text = (
            "jobs:\n  - name: chs\n    source: chs-extracts\n"
            f"    path: {chs_dir}\n    schedule: 1m\n    options: {{batch_size: 7}}\n"
        )
        definition = job(text, chs_dir)
        calls = iter(range(1000))
        result = make_runner(should_stop=lambda: next(calls) % 5 == 4).run(definition)
        total = result.counts
        while result.status == "stopped":
            result = make_runner(should_stop=lambda: next(calls) % 5 == 4).run(definition)
        with session_factory() as s:
            runs = s.scalars(select(SyncRun)).all()
            attempts = s.scalar(select(func.sum(DeadLetter.attempts)))
        assert sum(r.duplicate for r in runs) == 0
        assert attempts == sum(r.dead_lettered for r in runs) > 0
        assert total.records_read > 0


class TestLeases:
    def test_a_live_lease_of_another_worker_makes_the_job_busy(
        self,
        make_runner: RunnerFactory,
        asc_dir: Path,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
    ) -> None:
        definition = job(asc_job(asc_dir), asc_dir)
        with session_factory() as s, s.begin():
            repo = SyncRepository(s, clock=clock)
            repo.ensure_job("asc", definition.definition_hash)
            assert repo.acquire("asc", "other-worker", ttl=60)
        assert make_runner().run(definition).status == "busy"
        clock.advance(seconds=61)
        # The other worker died: its lease expired, so this one takes the job over.
        assert make_runner().run(definition).status == "succeeded"

    def test_only_the_holder_renews_and_a_released_lease_is_free(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with session_factory() as s, s.begin():
            repo = SyncRepository(s, clock=clock)
            repo.ensure_job("j", "h")
            assert repo.acquire("j", "a", ttl=30)
            assert not repo.acquire("j", "b", ttl=30)
            assert repo.renew("j", "a", ttl=30)
            assert not repo.renew("j", "b", ttl=30)
            repo.release("j", "a", next_due_at=None, failed=False)
            assert repo.acquire("j", "b", ttl=30)


class TestFailures:
    def test_failures_back_off_then_mark_the_job_failing(
        self,
        make_runner: RunnerFactory,
        tmp_path: Path,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
    ) -> None:
        missing = tmp_path / "not-there"
        definition = job(
            asc_job(missing, max_failures=3, retry_base_seconds=10, retry_max_seconds=1000),
            tmp_path,
        )
        runner = make_runner(random=lambda: 1.0)
        waits = []
        for _ in range(3):
            result = runner.run(definition)
            assert result.status == "failed"
            assert "not a directory" in (result.error or "")
            with session_factory() as s:
                row = SyncRepository(s, clock=clock).job("asc")
                assert row is not None
                assert row.next_due_at is not None
                waits.append((row.next_due_at - clock.now()).total_seconds())
                failing = row.failing
        # Exponential: base * 2**failures (the jitter fixed at its top here).
        assert waits == [10, 20, 40]
        assert failing
        worker = Worker(session_factory, [definition], runner=runner, clock=clock)
        clock.advance(hours=2)
        assert worker.due_jobs() == []
        with session_factory() as s, s.begin():
            assert SyncRepository(s, clock=clock).reset("asc")
        assert worker.due_jobs() == [definition]

    def test_jitter_keeps_each_wait_between_half_and_all_of_the_backoff(
        self,
        make_runner: RunnerFactory,
        tmp_path: Path,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
    ) -> None:
        definition = job(asc_job(tmp_path / "x", retry_base_seconds=100), tmp_path)
        make_runner(random=lambda: 0.0).run(definition)
        with session_factory() as s:
            row = SyncRepository(s, clock=clock).job("asc")
            assert row is not None
            assert row.next_due_at == clock.now() + timedelta(seconds=50)


class TestWorker:
    def test_a_due_job_runs_once_per_due_time(
        self,
        make_runner: RunnerFactory,
        asc_dir: Path,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
    ) -> None:
        definition = job(asc_job(asc_dir), asc_dir)
        worker = Worker(session_factory, [definition], runner=make_runner(), clock=clock)
        assert [r.status for r in worker.tick()] == ["succeeded"]
        assert worker.tick() == []
        clock.advance(minutes=15)
        assert [r.counts.records_read for r in worker.tick()] == [0]
