"""Tests for the synthetic data generator (bridge.synth)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from bridge.core.nhs_number import is_valid
from bridge.synth import INVALID_KINDS, GenerationSummary, generate
from bridge.synth.hl7 import esc

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "examples" / "sample"
SAMPLE_ARGS: dict[str, Any] = {"persons": 50, "seed": 2026, "as_of": date(2026, 11, 1)}
JSONL_NAMES = (
    "truth.jsonl",
    "chs/extracts/referrals.jsonl",
    "chs/extracts/contacts.jsonl",
    "chs/extracts/problems.jsonl",
    "chs/extracts/key_professionals.jsonl",
    "chs/extracts/alerts.jsonl",
    "asc/persons.jsonl",
    "asc/contacts.jsonl",
    "asc/assessments.jsonl",
    "asc/services.jsonl",
    "asc/allocations.jsonl",
    "asc/carers.jsonl",
    "asc/consents.jsonl",
    "asc/safeguarding.jsonl",
)


@dataclass
class Run:
    """One generated directory and what the tests read back from it."""

    root: Path
    summary: GenerationSummary
    manifest: dict[str, Any]
    _parsed: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)

    @property
    def invalid(self) -> set[tuple[str, int]]:
        return {(r["file"], r["line"]) for r in self.manifest["invalid_rows"]}

    def lines(self, rel: str) -> list[str]:
        """Return the lines of a file without their terminator (bytes decoded, CR kept)."""
        text = (self.root / rel).read_bytes().decode("utf-8")
        assert text == "" or text.endswith("\n")
        return text.split("\n")[:-1]

    def records(self, rel: str) -> list[tuple[int, dict[str, Any]]]:
        """Return (line number, record) for every line not listed as invalid."""
        if rel not in self._parsed:
            invalid = self.invalid
            self._parsed[rel] = [
                (n, json.loads(line))
                for n, line in enumerate(self.lines(rel), 1)
                if (rel, n) not in invalid
            ]
        return self._parsed[rel]

    def messages(self) -> list[tuple[str, int, str]]:
        """Return (file, line, message) for every ADT message, in file order."""
        out = []
        for path in sorted((self.root / "chs" / "adt").glob("adt-*.hl7")):
            rel = path.relative_to(self.root).as_posix()
            out += [(rel, n, m) for n, m in enumerate(self.lines(rel), 1)]
        return out

    def valid_messages(self) -> list[str]:
        return [m for rel, n, m in self.messages() if (rel, n) not in self.invalid]


def _run(root: Path, **kwargs: Any) -> Run:
    summary = generate(root, **kwargs)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    return Run(root, summary, manifest)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".gitattributes"
    }


def _fields(segment: str) -> list[str]:
    return segment.split("|")


def _segments(message: str) -> dict[str, list[str]]:
    return {s[:3]: _fields(s) for s in message.split("\r")}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The committed sample's parameters, regenerated."""
    return _run(tmp_path_factory.mktemp("sample"), **SAMPLE_ARGS)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A 2,000-person run, large enough for proportions and several HL7 batch files."""
    return _run(tmp_path_factory.mktemp("large"), persons=2000, seed=99)


class TestCommittedSample:
    def test_regenerating_matches_examples_sample_byte_for_byte(self, sample: Run) -> None:
        expected = _tree(SAMPLE)
        assert expected, f"no committed sample under {SAMPLE}"
        actual = _tree(sample.root)
        assert sorted(actual) == sorted(expected)
        changed = [rel for rel in expected if actual[rel] != expected[rel]]
        assert changed == [], "regenerate examples/sample (see docs/synthetic-data.md)"

    def test_sample_has_every_kind_of_invalid_row(self, sample: Run) -> None:
        kinds = {r["kind"] for r in sample.manifest["invalid_rows"]}
        assert kinds == set(INVALID_KINDS)

    def test_sample_has_every_adt_event(self, sample: Run) -> None:
        events = {_segments(m)["MSH"][8].split("^")[1] for m in sample.valid_messages()}
        assert events >= {"A01", "A02", "A03", "A08", "A28", "A31", "A40"}


class TestDeterminism:
    def test_same_seed_gives_identical_files(self, tmp_path: Path) -> None:
        generate(tmp_path / "a", persons=150, seed=7)
        generate(tmp_path / "b", persons=150, seed=7)
        assert _tree(tmp_path / "a") == _tree(tmp_path / "b")

    def test_different_seed_gives_different_files(self, tmp_path: Path) -> None:
        generate(tmp_path / "a", persons=150, seed=7)
        generate(tmp_path / "b", persons=150, seed=8)
        a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
        assert a["truth.jsonl"] != b["truth.jsonl"]
        assert a["asc/persons.jsonl"] != b["asc/persons.jsonl"]

    def test_different_as_of_moves_every_date(self, tmp_path: Path) -> None:
        run = _run(tmp_path, persons=100, seed=7, as_of=date(2024, 3, 1))
        for rel in ("chs/extracts/referrals.jsonl", "asc/contacts.jsonl"):
            for _, rec in run.records(rel):
                assert rec["updated_at"] < "2024-03-01"

    def test_rerun_into_same_directory_leaves_no_stale_batches(self, tmp_path: Path) -> None:
        generate(tmp_path, persons=700, seed=1)
        assert (tmp_path / "chs/adt/adt-0002.hl7").exists()
        (tmp_path / "notes.txt").write_text("kept")
        generate(tmp_path, persons=20, seed=1)
        assert sorted(p.name for p in (tmp_path / "chs/adt").iterdir()) == ["adt-0001.hl7"]
        assert (tmp_path / "notes.txt").read_text() == "kept"
        assert not (tmp_path / ".synth-tmp").exists()

    def test_rejects_a_population_out_of_range(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="persons"):
            generate(tmp_path, persons=0, seed=1)


class TestNhsNumbers:
    def test_every_nhs_number_is_a_valid_999_test_number(self, large: Run) -> None:
        seen = 0
        for rel in JSONL_NAMES:
            for _, rec in large.records(rel):
                nhs = rec.get("nhs_number")
                if nhs is not None:
                    assert is_valid(nhs), (rel, rec)
                    assert nhs.startswith("999"), (rel, rec)
                    seen += 1
        for message in large.valid_messages():
            for cx in _segments(message)["PID"][3].split("~"):
                parts = cx.split("^")
                if parts[4] == "NH":
                    assert is_valid(parts[0]), cx
                    assert parts[0].startswith("999"), cx
                    seen += 1
        assert seen > 5000

    def test_listed_bad_nhs_numbers_fail_the_checksum(self, large: Run) -> None:
        bad = [r for r in large.manifest["invalid_rows"] if r["kind"] == "nhs_number_checksum"]
        assert bad
        persons = large.lines("asc/persons.jsonl")
        for row in bad:
            nhs = json.loads(persons[row["line"] - 1])["nhs_number"]
            assert nhs.startswith("999")
            assert not is_valid(nhs)

    def test_every_chs_person_has_a_number_with_a_status(self, large: Run) -> None:
        for message in large.valid_messages():
            pid = _segments(message)["PID"]
            if "MRG" not in message and "^NH" not in pid[3]:
                # Only the hurried duplicate registrations later merged by A40 lack one.
                assert pid[32] == "03"
            assert pid[32] in ("01", "02", "03")


class TestPopulation:
    def test_systems_know_about_70_15_15_percent(self, large: Run) -> None:
        truth = [rec for _, rec in large.records("truth.jsonl")]
        both = sum(1 for t in truth if t["chs_patient_id"] and t["asc_person_id"])
        chs_only = sum(1 for t in truth if t["chs_patient_id"] and not t["asc_person_id"])
        asc_only = sum(1 for t in truth if t["asc_person_id"] and not t["chs_patient_id"])
        assert both + chs_only + asc_only == len(truth) == 2000
        assert abs(both / 2000 - 0.70) <= 0.05
        assert abs(chs_only / 2000 - 0.15) <= 0.05
        assert abs(asc_only / 2000 - 0.15) <= 0.05

    def test_about_15_percent_of_social_care_persons_have_no_nhs_number(self, large: Run) -> None:
        persons = [rec for _, rec in large.records("asc/persons.jsonl")]
        missing = sum(1 for p in persons if p["nhs_number"] is None)
        assert abs(missing / len(persons) - 0.15) <= 0.05

    def test_most_social_care_persons_are_65_or_over(self, large: Run) -> None:
        persons = [rec for _, rec in large.records("asc/persons.jsonl")]
        older = sum(1 for p in persons if date.fromisoformat(p["date_of_birth"]).year <= 1960)
        assert older / len(persons) > 0.5

    def test_every_kind_of_discrepancy_occurs(self, large: Run) -> None:
        kinds = Counter(d for _, t in large.records("truth.jsonl") for d in t["discrepancies"])
        assert set(kinds) == {
            "nickname",
            "missing_middle_name",
            "double_barrelled_variant",
            "family_name_typo",
            "dob_day_month_swap",
            "address_moved",
        }

    def test_about_one_percent_of_rows_are_invalid(self, large: Run) -> None:
        rows = sum(large.manifest["counts"].values())
        assert 0.004 < len(large.manifest["invalid_rows"]) / rows < 0.02


class TestHl7:
    def test_every_listed_valid_message_parses_with_hl7apy(self, sample: Run) -> None:
        for message in sample.valid_messages():
            parsed = parse_message(message, find_groups=False)
            assert parsed.msh.msh_12.value == "2.4"
            assert parsed.pid.pid_3.value

    def test_the_listed_malformed_message_does_not_parse(self, sample: Run) -> None:
        bad = [(r["file"], r["line"]) for r in sample.manifest["invalid_rows"]]
        broken = [m for rel, n, m in sample.messages() if (rel, n) in bad]
        assert broken
        for message in broken:
            with pytest.raises(HL7apyException):
                parse_message(message, find_groups=False)

    def test_control_ids_are_unique(self, large: Run) -> None:
        ids = [_segments(m)["MSH"][9] for m in large.valid_messages()]
        assert len(ids) == len(set(ids)) > 1000

    def test_messages_are_in_chronological_order(self, large: Run) -> None:
        times = [
            datetime.strptime(_segments(m)["MSH"][6], "%Y%m%d%H%M%S%z")
            for m in large.valid_messages()
        ]
        assert times == sorted(times)
        assert times[-1] < datetime.fromisoformat("2026-11-01T00:00:00+00:00")

    def test_batches_hold_at_most_1000_messages(self, large: Run) -> None:
        counts = {k: v for k, v in large.manifest["counts"].items() if k.startswith("chs/adt/")}
        assert len(counts) > 1
        assert all(n <= 1000 for n in counts.values())
        assert sum(counts.values()) == len(large.messages())

    def test_merges_name_a_duplicate_registered_earlier(self, large: Run) -> None:
        registered: set[str] = set()
        merges = 0
        for message in large.valid_messages():
            seg = _segments(message)
            mrns = [cx.split("^")[0] for cx in seg["PID"][3].split("~") if cx.endswith("^MR")]
            if "MRG" in seg:
                assert seg["MRG"][1].split("^")[0] in registered
                merges += 1
            registered.update(mrns)
        assert merges > 10

    def test_discharges_follow_their_admissions(self, large: Run) -> None:
        admitted: set[str] = set()
        for message in large.valid_messages():
            seg = _segments(message)
            event = seg["MSH"][8].split("^")[1]
            if event == "A01":
                admitted.add(seg["PV1"][19])
            elif event in ("A02", "A03", "A08"):
                assert seg["PV1"][19] in admitted

    def test_escape_replaces_every_delimiter(self) -> None:
        assert esc("Dr Patel & Partners") == "Dr Patel \\T\\ Partners"
        assert esc("a|b^c~d\\e") == "a\\F\\b\\S\\c\\R\\d\\E\\e"


class TestJsonLines:
    def test_every_unlisted_line_parses_and_listed_ones_are_wrong(self, large: Run) -> None:
        listed = {(r["file"], r["line"]): r for r in large.manifest["invalid_rows"]}
        for rel in JSONL_NAMES:
            for n, line in enumerate(large.lines(rel), 1):
                row = listed.get((rel, n))
                if row is None or row["kind"] != "truncated_json":
                    rec = json.loads(line)
                    assert list(rec) == list(json.loads(line))
                    assert line == json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
                else:
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(line)
                if row is not None and row["kind"] == "invalid_date":
                    with pytest.raises(ValueError, match="Invalid isoformat"):
                        date.fromisoformat(json.loads(line)[row["field"]])

    def test_every_record_has_an_id_and_an_updated_at_with_offset(self, large: Run) -> None:
        for rel in JSONL_NAMES[1:]:
            ids = []
            for _, rec in large.records(rel):
                ids.append(next(iter(rec.values())))
                stamp = datetime.fromisoformat(rec["updated_at"])
                assert stamp.utcoffset() is not None
                assert rec["updated_at"][-6:] in ("+00:00", "+01:00")
                if "contact_time" in rec:
                    assert datetime.fromisoformat(rec["contact_time"]) <= stamp
            assert len(ids) == len(set(ids)), rel

    def test_counts_match_the_files(self, large: Run) -> None:
        for rel, n in large.manifest["counts"].items():
            assert len(large.lines(rel)) == n, rel
        assert large.summary.counts == large.manifest["counts"]


class TestTruth:
    def test_truth_ids_appear_in_the_source_files(self, large: Run) -> None:
        # Person rows are never truncated (only their NHS number may be spoiled): read them all.
        asc_ids = {json.loads(line)["person_id"] for line in large.lines("asc/persons.jsonl")}
        chs_ids: set[str] = set()
        for message in large.valid_messages():
            for cx in _segments(message)["PID"][3].split("~"):
                if cx.endswith("^MR"):
                    chs_ids.add(cx.split("^")[0])
        for _, t in large.records("truth.jsonl"):
            if t["asc_person_id"]:
                assert t["asc_person_id"] in asc_ids
            if t["chs_patient_id"]:
                assert t["chs_patient_id"] in chs_ids
            assert set(t["chs_merged_patient_ids"]) <= chs_ids

    def test_copies_differ_exactly_where_truth_says(self, large: Run) -> None:
        latest: dict[str, list[str]] = {}
        spoiled: set[str] = set()
        for rel, n, message in large.messages():
            segment = next(s for s in message.split("\r") if s[:4] in ("PID|", "P1D|"))
            fields = _fields(segment)
            mrn = next(cx.split("^")[0] for cx in fields[3].split("~") if cx.endswith("^MR"))
            if (rel, n) in large.invalid:
                spoiled.add(mrn)
            latest[mrn] = fields
        persons = {
            rec["person_id"]: rec
            for rec in (json.loads(line) for line in large.lines("asc/persons.jsonl"))
        }
        compared = 0
        for _, t in large.records("truth.jsonl"):
            if not (t["chs_patient_id"] and t["asc_person_id"]):
                assert t["discrepancies"] == []
                continue
            if t["chs_patient_id"] in spoiled:
                continue
            pid, asc = latest[t["chs_patient_id"]], persons[t["asc_person_id"]]
            family, given, *rest = [*pid[5].split("~")[0].split("^"), ""]
            chs_copy = (family, given, rest[0] or None, pid[7], pid[11].split("^")[4])
            asc_dob = asc["date_of_birth"].replace("-", "")
            asc_copy = (
                asc["family_name"],
                asc["given_name"],
                asc["middle_names"],
                asc_dob,
                asc["postcode"],
            )
            if t["discrepancies"]:
                assert chs_copy != asc_copy, t
            else:
                assert chs_copy == asc_copy, t
                compared += 1
        assert compared > 500

    def test_extracts_point_at_known_patients_and_persons(self, large: Run) -> None:
        truth = [t for _, t in large.records("truth.jsonl")]
        chs = {t["chs_patient_id"] for t in truth}
        asc = {t["asc_person_id"] for t in truth}
        for rel in JSONL_NAMES[1:6]:
            assert {rec["patient_id"] for _, rec in large.records(rel)} <= chs, rel
        for rel in JSONL_NAMES[6:]:
            assert {rec["person_id"] for _, rec in large.records(rel)} <= asc, rel


class TestSummary:
    def test_table_lists_files_and_invalid_rows(self, sample: Run) -> None:
        table = sample.summary.as_table()
        assert "asc/persons.jsonl" in table
        assert "chs/adt/adt-*.hl7 (1 files)" in table
        assert f"invalid on purpose: {len(sample.summary.invalid_rows)} rows" in table

    def test_manifest_records_the_parameters(self, sample: Run) -> None:
        m = sample.manifest
        assert (m["seed"], m["persons"], m["as_of"]) == (2026, 50, "2026-11-01")
        assert m["hl7"]["version"] == "2.4"
