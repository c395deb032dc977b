"""Concept map tables and CSV entries."""

from __future__ import annotations

import pytest

from bridge.mapping.conceptmap import ConceptMapProblem, build_concept_map, read_csv_entries
from bridge.mapping.spec import ConceptEntry, ConceptMapFile


def build(entries: list[ConceptEntry], **spec: object) -> object:
    file = ConceptMapFile.model_validate(
        {
            "description": "d",
            "source": "s",
            "target": "urn:target",
            "links": ["https://example.org"],
            "unmapped": "fail",
            "entries": [],
            **spec,
        }
    )
    return build_concept_map(
        "m", "codes/m.yaml", file, [(None, e) for e in entries], resolve=lambda t: t
    )


class TestTable:
    def test_lookup_targets_no_map_and_unknown(self) -> None:
        cmap = build(
            [
                ConceptEntry(source="a", code="A", display="Ay"),
                ConceptEntry(source="b", code="B1"),
                ConceptEntry(source="b", code="B2", system="urn:other"),
                ConceptEntry(source="c", no_map=True),
            ]
        )
        assert cmap.lookup("a") == ({"system": "urn:target", "code": "A", "display": "Ay"},)
        assert [t["code"] for t in cmap.lookup("b")] == ["B1", "B2"]
        assert cmap.lookup("b")[1]["system"] == "urn:other"
        assert cmap.lookup("c") == ()
        assert cmap.lookup("A") is None
        assert not cmap.single_target

    def test_ignore_case(self) -> None:
        cmap = build([ConceptEntry(source="En", code="en")], ignore_case=True)
        assert cmap.lookup("EN") == ({"system": "urn:target", "code": "en"},)

    def test_same_target_twice_is_refused(self) -> None:
        with pytest.raises(ConceptMapProblem, match="maps to 'A' twice"):
            build([ConceptEntry(source="a", code="A"), ConceptEntry(source="a", code="A")])

    def test_entry_needs_a_code_or_no_map(self) -> None:
        with pytest.raises(ValueError, match="give the target code"):
            ConceptEntry(source="a")
        with pytest.raises(ValueError, match="no_map: true means"):
            ConceptEntry(source="a", code="A", no_map=True)


class TestCsv:
    def test_reads_rows_with_lines(self) -> None:
        entries = read_csv_entries("source,code,display,no_map\nA,a,Ay,\nB,,,true\n")
        assert [(line, e.source, e.code, e.no_map) for line, e in entries] == [
            (2, "A", "a", False),
            (3, "B", None, True),
        ]

    @pytest.mark.parametrize(
        ("text", "line"),
        [
            ("source,code\nA,a,extra\n", 2),
            ("source,code,no_map\nA,a,perhaps\n", 2),
            ("source,code\nA,\n", 2),
            ("source\nA\n", 1),
        ],
    )
    def test_problems_name_the_line(self, text: str, line: int) -> None:
        with pytest.raises(ConceptMapProblem) as caught:
            read_csv_entries(text)
        assert caught.value.line == line
