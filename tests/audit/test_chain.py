"""The audit chain: recording, verification, and detection of every kind of tampering."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.orm import Session

from bridge.audit.checkpoint import (
    CHECKPOINT_FILE,
    load_checkpoints,
    load_signing_key,
    write_checkpoint,
)
from bridge.audit.service import Actor, AuditLog, AuditRecord
from bridge.core.clock import FixedClock
from bridge.core.crypto import Hasher
from bridge.store.audit import AuditRepository
from bridge.store.db import make_session_factory, transaction
from bridge.store.models import AuditEntry, AuditHead

HASHER = Hasher(b"a" * 32)
NURSE = Actor("nurse.1", ("health_professional",), org="RXX", team="district-nursing")


def rec(n: int, **kw: object) -> AuditRecord:
    fields: dict[str, object] = {
        "actor": NURSE,
        "action": "fhir.read",
        "outcome": "permit",
        "person_id": f"person-{n % 3}",
        "purpose": "direct-care",
        "request_id": f"req{n}",
        "detail": {"resources": [f"Patient/p{n}/1"], "n": n},
    }
    fields.update(kw)
    return AuditRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def log(clock: FixedClock) -> AuditLog:
    return AuditLog(HASHER, clock)


def fill(db: Engine, log: AuditLog, n: int) -> None:
    with transaction(make_session_factory(db)) as s:
        for i in range(1, n + 1):
            log.record(s, rec(i))


def verify(db: Engine, log: AuditLog, checkpoints=()):  # type: ignore[no-untyped-def]
    with make_session_factory(db)() as s:
        return log.verify(s, checkpoints)


class TestRecord:
    def test_entries_are_numbered_and_chained(self, db: Engine, log: AuditLog) -> None:
        fill(db, log, 5)
        with make_session_factory(db)() as s:
            rows = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
            assert rows[0].prev_hash == "0" * 64
            assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, 5))
            assert AuditRepository(s).head() == (5, rows[-1].hash)
        report = verify(db, log)
        assert report.ok
        assert report.entries == 5

    def test_rolled_back_transaction_leaves_no_entry(self, db: Engine, log: AuditLog) -> None:
        fill(db, log, 2)
        factory = make_session_factory(db)

        def audited_work_that_fails() -> None:
            with transaction(factory) as s:
                log.record(s, rec(3))
                raise RuntimeError("the audited work failed")

        with pytest.raises(RuntimeError):
            audited_work_that_fails()
        fill(db, log, 1)
        report = verify(db, log)
        assert report.ok
        assert report.entries == 3

    def test_unknown_action_or_outcome_refused(self, session: Session, log: AuditLog) -> None:
        with pytest.raises(ValueError, match="unknown audit action"):
            log.record(session, rec(1, action="peek"))
        with pytest.raises(ValueError, match="unknown audit outcome"):
            log.record(session, rec(1, outcome="maybe"))

    def test_concurrent_writers_keep_one_unbroken_chain(self, db: Engine, log: AuditLog) -> None:
        factory = make_session_factory(db)
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def writer(w: int) -> None:
            barrier.wait()
            try:
                for i in range(10):
                    with transaction(factory) as s:
                        log.record(s, rec(w * 100 + i))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        report = verify(db, log)
        assert report.ok, report.problem
        assert report.entries == 80


class TestTamperDetection:
    N = 6

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("actor_user", "someone.else"),
            ("actor_roles", "admin"),
            ("actor_org", "RYY"),
            ("actor_team", "other-team"),
            ("action", "person.read"),
            ("person_id", "person-9"),
            ("outcome", "deny"),
            ("purpose", "research"),
            ("break_glass", True),
            ("request_id", "reqX"),
            ("client_address", "10.0.0.9"),
            ("detail", '{"n":3,"resources":["Patient/p3/2"]}'),
            ("recorded_at", datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC)),
        ],
    )
    def test_any_altered_column_is_named(
        self, db: Engine, log: AuditLog, column: str, value: object
    ) -> None:
        fill(db, log, self.N)
        with transaction(make_session_factory(db)) as s:
            s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values({column: value}))
        report = verify(db, log)
        assert not report.ok
        assert report.first_bad_seq == 3
        assert "altered" in (report.problem or "")

    def test_single_byte_change_in_detail(self, db: Engine, log: AuditLog) -> None:
        fill(db, log, self.N)
        with transaction(make_session_factory(db)) as s:
            row = s.get(AuditEntry, 4)
            assert row is not None
            changed = bytearray(row.detail.encode())
            changed[5] ^= 0x01
            row.detail = changed.decode()
        report = verify(db, log)
        assert report.first_bad_seq == 4

    def test_deleted_entry(self, db: Engine, log: AuditLog) -> None:
        fill(db, log, self.N)
        with transaction(make_session_factory(db)) as s:
            s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
        report = verify(db, log)
        assert report.first_bad_seq == 2
        assert "missing" in (report.problem or "")

    def test_inserted_entry(self, db: Engine, log: AuditLog) -> None:
        fill(db, log, self.N)
        with transaction(make_session_factory(db)) as s:
            # Make room by renumbering the tail, then slip a forged entry in at #3.
            rows = s.scalars(
                select(AuditEntry).where(AuditEntry.seq >= 3).order_by(AuditEntry.seq.desc())
            ).all()
            for r in rows:
                s.execute(update(AuditEntry).where(AuditEntry.seq == r.seq).values(seq=r.seq + 1))
            forged = {c.name: getattr(rows[-1], c.name) for c in AuditEntry.__table__.columns}
            forged.update(seq=3, actor_user="intruder")
            s.expunge_all()
            s.execute(insert(AuditEntry).values(**forged))
        report = verify(db, log)
        assert not report.ok
        assert report.first_bad_seq == 3

    def test_reordered_entries(self, db: Engine, log: AuditLog) -> None:
        fill(db, log, self.N)
        with transaction(make_session_factory(db)) as s:
            s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(seq=-2))
            s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(seq=2))
            s.execute(update(AuditEntry).where(AuditEntry.seq == -2).values(seq=3))
        report = verify(db, log)
        assert report.first_bad_seq == 2
        assert "does not follow" in (report.problem or "")

    def test_truncated_tail_with_head_left_alone(self, db: Engine, log: AuditLog) -> None:
        fill(db, log, self.N)
        with transaction(make_session_factory(db)) as s:
            s.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
        report = verify(db, log)
        assert not report.ok
        assert "removed from the end" in (report.problem or "")


class TestCheckpoints:
    def test_rewritten_chain_with_stolen_key_is_caught(
        self, db: Engine, log: AuditLog, tmp_path: Path, clock: FixedClock
    ) -> None:
        fill(db, log, 4)
        key = load_signing_key(tmp_path / "sign.pem", allow_create=True)
        with make_session_factory(db)() as s:
            seq, head = AuditRepository(s).head()
        write_checkpoint(tmp_path / "cp", key, seq=seq, hash_=head, at=clock.now())
        # The attacker holds the HMAC key: wipe the log and rebuild a consistent fake one.
        with transaction(make_session_factory(db)) as s:
            s.execute(delete(AuditEntry))
            s.execute(delete(AuditHead))
        with transaction(make_session_factory(db)) as s:
            for i in range(1, 5):
                log.record(s, rec(i, actor=Actor("intruder")))
        assert verify(db, log).ok  # consistent on its own...
        checkpoints, problems = load_checkpoints(tmp_path / "cp")
        assert problems == []
        report = verify(db, log, checkpoints)
        assert not report.ok  # ...but not with the signed checkpoint
        assert "checkpoint" in (report.problem or "")

    def test_truncation_with_head_rewritten_is_caught(
        self, db: Engine, log: AuditLog, tmp_path: Path, clock: FixedClock
    ) -> None:
        fill(db, log, 6)
        key = load_signing_key(tmp_path / "sign.pem", allow_create=True)
        write_checkpoint(tmp_path / "cp", key, seq=6, hash_=_hash_of(db, 6), at=clock.now())
        with transaction(make_session_factory(db)) as s:
            s.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
            s.execute(update(AuditHead).values(seq=4, hash=_hash_of_in(s, 4)))
        assert verify(db, log).ok
        report = verify(db, log, load_checkpoints(tmp_path / "cp")[0])
        assert not report.ok
        assert "removed from the end" in (report.problem or "")

    def test_forged_checkpoint_line_is_reported(self, tmp_path: Path, clock: FixedClock) -> None:
        key = load_signing_key(tmp_path / "sign.pem", allow_create=True)
        write_checkpoint(tmp_path / "cp", key, seq=1, hash_="ab" * 32, at=clock.now())
        path = tmp_path / "cp" / CHECKPOINT_FILE
        path.write_text(path.read_text().replace('"seq": 1', '"seq": 2'))
        good, problems = load_checkpoints(tmp_path / "cp")
        assert good == []
        assert "signature is not valid" in problems[0]

    def test_checkpoint_dir_of_another_key_refused(self, tmp_path: Path, clock: FixedClock) -> None:
        a = load_signing_key(tmp_path / "a.pem", allow_create=True)
        b = load_signing_key(tmp_path / "b.pem", allow_create=True)
        write_checkpoint(tmp_path / "cp", a, seq=1, hash_="00" * 32, at=clock.now())
        from bridge.core.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="another signing key"):
            write_checkpoint(tmp_path / "cp", b, seq=2, hash_="00" * 32, at=clock.now())


def _hash_of(db: Engine, seq: int) -> str:
    with make_session_factory(db)() as s:
        return _hash_of_in(s, seq)


def _hash_of_in(s: Session, seq: int) -> str:
    return str(s.execute(text("SELECT hash FROM audit_entry WHERE seq = :s"), {"s": seq}).scalar())
