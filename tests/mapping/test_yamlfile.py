"""The line-keeping YAML loader."""

from __future__ import annotations

import pytest

from bridge.mapping.yamlfile import LineDict, LineList, YamlSyntaxError, line_of, load_yaml


class TestLoadYaml:
    def test_keeps_lines_of_keys_and_items(self) -> None:
        tree = load_yaml("a: 1\nb:\n  - x: 1\n    y: 2\n  - z\n")
        assert isinstance(tree, LineDict)
        assert tree.key_lines == {"a": 1, "b": 2}
        assert isinstance(tree["b"], LineList)
        assert tree["b"].item_lines == [3, 5]
        assert tree["b"][0].key_lines == {"x": 3, "y": 4}

    def test_yes_no_and_dates_stay_text(self) -> None:
        tree = load_yaml("a: yes\nb: no\nc: 2026-01-01\nd: true\ne: NO\n")
        assert tree == {"a": "yes", "b": "no", "c": "2026-01-01", "d": True, "e": "NO"}

    def test_duplicate_key_is_an_error_with_its_line(self) -> None:
        with pytest.raises(YamlSyntaxError) as caught:
            load_yaml("a: 1\nb: 2\na: 3\n")
        assert caught.value.line == 3
        assert "the key 'a' appears twice (first on line 1)" in caught.value.message

    def test_syntax_error_line(self) -> None:
        with pytest.raises(YamlSyntaxError) as caught:
            load_yaml("a:\n  - b\n c: d\n")
        assert caught.value.line == 3


class TestLineOf:
    def test_deepest_reachable_node(self) -> None:
        tree = load_yaml("a:\n  - x: 1\n    y:\n      z: 2\n")
        assert line_of(tree, ("a", 0, "y", "z")) == 4
        assert line_of(tree, ("a", 0, "nope")) == 2
        # Names pydantic adds for union members are not data and are skipped.
        assert line_of(tree, ("a", 0, "str", "y")) == 3
