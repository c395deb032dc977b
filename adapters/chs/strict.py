"""Check a parsed message's structure against HL7's definition, with hl7apy.

Optional (``strict=True``) because it costs about 15 ms a message — a hundred times the fast
parse. Two checks, for the message's version and structure (MSH-9.3, or the structure its
event uses in that version):

1. segment order and cardinality: the segment ids must spell a sequence the structure
   allows (hl7apy's structure tables compiled to a small automaton here, because hl7apy
   itself groups segments by name and does not notice order);
2. each segment's content: required fields present, no fields beyond those the version
   defines, the right data type per field (hl7apy's validator).

Values are not checked against data type formats: HL7 UK feeds put ODS codes in
numeric-typed components (XON-3), which such a check would reject. Z-segments are left out;
HL7 lets them appear anywhere.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from adapters.chs.hl7 import SEGMENT_SEQUENCE_ERROR, Hl7Error

if TYPE_CHECKING:
    from adapters.chs.hl7 import ParsedMessage

# hl7apy names positions like "PID_3" or "ADT_A01.PV1"; the last such name is the place.
_FIELD_NAME = re.compile(r"\b([A-Z][A-Z0-9]{2})_(\d+)\b")
_SEGMENT_NAME = re.compile(r"(?:^|[.\s<])([A-Z][A-Z0-9]{2})(?=[\s>.,:'\]]|$)")
_NOT_SEGMENTS = frozenset({"ADT", "ACK", "HL7"})


@dataclass
class _Automaton:
    """A Thompson NFA over segment ids: ``edges[state]`` → [(label or None, next)]."""

    edges: list[list[tuple[str | None, int]]] = field(default_factory=list)
    accept: int = 0

    def state(self) -> int:
        """Add a state and return its number."""
        self.edges.append([])
        return len(self.edges) - 1

    def closure(self, states: set[int]) -> set[int]:
        """Return the states reachable from ``states`` without reading a segment."""
        stack, seen = list(states), set(states)
        while stack:
            for label, nxt in self.edges[stack.pop()]:
                if label is None and nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    def expected(self, states: set[int]) -> list[str]:
        """Return the segment ids that may come next from ``states``."""
        return sorted({label for s in states for label, _ in self.edges[s] if label})


def _build(nfa: _Automaton, ref: Any, groups: dict[str, Any], start: int) -> int:
    """Add the fragment for an hl7apy structure reference after ``start``; return its end."""
    kind, children = ref[0], ref[1]
    if kind == "choice":
        end = nfa.state()
        for child in children:
            nfa.edges[_child(nfa, child, groups, start)].append((None, end))
        return end
    current = start
    for child in children:
        current = _child(nfa, child, groups, current)
    return current


def _child(nfa: _Automaton, child: Any, groups: dict[str, Any], start: int) -> int:
    """Add one child with its cardinality (min, max; -1 = unbounded) after ``start``."""
    name, _ref, (low, high), kind = child[0], child[1], child[2], child[3]

    def once(at: int) -> int:
        if kind == "GRP":
            return _build(nfa, groups[name], groups, at)
        end = nfa.state()
        nfa.edges[at].append((name, end))
        return end

    current = start
    for _ in range(low):
        current = once(current)
    if high == -1:
        loop_start = nfa.state()
        nfa.edges[current].append((None, loop_start))
        loop_end = once(loop_start)
        nfa.edges[loop_end].append((None, loop_start))
        after = nfa.state()
        nfa.edges[loop_start].append((None, after))
        return after
    ends = [current]
    for _ in range(high - low):
        current = once(current)
        ends.append(current)
    after = nfa.state()
    for end in ends:
        nfa.edges[end].append((None, after))
    return after


@cache
def _required(structure: str, version: str) -> tuple[str, ...]:
    """Return the segments a structure requires at its top level, in order."""
    module = importlib.import_module(f"hl7apy.v{version.replace('.', '_')}")
    ref = module.MESSAGES.get(structure)
    if ref is None or ref[0] != "sequence":
        return ()
    return tuple(c[0] for c in ref[1] if c[3] == "SEG" and c[2][0] >= 1)


@cache
def _automaton(structure: str, version: str) -> _Automaton | None:
    """Return the automaton of a message structure in a version, or None if unknown."""
    module = importlib.import_module(f"hl7apy.v{version.replace('.', '_')}")
    ref = module.MESSAGES.get(structure)
    if ref is None:
        return None
    nfa = _Automaton()
    start = nfa.state()
    nfa.accept = _build(nfa, ref, module.GROUPS, start)
    return nfa


def check_order(segment_ids: list[str], structure: str, version: str) -> None:
    """Raise :class:`Hl7Error` at the first segment out of place for the structure."""
    nfa = _automaton(structure, version)
    if nfa is None:
        raise Hl7Error(
            f"HL7 v{version} has no message structure {structure!r}",
            field="MSH-9",
            condition=SEGMENT_SEQUENCE_ERROR,
        )
    states = nfa.closure({0})
    for n, sid in enumerate(segment_ids, 1):
        step = {nxt for s in states for label, nxt in nfa.edges[s] if label == sid}
        if not step:
            expected = ", ".join(nfa.expected(states)) or "the end of the message"
            raise Hl7Error(
                f"segment {n} ({sid}) is out of place in {structure} (HL7 v{version}); "
                f"expected {expected}",
                field=sid,
                condition=SEGMENT_SEQUENCE_ERROR,
            )
        states = nfa.closure(step)
    if nfa.accept not in states:
        allowed = nfa.expected(states)
        absent = [sid for sid in _required(structure, version) if sid not in segment_ids]
        where = absent[0] if absent else (allowed[0] if allowed else None)
        raise Hl7Error(
            f"{structure} (HL7 v{version}) ends too early: {where} is required "
            f"(expected {', '.join(allowed)})",
            field=where,
            condition=SEGMENT_SEQUENCE_ERROR,
        )


def _location(text: str) -> str | None:
    """Return the HL7 position (``PID-3``, ``PV1``) an hl7apy message talks about."""
    fields = _FIELD_NAME.findall(text)
    if fields:
        segment, position = fields[-1]
        return f"{segment}-{position}"
    names = [n for n in _SEGMENT_NAME.findall(text) if n not in _NOT_SEGMENTS]
    return names[-1] if names else None


def check_structure(text: str, parsed: ParsedMessage) -> None:
    """Raise :class:`Hl7Error` naming the first place the message breaks its structure."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.core import Message
    from hl7apy.parser import parse_segments

    header = parsed.header
    seps = header.separators
    structure = str(parsed.meta.get("structure") or "")
    segments = [s for s in text.split("\r") if s.strip() and not s.startswith("Z")]
    check_order([s[:3] for s in segments], structure, header.version)
    # hl7apy needs all four encoding characters; a message that declares fewer uses none
    # of the missing ones, so the defaults stand in for them.
    encoding = {
        "FIELD": seps.field,
        "COMPONENT": seps.component,
        "REPETITION": seps.repetition or "~",
        "ESCAPE": seps.escape or "\\",
        "SUBCOMPONENT": seps.subcomponent or "&",
        "SEGMENT": "\r",
    }
    try:
        message = Message(
            structure,
            version=header.version,
            validation_level=VALIDATION_LEVEL.TOLERANT,
            encoding_chars=encoding,
        )
        message.children = parse_segments(
            "\r".join(segments),
            header.version,
            encoding,
            VALIDATION_LEVEL.TOLERANT,
            message.reference,
            True,
        )
        message.validate()
    except Exception as exc:  # hl7apy raises many unrelated types; translate them all
        detail = str(exc) or type(exc).__name__
        if detail.endswith("[None]"):
            detail = f"{detail[: -len(': [None]')]}: more fields than HL7 v{header.version} defines"
        raise Hl7Error(
            f"does not match the {structure} structure of HL7 v{header.version}: {detail}",
            field=_location(detail),
            condition=SEGMENT_SEQUENCE_ERROR,
        ) from None
