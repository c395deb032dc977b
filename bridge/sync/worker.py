"""The scheduler loop: run each due job (one worker at a time per job), deliver alerts.

Several workers may run against one PostgreSQL database: each job's lease decides which
of them runs it, so each due time is run once. A job marked failing is not run until an
operator resets it (``carebridge sync reset JOB``) or runs it by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from bridge.core.clock import Clock
from bridge.store.sync import SyncRepository
from bridge.sync.jobs import JobDefinition
from bridge.sync.runner import JobRunner, RunResult


class Worker:
    """Runs due jobs with a :class:`JobRunner` until told to stop."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        jobs: Sequence[JobDefinition],
        *,
        runner: JobRunner,
        clock: Clock,
        poll_seconds: float = 5.0,
        stop: threading.Event | None = None,
        after_tick: Callable[[], object] | None = None,
    ) -> None:
        self.factory = factory
        self.jobs = list(jobs)
        self.runner = runner
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.stop = stop or threading.Event()
        self.after_tick = after_tick
        runner.should_stop = self.stop.is_set

    def due_jobs(self) -> list[JobDefinition]:
        """Return the jobs due now that are not failing (their rows are created if new)."""
        now = self.clock.now()
        due: list[JobDefinition] = []
        with self.factory() as session, session.begin():
            repo = SyncRepository(session, clock=self.clock)
            for job in self.jobs:
                row = repo.ensure_job(job.name, job.definition_hash)
                if row.failing:
                    continue
                if row.next_due_at is None or row.next_due_at <= now:
                    due.append(job)
        return due

    def tick(self) -> list[RunResult]:
        """Run every due job once (skipping any another worker holds); return the results."""
        results = []
        for job in self.due_jobs():
            if self.stop.is_set():
                break
            result = self.runner.run(job, if_due=True)
            if result.status != "not-due":
                results.append(result)
        if self.after_tick is not None and not self.stop.is_set():
            self.after_tick()
        return results

    def run_forever(self, on_result: Callable[[RunResult], None] | None = None) -> None:
        """Tick, then wait ``poll_seconds`` (or until stopped), until :attr:`stop` is set."""
        while not self.stop.is_set():
            for result in self.tick():
                if on_result is not None:
                    on_result(result)
            self.stop.wait(self.poll_seconds)
