"""A wrong spec, concept map or config is reported with file, line and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core.errors import MappingSpecError
from bridge.mapping import Mappings, SpecProblem
from tests.mapping.conftest import SpecDir
from tests.mapping.helpers import TEST_CONFIG, spec_text

GOOD_MAP = """\
description: Test genders.
source: test
target: http://hl7.org/fhir/administrative-gender
links: [https://example.org]
unmapped: fail
entries:
  - {source: M, code: male}
"""


def line_of(root: Path, rel: str, marker: str) -> int:
    """Return the 1-based line of ``rel`` holding ``marker`` (exactly one such line)."""
    lines = [n for n, text in enumerate((root / rel).read_text().splitlines(), 1) if marker in text]
    assert len(lines) == 1, f"{marker!r} is on lines {lines}"
    return lines[0]


def only_problem(root: Path) -> SpecProblem:
    """Load a directory that has exactly one problem and return it."""
    mappings = Mappings.load(root, strict=False)
    assert len(mappings.problems) == 1, [str(p) for p in mappings.problems]
    return mappings.problems[0]


def problem_for(spec_dir: SpecDir, rules: str, **kwargs: str) -> tuple[Path, SpecProblem]:
    root = spec_dir({"test/thing": spec_text(rules, **kwargs)}, {"gender": GOOD_MAP})
    return root, only_problem(root)


class TestStructure:
    def test_unknown_key_with_did_you_mean(self, spec_dir: SpecDir) -> None:
        root, problem = problem_for(
            spec_dir,
            """
            - target: birthDate
              from: dob
              tranform: iso_date_to_date
            """,
        )
        assert problem.file == "test/thing.yaml"
        assert problem.line == line_of(root, "test/thing.yaml", "tranform")
        assert problem.message == "unknown key 'tranform'"
        assert problem.hint == "did you mean 'transform'?"
        assert problem.where == "resources[0].rules[0]"

    def test_wrong_type_suggests_quotes(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {"test/thing": spec_text("- {target: active, value: true}").replace('"2.1"', "2.1")}
        )
        problem = only_problem(root)
        assert problem.line == line_of(root, "test/thing.yaml", "version:")
        assert problem.message == "expected text, got a number"
        assert problem.hint == "put it in quotes: '2.1'"

    def test_missing_key(self, spec_dir: SpecDir) -> None:
        root = spec_dir({"test/thing": spec_text("- {target: active}")})
        problem = only_problem(root)
        assert "exactly one of from, value, template, reference or rules" in problem.message
        assert problem.line == line_of(root, "test/thing.yaml", "target: active")

    def test_two_value_sources(self, spec_dir: SpecDir) -> None:
        _, problem = problem_for(spec_dir, "- {target: active, value: true, from: x}")
        assert "found from, value" in problem.message

    def test_list_expected_suggests_brackets(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}").replace(
            "target: [Patient]", "target: Patient"
        )
        problem = only_problem(spec_dir({"test/thing": text}))
        assert problem.message == "expected a list, got text"
        assert problem.hint == "write [Patient]"

    def test_bad_name_pattern(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}").replace("name: main", "name: Main")
        problem = only_problem(spec_dir({"test/thing": text}))
        assert problem.where == "resources[0].name"
        assert problem.hint is not None
        assert "lower-case" in problem.hint

    def test_condition_needs_one_test(self, spec_dir: SpecDir) -> None:
        _, problem = problem_for(
            spec_dir, "- {target: active, value: true, when: {field: a, equals: 1, present: true}}"
        )
        assert "exactly one of equals" in problem.message

    def test_yaml_syntax_error_has_a_line(self, spec_dir: SpecDir) -> None:
        root = spec_dir({"test/thing": "description: x\nsource: [unclosed\n"})
        problem = only_problem(root)
        assert problem.message.startswith("is not valid YAML")
        assert problem.line is not None

    def test_duplicate_key(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}") + 'version: "3"\n'
        problem = only_problem(spec_dir({"test/thing": text}))
        assert "the key 'version' appears twice" in problem.message

    def test_opening_order(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}")
        head, rest = text.split("target: [Patient]\n")
        problem = only_problem(
            spec_dir({"test/thing": head.replace("source", "target: [Patient]\nsource") + rest})
        )
        assert "opens with description, source, target and links" in problem.message

    def test_file_place_must_match_source(self, spec_dir: SpecDir) -> None:
        root = spec_dir({"test/other": spec_text("- {target: active, value: true}")})
        problem = only_problem(root)
        assert problem.file == "test/other.yaml"
        assert problem.message == "declares source test/thing, but its file is test/other.yaml"
        assert problem.hint == "move it to test/thing.yaml, or fix source.system and source.kind"


class TestCompile:
    @pytest.mark.parametrize(
        ("rule", "marker", "message", "hint"),
        [
            (
                "- {target: brithDate, from: dob}",
                "brithDate",
                "Patient has no element 'brithDate'",
                "did you mean birthDate?",
            ),
            (
                "- {target: name.family, from: f}",
                "name.family",
                "Patient.name is a list: write name[+] to add an item",
                "or name[0] to write into its first item",
            ),
            (
                "- {target: id, from: f}",
                "target: id",
                "id is written by the engine",
                None,
            ),
            (
                "- {target: 'meta.security[+]', value: {code: PSY}}",
                "meta.security",
                "meta.security is written by the engine",
                None,
            ),
            (
                "- {target: birthDate, from: dob, transform: iso_date_to_dat}",
                "iso_date_to_dat",
                "unknown transform 'iso_date_to_dat'",
                "did you mean iso_date_to_date, hl7_datetime_to_date, hl7_datetime_to_datetime?",
            ),
            (
                "- {target: birthDate, from: t, transform: local_datetime_to_instant}",
                "local_datetime_to_instant",
                "local_datetime_to_instant makes an instant, but birthDate is a date",
                None,
            ),
            (
                "- {target: birthDate, from: d, transform: iso_date_to_date, args: {fromat: x}}",
                "fromat",
                "iso_date_to_date takes no argument 'fromat'",
                "did you mean format?",
            ),
            (
                "- {target: 'identifier[+]', from: i, transform: value_to_identifier}",
                "value_to_identifier",
                "value_to_identifier needs the argument 'system'",
                None,
            ),
            (
                "- {target: 'name[+]', from: n, transform: name_parts_to_human_name}",
                "name_parts_to_human_name",
                "name_parts_to_human_name takes parts",
                None,
            ),
            (
                "- {target: gender, from: g, map: gendr}",
                "gendr",
                "no concept map 'gendr' in codes/",
                "did you mean gender?",
            ),
            (
                "- {target: gender, value: femal}",
                "femal",
                "'femal' is not a code gender allows",
                "did you mean female, male?",
            ),
            (
                "- {target: active, value: 'yes'}",
                "'yes'",
                "active needs true or false, not text",
                None,
            ),
            (
                "- {target: maritalStatus, value: {coding: [{code: 5}]}}",
                "maritalStatus",
                "not a valid CodeableConcept",
                None,
            ),
            (
                "- {target: 'identifier[+].system', value: $config.persn_system}",
                "persn_system",
                "unknown configuration value 'persn_system'",
                "did you mean person_system?",
            ),
            (
                "- {target: birthDate, from: $item}",
                "$item",
                "unknown variable '$item'",
                None,
            ),
            (
                "- {target: birthDate, from: 'dates[*]'}",
                "dates",
                "dates[*] reads every item of a list: the target must end in [+]",
                None,
            ),
            (
                "- {target: address, from: a}",
                "target: address",
                "Patient.address is a list",
                None,
            ),
            (
                "- {target: 'address[+]', from: a}",
                "address",
                "address is an Address: copy into its parts",
                None,
            ),
            (
                "- {target: managingOrganization,"
                " reference: {type: Patient, key: {kind: p, value: x}}}",
                "managingOrganization",
                "managingOrganization may reference Organization, not Patient",
                None,
            ),
            (
                "- {target: managingOrganization, reference: {resource: nope}}",
                "nope",
                "no resource named nope in this spec",
                "resources: main",
            ),
            (
                "- {target: birthDate, template: '{a'}",
                "template",
                "unbalanced '{' or '}'",
                None,
            ),
            (
                "- {target: active, template: '{a}'}",
                "template",
                "a template makes text, but active is a boolean",
                None,
            ),
        ],
    )
    def test_problem_is_located_and_explained(
        self, spec_dir: SpecDir, rule: str, marker: str, message: str, hint: str | None
    ) -> None:
        root, problem = problem_for(spec_dir, rule)
        assert problem.file == "test/thing.yaml"
        assert problem.line == line_of(root, "test/thing.yaml", marker)
        assert message in problem.message
        if hint is not None:
            assert problem.hint == hint

    def test_every_rule_problem_is_reported(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {
                "test/thing": spec_text(
                    """
                    - {target: brithDate, from: dob}
                    - {target: active, value: true}
                    - {target: gender, from: g, map: nothing}
                    """
                )
            }
        )
        problems = Mappings.load(root, strict=False).problems
        assert [p.line for p in problems] == [
            line_of(root, "test/thing.yaml", "brithDate"),
            line_of(root, "test/thing.yaml", "nothing"),
        ]

    def test_undeclared_source_field(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: birthDate, from: dob_}").replace(
            "kind: thing}", "kind: thing, fields: [id, dob]}"
        )
        root = spec_dir({"test/thing": text})
        problem = only_problem(root)
        assert problem.message == (
            "'dob_' is not one of the source fields this spec declares (source.fields)"
        )
        assert problem.hint == "did you mean dob?"

    def test_required_element_must_be_written(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {
                "test/thing": spec_text(
                    "- {target: status, value: final}", resource_type="Observation"
                )
            }
        )
        assert only_problem(root).message == (
            "Observation.code is required (1..1) and no rule writes it"
        )

    def test_target_and_blocks_must_agree(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}").replace(
            "target: [Patient]", "target: [Patient, Encounter]"
        )
        assert only_problem(spec_dir({"test/thing": text})).message == (
            "target lists Encounter but no resource makes one"
        )

    def test_unsupported_resource_type(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}", resource_type="Patinet")
        problems = Mappings.load(spec_dir({"test/thing": text}), strict=False).problems
        assert any("'Patinet' is not a FHIR resource type" in p.message for p in problems)

    def test_for_each_key_must_use_the_item(self, spec_dir: SpecDir) -> None:
        text = spec_text(
            "- {target: active, value: true}", extra="    for_each: {from: 'xs[*]', as: x}\n"
        )
        problem = only_problem(spec_dir({"test/thing": text}))
        assert problem.message == "each item needs its own key: use {$x} in key.value"

    def test_text_policy_map_cannot_feed_a_code(self, spec_dir: SpecDir) -> None:
        text_map = GOOD_MAP.replace("unmapped: fail", "unmapped: text")
        root = spec_dir(
            {"test/thing": spec_text("- {target: gender, from: g, map: gender}")},
            {"gender": text_map},
        )
        assert "keeps unknown codes as text" in only_problem(root).message

    def test_map_codes_must_fit_the_element(self, spec_dir: SpecDir) -> None:
        bad_map = GOOD_MAP.replace("code: male", "code: man")
        root = spec_dir(
            {"test/thing": spec_text("- {target: gender, from: g, map: gender}")},
            {"gender": bad_map},
        )
        assert "concept map gender gives 'man', which gender does not allow" in (
            only_problem(root).message
        )

    def test_security_map_must_give_labels(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {
                "test/thing": spec_text(
                    "- {target: active, value: true}",
                    extra="    security:\n      - {from: g, map: gender}\n",
                )
            },
            {"gender": GOOD_MAP},
        )
        assert "which is not a security label carebridge knows" in only_problem(root).message

    def test_unknown_fixed_label(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {
                "test/thing": spec_text(
                    "- {target: active, value: true}", head="security:\n  - {label: PYS}\n"
                )
            }
        )
        problem = only_problem(root)
        assert problem.message == "unknown security label 'PYS'"
        assert problem.hint == "did you mean PSY?"


class TestConceptMapFiles:
    def test_bad_policy_and_the_spec_using_it(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {"test/thing": spec_text("- {target: gender, from: g, map: gender}")},
            {"gender": GOOD_MAP.replace("unmapped: fail", "unmapped: drop")},
        )
        problems = Mappings.load(root, strict=False).problems
        assert str(problems[0]) == (
            "codes/gender.yaml:5: unmapped: must be 'fail', 'text' or 'default'"
        )
        assert problems[1].message == "concept map 'gender' has problems of its own"
        assert problems[1].hint == "fix codes/gender.yaml first"

    def test_default_policy_needs_a_default(self, spec_dir: SpecDir) -> None:
        root = spec_dir({}, {"gender": GOOD_MAP.replace("unmapped: fail", "unmapped: default")})
        assert "unmapped: default needs default" in only_problem(root).message

    def test_no_map_and_a_target_clash(self, spec_dir: SpecDir) -> None:
        clash = GOOD_MAP + "  - {source: M, no_map: true}\n"
        root = spec_dir({}, {"gender": clash})
        problem = only_problem(root)
        assert problem.line == 8
        assert "listed again (first on line 7)" in problem.message

    def test_csv_entries(self, spec_dir: SpecDir) -> None:
        csv_map = GOOD_MAP.replace(
            "entries:\n  - {source: M, code: male}\n", "entries_csv: gender.csv\n"
        )
        root = spec_dir(
            {"test/thing": spec_text("- {target: gender, from: g, map: gender}")},
            {"gender": csv_map},
            files={"codes/gender.csv": "source,code,display\nM,male,Male\nF,female,Female\n"},
        )
        mappings = Mappings.load(root)
        assert mappings.concept_maps["gender"].lookup("F") == (
            {
                "system": "http://hl7.org/fhir/administrative-gender",
                "code": "female",
                "display": "Female",
            },
        )

    def test_csv_problems_name_the_csv_line(self, spec_dir: SpecDir) -> None:
        csv_map = GOOD_MAP.replace(
            "entries:\n  - {source: M, code: male}\n", "entries_csv: gender.csv\n"
        )
        root = spec_dir(
            {},
            {"gender": csv_map},
            files={"codes/gender.csv": "source,code\nM,male\n,female\n"},
        )
        problem = only_problem(root)
        assert (problem.file, problem.line) == ("codes/gender.csv", 3)

    def test_csv_header_and_missing_file(self, spec_dir: SpecDir) -> None:
        csv_map = GOOD_MAP.replace(
            "entries:\n  - {source: M, code: male}\n", "entries_csv: gender.csv\n"
        )
        root = spec_dir({}, {"gender": csv_map}, files={"codes/gender.csv": "from,to\nM,male\n"})
        assert "must name source and code" in only_problem(root).message
        (root / "codes" / "gender.csv").unlink()
        assert "does not exist" in only_problem(root).message

    def test_orphan_csv(self, spec_dir: SpecDir) -> None:
        root = spec_dir({}, {"gender": GOOD_MAP}, files={"codes/old.csv": "source,code\n"})
        problem = only_problem(root)
        assert (problem.file, problem.message) == (
            "codes/old.csv",
            "no concept map uses this CSV file",
        )


class TestConfig:
    def test_missing_config(self, spec_dir: SpecDir) -> None:
        root = spec_dir({})
        (root / "config.yaml").unlink()
        assert only_problem(root).message == "is missing"

    def test_bad_config_stops_specs_compiling(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {"test/thing": spec_text("- {target: active, value: true}")},
            config=TEST_CONFIG.replace("org_code: X1Y2Z", "org_code: 12"),
        )
        problems = Mappings.load(root, strict=False).problems
        assert str(problems[0]).startswith("config.yaml:5: values.org_code: expected text")
        assert problems[1].message.startswith("not compiled: config.yaml has problems")


class TestStrictLoading:
    def test_first_problem_is_raised_with_file_line_and_count(self, spec_dir: SpecDir) -> None:
        root = spec_dir(
            {"test/thing": spec_text("- {target: brithDate, from: a}\n- {target: gendr, from: b}")}
        )
        with pytest.raises(MappingSpecError) as caught:
            Mappings.load(root)
        error = caught.value
        assert error.code == "BRIDGE-0601"
        assert error.file == "test/thing.yaml"
        assert error.line == line_of(root, "test/thing.yaml", "brithDate")
        assert error.hint == "did you mean birthDate?"
        assert error.detail.endswith("(and 1 more problem)")

    def test_a_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(MappingSpecError, match="is not a directory"):
            Mappings.load(tmp_path / "nowhere")


class TestRuleShape:
    @pytest.mark.parametrize(
        ("rule", "message"),
        [
            ("- {target: active, value: null}", "value: null writes nothing"),
            ("- {target: gender, from: g, map: gender, transform: x}", "use transform or map"),
            ("- {target: active, value: true, args: {a: 1}}", "args belong to a transform"),
            ("- {target: active, value: true, text: x}", "text sets CodeableConcept.text"),
            ("- {target: gender, template: x, map: gender}", "transform and map work on a source"),
            (
                "- {target: name[+], rules: [{target: text, value: x}], default: {text: y}}",
                "a group (rules:) has no default",
            ),
            (
                "- {target: active, value: true, for_each: {from: 'x[*]', as: x}}",
                "for_each repeats a group",
            ),
            (
                "- {target: managingOrganization, reference: {resource: main, type: Patient}}",
                "type comes from the referenced resource",
            ),
            (
                "- {target: managingOrganization, reference: {key: {kind: k, value: v}}}",
                "a key or identifier reference needs type:",
            ),
            (
                "- {target: managingOrganization, reference: {display: x}}",
                "a reference needs exactly one of resource",
            ),
            ("- {target: active, value: true, when: {all: [], field: x}}", "takes no field"),
            ("- {target: active, value: true, when: {equals: 1}}", "tests a source field"),
        ],
    )
    def test_rule_shape_problems(self, spec_dir: SpecDir, rule: str, message: str) -> None:
        _, problem = problem_for(spec_dir, rule.replace("name[+]", "'name[+]'"))
        assert message in problem.message

    @pytest.mark.parametrize(
        ("security", "message"),
        [
            ("{label: PSY, from: x}", "a security rule needs label: (fixed) or from: with map:"),
            ("{from: x}", "labels read from a field need map:"),
            ("{label: PSY, map: m}", "a fixed label takes no map"),
        ],
    )
    def test_security_shape_problems(self, spec_dir: SpecDir, security: str, message: str) -> None:
        text = spec_text("- {target: active, value: true}", head=f"security:\n  - {security}\n")
        assert message in only_problem(spec_dir({"test/thing": text})).message

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (
                ("unmapped: fail", "unmapped: fail\ndefault: {code: x}"),
                "default: is used only with",
            ),
            (("entries:", "entries_csv: x.csv\nentries:"), "give the codes as entries:"),
            (("  - {source: M, code: male}", "  - {source: M}"), "give the target code"),
        ],
    )
    def test_concept_map_shape_problems(
        self, spec_dir: SpecDir, change: tuple[str, str], message: str
    ) -> None:
        root = spec_dir({}, {"gender": GOOD_MAP.replace(*change)})
        assert message in only_problem(root).message

    def test_security_map_problems(self, spec_dir: SpecDir) -> None:
        def load(map_text: str | None) -> SpecProblem:
            maps = {"labels": map_text} if map_text else {}
            root = spec_dir(
                {
                    "test/thing": spec_text(
                        "- {target: active, value: true}",
                        head="security:\n  - {from: c, map: labels}\n",
                    )
                },
                maps,
            )
            return only_problem(root)

        assert load(None).message == "no usable concept map 'labels'"
        text_map = GOOD_MAP.replace("unmapped: fail", "unmapped: text")
        assert "must be a code: use unmapped: fail" in load(text_map).message

    def test_transform_arg_checks(self, spec_dir: SpecDir) -> None:
        for args, message in [
            ("{system: not a uri}", "is not a URI"),
            ("{system: 'urn:x', use: sometimes}", "must be one of usual, official"),
        ]:
            _, problem = problem_for(
                spec_dir,
                "- {target: 'identifier[+]', from: i, transform: value_to_identifier,"
                f" args: {args}}}",
            )
            assert message in problem.message
        _, problem = problem_for(
            spec_dir,
            "- {target: birthDate, from: d, transform: iso_date_to_date,"
            " args: {not_future: 'yes'}}",
        )
        assert "must be bool, not text" in problem.message
        _, problem = problem_for(
            spec_dir,
            "- {target: deceasedDateTime, from: d, transform: local_datetime_to_instant,"
            " args: {zone: Mars/Olympus}}",
        )
        assert problem.message == "unknown time zone 'Mars/Olympus'"


class TestMoreStructure:
    def test_missing_required_key(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}").replace('version: "2.1"\n', "")
        problem = only_problem(spec_dir({"test/thing": text}))
        assert (problem.message, problem.where, problem.line) == (
            "missing required key 'version'",
            None,
            1,
        )

    def test_empty_list_and_bad_version(self, spec_dir: SpecDir) -> None:
        text = spec_text("- {target: active, value: true}").replace(
            "links: [https://example.org/spec]", "links: []"
        )
        assert only_problem(spec_dir({"test/thing": text})).message == "needs at least one item"
        text = spec_text("- {target: active, value: true}").replace('"2.1"', '"two point one"')
        problem = only_problem(spec_dir({"test/thing": text}))
        assert problem.message == "is not in the expected form"
        assert problem.hint == "e.g. '1.0.0' (letters, digits, '.', '+', '-')"
