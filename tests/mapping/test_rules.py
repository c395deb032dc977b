"""Each kind of rule, run through small hand-made specs."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.core.errors import MappingError
from bridge.core.ids import stable_id
from bridge.mapping import CompiledSpec, Mappings
from bridge.mapping.labels import MAPPING_SPEC_TAG_SYSTEM, V3_ACT_CODE
from tests.fixtures.schema import assert_fhir_r4
from tests.mapping.conftest import SpecDir
from tests.mapping.helpers import NOW, record, spec_text

GENDER_MAP = """\
description: Test genders.
source: test
target: http://hl7.org/fhir/administrative-gender
links: [https://example.org]
unmapped: fail
entries:
  - {source: M, code: male, display: Male}
  - {source: F, code: female, display: Female}
"""
TYPE_MAP = """\
description: Test types.
source: test
target: https://example.org/CodeSystem/type
links: [https://example.org]
source_system: https://example.org/CodeSystem/local-type
unmapped: text
entries:
  - {source: A1, code: alpha, display: Alpha}
  - {source: B2, no_map: true}
"""
DEFAULT_MAP = """\
description: Test classes.
source: test
target: http://terminology.hl7.org/CodeSystem/v3-ActCode
links: [https://example.org]
unmapped: default
default: {code: HH, display: home health}
entries:
  - {source: phone, code: VR, display: virtual}
"""
LABEL_MAP = """\
description: Test sensitivity.
source: test
target: http://terminology.hl7.org/CodeSystem/v3-ActCode
links: [https://example.org]
unmapped: fail
entries:
  - {source: mh, code: PSY}
  - {source: sh, code: SEX}
  - {source: sh, code: STD}
  - {source: none, no_map: true}
"""
MAPS = {
    "gender": GENDER_MAP,
    "types": TYPE_MAP,
    "classes": DEFAULT_MAP,
    "labels": LABEL_MAP,
}


def compile_spec(spec_dir: SpecDir, rules: str, **kwargs: Any) -> CompiledSpec:
    """Compile a one-resource test spec with the test concept maps."""
    root = spec_dir({"test/thing": spec_text(rules, **kwargs)}, MAPS)
    return Mappings.load(root).spec("test/thing")


def one(spec: CompiledSpec, **fields: Any) -> dict[str, Any]:
    """Map a record and return its only resource (checked against the FHIR R4 schema)."""
    result = spec.map(record({"id": "r1", **fields}), now=NOW)
    assert len(result.resources) == 1
    resource = result.resources[0].resource
    assert_fhir_r4(resource)
    return resource


def fails(spec: CompiledSpec, **fields: Any) -> MappingError:
    """Map a record that must fail, and return the error."""
    with pytest.raises(MappingError) as caught:
        spec.map(record({"id": "r1", **fields}), now=NOW)
    return caught.value


class TestFrom:
    def test_copies_a_field_to_a_primitive(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: birthDate, from: dob}")
        assert one(spec, dob="1950-02-03")["birthDate"] == "1950-02-03"

    def test_trims_text_and_treats_blank_as_missing(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].family', from: family}")
        assert one(spec, family="  Smith ")["name"] == [{"family": "Smith"}]
        assert "name" not in one(spec, family="   ")

    def test_replaces_spaces_fhir_strings_cannot_hold(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].family', from: family}")
        assert one(spec, family="Smith\u00a0Jones")["name"][0]["family"] == "Smith Jones"

    def test_missing_null_and_empty_write_nothing(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: birthDate, from: dob}")
        for fields in ({}, {"dob": None}, {"dob": ""}, {"dob": []}, {"dob": {}}):
            assert "birthDate" not in one(spec, **fields)

    def test_reads_nested_and_indexed_paths(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: birthDate, from: 'person.dates[1]'}")
        assert one(spec, person={"dates": ["x", "1999-12-31"]})["birthDate"] == "1999-12-31"
        assert "birthDate" not in one(spec, person={"dates": ["x"]})

    def test_wrong_shape_names_the_path(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: birthDate, from: 'person.dob'}")
        error = fails(spec, person="not an object")
        assert error.source_field == "person"
        assert "expected an object" in error.detail

    def test_whole_number_into_text_is_accepted(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].family', from: family}")
        assert one(spec, family=42)["name"][0]["family"] == "42"

    def test_wrong_json_type_fails_naming_field(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: active, from: flag}")
        assert one(spec, flag=True)["active"] is True
        error = fails(spec, flag="yes")
        assert error.source_field == "flag"
        assert error.rule == "active"
        assert "true or false" in error.detail

    def test_closed_code_set_is_enforced(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: gender, from: sex}")
        assert one(spec, sex="female")["gender"] == "female"
        error = fails(spec, sex="F")
        assert "not an allowed code" in error.detail

    def test_fan_out_adds_each_item(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].given[+]', from: 'names[*]'}")
        assert one(spec, names=["Ann", " ", None, "Bo"])["name"] == [{"given": ["Ann", "Bo"]}]

    def test_fan_out_of_objects(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: telecom[+]
              from: 'phones[*].number'
              transform: phone_to_telecom
            """,
        )
        telecom = one(spec, phones=[{"number": "0113 496 0000"}, {"number": None}])["telecom"]
        assert telecom == [{"system": "phone", "value": "0113 496 0000", "use": "home"}]

    def test_fan_out_item_errors_name_the_item(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].given[+]', from: 'names[*]'}")
        assert fails(spec, names=["Ann", True]).source_field == "names[1]"


class TestValue:
    def test_writes_a_constant(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: active, value: true}")
        assert one(spec)["active"] is True

    def test_complex_constant_is_copied_per_record(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: maritalStatus
              value: {coding: [{system: 'http://x.org', code: M}]}
            """,
        )
        first = one(spec)
        first["maritalStatus"]["coding"][0]["code"] = "changed"
        assert one(spec)["maritalStatus"]["coding"][0]["code"] == "M"

    def test_config_value(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir, "- {target: 'identifier[+].system', value: $config.person_system}"
        )
        assert one(spec)["identifier"] == [{"system": "https://example.org/Id/person"}]


class TestTemplate:
    def test_builds_text(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].text', template: '{first} {last}'}")
        assert one(spec, first="Ann", last="Lee")["name"][0]["text"] == "Ann Lee"

    def test_missing_placeholder_writes_nothing(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].text', template: '{first} {last}'}")
        assert "name" not in one(spec, first="Ann")

    def test_literal_braces(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: 'name[+].text', template: '{{x}} {first}'}")
        assert one(spec, first="Ann")["name"][0]["text"] == "{x} Ann"

    def test_record_attributes(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir, "- {target: 'name[+].text', template: '{$record.system}:{$record.id}'}"
        )
        assert one(spec)["name"][0]["text"] == "test:r1"


class TestDefaultAndRequired:
    def test_default_when_missing(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir, "- {target: gender, from: sex, map: gender, default: unknown}"
        )
        assert one(spec)["gender"] == "unknown"
        assert one(spec, sex="M")["gender"] == "male"

    def test_required_missing_fails_naming_the_field(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {id: dob, target: birthDate, from: dob, required: true}")
        error = fails(spec)
        assert (error.spec, error.rule, error.source_field) == ("test/thing", "dob", "dob")
        assert error.code == "BRIDGE-0600"
        assert "thing.yaml:" in error.extra["location"]


class TestWhen:
    @pytest.mark.parametrize(
        ("condition", "fields", "applies"),
        [
            ("{field: flag, equals: true}", {"flag": True}, True),
            ("{field: flag, equals: true}", {"flag": 1}, False),
            ("{field: flag, equals: false}", {}, False),
            ("{field: s, not_equals: x}", {"s": "y"}, True),
            ("{field: s, not_equals: x}", {"s": "x"}, False),
            ("{field: s, in: [a, b]}", {"s": "b"}, True),
            ("{field: s, not_in: [a, b]}", {"s": "b"}, False),
            ("{field: s, present: true}", {"s": " "}, False),
            ("{field: s, present: false}", {}, True),
            ("{all: [{field: a, present: true}, {field: b, present: true}]}", {"a": 1}, False),
            ("{any: [{field: a, present: true}, {field: b, present: true}]}", {"a": 1}, True),
            ("{not: {field: a, present: true}}", {"a": 1}, False),
            ("{field: 'o.p', present: true}", {"o": "text"}, False),
        ],
    )
    def test_conditions(
        self, spec_dir: SpecDir, condition: str, fields: dict[str, Any], applies: bool
    ) -> None:
        spec = compile_spec(spec_dir, f"- {{target: active, value: true, when: {condition}}}")
        assert ("active" in one(spec, **fields)) is applies

    def test_resource_when_skips_the_resource(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            "- {target: active, value: true}",
            extra="    when: {field: keep, equals: true}\n",
        )
        assert spec.map(record({"id": "r1", "keep": False}), now=NOW).resources == ()
        assert len(spec.map(record({"id": "r1", "keep": True}), now=NOW).resources) == 1


class TestTransformRule:
    def test_applies_transform_with_args(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: birthDate
              from: dob
              transform: iso_date_to_date
              args: {format: '%d/%m/%Y'}
            """,
        )
        assert one(spec, dob="03/02/1950")["birthDate"] == "1950-02-03"

    def test_transform_error_names_the_part(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - id: name
              target: name[+]
              from: {family: surname, given: forename}
              transform: name_parts_to_human_name
            """,
        )
        error = fails(spec, surname=["not", "text"], forename="Ann")
        assert error.source_field == "surname"
        assert error.rule == "name"

    def test_transform_warning_is_reported(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            "- {id: nhs, target: 'identifier[+]', from: nhs, transform: nhs_number_to_identifier}",
        )
        result = spec.map(record({"id": "r1", "nhs": "9434765918"}), now=NOW)
        assert result.resources[0].resource["identifier"] == [
            {"system": "https://example.org/Id/invalid-nhs-number", "value": "9434765918"}
        ]
        (warning,) = result.warnings
        assert (warning.spec, warning.rule, warning.field) == ("test/thing", "nhs", "nhs")
        assert "not a valid NHS number" in warning.message


class TestConceptMapRule:
    def test_code_target_gets_the_code(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: gender, from: sex, map: gender}")
        assert one(spec, sex="F")["gender"] == "female"

    def test_fail_policy(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: gender, from: sex, map: gender}")
        error = fails(spec, sex="X")
        assert "'X' is not in concept map gender" in error.detail
        assert error.source_field == "sex"

    def test_non_code_value_fails(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: gender, from: sex, map: gender}")
        assert "expected a code" in fails(spec, sex={"a": 1}).detail

    def test_codeable_concept_keeps_local_coding_and_text(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir, "- {target: maritalStatus, from: t, map: types, text: '{t_text}'}"
        )
        assert one(spec, t="A1", t_text="Alpha local")["maritalStatus"] == {
            "coding": [
                {
                    "system": "https://example.org/CodeSystem/type",
                    "code": "alpha",
                    "display": "Alpha",
                },
                {
                    "system": "https://example.org/CodeSystem/local-type",
                    "code": "A1",
                    "display": "Alpha local",
                },
            ],
            "text": "Alpha local",
        }

    def test_text_policy_keeps_unknown_code_as_text_with_warning(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {id: t, target: maritalStatus, from: t, map: types}")
        result = spec.map(record({"id": "r1", "t": "Z9"}), now=NOW)
        assert result.resources[0].resource["maritalStatus"] == {
            "coding": [{"system": "https://example.org/CodeSystem/local-type", "code": "Z9"}],
            "text": "Z9",
        }
        assert "kept as text" in result.warnings[0].message

    def test_no_map_keeps_only_the_local_coding(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: maritalStatus, from: t, map: types}")
        result = spec.map(record({"id": "r1", "t": "B2"}), now=NOW)
        assert result.resources[0].resource["maritalStatus"] == {
            "coding": [{"system": "https://example.org/CodeSystem/local-type", "code": "B2"}]
        }
        assert result.warnings == ()

    def test_default_policy_coding_with_warning(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {target: status, value: finished}
            - {target: class, from: how, map: classes}
            """,
            resource_type="Encounter",
        )
        result = spec.map(record({"id": "r1", "how": "carrier pigeon"}), now=NOW)
        encounter = result.resources[0].resource
        assert encounter["class"] == {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "HH",
            "display": "home health",
        }
        assert "mapped to its default 'HH'" in result.warnings[0].message
        assert one(spec, how="phone")["class"]["code"] == "VR"


class TestReference:
    def test_reference_by_key(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {target: status, value: final}
            - {target: code, value: {text: x}}
            - target: subject
              reference: {type: Patient, key: {kind: person, value: "{pid}"}}
              required: true
            """,
            resource_type="Observation",
        )
        expected = f"Patient/{stable_id('test', 'person', 'P9')}"
        assert one(spec, pid="P9")["subject"] == {"reference": expected}
        assert fails(spec).source_field == "pid"

    def test_reference_key_in_another_system(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: generalPractitioner[+]
              reference: {type: Practitioner, key: {system: chs, kind: gp, value: "{gp}"}}
            """,
        )
        reference = one(spec, gp="G1")["generalPractitioner"][0]["reference"]
        assert reference == f"Practitioner/{stable_id('chs', 'gp', 'G1')}"

    def test_reference_by_identifier_with_display(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: managingOrganization
              reference:
                type: Organization
                identifier:
                  system: https://fhir.nhs.uk/Id/ods-organization-code
                  value: "{$config.org_code}"
                display: "{org_name}"
            """,
        )
        assert one(spec, org_name="Council")["managingOrganization"] == {
            "type": "Organization",
            "identifier": {
                "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                "value": "X1Y2Z",
            },
            "display": "Council",
        }

    def test_reference_to_a_resource_of_the_same_record(self, spec_dir: SpecDir) -> None:
        text = """\
            description: Two resources.
            source: {system: test, kind: thing}
            target: [Encounter, Observation]
            links: [https://example.org]
            version: "1"
            resources:
              - name: visit
                type: Encounter
                key: {kind: visit, value: "{id}"}
                when: {field: visited, equals: true}
                rules:
                  - {target: status, value: finished}
                  - {target: class, value: {code: HH}}
              - name: obs
                type: Observation
                key: {kind: obs, value: "{id}"}
                rules:
                  - {target: status, value: final}
                  - {target: code, value: {text: x}}
                  - {target: encounter, reference: {resource: visit}}
            """
        spec = Mappings.load(spec_dir({"test/thing": text})).spec("test/thing")
        both = spec.map(record({"id": "r1", "visited": True}), now=NOW).resources
        assert [m.resource_type for m in both] == ["Encounter", "Observation"]
        assert both[1].resource["encounter"] == {"reference": both[0].reference}
        assert both[0].id == stable_id("test", "visit", "r1")
        # No Encounter made: no dangling reference to it either.
        (alone,) = spec.map(record({"id": "r1", "visited": False}), now=NOW).resources
        assert "encounter" not in alone.resource


class TestGroup:
    def test_builds_an_element_from_children(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: extension[+]
              rules:
                - {target: url, value: 'https://example.org/ext'}
                - {target: valueBoolean, from: flag}
            """,
        )
        assert one(spec, flag=False)["extension"] == [
            {"url": "https://example.org/ext", "valueBoolean": False}
        ]

    def test_group_with_when_is_skipped(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: extension[+]
              when: {field: flag, present: true}
              rules:
                - {target: url, value: 'https://example.org/ext'}
                - {target: valueBoolean, from: flag}
            """,
        )
        assert "extension" not in one(spec)

    def test_empty_group_writes_nothing_unless_required(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - id: period
              target: 'name[+].period'
              rules:
                - {target: start, from: start}
            """,
        )
        assert "name" not in one(spec)
        required = compile_spec(
            spec_dir,
            """
            - id: period
              target: 'name[+].period'
              required: true
              rules:
                - {target: start, from: start}
            """,
        )
        error = fails(required)
        assert (error.rule, error.source_field) == ("period", "start")

    def test_for_each_group(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: contact[+]
              for_each: {from: 'carers[*]', as: carer}
              rules:
                - {target: name.family, from: $carer.family}
                - {target: 'telecom[+]', from: $carer.phone, transform: phone_to_telecom}
            """,
        )
        contacts = one(
            spec,
            carers=[
                {"family": "Lee", "phone": "0113 496 0001"},
                {"family": None},
                {"family": "Roe"},
            ],
        )["contact"]
        assert contacts == [
            {
                "name": {"family": "Lee"},
                "telecom": [{"system": "phone", "value": "0113 496 0001", "use": "home"}],
            },
            {"name": {"family": "Roe"}},
        ]

    def test_variable_errors_name_the_item(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: contact[+]
              for_each: {from: 'carers[*]', as: carer}
              rules:
                - {target: name.family, from: $carer.family}
            """,
        )
        assert fails(spec, carers=[{"family": "A"}, {"family": 1.5}]).source_field == (
            "carers[1].family"
        )


class TestWrites:
    def test_second_write_to_an_element_fails(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {id: one, target: birthDate, from: a}
            - {id: two, target: birthDate, from: b}
            """,
        )
        assert one(spec, a="2000-01-01")["birthDate"] == "2000-01-01"
        error = fails(spec, a="2000-01-01", b="2001-01-01")
        assert error.rule == "two"
        assert "already wrote" in error.detail

    def test_index_targets_write_into_an_item(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {target: 'name[0].family', from: family}
            - {target: 'name[0].given[+]', from: given}
            """,
        )
        assert one(spec, family="Lee", given="Ann")["name"] == [{"family": "Lee", "given": ["Ann"]}]

    def test_index_beyond_the_list_fails(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {id: far, target: 'name[1].family', from: family}")
        error = fails(spec, family="Lee")
        assert error.rule == "far"
        assert "item(s)" in error.detail


class TestEngineAdds:
    def test_id_and_key_and_meta_tag(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: active, value: true}")
        (mapped,) = spec.map(record({"id": "r7"}), now=NOW).resources
        assert mapped.key == ("test", "thing", "r7")
        assert mapped.id == stable_id("test", "thing", "r7")
        assert mapped.reference == f"Patient/{mapped.id}"
        assert mapped.resource["meta"]["tag"] == [
            {"system": MAPPING_SPEC_TAG_SYSTEM, "version": "2.1", "code": "test/thing"}
        ]

    def test_missing_key_fails_naming_the_field(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: active, value: true}")
        with pytest.raises(MappingError) as caught:
            spec.map(record({"other": 1}), now=NOW)
        assert caught.value.source_field == "id"

    def test_fixed_and_mapped_security_labels(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            "- {target: active, value: true}",
            head="security:\n  - {label: SAFEGUARDING, when: {field: sg, equals: true}}\n",
            extra="    security:\n      - {from: cat, map: labels}\n",
        )
        meta = one(spec, cat="sh", sg=True)["meta"]
        assert [(c["system"], c["code"]) for c in meta["security"]] == [
            ("https://carebridge.example.org/fhir/CodeSystem/security-label", "SAFEGUARDING"),
            (V3_ACT_CODE, "SEX"),
            (V3_ACT_CODE, "STD"),
        ]
        assert "security" not in one(spec, cat="none")["meta"]
        assert one(spec, cat=["mh", "mh"])["meta"]["security"] == [
            {"system": V3_ACT_CODE, "code": "PSY", "display": "psychiatry information sensitivity"}
        ]

    def test_unknown_sensitivity_fails_the_record(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            "- {target: active, value: true}",
            extra="    security:\n      - {from: cat, map: labels}\n",
        )
        error = fails(spec, cat="new")
        assert error.source_field == "cat"
        assert "sensitivity is unknown" in error.detail

    def test_invalid_resource_names_the_rule_and_element(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {id: ok, target: active, value: true}
            - {id: bad-date, target: birthDate, from: dob}
            """,
        )
        error = fails(spec, dob="31/02/2020")
        assert error.rule == "bad-date"
        assert error.source_field == "dob"
        assert error.extra["element"] == "Patient.birthDate"

    def test_invalid_element_in_a_group_names_the_child_rule(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: name[+]
              rules:
                - {id: family, target: family, from: family}
                - {id: start, target: period.start, from: since}
            """,
        )
        error = fails(spec, family="Lee", since="yesterday")
        assert (error.rule, error.source_field) == ("start", "since")
        assert error.extra["element"] == "Patient.name[0].period.start"

    def test_record_of_another_kind_is_refused(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: active, value: true}")
        with pytest.raises(MappingError) as caught:
            spec.map(record({"id": "1"}, kind="other"), now=NOW)
        assert caught.value.source_field == "kind"

    def test_naive_now_is_a_programming_error(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(spec_dir, "- {target: active, value: true}")
        with pytest.raises(ValueError, match="timezone"):
            spec.map(record({"id": "1"}), now=NOW.replace(tzinfo=None))


class TestForEachResources:
    SPEC = """\
        description: One per item.
        source: {system: test, kind: thing, fields: [id, needs, done]}
        target: [Observation]
        links: [https://example.org]
        version: "1"
        resources:
          - name: need
            type: Observation
            key: {kind: need, value: "{id}:{$need}"}
            for_each: {from: "needs[*]", as: need}
            rules:
              - {target: status, value: final}
              - {target: code.text, from: $need}
        """

    def test_one_resource_per_item_with_its_own_key(self, spec_dir: SpecDir) -> None:
        spec = Mappings.load(spec_dir({"test/thing": self.SPEC})).spec("test/thing")
        result = spec.map(record({"id": "A", "needs": ["x", "y"]}), now=NOW)
        assert [m.key for m in result.resources] == [
            ("test", "need", "A:x"),
            ("test", "need", "A:y"),
        ]
        assert [m.resource["code"] for m in result.resources] == [{"text": "x"}, {"text": "y"}]

    def test_duplicate_items_are_made_once_with_a_warning(self, spec_dir: SpecDir) -> None:
        spec = Mappings.load(spec_dir({"test/thing": self.SPEC})).spec("test/thing")
        result = spec.map(record({"id": "A", "needs": ["x", "x"]}), now=NOW)
        assert len(result.resources) == 1
        assert "same key" in result.warnings[0].message

    def test_no_items_no_resources(self, spec_dir: SpecDir) -> None:
        spec = Mappings.load(spec_dir({"test/thing": self.SPEC})).spec("test/thing")
        assert spec.map(record({"id": "A", "needs": []}), now=NOW).resources == ()
        with pytest.raises(MappingError) as caught:
            spec.map(record({"id": "A", "needs": "x"}), now=NOW)
        assert caught.value.source_field == "needs"


class TestMoreSources:
    def test_a_list_of_fields_feeds_a_transform(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - target: address[+]
              from: [line1, line2]
              transform: address_lines_to_address
            """,
        )
        assert one(spec, line1="1 High St", line2=None)["address"] == [
            {"use": "home", "line": ["1 High St"]}
        ]

    def test_numbers_into_numeric_elements(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {target: status, value: final}
            - {target: code, value: {text: x}}
            - {id: count, target: valueQuantity.value, from: n}
            """,
            resource_type="Observation",
        )
        assert one(spec, n=2.5)["valueQuantity"] == {"value": 2.5}
        assert "needs a number" in fails(spec, n=True).detail
        integer = compile_spec(
            spec_dir,
            """
            - {target: status, value: final}
            - {target: code, value: {text: x}}
            - {target: valueInteger, from: n}
            """,
            resource_type="Observation",
        )
        assert one(integer, n=3)["valueInteger"] == 3
        assert "needs a whole number" in fails(integer, n=3.5).detail

    def test_fan_out_default_and_text_shape_errors(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - id: kinds
              target: 'identifier[+].type.coding[+]'
              from: 'kinds[*]'
              map: classes
            """,
        )
        assert one(spec, kinds=["phone"])["identifier"][0]["type"]["coding"][0]["code"] == "VR"
        mapped = compile_spec(
            spec_dir,
            """
            - {target: status, value: final}
            - {target: code, value: {text: x}}
            - {target: 'category[+]', from: 'ts[*]', map: types, text: '{label.x}'}
            """,
            resource_type="Observation",
        )
        assert one(mapped, ts=["A1", "B2"], label={"x": "L"})["category"][0]["text"] == "L"
        # The text template reads a field of the wrong shape: named, not crashed.
        assert fails(mapped, ts=["A1"], label="flat").source_field == "label"

    def test_index_on_the_last_step(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {id: first, target: 'name[0].given[0]', from: a}
            - {id: again, target: 'name[0].given[0]', from: b}
            """,
        )
        assert one(spec, a="Ann")["name"] == [{"given": ["Ann"]}]
        assert fails(spec, a="Ann", b="Bo").rule == "again"

    def test_an_invalid_element_at_an_index_is_explained(self, spec_dir: SpecDir) -> None:
        spec = compile_spec(
            spec_dir,
            """
            - {id: family, target: 'name[0].family', from: family}
            - {id: start, target: 'name[0].period.start', from: since}
            """,
        )
        error = fails(spec, family="Lee", since="soon")
        assert (error.rule, error.extra["element"]) == ("start", "Patient.name[0].period.start")


class TestMoreSecurity:
    DEFAULT_LABELS = """\
description: Labels with a default.
source: test
target: http://terminology.hl7.org/CodeSystem/v3-ActCode
links: [https://example.org]
unmapped: default
default: {code: PSY}
entries:
  - {source: none, no_map: true}
"""

    def test_default_label_with_a_warning(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {
                "test/thing": spec_text(
                    "- {target: active, value: true}",
                    extra="    security:\n      - {from: cat, map: guess}\n",
                )
            },
            {"guess": self.DEFAULT_LABELS},
        )
        result = (
            Mappings.load(root).spec("test/thing").map(record({"id": "1", "cat": "x"}), now=NOW)
        )
        assert result.resources[0].resource["meta"]["security"][0]["code"] == "PSY"
        assert "labelled with its default" in result.warnings[0].message

    def test_a_non_code_category_fails(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {
                "test/thing": spec_text(
                    "- {target: active, value: true}",
                    extra="    security:\n      - {from: cat, map: guess}\n",
                )
            },
            {"guess": self.DEFAULT_LABELS},
        )
        spec = Mappings.load(root).spec("test/thing")
        with pytest.raises(MappingError) as caught:
            spec.map(record({"id": "1", "cat": {"a": 1}}), now=NOW)
        assert (caught.value.rule, caught.value.source_field) == ("security from cat", "cat")
        assert "security from cat (test/thing.yaml:" in caught.value.detail


class TestInvalidMapOutput:
    def test_a_bad_code_from_a_concept_map_fails_naming_the_element(
        self, spec_dir: SpecDir
    ) -> None:
        bad = DEFAULT_MAP.replace("code: VR", "code: 'V  R'")
        root = spec_dir(
            {
                "test/thing": spec_text(
                    """
                    - {target: status, value: finished}
                    - {id: class, target: class, from: how, map: classes}
                    """,
                    resource_type="Encounter",
                )
            },
            {"classes": bad},
        )
        spec = Mappings.load(root).spec("test/thing")
        error = fails(spec, how="phone")
        assert (error.rule, error.source_field) == ("class", "how")
        assert error.extra["element"] == "Encounter.class.code"
