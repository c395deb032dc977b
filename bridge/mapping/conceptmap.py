"""Concept maps: local codes to standard codes, with a declared policy for unknown codes.

A map is a YAML file in ``codes/`` (its id is the file name without ``.yaml``); its entries
are inline or in a CSV file beside it. Each map says what happens to a code it does not
list: ``fail`` the record, keep it as ``text`` (a CodeableConcept with only text and the
local coding), or use the ``default`` target. Entries with ``no_map: true`` are codes known
to have no target (a "physical" problem has no sensitivity label): they produce nothing
and no warning.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.mapping.spec import ConceptEntry, ConceptMapFile, ConceptTarget

CSV_COLUMNS = ("source", "code", "display", "system", "no_map")


class ConceptMapProblem(ValueError):
    """A concept map is inconsistent; ``line`` says where when known."""

    def __init__(self, message: str, *, line: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.hint = hint


def read_csv_entries(text: str) -> list[tuple[int, ConceptEntry]]:
    """Parse CSV concept map entries (header: source,code,display[,system][,no_map])."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("source", "code") if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        raise ConceptMapProblem(
            "the CSV header must name source and code"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown column(s) {', '.join(unknown)}" if unknown else ""),
            line=1,
            hint="columns: " + ", ".join(CSV_COLUMNS),
        )
    entries: list[tuple[int, ConceptEntry]] = []
    for row in reader:
        line = reader.line_num
        values = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            raise ConceptMapProblem("this row has more cells than the header", line=line)
        no_map = values.get("no_map", "").lower()
        if no_map not in ("", "true", "false"):
            raise ConceptMapProblem("no_map must be true, false or empty", line=line)
        try:
            entry = ConceptEntry(
                source=values.get("source", ""),
                code=values.get("code") or None,
                display=values.get("display") or None,
                system=values.get("system") or None,
                no_map=no_map == "true",
            )
        except ValueError as exc:
            reason = str(exc).splitlines()
            raise ConceptMapProblem(
                "; ".join(r.strip() for r in reason[1:] if r.strip() and not r.startswith(" "))
                or str(exc),
                line=line,
            ) from None
        entries.append((line, entry))
    return entries


@dataclass(frozen=True)
class ConceptMap:
    """A compiled concept map."""

    id: str
    file: str
    unmapped: str  # "fail", "text" or "default"
    target_system: str
    source_system: str | None
    default: tuple[dict[str, Any], ...]
    ignore_case: bool
    table: Mapping[str, tuple[dict[str, Any], ...]]  # source code -> targets (() = no_map)

    @property
    def single_target(self) -> bool:
        """Say whether every code maps to at most one target."""
        return all(len(t) <= 1 for t in self.table.values())

    def lookup(self, code: str) -> tuple[dict[str, Any], ...] | None:
        """Return the target codings of a code (``()`` for no_map), None when unmapped."""
        return self.table.get(code.casefold() if self.ignore_case else code)

    def targets(self) -> list[dict[str, Any]]:
        """Return every target coding, the default included."""
        found = [t for targets in self.table.values() for t in targets]
        return found + list(self.default)


def build_concept_map(
    map_id: str,
    file: str,
    spec: ConceptMapFile,
    entries: list[tuple[int | None, ConceptEntry]],
    *,
    resolve: Any,
) -> ConceptMap:
    """Check entries for clashes and build the lookup table.

    ``resolve`` turns a ``$config.name`` value into its configured text (raising
    ``ConceptMapProblem`` for an unknown name) and returns other text unchanged.
    """
    target_system = resolve(spec.target)
    source_system = resolve(spec.source_system) if spec.source_system else None
    table: dict[str, list[dict[str, Any]]] = {}
    first_line: dict[str, int | None] = {}
    no_map: set[str] = set()
    for line, entry in entries:
        key = entry.source.casefold() if spec.ignore_case else entry.source
        if key in first_line:
            earlier = first_line[key]
            where = f" (first on line {earlier})" if earlier else ""
            if entry.no_map or key in no_map:
                raise ConceptMapProblem(
                    f"source code {entry.source!r} is listed again{where}, and one entry says"
                    " no_map",
                    line=line,
                )
        else:
            first_line[key] = line
            table[key] = []
        if entry.no_map:
            no_map.add(key)
            continue
        coding = _coding(
            ConceptTarget(code=entry.code or "", display=entry.display, system=entry.system),
            target_system,
            resolve,
        )
        if coding in table[key]:
            raise ConceptMapProblem(
                f"source code {entry.source!r} maps to {coding['code']!r} twice", line=line
            )
        table[key].append(coding)
    default = (_coding(spec.default, target_system, resolve),) if spec.default else ()
    return ConceptMap(
        id=map_id,
        file=file,
        unmapped=spec.unmapped,
        target_system=target_system,
        source_system=source_system,
        default=default,
        ignore_case=spec.ignore_case,
        table={k: tuple(v) for k, v in table.items()},
    )


def _coding(target: ConceptTarget, system: str, resolve: Any) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": resolve(target.system) if target.system else system}
    coding["code"] = target.code
    if target.display:
        coding["display"] = target.display
    return coding
