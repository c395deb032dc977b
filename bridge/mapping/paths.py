"""Source paths (``address.lines[0]``, ``eligible_outcomes[*]``, ``PID.3[5=MR].1``, ``$need``).

A path reads a value out of a record's JSON-shaped fields, or out of a variable bound by
``for_each`` (``$name``), the record itself (``$record.id``) or the deployment configuration
(``$config.asc_person_system``, resolved once when the spec is compiled). Reading never
raises for absent data: a missing key, ``null``, blank text, ``[]`` and ``{}`` all read as
"missing" (``None``). Text is trimmed. Data of the wrong shape (indexing into text, say)
raises :class:`SourceShapeError`, because the record is not what the spec expects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME = r"[^.\[\]{}$\s][^.\[\]{}]*"
# An index: [2], every item [*], or the first item whose key has a value [5=MR].
_BRACKET = r"\[(?:\d+|\*|[^\[\]{}=.\s]+=[^\[\]{}=]+)\]"
_SEGMENT = re.compile(rf"(\$?{_NAME})((?:{_BRACKET})*)")
_INDEX = re.compile(r"\[(\d+|\*|[^\[\]{}=.\s]+=[^\[\]{}=]+)\]")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")

RECORD_ATTRIBUTES = ("id", "system", "kind", "version")
# Whitespace other than space, CR, LF and tab: FHIR strings may not hold it (no-break space…).
_ODD_SPACE = re.compile(r"[^\S \r\n\t]")


class PathSyntaxError(ValueError):
    """A path or template is not well formed."""


class SourceShapeError(Exception):
    """The record has data of the wrong shape at ``path``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def clean(value: Any) -> Any:
    """Return ``value`` with text trimmed, or None when it is missing, blank or empty."""
    if value is None:
        return None
    if isinstance(value, str):
        # Most text is printable ASCII or plain letters: skip the regex then.
        if not value.isprintable():
            value = _ODD_SPACE.sub(" ", value)
        value = value.strip()
        return value or None
    if isinstance(value, list | dict) and not value:
        return None
    return value


@dataclass
class Scope:
    """What a rule can read: the record's fields, the record itself and bound variables."""

    fields: Mapping[str, Any]
    record: Mapping[str, Any]
    # name -> (value, the concrete source path it came from, e.g. "eligible_outcomes[2]")
    variables: dict[str, tuple[Any, str]] = field(default_factory=dict)

    def bind(self, name: str, value: Any, path: str) -> Scope:
        """Return a child scope with one more variable."""
        return Scope(self.fields, self.record, {**self.variables, name: (value, path)})


# Steps: a key into an object, an index into a list, every item of a list, or the first
# item of a list whose key has a value (``[5=MR]``: arg is (key, value)).
_KEY, _INDEX_STEP, _EACH, _MATCH = 0, 1, 2, 3


@dataclass(frozen=True)
class SourcePath:
    """A compiled source path."""

    text: str
    root: str  # the first name: a field, or "$var"
    steps: tuple[tuple[int, Any], ...]
    constant: Any = None  # the value of a $config path
    is_constant: bool = False
    # Precomputed: paths are read for every record.
    fans_out: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fans_out", any(kind == _EACH for kind, _ in self.steps))

    @property
    def field_name(self) -> str | None:
        """Return the record field the path starts from (None for variables)."""
        return None if self.root.startswith("$") else self.root

    @property
    def variable(self) -> str | None:
        """Return the variable the path starts from, without ``$`` (None for fields)."""
        return self.root[1:] if self.root.startswith("$") else None

    def _start(self, scope: Scope) -> tuple[Any, str]:
        if self.root.startswith("$"):
            name = self.root[1:]
            if name == "record":
                return scope.record, "$record"
            value, origin = scope.variables[name]
            return value, origin
        return scope.fields.get(self.root), self.root

    def get(self, scope: Scope) -> Any:
        """Return the value at the path (None when missing); ``[*]`` paths return a list."""
        if self.is_constant:
            return self.constant
        if not self.steps and self.root[0] != "$":
            return clean(scope.fields.get(self.root))
        if self.fans_out:
            items = [value for value, _ in self.get_all(scope)]
            return items or None
        # The common case, plain JSON objects and lists, without naming each step on the
        # way (paths are read for every rule of every record); anything else, and every
        # error, takes the careful walk below.
        if self.root[0] == "$":
            value = self._start(scope)[0]
        else:
            value = scope.fields.get(self.root)
        for kind, arg in self.steps:
            if value is None:
                return None
            if kind == _KEY and type(value) is dict:
                value = value.get(arg)
            elif kind == _INDEX_STEP and type(value) is list:
                value = value[arg] if arg < len(value) else None
            elif kind == _MATCH and type(value) is list:
                key, wanted = arg
                for item in value:
                    if type(item) is not dict:
                        if item is None:
                            continue
                        return self._walk(scope)
                    if _matches(item.get(key), wanted):
                        value = item
                        break
                else:
                    return None
            else:
                return self._walk(scope)
        return clean(value)

    def _walk(self, scope: Scope) -> Any:
        """Read the path step by step, naming where wrongly shaped data is met."""
        value, where = self._start(scope)
        for kind, arg in self.steps:
            if value is None:
                return None
            if kind == _KEY:
                if not isinstance(value, Mapping):
                    raise SourceShapeError(
                        where, f"expected an object with '{arg}', got {kind_of(value)}"
                    )
                value = value.get(arg)
                where = f"{where}.{arg}"
            elif kind == _MATCH:
                value, where = _match(value, arg, where)
            else:
                if not isinstance(value, list):
                    raise SourceShapeError(where, f"expected a list, got {kind_of(value)}")
                value = value[arg] if arg < len(value) else None
                where = f"{where}[{arg}]"
        return clean(value)

    def get_all(self, scope: Scope) -> list[tuple[Any, str]]:
        """Return every (value, concrete path) the path reaches, skipping missing ones."""
        if self.is_constant:
            return [] if self.constant is None else [(self.constant, self.text)]
        start, where = self._start(scope)
        current: list[tuple[Any, str]] = [(start, where)]
        for kind, arg in self.steps:
            following: list[tuple[Any, str]] = []
            for value, at in current:
                if value is None:
                    continue
                if kind == _KEY:
                    if not isinstance(value, Mapping):
                        raise SourceShapeError(
                            at, f"expected an object with '{arg}', got {kind_of(value)}"
                        )
                    following.append((value.get(arg), f"{at}.{arg}"))
                elif kind == _MATCH:
                    following.append(_match(value, arg, at))
                elif not isinstance(value, list):
                    raise SourceShapeError(at, f"expected a list, got {kind_of(value)}")
                elif kind == _INDEX_STEP:
                    following.append((value[arg] if arg < len(value) else None, f"{at}[{arg}]"))
                else:
                    following.extend((item, f"{at}[{i}]") for i, item in enumerate(value))
            current = following
        return [(v, at) for v, at in ((clean(v), at) for v, at in current) if v is not None]


def _matches(found: Any, wanted: str) -> bool:
    """Say whether a value reads as ``wanted`` (text trimmed; numbers as text; never a flag)."""
    found = clean(found)
    if type(found) is str:
        return found == wanted
    return found is not None and not isinstance(found, bool) and str(found) == wanted


def _match(value: Any, test: tuple[str, str], where: str) -> tuple[Any, str]:
    """Return the first item of a list whose ``key`` reads ``wanted`` (None when none does)."""
    key, wanted = test
    if not isinstance(value, list):
        raise SourceShapeError(where, f"expected a list, got {kind_of(value)}")
    for i, item in enumerate(value):
        if item is None:
            continue
        if not isinstance(item, Mapping):
            raise SourceShapeError(
                f"{where}[{i}]", f"expected an object with '{key}', got {kind_of(item)}"
            )
        if _matches(item.get(key), wanted):
            return item, f"{where}[{i}]"
    return None, f"{where}[{key}={wanted}]"


def kind_of(value: Any) -> str:
    """Name the JSON type of a value, as an error message would."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def parse_path(
    text: str, *, variables: frozenset[str], config: Mapping[str, str] | None
) -> SourcePath:
    """Compile a path; raise :class:`PathSyntaxError` saying what is wrong.

    ``variables`` are the ``for_each`` names in scope; ``config`` the deployment values
    (``None`` skips checking ``$config`` names, e.g. when the config file itself is broken).
    """
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError("a path must be non-empty text")
    text = text.strip()
    parts = _split(text)
    steps: list[tuple[int, Any]] = []
    root = ""
    for n, part in enumerate(parts):
        match = _SEGMENT.fullmatch(part)
        if not match:
            raise PathSyntaxError(
                f"'{part}' is not a field name: use letters, digits, '_' or '-', then [n], [*]"
                " or [key=value]"
            )
        name, indexes = match.group(1), match.group(2)
        if name.startswith("$") and n > 0:
            raise PathSyntaxError(f"'{name}': only the first part of a path may start with '$'")
        if n == 0:
            root = name
        else:
            steps.append((_KEY, name))
        for index in _INDEX.findall(indexes):
            if index == "*":
                steps.append((_EACH, None))
            elif "=" in index:
                key, _, wanted = index.partition("=")
                steps.append((_MATCH, (key, wanted.strip())))
            else:
                steps.append((_INDEX_STEP, int(index)))
    path = SourcePath(text=text, root=root, steps=tuple(steps))
    if root.startswith("$"):
        return _check_variable(path, variables=variables, config=config)
    return path


def _split(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    if any(not p for p in parts):
        raise PathSyntaxError(f"'{text}' has an empty part (two dots, or a dot at an end)")
    return parts


def _check_variable(
    path: SourcePath, *, variables: frozenset[str], config: Mapping[str, str] | None
) -> SourcePath:
    name = path.root[1:]
    if name == "config":
        if len(path.steps) != 1 or path.steps[0][0] != _KEY:
            raise PathSyntaxError("write a configuration value as $config.<name>")
        key = path.steps[0][1]
        if config is not None and key not in config:
            raise UnknownNameError("configuration value", key, sorted(config))
        return SourcePath(
            text=path.text,
            root=path.root,
            steps=path.steps,
            constant=None if config is None else config[key],
            is_constant=True,
        )
    if name == "record":
        if len(path.steps) != 1 or path.steps[0][1] not in RECORD_ATTRIBUTES:
            raise PathSyntaxError(
                "$record has only " + ", ".join(f"$record.{a}" for a in RECORD_ATTRIBUTES)
            )
        return path
    if name not in variables:
        raise UnknownNameError("variable", f"${name}", sorted(f"${v}" for v in variables))
    return path


class UnknownNameError(PathSyntaxError):
    """A path names a variable or configuration value that does not exist."""

    def __init__(self, what: str, name: str, known: list[str]) -> None:
        from difflib import get_close_matches

        near = get_close_matches(name, known, n=3)
        hint = (
            f"did you mean {', '.join(near)}?"
            if near
            else (f"known: {', '.join(known)}" if known else f"no {what}s are defined here")
        )
        super().__init__(f"unknown {what} '{name}'; {hint}")
        self.name = name
        self.hint = hint


@dataclass(frozen=True)
class Template:
    """Text with ``{path}`` placeholders; ``{{`` and ``}}`` are literal braces."""

    text: str
    parts: tuple[str | SourcePath, ...]

    @property
    def paths(self) -> tuple[SourcePath, ...]:
        """Return the placeholders' paths."""
        return tuple(p for p in self.parts if isinstance(p, SourcePath))

    def render(self, scope: Scope) -> str | None:
        """Return the text, or None when any placeholder is missing."""
        parts = self.parts
        if len(parts) == 1 and type(parts[0]) is SourcePath:
            # The common "{person_id}": no joining needed.
            value = parts[0].get(scope)
            if value is None or type(value) is str:
                return value
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.get(scope)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise SourceShapeError(
                    part.text, f"expected text or a number, got {kind_of(value)}"
                )
            out.append(str(value))
        return "".join(out).strip() or None


def parse_template(
    text: str, *, variables: frozenset[str], config: Mapping[str, str] | None
) -> Template:
    """Compile a template; raise :class:`PathSyntaxError` for a bad placeholder."""
    parts: list[str | SourcePath] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[pos : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        else:
            path = parse_path(match.group(1), variables=variables, config=config)
            if path.fans_out:
                raise PathSyntaxError(f"'{{{path.text}}}': a template needs one value, not [*]")
            parts.append(str(path.constant) if path.is_constant else path)
        pos = match.end()
    tail = text[pos:]
    if "{" in tail or "}" in tail:
        raise PathSyntaxError("unbalanced '{' or '}' (write {{ or }} for a literal brace)")
    parts.append(tail)
    merged: list[str | SourcePath] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return Template(text=text, parts=tuple(merged))
