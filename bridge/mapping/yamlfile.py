"""Read YAML keeping line numbers, so every spec problem can be reported as ``file:line``.

The loader is PyYAML's safe loader with two changes that spare integration engineers the
classic YAML 1.1 surprises: only ``true``/``false`` are booleans (``yes``, ``no``, ``on``,
``off`` stay text, as ``NO`` the ISO country code must) and dates stay text (FHIR wants
the string anyway). Duplicate keys are an error rather than "last one wins".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # type: ignore[assignment]
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class LineDict(dict[Any, Any]):
    """A YAML mapping that remembers its own line and each key's line (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list[Any]):
    """A YAML sequence that remembers its own line and each item's line (1-based)."""

    line: int = 0
    item_lines: list[int]


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice."""


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


# Copy the resolver table before editing it, so PyYAML's own loaders are untouched.
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be plain text", key_node.start_mark
            ) from None
        if key in result:
            raise DuplicateKeyError(
                "while reading a mapping",
                node.start_mark,
                f"the key {key!r} appears twice (first on line {result.key_lines[key]})",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line`` says where the parser gave up."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_yaml(text: str) -> Any:
    """Parse YAML text into LineDict/LineList trees; raise :class:`YamlSyntaxError`."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlSyntaxError(message or "not valid YAML", line) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), None) from None


def line_of(tree: Any, loc: Iterable[Any]) -> int | None:
    """Return the line of the deepest node of ``tree`` that ``loc`` reaches (a key's own line)."""
    line = getattr(tree, "line", None)
    node = tree
    for part in loc:
        if isinstance(node, LineDict) and not isinstance(part, int) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            # Pydantic adds union member names (``str``, ``list[str]``) that are not data.
            continue
        inner = getattr(node, "line", None)
        if inner is not None and not isinstance(node, LineDict | LineList):
            line = inner
    return line
