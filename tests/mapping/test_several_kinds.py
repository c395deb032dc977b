"""A spec several record kinds share (source.kinds), and blocks that share a key kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.core.errors import MappingError, MappingSpecError
from bridge.core.ids import stable_id
from bridge.mapping import Mappings
from bridge.mapping.cases import RecordFormatError, check_directory, record_from_json
from tests.mapping.conftest import SpecDir
from tests.mapping.helpers import NOW, record, spec_text

# Two events of one feed: a registration and a merge, told apart by $record.kind.
EVENTS = """\
description: Events of a test feed.
source:
  system: test
  kinds: [reg, merge]
  fields: [mrn, old_mrn, family]
target: [Patient]
links: [https://example.org]
version: "1"
resources:
  - name: patient
    type: Patient
    key: {kind: patient, value: "{mrn}"}
    rules:
      - {target: 'name[0].family', from: family}
      - {target: active, value: true, when: {field: $record.kind, equals: reg}}
  - name: retired
    type: Patient
    key: {kind: patient, value: "{old_mrn}"}
    when: {field: $record.kind, equals: merge}
    rules:
      - {target: active, value: false}
      - target: link[+]
        rules:
          - {target: other, reference: {resource: patient}}
          - {target: type, value: replaced-by}
"""


def problems(root: Path) -> list[str]:
    return [str(p) for p in Mappings.load(root, strict=False).problems]


def fields(**values: Any) -> dict[str, Any]:
    return {"id": "r1", **values}


class TestSpecOfSeveralKinds:
    def test_one_spec_maps_each_of_its_kinds(self, spec_dir: SpecDir) -> None:
        mappings = Mappings.load(spec_dir({"test/events": EVENTS}))
        spec = mappings.spec("test/events")
        assert (spec.name, spec.kind, spec.kinds) == ("test/events", "events", ("reg", "merge"))
        assert mappings.specs[("test", "reg")] is spec
        assert mappings.specs[("test", "merge")] is spec
        assert mappings.by_name == {"test/events": spec}
        assert mappings.spec("test/merge") is spec
        reg = mappings.map(record(fields(mrn="M1", family="Lee"), kind="reg"), now=NOW)
        (patient,) = reg.resources
        assert patient.resource["active"] is True
        assert patient.resource["meta"]["tag"][0]["code"] == "test/events"

    def test_kinds_are_told_apart_by_record_kind(self, spec_dir: SpecDir) -> None:
        mappings = Mappings.load(spec_dir({"test/events": EVENTS}))
        merge = mappings.map(
            record(fields(mrn="M1", old_mrn="M0", family="Lee"), kind="merge"), now=NOW
        )
        survivor, retired = (m.resource for m in merge.resources)
        assert "active" not in survivor
        assert retired["id"] == stable_id("test", "patient", "M0")
        assert retired["link"] == [
            {"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}
        ]

    def test_a_kind_the_spec_does_not_map_is_refused(self, spec_dir: SpecDir) -> None:
        spec = Mappings.load(spec_dir({"test/events": EVENTS})).spec("test/events")
        with pytest.raises(MappingError) as caught:
            spec.map(record(fields(mrn="M1"), kind="events"), now=NOW)
        assert caught.value.source_field == "kind"
        assert "the record is test/events, not test/reg|merge" in caught.value.detail

    def test_summary_lists_the_kinds(self, spec_dir: SpecDir) -> None:
        summary = Mappings.load(spec_dir({"test/events": EVENTS})).summary()
        assert summary["specs"][0]["spec"] == "test/events"
        assert summary["specs"][0]["kinds"] == ["reg", "merge"]

    def test_an_edited_copy_compiles_alike(self, spec_dir: SpecDir, tmp_path: Path) -> None:
        mappings = Mappings.load(spec_dir({"test/events": EVENTS}))
        copy = tmp_path / "elsewhere" / "test" / "events.yaml"
        copy.parent.mkdir(parents=True)
        copy.write_text(EVENTS)
        assert mappings.compile_file(copy).kinds == ("reg", "merge")


class TestKindProblems:
    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("{system: test, kind: reg, kinds: [merge]}", "give kind: (the one record kind"),
            ("{system: test}", "give kind: (the one record kind"),
            ("{system: test, kinds: [reg, reg]}", "kinds lists reg more than once"),
            ("{system: test, kinds: []}", "needs at least one item"),
        ],
    )
    def test_kind_or_kinds(self, spec_dir: SpecDir, source: str, message: str) -> None:
        text = EVENTS.replace(
            "source:\n  system: test\n  kinds: [reg, merge]\n  fields: [mrn, old_mrn, family]",
            f"source: {source}",
        )
        (problem,) = problems(spec_dir({"test/events": text}))
        assert message in problem

    def test_the_file_must_sit_under_its_system(self, spec_dir: SpecDir) -> None:
        (problem,) = problems(spec_dir({"other/events": EVENTS}))
        assert "declares source test/events, but its file is other/events.yaml" in problem
        assert "move it to test/, or fix source.system" in problem

    def test_a_kind_is_mapped_by_one_spec(self, spec_dir: SpecDir) -> None:
        reg = spec_text("- {target: active, value: true}").replace("kind: thing", "kind: reg")
        root = spec_dir({"test/events": EVENTS, "test/reg": reg})
        (problem,) = problems(root)
        assert problem.startswith("test/reg.yaml:")
        assert "maps test/reg records, which test/events.yaml maps already" in problem
        with pytest.raises(MappingSpecError):
            Mappings.load(root)


class TestBlocksSharingAKeyKind:
    def test_the_same_key_value_is_refused(self, spec_dir: SpecDir) -> None:
        text = EVENTS.replace('value: "{old_mrn}"', 'value: "{mrn}"')
        (problem,) = problems(spec_dir({"test/events": text}))
        assert "two resources make Patient keyed by (test, patient) from the same value" in problem

    def test_a_record_giving_both_the_same_id_fails(self, spec_dir: SpecDir) -> None:
        spec = Mappings.load(spec_dir({"test/events": EVENTS})).spec("test/events")
        with pytest.raises(MappingError) as caught:
            spec.map(record(fields(mrn="M1", old_mrn="M1"), kind="merge"), now=NOW)
        error = caught.value
        assert (error.rule, error.source_field) == ("retired.key", "old_mrn")
        assert "which resource patient already made from this record" in error.detail


class TestRecordsFromJson:
    def test_a_record_of_any_kind_of_the_system(self) -> None:
        data = {"system": "test", "kind": "merge", "fields": {}}
        assert record_from_json(data, system="test", kind="events").kind == "merge"
        with pytest.raises(RecordFormatError, match="the record is test/merge, not asc/events"):
            record_from_json(data, system="asc", kind="events")

    def test_case_with_a_kind_of_a_shared_spec(self, spec_dir: SpecDir) -> None:
        root = spec_dir({"test/events": EVENTS})
        (root / "cases").mkdir()
        case = {"system": "test", "kind": "reg", "fields": {"mrn": "M1"}}
        (root / "cases" / "1.input.json").write_text(json.dumps(case))
        expected = [
            {
                "resourceType": "Patient",
                "id": stable_id("test", "patient", "M1"),
                "meta": {
                    "tag": [
                        {
                            "system": "https://carebridge.example.org/fhir/CodeSystem/mapping-spec",
                            "version": "1",
                            "code": "test/events",
                        }
                    ]
                },
                "active": True,
            }
        ]
        (root / "cases" / "1.output.json").write_text(json.dumps(expected))
        report = check_directory(root)
        assert report.ok, report.lines()
