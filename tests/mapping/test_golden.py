"""Every golden case in mappings/cases: hand-written expected FHIR, compared path by path."""

from __future__ import annotations

import json

import pytest

from bridge.mapping import Mappings
from bridge.mapping.cases import _case_names, json_diff, resources_diff, run_case
from tests.fixtures.schema import assert_fhir_r4
from tests.mapping.helpers import SHIPPED

CASES = SHIPPED / "cases"
NAMES = _case_names(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_golden_case(shipped: Mappings, name: str) -> None:
    result = run_case(shipped, CASES, name)
    assert result.passed, f"case {name} ({result.spec}):\n  " + "\n  ".join(result.differences)


@pytest.mark.parametrize("name", [n for n in NAMES if (CASES / f"{n}.output.json").exists()])
def test_expected_output_is_valid_fhir(name: str) -> None:
    for resource in json.loads((CASES / f"{name}.output.json").read_text()):
        assert_fhir_r4(resource)


class TestCoverage:
    def test_every_spec_has_two_cases_or_more(self, shipped: Mappings) -> None:
        counts = dict.fromkeys(shipped.by_name, 0)
        for name in NAMES:
            data = json.loads((CASES / f"{name}.input.json").read_text())
            counts[shipped.specs[(data["system"], data["kind"])].name] += 1
        assert min(counts.values()) >= 2, counts

    def test_cases_include_warnings_errors_and_labels(self, shipped: Mappings) -> None:
        results = [run_case(shipped, CASES, n) for n in NAMES]
        assert any(r.warnings for r in results), "a case with an unmapped code"
        assert any(r.expects_error for r in results), "a case expecting a MappingError"
        outputs = [
            (CASES / f"{n}.output.json").read_text()
            for n in NAMES
            if (CASES / f"{n}.output.json").exists()
        ]
        assert any('"security"' in text for text in outputs), "a case with a security label"


class TestDiff:
    def test_path_level_differences(self) -> None:
        expected = [{"resourceType": "Patient", "name": [{"given": ["A", "B"]}], "gender": "male"}]
        actual = [
            {"resourceType": "Patient", "name": [{"given": ["A"]}], "birthDate": "2000-01-01"},
            {"resourceType": "Patient", "id": "x"},
        ]
        assert resources_diff(expected, actual) == [
            '[0] Patient.name[0].given[1]: missing (expected "B")',
            '[0] Patient.gender: missing (expected "male")',
            '[0] Patient.birthDate: unexpected "2000-01-01"',
            "[1] Patient: unexpected (id x)",
        ]

    def test_type_differences_count(self) -> None:
        assert json_diff({"a": 1}, {"a": True}) == ["a: expected 1, got true"]
        assert json_diff([1], [1]) == []
