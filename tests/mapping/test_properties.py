"""For any JSON-shaped input, every spec returns valid resources or a MappingError with a field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.core.errors import MappingError
from bridge.core.ids import stable_id
from bridge.mapping import Mappings
from tests.mapping.helpers import NOW, record, sample_records, schema_problems

SPECS = ("asc/person", "asc/assessment", "chs/problem")
SAMPLES = {
    "asc/person": ("asc/persons.jsonl", "person_id"),
    "asc/assessment": ("asc/assessments.jsonl", "assessment_id"),
    "chs/problem": ("chs/extracts/problems.jsonl", "problem_id"),
}
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    # Values a source could plausibly send, so mapping gets past its first checks.
    | st.sampled_from(
        [
            "2026-01-01",
            "1950-02-29",
            "31/02/2026",
            "9434765919",
            "943 476 5918",
            "Male",
            "Not known",
            "completed",
            "in_progress",
            "mental_health",
            "physical",
            "AT01",
            "ZZ57",
            "face_to_face",
            "en",
            "managing_toilet_needs",
            "0113 496 0000",
            "LS11 8AS",
            " ",
            "\u00a0",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def check(shipped: Mappings, name: str, fields: dict[str, Any]) -> None:
    """Map; the outcome must be valid FHIR or a MappingError naming a field."""
    spec = shipped.spec(name)
    rec = record(fields, system=spec.system, kind=spec.kind)
    try:
        result = spec.map(rec, now=NOW)
    except MappingError as error:
        failure: MappingError | None = error
    else:
        failure = None
    if failure is not None:
        assert failure.spec == name
        assert failure.field, failure.detail
        assert failure.source_field, failure.detail
        assert "unexpectedly" not in failure.detail, failure.detail
        return
    for mapped in result.resources:
        assert schema_problems(mapped.resource) == [], mapped.resource
        assert mapped.id == stable_id(*mapped.key)
        assert mapped.resource["meta"]["tag"][0]["code"] == name


def _declared(shipped: Mappings, name: str) -> list[str]:
    rel, id_field = SAMPLES[name]
    _, first = sample_records(rel, *name.split("/"), id_field)[0]
    return list(first.fields)


@pytest.mark.parametrize("name", SPECS)
class TestAnyInput:
    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_arbitrary_fields(self, shipped: Mappings, name: str, data: st.DataObject) -> None:
        names = _declared(shipped, name)
        fields = data.draw(
            st.dictionaries(st.sampled_from([*names, "extra"]), JSON, max_size=len(names))
        )
        check(shipped, name, fields)

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_sample_record_with_fields_replaced(
        self, shipped: Mappings, name: str, data: st.DataObject
    ) -> None:
        rel, id_field = SAMPLES[name]
        rows = [r for _, r in sample_records(rel, *name.split("/"), id_field) if r is not None]
        base = dict(data.draw(st.sampled_from(rows)).fields)
        changes = data.draw(st.dictionaries(st.sampled_from(sorted(base)), JSON, max_size=4))
        check(shipped, name, {**base, **changes})
