"""Several workers, one database: each due job runs once, and a killed worker's job passes on.

The race is real on PostgreSQL (row locks, SKIP LOCKED); on SQLite the single writer
serialises the same logic, so the test runs on both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from bridge.core.clock import FixedClock
from bridge.store.models import SyncRun
from bridge.sync.worker import Worker
from tests.sync.conftest import RunnerFactory
from tests.sync.helpers import job
from tests.sync.test_crash import child_env, run_cli, settle


def test_racing_workers_run_a_due_job_once(
    make_runner: RunnerFactory,
    asc_dir: Path,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
) -> None:
    definition = job(
        f"jobs:\n  - {{name: asc, source: asc-export, path: {asc_dir}, schedule: 1h}}\n", asc_dir
    )
    workers = [
        Worker(session_factory, [definition], runner=make_runner(owner=f"w{i}"), clock=clock)
        for i in range(4)
    ]
    results: list[str] = []
    start = threading.Barrier(len(workers))

    def go(w: Worker) -> None:
        start.wait()
        results.extend(r.status for r in w.tick())

    threads = [threading.Thread(target=go, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # Each worker either found the job not due any more, or its lease taken: one ran it.
    assert results.count("succeeded") == 1
    assert set(results) <= {"succeeded", "busy"}
    with session_factory() as s:
        assert s.query(SyncRun).count() == 1


def test_a_killed_workers_job_is_finished_by_another_after_its_lease_expires(
    db: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    made = run_cli(
        ["examples", "generate", "--persons", "15", "--seed", "5", "--out", str(export)],
        os.environ.copy(),
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    jobs_file = tmp_path / "jobs.yaml"
    jobs_file.write_text(
        f"jobs:\n  - {{name: chs, source: chs-extracts, path: {export / 'chs'},"
        " schedule: 1h, options: {batch_size: 3}}\n"
    )
    env = child_env(db, tmp_path / "var") | {
        "CAREBRIDGE_SYNC_LEASE_SECONDS": "2",
        "CAREBRIDGE_SYNC_POLL_SECONDS": "0.2",
    }
    probe = create_engine(db.url, isolation_level="AUTOCOMMIT")

    logs: list[Path] = []

    def worker() -> subprocess.Popen[bytes]:
        logs.append(tmp_path / f"worker-{len(logs)}.log")
        with logs[-1].open("wb") as out:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from bridge.cli import main; main()",
                    "worker",
                    "--jobs",
                    str(jobs_file),
                ],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def runs() -> list[tuple[str, str, int]]:
        with probe.connect() as c:
            return [
                tuple(r)
                for r in c.execute(  # type: ignore[misc]
                    text("SELECT worker, status, records_read, duplicate FROM sync_run ORDER BY id")
                )
            ]

    first = worker()
    second: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while not (runs() and runs()[0][2] > 0):
            assert time.monotonic() < deadline, "the first worker made no progress"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        settle(probe)
        killed_at = time.monotonic()
        second = worker()
        deadline = time.monotonic() + 120
        while not any(row[1] == "succeeded" for row in runs()):
            assert time.monotonic() < deadline, logs[-1].read_text()
            time.sleep(0.05)
        # The second worker waited for the dead one's lease to expire, then resumed.
        assert time.monotonic() - killed_at >= 1.0
        (dead, killed, done_before, _d), (alive, status, rest, duplicates) = runs()
        assert dead != alive
        assert killed == "interrupted"
        assert status == "succeeded"
        assert done_before > 0
        assert rest > 0
        # Resumed from the dead worker's checkpoint: nothing it committed is read again.
        assert duplicates == 0
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        probe.dispose()
