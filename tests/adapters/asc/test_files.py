"""AscAdapter over export files and directories, the kinds table and the fake adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from adapters.asc import KINDS, AscAdapter, get_kind, kind_for_path, known_file_names, write_csv
from adapters.base import AdapterError, SourceAdapter, SourceRecord
from adapters.fake import FakeAdapter

KIND_ORDER = list(KINDS)


class TestKinds:
    def test_id_field_is_the_first_key_and_updated_at_present_in_every_sample_row(
        self, sample_asc: Path
    ) -> None:
        for kind in KINDS.values():
            for line in (sample_asc / f"{kind.collection}.jsonl").read_bytes().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                assert next(iter(row)) == kind.id_field
                assert kind.version_field in row

    def test_typed_columns_match_the_sample_values(self, sample_asc: Path) -> None:
        python_types = {"bool": bool, "number": int | float, "list": list}
        for kind in KINDS.values():
            rows = [
                json.loads(line)
                for line in (sample_asc / f"{kind.collection}.jsonl").read_bytes().splitlines()
                if line.endswith(b"}")
            ]
            for column, column_type in kind.columns.items():
                values = [r[column] for r in rows if r[column] is not None]
                assert values, f"{kind.name}.{column} is never set in the sample"
                assert all(isinstance(v, python_types[column_type]) for v in values)
            # Every column holding booleans, numbers or lists in the sample is typed.
            for column in rows[0]:
                if any(isinstance(r[column], bool | int | float | list) for r in rows):
                    assert column in kind.columns, f"{kind.name}.{column} needs a column type"

    def test_persons_load_first(self) -> None:
        assert KIND_ORDER[0] == "person"
        assert known_file_names()[:2] == ["persons.jsonl", "contacts.jsonl"]
        assert "safeguarding.csv" in known_file_names()

    @pytest.mark.parametrize(
        ("name", "kind", "fmt"),
        [("persons.jsonl", "person", "jsonl"), ("safeguarding.CSV", "safeguarding", "csv")],
    )
    def test_kind_for_path(self, name: str, kind: str, fmt: str) -> None:
        found, found_format = kind_for_path(Path("/exports") / name)
        assert (found.name, found_format) == (kind, fmt)

    @pytest.mark.parametrize("name", ["people.jsonl", "persons.json", "persons"])
    def test_unknown_file_names_get_a_hint(self, name: str) -> None:
        with pytest.raises(AdapterError) as caught:
            kind_for_path(name)
        message = str(caught.value)
        assert message.startswith(f"unknown ASC export file {name!r}: expected one of")
        assert "persons.jsonl, contacts.jsonl" in message
        assert "ending .csv" in message
        assert caught.value.field == "file"

    def test_unknown_kind_is_refused(self) -> None:
        with pytest.raises(AdapterError, match="unknown ASC record kind 'people'"):
            get_kind("people")


def kinds_read(adapter: AscAdapter) -> list[str]:
    return [r.kind for r in adapter.read() if isinstance(r, SourceRecord)]


class TestAscAdapter:
    def test_reads_a_directory_persons_first_then_each_kind_in_order(
        self, sample_asc: Path
    ) -> None:
        adapter: SourceAdapter = AscAdapter(sample_asc)
        assert adapter.system == "asc"
        kinds = kinds_read(AscAdapter(sample_asc))
        assert kinds[0] == "person"
        assert [KIND_ORDER.index(k) for k in kinds] == sorted(KIND_ORDER.index(k) for k in kinds)
        assert set(kinds) == set(KINDS)

    def test_orders_files_given_in_any_order(self, sample_asc: Path) -> None:
        files = [sample_asc / "carers.jsonl", sample_asc / "persons.jsonl"]
        adapter = AscAdapter(files)
        assert [f.path.name for f in adapter.files] == ["persons.jsonl", "carers.jsonl"]
        assert kinds_read(adapter) == ["person"] * 44 + ["carer"] * 22

    def test_reads_csv_and_jsonl_together(self, sample_asc: Path, tmp_path: Path) -> None:
        shutil.copy(sample_asc / "carers.jsonl", tmp_path)
        rows = [
            r.fields
            for r in AscAdapter(sample_asc / "persons.jsonl").read()
            if isinstance(r, SourceRecord)
        ]
        write_csv("person", rows, tmp_path / "persons.csv")
        (tmp_path / "README.md").write_text("not an export")
        adapter = AscAdapter(tmp_path)
        assert [(f.path.name, f.format) for f in adapter.files] == [
            ("persons.csv", "csv"),
            ("carers.jsonl", "jsonl"),
        ]
        assert adapter.skipped == (tmp_path / "README.md",)
        records = [r for r in adapter.read() if isinstance(r, SourceRecord)]
        assert [r.fields for r in records[:44]] == rows
        assert records[0].origin == "persons.csv:2"

    def test_a_file_named_twice_is_read_once(self, sample_asc: Path) -> None:
        adapter = AscAdapter([sample_asc, sample_asc / "persons.jsonl"])
        assert len([f for f in adapter.files if f.kind.name == "person"]) == 1

    def test_an_unknown_file_given_by_name_is_refused_with_a_hint(self, tmp_path: Path) -> None:
        path = tmp_path / "clients.jsonl"
        path.write_text("{}\n")
        with pytest.raises(AdapterError, match=r"expected one of persons\.jsonl"):
            AscAdapter([path])

    def test_a_missing_path_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(AdapterError, match="no such file or directory"):
            AscAdapter(tmp_path / "nowhere")

    def test_bad_rows_are_yielded_in_place(self, sample_asc: Path) -> None:
        errors = [r for r in AscAdapter(sample_asc).read() if isinstance(r, AdapterError)]
        assert [e.origin for e in errors] == ["services.jsonl:10"]


def record(record_id: str, **fields: Any) -> SourceRecord:
    return SourceRecord("asc", "person", record_id, None, {"person_id": record_id, **fields})


class TestFakeAdapter:
    def test_yields_records_and_errors_in_order(self) -> None:
        items: list[SourceRecord | AdapterError] = [
            record("A"),
            AdapterError("bad", origin="x:1"),
            record("B"),
        ]
        adapter: SourceAdapter = FakeAdapter(items)
        assert adapter.system == "fake"
        assert list(adapter.read()) == items

    def test_a_generator_can_be_read_twice(self) -> None:
        adapter = FakeAdapter(record(str(n)) for n in range(3))
        assert list(adapter.read()) == list(adapter.read())
        assert len(list(adapter.read())) == 3

    def test_can_stand_in_for_a_real_system(self) -> None:
        assert FakeAdapter([], system="asc").system == "asc"
