"""Policy files: the presets, validation with file, key and hint, and helpers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from consent import DEFAULT_PRESET, PRESETS, PolicyError, load_policy
from consent.errors import PolicyProblem
from consent.policy import Policy, _problem
from tests.consent.builders import ACT_CODE
from tests.consent.worlds import preset


def problems(data: Any) -> list[tuple[str, str, str]]:
    """Return (key, message, hint) for every problem with a policy mapping."""
    with pytest.raises(PolicyError) as info:
        Policy.from_mapping(data, file="test.yaml")
    assert all(p.file == "test.yaml" for p in info.value.problems)
    return [(p.key, p.message, p.hint) for p in info.value.problems]


def edited(**changes: Any) -> dict[str, Any]:
    """Return the explicit-consent preset with top-level keys replaced."""
    data = copy.deepcopy(preset("explicit-consent"))
    data.update(changes)
    return data


class TestPresets:
    @pytest.mark.parametrize("name", PRESETS)
    def test_each_preset_loads(self, name: str) -> None:
        policy = load_policy(name)
        assert policy.name == name
        assert policy.basis == name
        assert not policy.default_permit
        assert policy.file == f"{name}.yaml"

    def test_the_default_is_explicit_consent(self) -> None:
        assert DEFAULT_PRESET == "explicit-consent"
        assert load_policy().name == "explicit-consent"

    def test_presets_differ_only_in_basis_and_words(self) -> None:
        a, b = preset("explicit-consent"), preset("direct-care-implied")
        words = {"name", "title", "description", "legal_basis", "basis"}
        assert {k: v for k, v in a.items() if k not in words} == {
            k: v for k, v in b.items() if k not in words
        }

    def test_labels_map_to_categories_in_two_tiers(self) -> None:
        policy = load_policy()
        tiers = {n: c.tier for n, c in policy.categories.items()}
        assert tiers == {
            "mental_health": "restricted",
            "substance_misuse": "restricted",
            "domestic_abuse": "restricted",
            "safeguarding": "restricted",
            "sexual_health": "never-shared",
            "gender_recognition": "never-shared",
        }
        by_code = {lb.code: cat for lb, cat in policy.label_categories.items()}
        assert by_code["PSY"] == "mental_health"
        assert by_code["HIV"] == "sexual_health"
        assert by_code["GENDER-RECOGNITION"] == "gender_recognition"


class TestLoading:
    def test_loads_a_file_by_path(self, tmp_path: Path) -> None:
        path = tmp_path / "local.yaml"
        path.write_text(yaml.safe_dump(edited(name="local")))
        assert load_policy(path).name == "local"
        assert load_policy(str(path)).file == str(path)

    def test_an_unknown_preset_lists_the_presets(self) -> None:
        with pytest.raises(PolicyError) as info:
            load_policy("explicit")
        assert info.value.file == "explicit"
        assert "explicit-consent" in info.value.hint

    def test_a_missing_file_says_so(self, tmp_path: Path) -> None:
        with pytest.raises(PolicyError, match="cannot read the file"):
            load_policy(tmp_path / "nope.yaml")

    def test_bad_yaml_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text("name: x\nroles: [a\n")
        with pytest.raises(PolicyError) as info:
            load_policy(path)
        assert info.value.key.startswith("line ")

    def test_yaml_errors_without_a_position_still_report(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(text: str) -> Any:
            raise yaml.YAMLError("broken")

        monkeypatch.setattr(yaml, "safe_load", broken)
        with pytest.raises(PolicyError) as info:
            load_policy("explicit-consent")
        assert info.value.key == ""
        assert str(info.value.problems[0]).startswith("explicit-consent.yaml: not valid YAML")

    def test_a_document_that_is_not_a_mapping_is_refused(self) -> None:
        assert problems(["a", "list"])[0][0] == ""


class TestShape:
    def test_an_unknown_key_is_named_with_a_hint(self) -> None:
        data = edited()
        data["roles"]["social_worker"]["grants"] = []
        assert problems(data) == [
            (
                "roles.social_worker.grants",
                "Extra inputs are not permitted",
                "remove it or check its spelling against docs/consent.md",
            )
        ]

    def test_a_missing_key_is_named(self) -> None:
        data = edited()
        del data["audience"]
        [(key, _, hint)] = problems(data)
        assert key == "audience"
        assert hint.startswith("add it")

    def test_a_list_index_is_part_of_the_path(self) -> None:
        data = edited()
        data["break_glass"]["roles"] = ["social_worker", 7]
        [(key, _, hint)] = problems(data)
        assert key == "break_glass.roles[1]"
        assert hint == "write it as a string"

    def test_wrong_values_get_a_matching_hint(self) -> None:
        data = edited(basis="consent", default="maybe")
        data["break_glass"]["duration_minutes"] = 100_000
        found = {k: h for k, _, h in problems(data)}
        assert found == {
            "basis": "use one of the values listed",
            "default": "use one of the values listed",
            "break_glass.duration_minutes": "use a smaller number",
        }

    def test_an_unusual_error_points_at_the_docs(self) -> None:
        data = edited()
        data["sources"]["chs"]["consent_required"] = "yes"
        [(key, _, hint)] = problems(data)
        assert key == "sources.chs.consent_required"
        assert hint == "write true or false"
        data = edited(purposes={"TREAT": 1.5})
        [(key, _, hint)] = problems(data)
        assert hint == "write it as a string"
        data = edited(time_zone=None)
        [(_, _, hint)] = problems(data)
        assert hint == "write it as a string"
        data = edited(roles=[])
        [(_, _, hint)] = problems(data)
        assert hint == "write a mapping of key: value"
        data = edited()
        data["break_glass"]["min_reason_length"] = 0
        [(_, _, hint)] = problems(data)
        assert hint == "use a larger number"
        data = edited()
        data["roles"]["social_worker"]["sources"] = []
        [(_, _, hint)] = problems(data)
        assert hint == "give at least one entry"
        data = edited(title="")
        [(_, _, hint)] = problems(data)
        assert hint == "it cannot be empty"
        data = edited()
        data["break_glass"]["duration_minutes"] = "4h"
        [(_, _, hint)] = problems(data)
        assert hint == "write a whole number"
        data = edited()
        data["categories"]["safeguarding"]["labels"] = "x|y"
        [(_, _, hint)] = problems(data)
        assert hint == "write a list"
        data = edited()
        data["break_glass"] = "none"
        [(_, _, hint)] = problems(data)
        assert hint == "write a mapping of key: value"
        data = edited(sources={"chs": None})
        [(_, _, hint)] = problems(data)
        assert hint == "write a mapping of key: value"

    def test_a_hint_for_an_unlisted_error_type_points_at_the_docs(self) -> None:
        err = {"loc": ("roles", "x", "sources", 0), "msg": "odd", "type": "something_new"}
        found = _problem("f.yaml", err)
        assert found.key == "roles.x.sources[0]"
        assert found.hint == "see docs/consent.md, 'Policy file'"


class TestCrossChecks:
    def test_every_problem_is_reported_at_once(self) -> None:
        data = edited(time_zone="Mars/Olympus")
        data["roles"]["social_worker"]["sources"] = ["chs", "hospital"]
        data["roles"]["social_worker"]["restricted_categories"] = ["safegarding", "sexual_health"]
        data["break_glass"]["roles"] = ["nobody"]
        data["break_glass"]["excluded_categories"] = ["unknown", "gender_recognition"]
        data["categories"]["safeguarding"]["labels"] = ["no-bar", f"{ACT_CODE}|PSY"]
        data["categories"]["safeguarding"]["resource_categories"] = ["sg", "sg"]
        data["sources"]["gp"] = {"text": "GP", "consent_required": True}
        data["restricted_demographics"]["redact"]["patient"] = ["address"]
        found = {key: (message, hint) for key, message, hint in problems(data)}
        assert set(found) == {
            "time_zone",
            "roles.social_worker.sources[1]",
            "roles.social_worker.restricted_categories[0]",
            "roles.social_worker.restricted_categories[1]",
            "break_glass.roles[0]",
            "break_glass.excluded_categories[0]",
            "break_glass.excluded_categories[1]",
            "categories.safeguarding.labels[0]",
            "categories.safeguarding.labels[1]",
            "categories.safeguarding.resource_categories[1]",
            "sources.gp.organisation",
            "restricted_demographics.redact.patient",
        }
        assert found["roles.social_worker.restricted_categories[1]"][1] == (
            "never-shared categories cannot be granted"
        )
        assert "Europe/London" in found["time_zone"][1]

    def test_the_message_lists_every_problem(self) -> None:
        data = edited(time_zone="Mars/Olympus")
        data["break_glass"]["roles"] = ["nobody"]
        with pytest.raises(PolicyError) as info:
            Policy.from_mapping(data, file="mine.yaml")
        text = str(info.value)
        assert text.startswith("invalid consent policy (2 problems):")
        assert "mine.yaml: break_glass.roles[0]: unknown role 'nobody'" in text
        one = PolicyError([PolicyProblem("f.yaml", "", "bad", "fix it")])
        assert str(one) == "invalid consent policy (1 problem):\n  f.yaml: bad (hint: fix it)"


class TestCategoriesText:
    @pytest.mark.parametrize(
        ("names", "words"),
        [
            (set(), ""),
            ({"safeguarding"}, "safeguarding"),
            ({"safeguarding", "mental_health"}, "mental health and safeguarding"),
            (
                {"safeguarding", "mental_health", "substance_misuse"},
                "mental health, substance misuse and safeguarding",
            ),
        ],
    )
    def test_joins_category_words_in_policy_order(self, names: set[str], words: str) -> None:
        assert load_policy().categories_text(names) == words
