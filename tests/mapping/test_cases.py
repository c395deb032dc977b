"""Reading records from JSON, and the golden-case runner's own checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bridge.mapping import Mappings
from bridge.mapping.cases import RecordFormatError, check_directory, record_from_json, run_cases
from tests.mapping.helpers import SHIPPED


class TestRecordFromJson:
    def test_a_full_record(self) -> None:
        record = record_from_json(
            {"system": "asc", "kind": "person", "id": "A1", "version": "v", "fields": {"a": 1}}
        )
        assert (record.system, record.kind, record.id, record.version) == (
            "asc",
            "person",
            "A1",
            "v",
        )
        assert record.fields == {"a": 1}

    def test_bare_fields_need_the_spec(self) -> None:
        record = record_from_json({"a": 1}, system="asc", kind="person", default_id="line-3")
        assert (record.system, record.id, record.fields) == ("asc", "line-3", {"a": 1})
        with pytest.raises(RecordFormatError, match='needs "fields"'):
            record_from_json({"a": 1})

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ([], "a record is a JSON object, not a list"),
            ({"fields": {}, "colour": "red"}, "unknown record key"),
            ({"fields": {}, "kind": "person"}, '"system" must be non-empty text'),
            ({"fields": {}, "system": "asc", "kind": "person", "id": 5}, '"id" must be non-empty'),
            ({"fields": {}, "system": "asc", "kind": "person", "version": 1}, '"version" must be'),
            ({"fields": "x", "system": "asc", "kind": "person"}, '"fields" must be a JSON object'),
            (
                {"fields": {}, "system": "asc", "kind": "person", "meta": []},
                '"origin" must be text',
            ),
        ],
    )
    def test_bad_records(self, data: Any, message: str) -> None:
        with pytest.raises(RecordFormatError, match=message):
            record_from_json(data)

    def test_the_record_must_suit_the_spec(self) -> None:
        with pytest.raises(RecordFormatError, match="the record is chs/problem, not asc/person"):
            record_from_json(
                {"system": "chs", "kind": "problem", "fields": {}}, system="asc", kind="person"
            )


@pytest.fixture
def cases(shipped_copy: Path) -> Path:
    return shipped_copy / "cases"


def results(root: Path) -> dict[str, Any]:
    return {r.name: r for r in run_cases(Mappings.load(root, strict=False))}


class TestCaseFiles:
    def test_both_expectations_is_a_failure(self, cases: Path) -> None:
        shutil.copy(cases / "1.output.json", cases / "6.output.json")
        assert results(cases.parent)["6"].differences == (
            "give exactly one of 6.output.json or 6.error.json",
        )

    def test_a_stray_json_file(self, cases: Path) -> None:
        (cases / "notes.json").write_text("{}")
        assert not results(cases.parent)["notes"].passed

    def test_output_must_be_a_list(self, cases: Path) -> None:
        (cases / "1.output.json").write_text("{}")
        assert results(cases.parent)["1"].differences == (
            "1.output.json must be a JSON list of resources",
        )

    def test_unreadable_case(self, cases: Path) -> None:
        (cases / "1.input.json").write_text("{broken")
        assert results(cases.parent)["1"].differences[0].startswith("cannot read the case")

    def test_expected_error_but_resources_were_made(self, cases: Path) -> None:
        (cases / "1.output.json").rename(cases / "1.error.json")
        assert "but the mapping made 1 resource(s)" in results(cases.parent)["1"].differences[0]

    def test_expected_resources_but_mapping_failed(self, cases: Path) -> None:
        (cases / "6.error.json").write_text("[]")
        (cases / "6.error.json").rename(cases / "6.output.json")
        assert (
            results(cases.parent)["6"]
            .differences[0]
            .startswith("expected resources, but mapping failed")
        )

    def test_error_expectation_keys_are_checked(self, cases: Path) -> None:
        (cases / "6.error.json").write_text(json.dumps({"colour": "red"}))
        assert "must be an object with some of" in results(cases.parent)["6"].differences[0]

    def test_error_fields_are_compared(self, cases: Path) -> None:
        (cases / "6.error.json").write_text(json.dumps({"rule": "method", "element": "x"}))
        assert results(cases.parent)["6"].differences == (
            'error rule: expected "method", got "status"',
            'error element: expected "x", got null',
        )

    def test_no_cases_directory(self, shipped_copy: Path) -> None:
        shutil.rmtree(shipped_copy / "cases")
        report = check_directory(shipped_copy)
        assert report.cases == ()
        assert report.ok


class TestReport:
    def test_lines_name_each_spec_map_and_case(self) -> None:
        lines = check_directory(SHIPPED).lines()
        assert lines[0] == f"mappings {SHIPPED}"
        maps = len(list((SHIPPED / "codes").glob("*.yaml")))
        assert f"concept maps: {maps} ok" in lines
        assert any("the expected error" in line for line in lines)
        assert lines[-1].endswith("0 problem(s), 0 case(s) failed - OK")
