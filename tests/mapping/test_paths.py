"""Source paths and templates."""

from __future__ import annotations

from typing import ClassVar

import pytest

from bridge.mapping.paths import (
    PathSyntaxError,
    Scope,
    SourceShapeError,
    UnknownNameError,
    clean,
    parse_path,
    parse_template,
)

CONFIG = {"person_system": "https://example.org/Id/person"}
NONE: frozenset[str] = frozenset()


def scope(**fields: object) -> Scope:
    return Scope(fields, {"id": "r1", "system": "asc", "kind": "person", "version": None})


class TestClean:
    @pytest.mark.parametrize("missing", [None, "", "  ", [], {}])
    def test_missing(self, missing: object) -> None:
        assert clean(missing) is None

    def test_trims_and_replaces_odd_spaces(self) -> None:
        assert clean(" a\u00a0b\u2003c\t") == "a b c"
        assert clean("line\nbreak") == "line\nbreak"

    def test_keeps_other_values(self) -> None:
        assert clean(0) == 0
        assert clean(False) is False


class TestParsePath:
    def test_reads_nested_indexed_and_fanned_out_values(self) -> None:
        fields = scope(a={"b": [{"c": "x"}, {"c": " y "}, {"c": None}]})
        assert parse_path("a.b[1].c", variables=NONE, config=CONFIG).get(fields) == "y"
        fan = parse_path("a.b[*].c", variables=NONE, config=CONFIG)
        assert fan.fans_out
        assert fan.get_all(fields) == [("x", "a.b[0].c"), ("y", "a.b[1].c")]
        assert fan.get(fields) == ["x", "y"]

    def test_missing_steps_read_as_missing(self) -> None:
        path = parse_path("a.b[3].c", variables=NONE, config=CONFIG)
        assert path.get(scope()) is None
        assert path.get(scope(a={"b": []})) is None

    def test_wrong_shapes_raise_naming_the_path(self) -> None:
        with pytest.raises(SourceShapeError) as caught:
            parse_path("a.b[0]", variables=NONE, config=CONFIG).get(scope(a={"b": "text"}))
        assert caught.value.path == "a.b"
        with pytest.raises(SourceShapeError):
            parse_path("a[*].b", variables=NONE, config=CONFIG).get_all(scope(a=["x"]))

    def test_config_is_resolved_when_compiled(self) -> None:
        path = parse_path("$config.person_system", variables=NONE, config=CONFIG)
        assert path.is_constant
        assert path.get(scope()) == "https://example.org/Id/person"

    def test_record_attributes(self) -> None:
        assert parse_path("$record.kind", variables=NONE, config=CONFIG).get(scope()) == "person"

    def test_variables(self) -> None:
        path = parse_path("$item.code", variables=frozenset({"item"}), config=CONFIG)
        bound = scope().bind("item", {"code": "X"}, "items[0]")
        assert path.get(bound) == "X"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("a..b", "has an empty part"),
            ("a.$b", "only the first part of a path may start with '$'"),
            ("a[x]", "is not a field name"),
            ("$record.nope", "$record has only"),
            ("$config", "write a configuration value as $config.<name>"),
            ("", "a path must be non-empty text"),
        ],
    )
    def test_syntax_errors(self, text: str, message: str) -> None:
        with pytest.raises(PathSyntaxError, match=message.replace("$", r"\$").replace("[", r"\[")):
            parse_path(text, variables=NONE, config=CONFIG)

    def test_unknown_names_suggest_near_ones(self) -> None:
        with pytest.raises(UnknownNameError) as caught:
            parse_path("$config.person_sytem", variables=NONE, config=CONFIG)
        assert caught.value.hint == "did you mean person_system?"
        with pytest.raises(UnknownNameError) as caught:
            parse_path("$nede", variables=frozenset({"need"}), config=CONFIG)
        assert caught.value.hint == "did you mean $need?"


class TestMatch:
    """``[key=value]``: the first item of a list whose key has the value (HL7 CX by type)."""

    PID3: ClassVar[list[dict[str, str]]] = [
        {"1": "9434765919", "5": "NH"},
        {"1": "CHS1", "5": "MR"},
        {"1": "CHS0", "5": "MR"},
    ]

    def test_picks_the_first_matching_item(self) -> None:
        path = parse_path("PID.3[5=MR].1", variables=NONE, config=CONFIG)
        fields = scope(PID={"3": self.PID3})
        assert not path.fans_out
        assert path.get(fields) == "CHS1"
        assert path.get_all(fields) == [("CHS1", "PID.3[1].1")]

    def test_no_match_reads_as_missing(self) -> None:
        path = parse_path("PID.3[5=XX].1", variables=NONE, config=CONFIG)
        assert path.get(scope(PID={"3": self.PID3})) is None
        assert path.get_all(scope(PID={"3": self.PID3})) == []
        assert path.get(scope(PID={})) is None

    def test_values_are_trimmed_and_numbers_compare_as_text(self) -> None:
        items = [None, {"5": " NH "}, {"type": 2, "v": "two"}]
        assert parse_path("a[5=NH]", variables=NONE, config=CONFIG).get(scope(a=items)) == {
            "5": " NH "
        }
        assert parse_path("a[type=2].v", variables=NONE, config=CONFIG).get(scope(a=items)) == "two"
        flags = [{"k": True}]
        assert parse_path("a[k=True]", variables=NONE, config=CONFIG).get(scope(a=flags)) is None

    def test_in_templates_conditions_and_on_variables(self) -> None:
        template = parse_template("{PID.3[5=MR].1}", variables=NONE, config=CONFIG)
        assert template.render(scope(PID={"3": self.PID3})) == "CHS1"
        path = parse_path("$cx[5=NH].1", variables=frozenset({"cx"}), config=CONFIG)
        assert path.get(scope().bind("cx", self.PID3, "PID.3")) == "9434765919"

    def test_wrong_shapes_name_the_path(self) -> None:
        path = parse_path("a[5=MR].1", variables=NONE, config=CONFIG)
        with pytest.raises(SourceShapeError) as caught:
            path.get(scope(a={"5": "MR"}))
        assert caught.value.path == "a"
        with pytest.raises(SourceShapeError) as caught:
            path.get_all(scope(a=["MR"]))
        assert caught.value.path == "a[0]"

    def test_other_mappings_and_sequences_read_alike(self) -> None:
        from types import MappingProxyType

        path = parse_path("PID.3[5=MR].1", variables=NONE, config=CONFIG)
        frozen = MappingProxyType({"3": [MappingProxyType(item) for item in self.PID3]})
        assert path.get(scope(PID=frozen)) == "CHS1"
        with pytest.raises(SourceShapeError) as caught:
            path.get(scope(PID={"3": ["MR"]}))
        assert caught.value.path == "PID.3[0]"

    @pytest.mark.parametrize("bad", ["a[=MR]", "a[5=]", "a[5.1=MR]", "a[5=M]R]"])
    def test_malformed(self, bad: str) -> None:
        with pytest.raises(PathSyntaxError):
            parse_path(bad, variables=NONE, config=CONFIG)


class TestTemplate:
    def test_renders(self) -> None:
        template = parse_template(
            "{a}:{b.c} {$config.person_system}", variables=NONE, config=CONFIG
        )
        assert template.render(scope(a=1, b={"c": "x"})) == "1:x https://example.org/Id/person"
        assert [p.text for p in template.paths] == ["a", "b.c"]

    def test_missing_placeholder_is_missing(self) -> None:
        assert parse_template("{a}-{b}", variables=NONE, config=CONFIG).render(scope(a=1)) is None

    def test_non_scalar_placeholder_raises(self) -> None:
        with pytest.raises(SourceShapeError):
            parse_template("{a}", variables=NONE, config=CONFIG).render(scope(a=[1]))
        with pytest.raises(SourceShapeError):
            parse_template("{a}", variables=NONE, config=CONFIG).render(scope(a=True))

    @pytest.mark.parametrize("bad", ["{a", "a}", "{a[*]}"])
    def test_bad_templates(self, bad: str) -> None:
        with pytest.raises(PathSyntaxError):
            parse_template(bad, variables=NONE, config=CONFIG)
