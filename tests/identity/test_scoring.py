"""Scoring: each field's agreement level, its weight and its explanation; thresholds."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bridge.identity import scoring
from bridge.identity.nicknames import are_nicknames
from bridge.identity.scoring import Demographics, FieldEvidence, Thresholds, compare
from tests.identity.builders import NHS, person


def demo(**kw: object) -> Demographics:
    return scoring.demographics(person("x", **kw))  # type: ignore[arg-type]


def field(a: Demographics, b: Demographics, name: str) -> FieldEvidence:
    return next(f for f in compare(a, b).fields if f.field == name)


class TestNormalising:
    def test_names_lose_case_accents_and_punctuation(self) -> None:
        assert scoring.normalise_name("  O'Brien-Zoë ") == "obrien zoe"

    def test_postcodes_are_checked_and_compacted(self) -> None:
        assert scoring.normalise_postcode("ls14 1sx") == "LS141SX"
        assert scoring.normalise_postcode("not a postcode") is None

    def test_demographics_reads_the_mapped_patient(self) -> None:
        d = scoring.demographics(
            person("x", given="Mary Ann", middle="Rose", preferred="Molly", nhs_number=NHS[0])
        )
        assert d.nhs_number == NHS[0]
        assert d.firsts == ("mary",)
        assert d.middles == ("ann", "rose")
        assert d.preferred == ("molly",)
        assert d.birth_date == date(1941, 3, 7)
        assert d.postcode == "LS141SX"

    def test_invalid_nhs_numbers_are_not_used(self) -> None:
        assert demo(nhs_number="9990000019").nhs_number is None


class TestFamilyName:
    @pytest.mark.parametrize(
        ("x", "y", "level", "words"),
        [
            ("Smith-Jones", "smith jones", "exact", "the same"),
            ("Smith-Jones", "Jones", "part", "double-barrelled"),
            ("Wolstenholme", "Wolstenhlome", "typo", "transposition"),
            ("Wolstenholme", "Wolstnholme", "typo", "missing"),
            ("Stephens", "Stevens", "sounds-alike", "sound alike"),
            ("Smith", "Okafor", "different", "different"),
        ],
    )
    def test_levels(self, x: str, y: str, level: str, words: str) -> None:
        got = field(demo(family=x), demo(family=y), "family_name")
        assert got.agreement == level
        assert got.weight == scoring.W_FAMILY[level]
        assert words in got.explanation


class TestGivenName:
    @pytest.mark.parametrize(
        ("x", "y", "level"),
        [
            ("Margaret", "margaret", "exact"),
            ("Margaret", "Peggy", "nickname"),
            ("Robert", "Bob", "nickname"),
            ("Philippa", "Philipa", "typo"),
            ("Christopher", "Christ", "prefix"),
            ("Margaret", "Susan", "different"),
        ],
    )
    def test_levels(self, x: str, y: str, level: str) -> None:
        got = field(demo(given=x), demo(given=y), "given_name")
        assert got.agreement == level
        assert got.weight == scoring.W_GIVEN[level]

    def test_a_preferred_name_matches_the_other_records_first_name(self) -> None:
        got = field(demo(given="Susan", preferred="Rosie"), demo(given="Rosie"), "given_name")
        assert got.agreement == "preferred"
        assert "prefers" in got.explanation

    def test_nicknames_share_a_group_only(self) -> None:
        assert are_nicknames("robert", "bob")
        assert not are_nicknames("robert", "albert")  # both shorten to Bert, still different
        assert not are_nicknames("bob", "bob")

    def test_given_and_family_recorded_the_wrong_way_round(self) -> None:
        a = demo(family="Okafor", given="Chidi")
        b = demo(family="Chidi", given="Okafor")
        got = compare(a, b)
        levels = {f.field: f.agreement for f in got.fields}
        assert levels["family_name"] == "swapped-with-given"
        assert levels["given_name"] == "swapped-with-family"

    def test_middle_names_count_only_when_both_have_one(self) -> None:
        assert field(demo(middle="Rose"), demo(middle="R"), "middle_name").agreement == "same"
        assert field(demo(middle="Rose"), demo(middle="Ann"), "middle_name").weight < 0
        fields = [f.field for f in compare(demo(middle="Rose"), demo()).fields]
        assert "middle_name" not in fields


class TestBirthDate:
    @pytest.mark.parametrize(
        ("x", "y", "level"),
        [
            ("1941-03-07", "1941-03-07", "exact"),
            ("1941-03-07", "1941-07-03", "day-month-swapped"),
            ("1941-03-07", "1942-03-07", "one-part-differs"),
            ("1941-03-07", "1950-11-22", "different"),
        ],
    )
    def test_levels(self, x: str, y: str, level: str) -> None:
        got = field(demo(birth_date=x), demo(birth_date=y), "birth_date")
        assert got.agreement == level
        assert got.weight == scoring.W_BIRTH[level]

    def test_missing_is_not_scored(self) -> None:
        got = field(demo(birth_date=None), demo(), "birth_date")
        assert (got.agreement, got.weight) == ("not-compared", 0.0)
        assert "missing" in got.explanation


class TestSexAndPostcode:
    def test_sex(self) -> None:
        assert field(demo(), demo(), "sex").weight == scoring.W_SEX["same"]
        assert field(demo(), demo(gender="male"), "sex").weight == scoring.W_SEX["different"]
        assert field(demo(gender="unknown"), demo(), "sex").agreement == "not-compared"

    @pytest.mark.parametrize(
        ("x", "y", "level"),
        [
            ("LS14 1SX", "ls141sx", "exact"),
            ("LS14 1SX", "LS14 1AB", "sector"),
            ("LS14 1SX", "LS14 6TP", "district"),
            ("LS14 1SX", "BD3 9QQ", "different"),
        ],
    )
    def test_postcode_levels(self, x: str, y: str, level: str) -> None:
        got = field(demo(postcode=x), demo(postcode=y), "postcode")
        assert got.agreement == level
        assert got.weight == scoring.W_POSTCODE[level]


class TestNhsNumber:
    def test_same_number_is_decisive(self) -> None:
        got = compare(demo(nhs_number=NHS[0]), demo(nhs_number=NHS[0], family="Other"))
        assert got.nhs_number_match
        assert Thresholds().decide(got) == "nhs-number"

    def test_different_valid_numbers_never_link(self) -> None:
        got = compare(demo(nhs_number=NHS[0]), demo(nhs_number=NHS[1]))
        assert got.nhs_number_conflict
        assert got.score >= Thresholds().auto  # the demographics alone would link them
        assert Thresholds().decide(got) == "none"

    def test_one_side_without_a_number_is_not_scored(self) -> None:
        got = field(demo(nhs_number=NHS[0]), demo(), "nhs_number")
        assert got.agreement == "not-compared"


class TestThresholds:
    def test_auto_review_none(self) -> None:
        t = Thresholds(auto=14.0, review=8.0)
        same = compare(demo(), demo())
        assert same.score >= 14.0
        assert t.decide(same) == "auto"
        # Same family, date of birth and postcode, another given name: a twin, or a typo.
        twin = compare(demo(), demo(given="Margaret"))
        assert 8.0 <= twin.score < 14.0
        assert t.decide(twin) == "review"
        other = compare(demo(), demo(family="Okafor", given="Chidi", birth_date="1970-01-01"))
        assert t.decide(other) == "none"

    def test_at_the_threshold_counts_as_above(self) -> None:
        match = compare(demo(), demo())
        assert Thresholds(auto=match.score, review=0).decide(match) == "auto"
        assert Thresholds(auto=match.score + 1, review=match.score).decide(match) == "review"

    def test_review_above_auto_is_refused(self) -> None:
        with pytest.raises(ValueError, match="review threshold"):
            Thresholds(auto=5, review=6)

    def test_typical_discrepancies_still_auto_link(self) -> None:
        truth = demo(given="Margaret", middle="Rose", family="Smith-Jones")
        copy = demo(
            given="Peggy", family="Smith Jones", birth_date="1941-07-03", postcode="BD3 9QQ"
        )
        assert Thresholds().decide(compare(truth, copy)) == "auto"


class TestEvidence:
    def test_explained_in_words_without_the_values(self) -> None:
        a = demo(given="Margaret", family="Wolstenholme", nhs_number=NHS[0])
        b = demo(given="Peggy", family="Wolstenhlome", birth_date="1941-07-03")
        match = compare(a, b)
        evidence = scoring.explain(match, Thresholds().decide(match), Thresholds())
        text = json.dumps(evidence)
        for value in ("Margaret", "margaret", "Peggy", "Wolsten", "1941", "LS14", NHS[0]):
            assert value not in text
        assert evidence["score"] == match.score
        assert evidence["summary"].startswith("linked automatically")
        assert {f["field"] for f in evidence["fields"]} >= {"family_name", "birth_date"}
        assert all(f["explanation"] for f in evidence["fields"])
        assert sum(f["weight"] for f in evidence["fields"]) == pytest.approx(match.score)


class TestBlocking:
    def test_swapped_dates_and_family_typos_share_a_key(self) -> None:
        a = scoring.blocking_values(demo(family="Wolstenholme"))
        b = scoring.blocking_values(demo(family="Wolstenhlome", birth_date="1941-07-03"))
        assert a & b

    def test_a_changed_date_of_birth_still_shares_family_and_year(self) -> None:
        a = scoring.blocking_values(demo())
        b = scoring.blocking_values(demo(birth_date="1941-11-30", postcode=None))
        assert {k for k, _ in a & b} == {"family-year"}

    def test_nothing_to_block_on(self) -> None:
        d = scoring.demographics({"resourceType": "Patient"})
        assert scoring.blocking_values(d) == set()
        assert not d.has_names
