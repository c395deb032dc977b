"""`carebridge mappings check` and `carebridge mappings preview`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from tests.mapping.helpers import SAMPLE, SHIPPED

runner = CliRunner()
NOW = ["--now", "2026-11-01T00:00:00+00:00"]


@pytest.fixture(autouse=True)
def _no_env_mappings_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CAREBRIDGE_MAPPINGS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read


class TestCheck:
    def test_shipped_directory_passes(self) -> None:
        result = runner.invoke(app, ["mappings", "check"])
        assert result.exit_code == 0, result.output
        assert re.search(r"ok\s+asc/person\s+1\.0\.0", result.output)
        assert re.search(r"ok\s+1\s+asc/person", result.output)
        assert result.output.rstrip().endswith("- OK")

    def test_broken_copy_fails_with_file_and_line(self, shipped_copy: Path) -> None:
        spec = shipped_copy / "asc" / "person.yaml"
        text = spec.read_text()
        assert "        transform: phone_to_telecom\n" in text
        spec.write_text(
            text.replace(
                "        transform: phone_to_telecom\n", "        tranform: phone_to_telecom\n", 1
            )
        )
        line = next(n for n, t in enumerate(spec.read_text().splitlines(), 1) if "tranform" in t)
        result = runner.invoke(app, ["mappings", "check", str(shipped_copy)])
        assert result.exit_code == 1
        assert (
            f"asc/person.yaml:{line}: resources[0].rules[4]: unknown key 'tranform'"
            in result.output
        )
        assert "(did you mean 'transform'?)" in result.output
        assert re.search(r"FAIL\s+asc/person", result.output)
        assert "not run: the spec asc/person has problems" in result.output
        assert result.output.rstrip().endswith("- FAILED")

    def test_a_wrong_expectation_fails_with_a_path_diff(self, shipped_copy: Path) -> None:
        case = shipped_copy / "cases" / "1.output.json"
        case.write_text(case.read_text().replace('"Dot"', '"Dottie"'))
        result = runner.invoke(app, ["mappings", "check", str(shipped_copy)])
        assert result.exit_code == 1
        assert '[0] Patient.name[1].given[0]: expected "Dottie", got "Dot"' in result.output

    def test_settings_name_the_directory(
        self, shipped_copy: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (shipped_copy / "codes" / "asc-gender.yaml").unlink()
        monkeypatch.setenv("CAREBRIDGE_MAPPINGS_DIR", str(shipped_copy))
        result = runner.invoke(app, ["mappings", "check"])
        assert result.exit_code == 1
        assert "no concept map 'asc-gender' in codes/" in result.output


class TestPreview:
    def test_one_record_prints_its_fhir(self) -> None:
        result = runner.invoke(
            app,
            ["mappings", "preview", "asc/person", str(SHIPPED / "cases" / "2.input.json"), *NOW],
        )
        assert result.exit_code == 0, result.output
        expected = json.loads((SHIPPED / "cases" / "2.output.json").read_text())
        assert json.loads(result.stdout) == expected

    @pytest.mark.parametrize("spec", ["chs/adt", "chs/adt_a03"])
    def test_a_spec_of_several_kinds_by_name_or_kind(self, spec: str) -> None:
        case = SHIPPED / "cases" / "102.input.json"
        result = runner.invoke(app, ["mappings", "preview", spec, str(case), *NOW])
        assert result.exit_code == 0, result.output
        expected = json.loads((SHIPPED / "cases" / "102.output.json").read_text())
        assert json.loads(result.stdout) == expected

    def test_a_record_of_a_kind_the_spec_does_not_map(self) -> None:
        case = SHIPPED / "cases" / "105.input.json"
        result = runner.invoke(app, ["mappings", "preview", "chs/adt", str(case), *NOW])
        assert result.exit_code == 1
        assert "chs/adt: the record is chs/referral, not chs/adt_a01|" in result.stderr

    def test_many_records_one_line_each_and_errors_by_line(self) -> None:
        problems = SAMPLE / "chs" / "extracts" / "problems.jsonl"
        result = runner.invoke(app, ["mappings", "preview", "chs/problem", str(problems), *NOW])
        assert result.exit_code == 1
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(lines) == 114
        assert lines[0]["line"] == 1
        assert lines[0]["resources"][0]["resourceType"] == "Condition"
        assert "line 89: error [BRIDGE-0600]: chs/problem rule onset" in result.stderr
        assert "115 records: 114 mapped (114 resources), 1 failed" in result.stderr

    def test_warnings_go_to_stderr(self) -> None:
        result = runner.invoke(
            app,
            [
                "mappings",
                "preview",
                "asc/assessment",
                str(SHIPPED / "cases" / "5.input.json"),
                *NOW,
            ],
        )
        assert result.exit_code == 0
        assert "warning: asc/assessment rule assessment-type" in result.stderr

    def test_an_edited_spec_file(self, shipped_copy: Path) -> None:
        spec = shipped_copy / "chs" / "problem.yaml"
        spec.write_text(spec.read_text().replace('version: "1.0.0"', 'version: "1.1.0"'))
        result = runner.invoke(
            app, ["mappings", "preview", str(spec), str(SHIPPED / "cases" / "7.input.json"), *NOW]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)[0]["meta"]["tag"][0]["version"] == "1.1.0"

    def test_errors(self, tmp_path: Path) -> None:
        record_file = SHIPPED / "cases" / "6.input.json"
        unknown = runner.invoke(app, ["mappings", "preview", "asc/nothing", str(record_file)])
        assert unknown.exit_code == 1
        assert "there is no mapping spec 'asc/nothing'" in unknown.output
        failed = runner.invoke(app, ["mappings", "preview", "asc/assessment", str(record_file)])
        assert failed.exit_code == 1
        assert "error [BRIDGE-0600]: asc/assessment rule status" in failed.stderr
        naive = runner.invoke(
            app,
            [
                "mappings",
                "preview",
                "asc/assessment",
                str(record_file),
                "--now",
                "2026-01-01T00:00",
            ],
        )
        assert naive.exit_code == 1
        assert "--now needs a UTC offset" in naive.output
        other = runner.invoke(
            app, ["mappings", "preview", "chs/problem", str(SHIPPED / "cases" / "1.input.json")]
        )
        assert other.exit_code == 1
        assert "the record is asc/person, not chs/problem" in other.stderr
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n")
        assert runner.invoke(app, ["mappings", "preview", "asc/person", str(empty)]).exit_code == 1

    def test_bad_json_lines_are_reported_by_line(self, tmp_path: Path) -> None:
        lines = tmp_path / "persons.jsonl"
        good = (SAMPLE / "asc" / "persons.jsonl").read_text().splitlines()[0]
        lines.write_text(good + "\n{not json\n")
        result = runner.invoke(app, ["mappings", "preview", "asc/person", str(lines), *NOW])
        assert result.exit_code == 1
        assert "line 2: error: not valid JSON" in result.stderr
        assert json.loads(result.stdout.splitlines()[0])["line"] == 1
