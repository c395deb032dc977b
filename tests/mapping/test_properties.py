"""For any JSON-shaped input, every spec returns valid resources or a MappingError with a field."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import SourceRecord
from adapters.chs import ChsAdapter
from bridge.core.errors import MappingError
from bridge.core.ids import stable_id
from bridge.mapping import Mappings
from tests.mapping.helpers import NOW, SAMPLE, record, sample_records, schema_problems

SAMPLES = {
    "asc/person": ("asc/persons.jsonl", "person_id"),
    "asc/assessment": ("asc/assessments.jsonl", "assessment_id"),
    "chs/problem": ("chs/extracts/problems.jsonl", "problem_id"),
    "chs/referral": ("chs/extracts/referrals.jsonl", "referral_id"),
    "chs/contact": ("chs/extracts/contacts.jsonl", "contact_id"),
    "chs/key_professional": ("chs/extracts/key_professionals.jsonl", "key_professional_id"),
    "chs/alert": ("chs/extracts/alerts.jsonl", "alert_id"),
}
SPECS = tuple(SAMPLES)
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


def check(shipped: Mappings, name: str, fields: dict[str, Any], kind: str | None = None) -> None:
    """Map; the outcome must be valid FHIR or a MappingError naming a field."""
    spec = shipped.spec(name)
    rec = record(fields, system=spec.system, kind=kind or spec.kind)
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
    first = next(r for _, r in sample_records(rel, *name.split("/"), id_field) if r is not None)
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


@cache
def _adt_messages() -> list[SourceRecord]:
    return [r for r in ChsAdapter([SAMPLE / "chs" / "adt"]).read() if isinstance(r, SourceRecord)]


# What a sender could put where the spec expects HL7 text: other text, codes from other
# tables, numbers, lists, objects, nothing.
HL7_VALUES = JSON | st.sampled_from(
    ["MR", "NH", "N", "I", "A08", "A13", "CP", "Internet", "ZZ", "20240230", "2024", "R296"]
)


class TestAnyHl7Message:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_sample_message_with_parts_replaced(
        self, shipped: Mappings, data: st.DataObject
    ) -> None:
        message = data.draw(st.sampled_from(_adt_messages()))
        fields = copy.deepcopy(dict(message.fields))
        for _ in range(data.draw(st.integers(1, 4))):
            segment = data.draw(st.sampled_from(sorted(fields)))
            target = fields[segment]
            if isinstance(target, list) and target:
                target = target[data.draw(st.integers(0, len(target) - 1))]
            if not isinstance(target, dict) or not target:
                fields[segment] = data.draw(HL7_VALUES)
                continue
            position = data.draw(st.sampled_from(sorted(target)))
            field_value = target[position]
            depth = data.draw(st.integers(0, 2))
            if depth == 0 or not isinstance(field_value, list) or not field_value:
                target[position] = data.draw(HL7_VALUES)
                continue
            repetition = field_value[data.draw(st.integers(0, len(field_value) - 1))]
            if depth == 1 or not isinstance(repetition, dict) or not repetition:
                field_value[0] = data.draw(HL7_VALUES)
                continue
            component = data.draw(st.sampled_from(sorted(repetition)))
            repetition[component] = data.draw(HL7_VALUES)
        check(shipped, "chs/adt", fields, kind=message.kind)
