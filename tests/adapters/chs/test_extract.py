"""JSON-lines extracts: the sample files and every way a line can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.base import AdapterError, SourceRecord
from adapters.chs.extract import EXTRACTS, read_extract
from tests.adapters.chs.builders import EXTRACTS_DIR


def write(tmp_path: Path, name: str, *lines: str | bytes) -> Path:
    """Write an extract file from lines (each gets a newline)."""
    path = tmp_path / name
    path.write_bytes(
        b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines)
    )
    return path


def referral(**fields: Any) -> str:
    """Return a referral row as JSON."""
    row = {
        "referral_id": "REF00000001",
        "patient_id": "CHS1",
        "updated_at": "2026-01-02T03:04:05+00:00",
    }
    row.update(fields)
    return json.dumps(row)


class TestSampleExtracts:
    @pytest.mark.parametrize("stem", list(EXTRACTS))
    def test_every_row_parses_except_the_broken_json_ones(
        self, stem: str, manifest: dict[str, Any]
    ) -> None:
        name = f"chs/extracts/{stem}.jsonl"
        broken = {
            row["line"]
            for row in manifest["invalid_rows"]
            if row["file"] == name and row["kind"] == "truncated_json"
        }
        items = list(read_extract(EXTRACTS_DIR / f"{stem}.jsonl"))
        assert len(items) == manifest["counts"][name]
        kind, id_field = EXTRACTS[stem]
        for line, item in enumerate(items, 1):
            if line in broken:
                assert isinstance(item, AdapterError)
                assert item.origin == f"{stem}.jsonl:{line}"
                assert f"line {line} is not valid JSON" in item.reason
            else:
                assert isinstance(item, SourceRecord)
                assert (item.system, item.kind) == ("chs", kind)
                assert item.id == item.fields[id_field]
                assert item.version == item.fields["updated_at"]

    def test_a_row_keeps_its_values_untouched(self) -> None:
        first = next(read_extract(EXTRACTS_DIR / "alerts.jsonl"))
        assert isinstance(first, SourceRecord)
        raw_line = (EXTRACTS_DIR / "alerts.jsonl").read_bytes().split(b"\n")[0]
        assert first.fields == json.loads(raw_line)
        assert first.raw == raw_line
        assert first.kind == "alert"


class TestBadLines:
    def test_a_non_object_line(self, tmp_path: Path) -> None:
        [item] = read_extract(write(tmp_path, "referrals.jsonl", "[1, 2]"))
        assert isinstance(item, AdapterError)
        assert "JSON list, not an object" in item.reason

    @pytest.mark.parametrize(
        ("value", "words"), [(None, "missing"), ("", "not a usable id"), (True, "not a usable id")]
    )
    def test_a_missing_or_unusable_id(self, tmp_path: Path, value: Any, words: str) -> None:
        [item] = read_extract(write(tmp_path, "referrals.jsonl", referral(referral_id=value)))
        assert isinstance(item, AdapterError)
        assert item.field == "referral_id"
        assert words in item.reason
        assert item.origin == "referrals.jsonl:1"

    def test_a_numeric_id_becomes_text(self, tmp_path: Path) -> None:
        [item] = read_extract(write(tmp_path, "referrals.jsonl", referral(referral_id=42)))
        assert isinstance(item, SourceRecord)
        assert item.id == "42"

    def test_no_updated_at_means_no_version(self, tmp_path: Path) -> None:
        [item] = read_extract(write(tmp_path, "referrals.jsonl", referral(updated_at=None)))
        assert isinstance(item, SourceRecord)
        assert item.version is None

    def test_blank_lines_are_skipped_and_line_numbers_kept(self, tmp_path: Path) -> None:
        path = write(tmp_path, "alerts.jsonl", "", json.dumps({"alert_id": "A1"}), "   ", "{bad")
        items = list(read_extract(path))
        assert [type(i).__name__ for i in items] == ["SourceRecord", "AdapterError"]
        assert items[1].origin == "alerts.jsonl:4"

    def test_bytes_that_are_not_utf_8(self, tmp_path: Path) -> None:
        [item] = read_extract(write(tmp_path, "alerts.jsonl", b'{"alert_id": "\xff"}'))
        assert isinstance(item, AdapterError)
        assert "not UTF-8" in item.reason

    def test_an_overlong_line_is_skipped_without_holding_it(self, tmp_path: Path) -> None:
        long_row = json.dumps({"alert_id": "A1", "text": "x" * 5000})
        path = write(tmp_path, "alerts.jsonl", long_row, json.dumps({"alert_id": "A2"}))
        items = list(read_extract(path, max_line_bytes=1000))
        assert isinstance(items[0], AdapterError)
        assert "longer than 1,000 bytes" in items[0].reason
        assert len(items[0].raw) == 1000
        assert isinstance(items[1], SourceRecord)
        assert items[1].origin == "alerts.jsonl:2"


class TestKinds:
    def test_an_unknown_file_name_is_refused_at_once_with_a_hint(self, tmp_path: Path) -> None:
        path = write(tmp_path, "care_plans.jsonl", "{}")
        with pytest.raises(AdapterError) as info:
            read_extract(path)
        assert "referrals.jsonl, contacts.jsonl, problems.jsonl" in info.value.reason
        assert "'care_plans.jsonl'" in info.value.reason

    def test_a_kind_can_be_given_for_another_file_name(self, tmp_path: Path) -> None:
        path = write(tmp_path, "export-2026.jsonl", json.dumps({"problem_id": "PRB1"}))
        [item] = read_extract(path, "problem")
        assert isinstance(item, SourceRecord)
        assert (item.kind, item.id) == ("problem", "PRB1")

    def test_an_unknown_kind_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(AdapterError, match="known kinds are referral, contact"):
            read_extract(write(tmp_path, "x.jsonl", "{}"), "care_plan")
