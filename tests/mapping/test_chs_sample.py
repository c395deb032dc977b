"""The community health specs on every record of the committed sample (examples/sample/chs).

Every record the CHS adapter reads maps to resources valid against HL7's FHIR R4 schema,
unless it is one of the rows the generator spoils on purpose (manifest.json): those fail in
the adapter (malformed HL7, truncated JSON), fail mapping with a MappingError naming the
spoiled field, or are kept as text with a warning naming it where the concept map says so.
The counts per resource type are what the sample implies, worked out from the source
fields and truth.jsonl rather than from the specs.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from typing import Any

import pytest

from adapters.base import AdapterError, SourceRecord
from adapters.chs import ChsAdapter
from bridge.core.errors import MappingError
from bridge.core.ids import stable_id
from bridge.mapping import MappedResource, Mappings, MappingWarning
from tests.fixtures.schema import assert_fhir_r4
from tests.mapping.helpers import NOW, SAMPLE, schema_problems

MANIFEST = json.loads((SAMPLE / "manifest.json").read_text())
TRUTH = [json.loads(line) for line in (SAMPLE / "truth.jsonl").read_text().splitlines()]
# Spoiled rows by (file name, line): the adapter's origin is "<file name>:<line>".
SPOILED = {
    (PurePosixPath(row["file"]).name, row["line"]): row
    for row in MANIFEST["invalid_rows"]
    if row["file"].startswith("chs/")
}
VISIT_KINDS = {f"adt_a{n}" for n in ("01", "02", "03", "04", "05", "08", "11", "13")}


@dataclass
class SampleRun:
    """What mapping the whole sample gave."""

    records: list[SourceRecord] = field(default_factory=list)
    adapter_errors: list[AdapterError] = field(default_factory=list)
    mapping_errors: dict[str, MappingError] = field(default_factory=dict)  # by origin
    warnings: dict[str, tuple[MappingWarning, ...]] = field(default_factory=dict)  # by origin
    resources: list[tuple[SourceRecord, MappedResource]] = field(default_factory=list)


@cache
def run_sample() -> SampleRun:
    # Loaded here, not from the session fixture: @cache keeps one run for every test.
    mappings = Mappings.load()
    run = SampleRun()
    for item in ChsAdapter([SAMPLE / "chs"]).read():
        if isinstance(item, AdapterError):
            run.adapter_errors.append(item)
            continue
        run.records.append(item)
        try:
            result = mappings.map(item, now=NOW)
        except MappingError as exc:
            run.mapping_errors[item.origin] = exc
            continue
        if result.warnings:
            run.warnings[item.origin] = result.warnings
        run.resources.extend((item, mapped) for mapped in result.resources)
    return run


def spoiled(origin: str) -> dict[str, Any] | None:
    name, _, line = origin.rpartition(":")
    return SPOILED.get((name, int(line)))


def keys(rtype: str, kind: str) -> set[str]:
    return {
        m.key[2] for _, m in run_sample().resources if m.resource_type == rtype and m.key[1] == kind
    }


def pid_mrn(record: SourceRecord) -> str:
    return next(cx["1"] for cx in record.fields["PID"]["3"] if cx.get("5") == "MR")


def adt(kinds: set[str] | None = None) -> list[SourceRecord]:
    return [
        r
        for r in run_sample().records
        if r.kind.startswith("adt_") and (kinds is None or r.kind in kinds)
    ]


class TestEveryRecord:
    def test_every_record_maps_or_is_a_spoiled_row(self) -> None:
        run = run_sample()
        assert len(run.records) + len(run.adapter_errors) == sum(
            count for path, count in MANIFEST["counts"].items() if path.startswith("chs/")
        )
        unexpected = {o: str(e) for o, e in run.mapping_errors.items() if spoiled(o) is None}
        assert unexpected == {}

    def test_every_resource_is_valid_fhir_r4(self) -> None:
        run = run_sample()
        assert len(run.resources) > 700
        checked: set[tuple[str, str]] = set()
        for record, mapped in run.resources:
            # The whole official schema once per kind of record and resource; for the rest
            # its definition of the one resource type (the same rules, much faster).
            if (record.kind, mapped.resource_type) not in checked:
                checked.add((record.kind, mapped.resource_type))
                assert_fhir_r4(mapped.resource)
            assert schema_problems(mapped.resource) == [], mapped.key
            assert mapped.id == stable_id(*mapped.key)

    def test_every_record_kind_has_a_spec(self) -> None:
        kinds = {r.kind for r in run_sample().records}
        assert kinds >= {"adt_a01", "adt_a02", "adt_a03", "adt_a08", "adt_a28", "adt_a31"}
        assert kinds >= {"adt_a40", "referral", "contact", "key_professional", "alert"}
        mappings = Mappings.load()
        assert all(("chs", kind) in mappings.specs for kind in kinds)

    def test_only_spoiled_rows_warn(self) -> None:
        for origin, warnings in run_sample().warnings.items():
            row = spoiled(origin)
            assert row is not None, f"{origin}: {[str(w) for w in warnings]}"
            assert [w.field for w in warnings] == [row["field"]]


class TestSpoiledRows:
    @pytest.mark.parametrize("where", sorted(SPOILED), ids=lambda w: f"{w[0]}:{w[1]}")
    def test_each_spoiled_row_is_stopped_or_flagged(self, where: tuple[str, int]) -> None:
        row = SPOILED[where]
        origin = f"{where[0]}:{where[1]}"
        run = run_sample()
        if row["kind"] in ("malformed_hl7", "truncated_json"):
            errors = [e for e in run.adapter_errors if e.origin == origin]
            assert len(errors) == 1
            if row["field"]:
                assert errors[0].field == row["field"]
        elif origin in run.mapping_errors:
            error = run.mapping_errors[origin]
            assert error.source_field == row["field"]
            assert error.extra["rule"]
        else:
            # The map keeps an unknown code as text (with the record's own description).
            assert row["kind"] == "unknown_local_code"
            assert [w.field for w in run.warnings[origin]] == [row["field"]]
            assert "kept as text" in run.warnings[origin][0].message

    def test_unknown_contact_types_fail_but_referral_reasons_are_kept(self) -> None:
        run = run_sample()
        failed = {spoiled(o)["field"] for o in run.mapping_errors}  # type: ignore[index]
        assert failed == {"contact_type_code", "contact_time", "start_date", "onset_date"}
        assert {w[0].field for w in run.warnings.values()} == {"reason_code"}


class TestCounts:
    def test_one_patient_per_mrn_the_sample_knows(self) -> None:
        survivors = {p["chs_patient_id"] for p in TRUTH if p["chs_patient_id"]}
        merged = {m for p in TRUTH for m in p["chs_merged_patient_ids"]}
        assert keys("Patient", "patient") == survivors | merged
        assert {pid_mrn(r) for r in adt()} == survivors | merged

    def test_each_merge_retires_the_duplicate(self) -> None:
        merges = adt({"adt_a40"})
        assert len(merges) == sum(len(p["chs_merged_patient_ids"]) for p in TRUTH) == 2
        by_id = {m.id: m for _, m in run_sample().resources}
        for record in merges:
            retired_mrn = record.fields["MRG"]["1"][0]["1"]
            retired = by_id[stable_id("chs", "patient", retired_mrn)].resource
            survivor = stable_id("chs", "patient", pid_mrn(record))
            assert retired["active"] is False
            assert retired["link"] == [
                {"other": {"reference": f"Patient/{survivor}"}, "type": "replaced-by"}
            ]
            truth = next(p for p in TRUTH if retired_mrn in p["chs_merged_patient_ids"])
            assert truth["chs_patient_id"] == pid_mrn(record)

    def test_one_encounter_per_visit_number(self) -> None:
        visits = {
            r.fields["PV1"]["19"][0]["1"]
            for r in adt(VISIT_KINDS)
            if r.fields["PV1"]["2"][0]["1"] != "N"
        }
        assert len(visits) > 10
        assert keys("Encounter", "visit") == visits
        person_events = adt({"adt_a28", "adt_a31", "adt_a40"})
        assert all("19" not in r.fields.get("PV1", {}) for r in person_events)

    def test_discharged_stays_are_finished(self) -> None:
        run = run_sample()
        last: dict[str, dict[str, Any]] = {}
        for _, mapped in run.resources:  # in message order: the last version wins
            if mapped.key[1] == "visit":
                last[mapped.key[2]] = mapped.resource
        discharged = {r.fields["PV1"]["19"][0]["1"] for r in adt({"adt_a03"})}
        for visit, encounter in last.items():
            assert (encounter["status"] == "finished") is (visit in discharged)
            assert ("end" in encounter["period"]) is (visit in discharged)

    def test_one_condition_per_visit_and_diagnosis_code(self) -> None:
        diagnoses = {
            f"{r.fields['PV1']['19'][0]['1']}:{dg['3'][0]['1']}"
            for r in adt(VISIT_KINDS)
            for dg in r.fields.get("DG1", [])
        }
        assert diagnoses
        assert keys("Condition", "diagnosis") == diagnoses

    def test_one_related_person_per_next_of_kin(self) -> None:
        kin = {f"{pid_mrn(r)}:{nk1['1'][0]['1']}" for r in adt() for nk1 in r.fields.get("NK1", [])}
        assert kin
        assert keys("RelatedPerson", "next-of-kin") == kin

    @pytest.mark.parametrize(
        ("rtype", "kind", "file"),
        [
            ("ServiceRequest", "referral", "referrals.jsonl"),
            ("Encounter", "contact", "contacts.jsonl"),
            ("CareTeam", "key-professional", "key_professionals.jsonl"),
            ("Flag", "alert", "alerts.jsonl"),
            ("Condition", "problem", "problems.jsonl"),
        ],
    )
    def test_one_resource_per_extract_row_that_maps(self, rtype: str, kind: str, file: str) -> None:
        rows = MANIFEST["counts"][f"chs/extracts/{file}"]
        stopped = sum(
            1
            for (name, _), row in SPOILED.items()
            if name == file and row["kind"] != "unknown_local_code"
        ) + sum(
            1
            for o in run_sample().mapping_errors
            if o.startswith(f"{file}:") and spoiled(o)["kind"] == "unknown_local_code"  # type: ignore[index]
        )
        assert len(keys(rtype, kind)) == rows - stopped

    def test_resource_totals(self) -> None:
        totals = Counter(m.resource_type for _, m in run_sample().resources)
        assert set(totals) == {
            "Patient",
            "Encounter",
            "Condition",
            "RelatedPerson",
            "ServiceRequest",
            "CareTeam",
            "Flag",
        }


class TestLinks:
    def test_every_patient_reference_resolves_to_a_patient_the_adt_made(self) -> None:
        patients = {stable_id("chs", "patient", mrn) for mrn in keys("Patient", "patient")}
        refs: dict[str, int] = defaultdict(int)
        for _, mapped in run_sample().resources:
            resource = mapped.resource
            for name in ("subject", "patient"):
                ref = resource.get(name, {}).get("reference", "")
                if ref.startswith("Patient/"):
                    refs[name] += 1
                    assert ref.removeprefix("Patient/") in patients, (mapped.key, ref)
        assert refs["subject"] > 500
        assert refs["patient"] > 10

    def test_contacts_point_at_their_referral(self) -> None:
        referrals = {stable_id("chs", "referral", r) for r in keys("ServiceRequest", "referral")}
        based_on = [
            m.resource["basedOn"][0]["reference"].removeprefix("ServiceRequest/")
            for _, m in run_sample().resources
            if m.key[1] == "contact"
        ]
        # Two referral lines are truncated in the sample: their contacts point at nothing yet.
        missing = [r for r in based_on if r not in referrals]
        assert len(based_on) > 250
        assert len(missing) < len(based_on) // 10
