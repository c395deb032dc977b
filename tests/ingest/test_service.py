"""Ingest service: raw kept, mapped, stored once; failures dead-lettered whole; resumable."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.asc import AscAdapter
from adapters.base import AdapterError, SourceRecord
from bridge.core.clock import FixedClock
from bridge.core.ids import stable_id
from bridge.ingest.service import Ingestor, ingest_stream, utc_version
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory
from bridge.store.inbound import DeadLetterRepository
from bridge.store.models import DeadLetter, InboundMessage, ResourceCurrent
from bridge.store.resources import ResourceRepository
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "examples" / "sample" / "asc"


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return Mappings.load()


@pytest.fixture
def ingestor(mappings: Mappings, crypto: StoreCrypto, clock: FixedClock) -> Ingestor:
    return Ingestor(mappings=mappings, crypto=crypto, clock=clock)


@pytest.fixture
def factory(db: Engine) -> sessionmaker[Session]:
    return make_session_factory(db)


def person_rows() -> list[dict[str, Any]]:
    rows = []
    for line in (SAMPLE / "persons.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def person(row: dict[str, Any], **changes: Any) -> SourceRecord:
    row = {**row, **changes}
    raw = json.dumps(row).encode()
    return SourceRecord("asc", "person", row["person_id"], row["updated_at"], row, raw)


def count(factory: sessionmaker[Session], model: Any) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


class TestApply:
    def test_sample_persons_apply_once_then_are_duplicates(
        self, factory: sessionmaker[Session], ingestor: Ingestor
    ) -> None:
        items = list(AscAdapter([SAMPLE / "persons.jsonl"]).read())
        first = ingest_stream(factory, items, ingestor=ingestor, system="asc", channel="file")
        rows = sum(1 for i in items if isinstance(i, SourceRecord))
        assert first.counts["applied"] == rows
        assert first.counts["dead_lettered"] == len(items) - rows
        assert count(factory, ResourceCurrent) == rows
        again = ingest_stream(factory, items, ingestor=ingestor, system="asc", channel="file")
        assert again.counts["duplicate"] == rows
        assert count(factory, ResourceCurrent) == rows
        # The same bad input again is the same dead letter, seen twice.
        with factory() as s:
            letters = DeadLetterRepository(s, crypto=ingestor.crypto, clock=ingestor.clock).list()
        assert all(d.attempts == 2 for d in letters)

    def test_changed_record_makes_a_new_version(
        self, factory: sessionmaker[Session], ingestor: Ingestor
    ) -> None:
        row = person_rows()[0]
        with factory() as s, s.begin():
            assert ingestor.apply(s, person(row), channel="file").status == "applied"
        later = person(row, family_name="Renamed", updated_at="2026-10-30T09:00:00+00:00")
        with factory() as s, s.begin():
            out = ingestor.apply(s, later, channel="file")
        assert out.status == "applied"
        pid = stable_id("asc", "person", row["person_id"])
        with factory() as s:
            repo = ResourceRepository(s, crypto=ingestor.crypto, clock=ingestor.clock)
            current = repo.read("Patient", pid)
        assert current.version_id == 2
        assert current.content["name"][0]["family"] == "Renamed"  # type: ignore[index]

    def test_older_record_arriving_late_changes_nothing(
        self, factory: sessionmaker[Session], ingestor: Ingestor
    ) -> None:
        row = person_rows()[0]
        newer = person(row, family_name="Newer", updated_at="2026-10-30T09:00:00+00:00")
        older = person(row, family_name="Older", updated_at="2026-10-01T09:00:00+01:00")
        with factory() as s, s.begin():
            ingestor.apply(s, newer, channel="file")
            assert ingestor.apply(s, older, channel="file").status == "stale"
        pid = stable_id("asc", "person", row["person_id"])
        with factory() as s:
            repo = ResourceRepository(s, crypto=ingestor.crypto, clock=ingestor.clock)
            assert repo.read("Patient", pid).content["name"][0]["family"] == "Newer"  # type: ignore[index]

    def test_mapping_failure_is_dead_lettered_whole_and_writes_nothing(
        self, factory: sessionmaker[Session], ingestor: Ingestor
    ) -> None:
        row = person_rows()[0]
        bad = person(row, date_of_birth="31/02/1941")
        with factory() as s, s.begin():
            out = ingestor.apply(s, bad, channel="file")
        assert out.status == "dead_lettered"
        assert out.error_code == "BRIDGE-0600"
        assert "date_of_birth" in (out.error or "")
        assert count(factory, ResourceCurrent) == 0
        with factory() as s:
            letter = DeadLetterRepository(s, crypto=ingestor.crypto, clock=ingestor.clock).get(
                out.dead_letter_id or 0
            )
            assert letter.raw == bad.raw
            assert letter.source_kind == "person"
            status = s.scalar(select(InboundMessage.status))
        assert status == "failed"

    def test_unparseable_input_is_dead_lettered(
        self, factory: sessionmaker[Session], ingestor: Ingestor
    ) -> None:
        err = AdapterError(
            "line is not valid JSON", field="line", raw=b'{"person_id": "A', origin="p:3"
        )
        with factory() as s, s.begin():
            out = ingestor.reject(s, err, system="asc", channel="file", kind="person")
        assert out.status == "dead_lettered"
        assert count(factory, DeadLetter) == 1


class TestConcurrentWriters:
    def test_a_record_racing_another_for_the_same_resource_is_applied_not_dead_lettered(
        self, factory: sessionmaker[Session], ingestor: Ingestor
    ) -> None:
        # Two feeds (MLLP connections) carry records of one patient at once: the second
        # waits on the first's uncommitted Patient, then finds it already made. That is
        # contention, not a bad record: it must be applied, not dead-lettered (which an
        # HL7 sender is told not to resend).
        row = person_rows()[0]
        later = person(row, family_name="Renamed", updated_at="2026-10-30T09:00:00+00:00")
        outcomes: list[str] = []

        def second() -> None:
            with factory() as s, s.begin():
                outcomes.append(ingestor.apply(s, later, channel="mllp").status)

        with factory() as s, s.begin():
            assert ingestor.apply(s, person(row), channel="mllp").status == "applied"
            racer = threading.Thread(target=second)
            racer.start()
            racer.join(0.5)  # PostgreSQL: blocked on our row; SQLite: on BEGIN IMMEDIATE
            assert racer.is_alive()
        racer.join(30)
        assert outcomes == ["applied"]
        assert count(factory, DeadLetter) == 0
        pid = stable_id("asc", "person", row["person_id"])
        with factory() as s:
            current = ResourceRepository(s, crypto=ingestor.crypto, clock=ingestor.clock).read(
                "Patient", pid
            )
        assert current.version_id == 2
        assert current.content["name"][0]["family"] == "Renamed"  # type: ignore[index]


class TestCrashSafety:
    def test_killed_mid_stream_then_rerun_applies_each_record_exactly_once(
        self, factory: sessionmaker[Session], ingestor: Ingestor
    ) -> None:
        records = [person(r) for r in person_rows()]

        def dies_after(n: int) -> Iterator[SourceRecord]:
            for i, rec in enumerate(records):
                if i == n:
                    raise KeyboardInterrupt("killed")
                yield rec

        with pytest.raises(KeyboardInterrupt):
            ingest_stream(
                factory,
                dies_after(17),
                ingestor=ingestor,
                system="asc",
                channel="file",
                batch_size=5,
            )
        committed = count(factory, ResourceCurrent)
        assert committed == 15  # three whole batches; the fourth rolled back
        rerun = ingest_stream(
            factory, records, ingestor=ingestor, system="asc", channel="file", batch_size=5
        )
        assert rerun.counts["duplicate"] == 15
        assert rerun.counts["applied"] == len(records) - 15
        assert count(factory, ResourceCurrent) == len(records)
        with factory() as s:
            versions = s.scalars(select(ResourceCurrent.version_id)).all()
        assert set(versions) == {1}


def test_utc_version() -> None:
    assert utc_version("2026-10-01T10:00:00+01:00") == "2026-10-01T09:00:00.000000Z"
    assert utc_version("2026-10-01T09:00:00Z") == "2026-10-01T09:00:00.000000Z"
    # No offset: Europe/London local time (BST in October, GMT in December).
    assert utc_version("2026-10-01T10:00:00") == "2026-10-01T09:00:00.000000Z"
    assert utc_version("2026-12-01T10:00") == "2026-12-01T10:00:00.000000Z"
    assert utc_version("yesterday") is None
    assert utc_version(None) is None
