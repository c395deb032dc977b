"""HL7 batch files: wrappers, line endings, bad messages and bounded memory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from adapters.base import AdapterError, SourceRecord
from adapters.chs import batch
from adapters.chs.batch import read_batch
from tests.adapters.chs.builders import ADT_FILE, EVN, MSH_24, PID, PV1


def adt(control_id: str, *, sep: str = "\r", event: str = "A01") -> str:
    """Return one message's text with this control id."""
    msh = MSH_24.replace("CTRL1", control_id).replace("ADT^A01^ADT_A01", f"ADT^{event}")
    return sep.join([msh, EVN, PID, PV1])


def read(data: bytes, **kwargs: Any) -> list[SourceRecord | AdapterError]:
    """Return everything read_batch yields for in-memory bytes."""
    return list(read_batch(io.BytesIO(data), origin="b.hl7", **kwargs))


def ids(items: list[SourceRecord | AdapterError]) -> list[str]:
    """Return record ids, with ``!`` for each error."""
    return [item.id if isinstance(item, SourceRecord) else "!" for item in items]


class TestSampleFile:
    def test_yields_every_message_with_errors_in_place(self, manifest: dict[str, Any]) -> None:
        items = list(read_batch(ADT_FILE))
        assert len(items) == manifest["counts"]["chs/adt/adt-0001.hl7"]
        bad_lines = sorted(
            row["line"] for row in manifest["invalid_rows"] if row["file"] == "chs/adt/adt-0001.hl7"
        )
        errors = [item for item in items if isinstance(item, AdapterError)]
        assert [int(e.origin.rsplit(":", 1)[1]) for e in errors] == bad_lines
        for error in errors:
            assert error.field == "MSH"
            assert error.raw.startswith(b"EVN|")  # kept apart from the message before it
        records = [item for item in items if isinstance(item, SourceRecord)]
        assert [r.id for r in records] == sorted(r.id for r in records)
        assert records[0].origin == "adt-0001.hl7:1"
        assert records[0].raw == ADT_FILE.read_bytes().split(b"\n")[0]


class TestLayouts:
    @pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
    def test_wrapped_batches_in_any_line_ending(self, sep: str) -> None:
        body = sep.join(
            [
                "FHS|^~\\&|CHS|RXX",
                "BHS|^~\\&|CHS|RXX",
                adt("B1", sep=sep),
                adt("B2", sep=sep),
                "BTS|2",
                "FTS|1",
            ]
        )
        items = read((body + sep).encode())
        assert ids(items) == ["B1", "B2"]

    @pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
    def test_plain_consecutive_messages_with_blank_lines(self, sep: str) -> None:
        body = sep.join([adt("P1", sep=sep), "", "", adt("P2", sep=sep), adt("P3", sep=sep)])
        assert ids(read(body.encode())) == ["P1", "P2", "P3"]

    def test_one_message_per_line(self) -> None:
        data = (adt("L1") + "\n" + adt("L2") + "\r\n" + adt("L3")).encode()
        items = read(data)
        assert ids(items) == ["L1", "L2", "L3"]
        assert [item.origin for item in items] == ["b.hl7:1", "b.hl7:2", "b.hl7:3"]

    def test_a_headless_message_in_a_wrapped_crlf_batch_is_an_error(self) -> None:
        body = "\r\n".join(["BHS|^~\\&", EVN, PID, PV1, adt("H2", sep="\r\n"), "BTS|2"])
        items = read(body.encode())
        assert ids(items) == ["!", "H2"]
        assert items[0].origin == "b.hl7:2"

    def test_a_bom_and_leading_whitespace(self) -> None:
        assert ids(read(b"\xef\xbb\xbf\n\n" + adt("W1").encode())) == ["W1"]

    @pytest.mark.parametrize("chunk", [1, 2, 7, 100])
    def test_chunk_boundaries_do_not_matter(
        self, chunk: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = "\r\n".join([adt("K1", sep="\r\n"), "", adt("K2", sep="\r\n")]).encode()
        expected = read(data)
        monkeypatch.setattr(batch, "CHUNK_BYTES", chunk)
        got = read(data)
        assert [(i.origin, i.raw) for i in got] == [(i.origin, i.raw) for i in expected]
        assert ids(got) == ids(expected) == ["K1", "K2"]


class TestBadMessages:
    def test_a_bad_message_does_not_stop_the_rest(self) -> None:
        data = "\n".join([adt("G1"), adt("G2", event="A99"), "garbage\rmore", adt("G3")])
        items = read(data.encode())
        assert ids(items) == ["G1", "!", "!", "G3"]
        assert isinstance(items[1], AdapterError)
        assert items[1].field == "MSH-9"
        assert items[2].raw == b"garbage\rmore"
        assert items[2].origin == "b.hl7:3"

    def test_an_oversized_message_is_an_error_and_memory_stays_bounded(self) -> None:
        huge = adt("BIG") + "\rZXX|" + "x" * 50_000
        data = "\n".join([adt("S1"), huge, adt("S2")]).encode()
        items = read(data, max_message_bytes=2000)
        assert ids(items) == ["S1", "!", "S2"]
        error = items[1]
        assert isinstance(error, AdapterError)
        assert "2,000-byte limit" in error.reason
        assert len(error.raw) <= 2000
        assert error.raw.startswith(b"MSH|")

    def test_a_huge_unterminated_line_is_cut(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(batch, "CHUNK_BYTES", 1000)
        data = b"x" * 100_000 + b"\n" + adt("AFTER").encode()
        items = read(data, max_message_bytes=5000)
        assert ids(items) == ["!", "AFTER"]
        assert len(items[0].raw) <= 5000

    def test_strict_mode_applies_to_each_message(self) -> None:
        data = "\n".join([adt("T1"), "\r".join([MSH_24.replace("CTRL1", "T2"), PID, EVN, PV1])])
        assert ids(read(data.encode(), strict=True)) == ["T1", "!"]
        assert ids(read(data.encode())) == ["T1", "T2"]


class TestSources:
    def test_a_path_string(self, tmp_path: Path) -> None:
        path = tmp_path / "x.hl7"
        path.write_bytes(adt("F1").encode())
        [item] = list(read_batch(str(path)))
        assert isinstance(item, SourceRecord)
        assert (item.id, item.origin) == ("F1", "x.hl7:1")

    def test_a_stream_is_named_after_its_file(self, tmp_path: Path) -> None:
        path = tmp_path / "y.hl7"
        path.write_bytes(adt("F2").encode())
        with path.open("rb") as stream:
            [item] = list(read_batch(stream))
        assert item.origin == "y.hl7:1"
