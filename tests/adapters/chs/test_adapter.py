"""ChsAdapter: a directory or a list of files as one SourceAdapter."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path
from typing import Any

from adapters.base import AdapterError, SourceAdapter, SourceRecord
from adapters.chs import ChsAdapter
from tests.adapters.chs.builders import ADT_FILE, EXTRACTS_DIR, SAMPLE


def as_adapter(adapter: SourceAdapter) -> SourceAdapter:
    """Return the adapter typed as the protocol (mypy checks ChsAdapter satisfies it)."""
    return adapter


class TestDirectory:
    def test_reads_the_whole_sample_batch_files_first(self, manifest: dict[str, Any]) -> None:
        adapter = as_adapter(ChsAdapter(SAMPLE / "chs"))
        assert adapter.system == "chs"
        items = list(adapter.read())
        chs_counts = {k: v for k, v in manifest["counts"].items() if k.startswith("chs/")}
        assert len(items) == sum(chs_counts.values())
        invalid = [
            r
            for r in manifest["invalid_rows"]
            if r["file"].startswith("chs/") and r["kind"] in ("truncated_json", "malformed_hl7")
        ]
        assert sum(isinstance(i, AdapterError) for i in items) == len(invalid)
        kinds = [i.kind for i in items if isinstance(i, SourceRecord)]
        first_extract = next(n for n, k in enumerate(kinds) if not k.startswith("adt_"))
        assert all(k.startswith("adt_") for k in kinds[:first_extract])
        assert not any(k.startswith("adt_") for k in kinds[first_extract:])
        counts = collections.Counter(kinds)
        assert counts["alert"] == chs_counts["chs/extracts/alerts.jsonl"]
        assert counts["referral"] == chs_counts["chs/extracts/referrals.jsonl"] - 2

    def test_the_file_order(self) -> None:
        files = ChsAdapter(SAMPLE / "chs").files
        assert [f.name for f in files] == [
            "adt-0001.hl7",
            "referrals.jsonl",
            "contacts.jsonl",
            "problems.jsonl",
            "key_professionals.jsonl",
            "alerts.jsonl",
        ]

    def test_an_unknown_jsonl_file_yields_an_error_other_files_are_ignored(
        self, tmp_path: Path
    ) -> None:
        shutil.copy(EXTRACTS_DIR / "alerts.jsonl", tmp_path / "alerts.jsonl")
        (tmp_path / "notes.jsonl").write_text("{}\n")
        (tmp_path / "README.txt").write_text("hello")
        adapter = ChsAdapter(tmp_path)
        assert adapter.skipped == (tmp_path / "README.txt",)
        items = list(adapter.read())
        errors = [i for i in items if isinstance(i, AdapterError)]
        assert len(errors) == 1
        assert "notes.jsonl" in errors[0].reason
        assert (errors[0].field, errors[0].origin) == ("file", "notes.jsonl")
        assert sum(isinstance(i, SourceRecord) for i in items) == 18


class TestFiles:
    def test_a_file_named_twice_is_read_once(self) -> None:
        adapter = ChsAdapter([EXTRACTS_DIR / "alerts.jsonl", EXTRACTS_DIR])
        assert [f.name for f in adapter.files].count("alerts.jsonl") == 1
        assert adapter.files[0].name == "alerts.jsonl"

    def test_named_files_in_the_order_given_bad_ones_reported(self, tmp_path: Path) -> None:
        other = tmp_path / "data.csv"
        other.write_text("a,b\n")
        adapter = ChsAdapter(
            [EXTRACTS_DIR / "alerts.jsonl", tmp_path / "missing.hl7", other, ADT_FILE]
        )
        items = list(adapter.read())
        errors = [i for i in items if isinstance(i, AdapterError)]
        assert "does not exist" in errors[0].reason
        assert "neither an HL7 batch file" in errors[1].reason
        records = [i for i in items if isinstance(i, SourceRecord)]
        assert records[0].kind == "alert"
        assert records[-1].kind.startswith("adt_")

    def test_strict_mode_reaches_the_batch_reader(self, tmp_path: Path) -> None:
        path = tmp_path / "one.hl7"
        # EVN after PID: tolerated, but out of place for the strict check.
        path.write_bytes(
            b"MSH|^~\\&|CHS|RXX|CB|CB|20250101||ADT^A28^ADT_A05|X1|P|2.4\r"
            b"PID|1||1^^^RXX^MR\rEVN|A28\rPV1|1|N"
        )
        assert isinstance(next(ChsAdapter(path).read()), SourceRecord)
        assert isinstance(next(ChsAdapter(path, strict=True).read()), AdapterError)
