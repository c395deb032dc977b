"""The worker's checkpoint schedule: every N entries, or every T minutes if the chain moved."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from bridge.audit.checkpoint import CheckpointSchedule, load_checkpoints
from bridge.audit.service import AuditLog
from bridge.core.clock import FixedClock
from bridge.store.db import make_session_factory
from tests.audit.test_chain import HASHER, fill, verify


def _schedule(
    db: Engine, path: Path, clock: FixedClock, key: Ed25519PrivateKey
) -> CheckpointSchedule:
    return CheckpointSchedule(
        make_session_factory(db), key, path, clock, every_entries=5, every_minutes=15
    )


def test_by_entries_then_by_time_and_only_when_moved(
    db: Engine, tmp_path: Path, clock: FixedClock
) -> None:
    log = AuditLog(HASHER, clock)
    key = Ed25519PrivateKey.generate()
    schedule = _schedule(db, tmp_path, clock, key)
    assert schedule.tick() is None  # an empty log: nothing to sign
    fill(db, log, 3)
    first = schedule.tick()  # never signed before: the time rule applies at once
    assert first is not None
    assert first.seq == 3
    fill(db, log, 4)
    assert schedule.tick() is None  # moved 4 < 5, and not 15 minutes yet
    fill(db, log, 1)
    second = schedule.tick()
    assert second is not None
    assert second.seq == 8
    fill(db, log, 1)
    clock.advance(seconds=14 * 60)
    assert schedule.tick() is None
    clock.advance(seconds=60)
    third = schedule.tick()
    assert third is not None
    assert third.seq == 9
    clock.advance(seconds=3600)
    assert schedule.tick() is None  # an hour, but nothing new to sign
    checkpoints, problems = load_checkpoints(tmp_path)
    assert problems == []
    assert [c.seq for c in checkpoints] == [3, 8, 9]
    assert verify(db, log, checkpoints).ok


def test_a_restarted_worker_carries_on_from_the_last_checkpoint(
    db: Engine, tmp_path: Path, clock: FixedClock
) -> None:
    log = AuditLog(HASHER, clock)
    key = Ed25519PrivateKey.generate()
    fill(db, log, 2)
    assert _schedule(db, tmp_path, clock, key).tick() is not None
    fill(db, log, 1)
    restarted = _schedule(db, tmp_path, clock, key)
    assert (restarted.last_seq, restarted.tick()) == (2, None)  # moved 1, minutes not up
