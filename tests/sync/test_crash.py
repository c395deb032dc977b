"""`carebridge sync run` SIGKILLed again and again across a generated load (issue 8).

A generated export of both systems is first loaded by one clean run of each job, and the
store's state taken; the database is emptied and the same jobs are run again, in a child
process that is SIGKILLed at 24 points spread across the load (chosen by how many records
the runs have committed, plus a random delay of up to a few batches so kills land
anywhere: mid-batch, mid-commit, between batches, at the end) and restarted each time. The
store must end the same as after the clean run: the same resources with the same version
counts, the same history, the same identity links and alerts, each dead letter seen
once, and no apply audited twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bridge.store.models import (
    AuditEntry,
    DeadLetter,
    IdentityLink,
    InboundMessage,
    OutboxMessage,
    ResourceCurrent,
    ResourceHistory,
)
from tests.conftest import REPO_ROOT, _wipe

PERSONS = 20
KILLS_PER_JOB = 12
SEED = 20261123
JOBS = ("asc", "chs")
APP_NAME = "carebridge-sync-crash"


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bridge.cli import main; main()", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def child_env(db: Engine, data_dir: Path) -> dict[str, str]:
    url = make_url(db.url.render_as_string(hide_password=False))
    if db.dialect.name == "postgresql":
        url = url.update_query_dict({"application_name": APP_NAME})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_DATABASE_URL=url.render_as_string(hide_password=False),
        CAREBRIDGE_DATA_DIR=str(data_dir),
        CAREBRIDGE_LOG_LEVEL="WARNING",
        CAREBRIDGE_SYNC_LEASE_SECONDS="1",
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def state(db: Engine) -> dict[str, object]:
    """Return the store's state, with the (random) Person ids replaced by their members."""
    with Session(db) as s:
        rows = s.execute(
            select(
                ResourceCurrent.resource_type,
                ResourceCurrent.id,
                ResourceCurrent.version_id,
                ResourceCurrent.person_id,
            )
        ).all()
        members: dict[str | None, set[str]] = {}
        for rtype, rid, _v, person in rows:
            if rtype == "Patient":
                members.setdefault(person, set()).add(rid)
        persons = sorted(
            (tuple(sorted(members.get(rid, ()))), v) for t, rid, v, _p in rows if t == "Person"
        )
        return {
            "resources": {f"{t}/{i}": v for t, i, v, _p in rows if t != "Person"},
            "persons": persons,
            "history": s.scalar(select(func.count()).select_from(ResourceHistory)),
            "inbound": Counter(s.scalars(select(InboundMessage.status))),
            "dead_letters": sorted(s.execute(select(DeadLetter.raw_hash, DeadLetter.attempts))),
            "links": s.scalar(select(func.count()).select_from(IdentityLink)),
            "outbox": sorted(s.scalars(select(OutboxMessage.idempotency_key))),
            "audit": Counter(a for a in s.scalars(select(AuditEntry.action)) if a != "sync.run"),
        }


def committed_reads(db: Engine, job: str) -> int:
    with db.connect() as conn:
        return int(
            conn.scalar(
                text("SELECT coalesce(sum(records_read), 0) FROM sync_run WHERE job = :j"),
                {"j": job},
            )
        )


def settle(db: Engine) -> None:
    """Wait until a killed child's PostgreSQL sessions have ended (SQLite: at once)."""
    if db.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 30
    with db.connect() as conn:
        while time.monotonic() < deadline:
            left = conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": APP_NAME},
            )
            if not left:
                return
            time.sleep(0.01)
    raise AssertionError("the killed run's database sessions did not end")


def test_sync_killed_anywhere_ends_like_a_clean_run(db: Engine, tmp_path: Path) -> None:
    export = tmp_path / "export"
    generated = run_cli(
        ["examples", "generate", "--persons", str(PERSONS), "--seed", "11", "--out", str(export)],
        os.environ.copy(),
        tmp_path,
    )
    assert generated.returncode == 0, generated.stderr
    jobs_file = tmp_path / "jobs.yaml"
    jobs_file.write_text(
        "jobs:\n"
        f"  - {{name: asc, source: asc-export, path: {export / 'asc'}, schedule: 1m,"
        " options: {batch_size: 4}}\n"
        f"  - {{name: chs, source: chs-extracts, path: {export / 'chs'}, schedule: 1m,"
        " options: {batch_size: 4}}\n"
    )
    env = child_env(db, tmp_path / "var")
    probe = create_engine(db.url, isolation_level="AUTOCOMMIT")
    try:
        totals = {}
        for name in JOBS:
            clean = run_cli(["sync", "run", name, "--jobs", str(jobs_file)], env, tmp_path)
            assert clean.returncode == 0, clean.stdout + clean.stderr
            totals[name] = committed_reads(probe, name)
        expected = state(db)
        assert expected["resources"], "the clean run stored nothing"
        _wipe(db)

        rng = random.Random(SEED)
        kills: list[tuple[str, int, int]] = []
        for name in JOBS:
            targets = sorted(rng.sample(range(1, totals[name]), KILLS_PER_JOB))
            runs = 0
            while True:
                runs += 1
                log = tmp_path / f"{name}-{runs}.log"
                with log.open("wb") as out:
                    proc = subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            "from bridge.cli import main; main()",
                            *("sync", "run", name, "--jobs", str(jobs_file), "--wait-lease", "60"),
                        ],
                        env=env,
                        cwd=tmp_path,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                target = targets[0] if targets else None
                while target is not None and proc.poll() is None:
                    if committed_reads(probe, name) >= target:
                        # Land anywhere up to a few batches later: mid-batch or mid-commit.
                        time.sleep(rng.random() * 0.05)
                        break
                    time.sleep(0.002)
                if target is not None and proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
                    settle(probe)
                    kills.append((name, target, committed_reads(probe, name)))
                    targets.pop(0)
                    continue
                proc.wait(timeout=600)
                out = log.read_text()
                if target is not None:
                    # It finished before the kill point: the later points are past the end.
                    targets.clear()
                assert proc.returncode == 0, out
                break
        assert len(kills) >= 20, kills
        assert state(db) == expected
    finally:
        probe.dispose()
