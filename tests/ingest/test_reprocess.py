"""Dead letters are re-read with the adapter that first read them and applied after a fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adapters.asc import AscAdapter
from bridge.core.clock import FixedClock
from bridge.core.errors import ValidationError
from bridge.ingest.reprocess import reparse, reprocess
from bridge.ingest.service import Ingestor, ingest_stream
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory, transaction
from bridge.store.inbound import DeadLetterRepository
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "examples" / "sample"


@pytest.fixture
def factory(db: Engine) -> sessionmaker[Session]:
    return make_session_factory(db)


def mappings_without(tmp_path: Path, spec: str) -> Mappings:
    """The shipped mappings with one spec missing (the 'bug' an engineer later fixes)."""
    d = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", d, ignore=shutil.ignore_patterns("cases"))
    (d / f"{spec}.yaml").unlink()
    return Mappings.load(d)


def letters(factory: sessionmaker[Session], ingestor: Ingestor, status: str | None = "open"):  # type: ignore[no-untyped-def]
    with factory() as s:
        return DeadLetterRepository(s, crypto=ingestor.crypto, clock=ingestor.clock).list(
            status=status, limit=1000
        )


class TestReprocess:
    def test_records_failing_for_a_missing_spec_apply_after_the_fix(
        self,
        factory: sessionmaker[Session],
        crypto: StoreCrypto,
        clock: FixedClock,
        tmp_path: Path,
    ) -> None:
        broken = Ingestor(
            mappings=mappings_without(tmp_path, "asc/person"), crypto=crypto, clock=clock
        )
        summary = ingest_stream(
            factory,
            AscAdapter([SAMPLE / "asc" / "persons.jsonl"]).read(),
            ingestor=broken,
            system="asc",
            channel="file",
        )
        failed = summary.counts["dead_lettered"]
        assert failed > 30
        fixed = Ingestor(mappings=Mappings.load(), crypto=crypto, clock=clock)
        outcomes = []
        for d in letters(factory, fixed):
            with transaction(factory) as s:
                outcomes.append(reprocess(s, fixed, d.id))
        # Every person row maps once the spec is back (the sample's one bad NHS number is
        # kept as a local identifier with a warning, not refused).
        assert [o.status for o in outcomes] == ["applied"] * failed
        assert letters(factory, fixed) == []
        assert len(letters(factory, fixed, "reprocessed")) == failed

    def test_still_broken_input_stays_open_and_counts_attempts(
        self,
        factory: sessionmaker[Session],
        crypto: StoreCrypto,
        clock: FixedClock,
        tmp_path: Path,
    ) -> None:
        ingestor = Ingestor(mappings=Mappings.load(), crypto=crypto, clock=clock)
        export = tmp_path / "persons.jsonl"
        export.write_bytes(b'{"person_id": "ASC1", "updated_at": "2026-1\n')
        ingest_stream(
            factory,
            AscAdapter([export]).read(),
            ingestor=ingestor,
            system="asc",
            channel="file",
        )
        letter = letters(factory, ingestor)[0]
        assert letter.origin == "persons.jsonl:1"
        with transaction(factory) as s:
            assert reprocess(s, ingestor, letter.id).status == "dead_lettered"
        assert letters(factory, ingestor)[0].attempts == 2

    def test_reprocessing_a_closed_letter_is_refused(
        self,
        factory: sessionmaker[Session],
        crypto: StoreCrypto,
        clock: FixedClock,
        tmp_path: Path,
    ) -> None:
        ingestor = Ingestor(mappings=Mappings.load(), crypto=crypto, clock=clock)
        export = tmp_path / "persons.jsonl"
        export.write_bytes(b"[1, 2]\n")
        ingest_stream(
            factory,
            AscAdapter([export]).read(),
            ingestor=ingestor,
            system="asc",
            channel="file",
        )
        letter = letters(factory, ingestor)[0]
        with factory() as s, s.begin():
            DeadLetterRepository(s, crypto=crypto, clock=clock).set_status(letter.id, "discarded")

        def again() -> None:
            with transaction(factory) as s:
                reprocess(s, ingestor, letter.id)

        with pytest.raises(ValidationError, match="discarded, not open"):
            again()


class TestReparse:
    def test_hl7_and_extract_lines_are_read_again(
        self,
        factory: sessionmaker[Session],
        crypto: StoreCrypto,
        clock: FixedClock,
    ) -> None:
        hl7 = (
            b"MSH|^~\\&|CHS|RXX|CAREBRIDGE|CB|20261101090000||ADT^A28^ADT_A05|R1|P|2.4\r"
            b"EVN|A28|20261101090000\rPID|1||CHS0000009^^^RXX^MR||Doe^Jo\r"
        )
        line = (SAMPLE / "chs" / "extracts" / "problems.jsonl").read_bytes().splitlines()[0]
        with transaction(factory) as s:
            DeadLetterRepository(s, crypto=crypto, clock=clock).add(
                source_system="chs",
                channel="mllp",
                raw=hl7,
                error=ValidationError("kept for the test", field="PID-3"),
            )
        with factory() as s:
            dl = DeadLetterRepository(s, crypto=crypto, clock=clock).list()[0]
        again = reparse(dl)
        assert again.id == "R1"  # type: ignore[union-attr]
        from dataclasses import replace

        as_extract = replace(
            dl, source_system="chs", channel="file", raw=line, origin="problems.jsonl:1"
        )
        row = reparse(as_extract)
        assert row.kind == "problem"  # type: ignore[union-attr]
        csv_row = replace(dl, source_system="asc", channel="file", origin="persons.csv:4")
        assert "header" in reparse(csv_row).reason  # type: ignore[union-attr]
