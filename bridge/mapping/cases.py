"""Golden cases (``cases/N.input.json`` → ``N.output.json``), records from JSON, and diffs.

A case's input is a source record as JSON; its expected side is written by hand from the
input and the spec: ``N.output.json`` (the list of resources) or ``N.error.json`` (the
MappingError expected: its code and any of spec, rule, source_field, element). Cases run
with ``now`` fixed at :data:`CASE_NOW`, so date checks are repeatable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.base import SourceRecord
from bridge.core.errors import BridgeError, MappingError, MappingSpecError
from bridge.mapping.loader import CASES_DIR, Mappings
from bridge.mapping.paths import kind_of

# The synthetic sample's "today" (docs/synthetic-data.md): 2026-11-01 in Europe/London.
CASE_NOW = datetime(2026, 11, 1, tzinfo=UTC)
RECORD_KEYS = ("system", "kind", "id", "version", "fields", "origin", "meta")
ERROR_KEYS = ("code", "spec", "rule", "source_field", "element", "detail_contains")
_CASE_NAME = re.compile(r"^(.+)\.input\.json$")


class RecordFormatError(ValueError):
    """JSON that is not a source record; the message says what is wrong."""


def record_from_json(
    data: Any, *, system: str | None = None, kind: str | None = None, default_id: str = "record"
) -> SourceRecord:
    """Read a source record: ``{"system", "kind", "id", "version", "fields"}``.

    A plain object without ``fields`` is taken as the fields themselves (a line of a
    source export), with ``system`` and ``kind`` from the arguments and ``default_id``.
    """
    if not isinstance(data, Mapping):
        raise RecordFormatError(f"a record is a JSON object, not {kind_of(data)}")
    if "fields" not in data:
        if system is None or kind is None:
            raise RecordFormatError(
                'a record needs "fields" (and "system", "kind", "id"), or name the spec'
            )
        return SourceRecord(system=system, kind=kind, id=default_id, version=None, fields=data)
    unknown = sorted(set(data) - set(RECORD_KEYS))
    if unknown:
        raise RecordFormatError(
            f"unknown record key(s) {', '.join(unknown)}; a record has {', '.join(RECORD_KEYS)}"
        )
    values: dict[str, Any] = {"system": data.get("system", system), "kind": data.get("kind", kind)}
    for name in ("system", "kind"):
        if not isinstance(values[name], str) or not values[name]:
            raise RecordFormatError(f'"{name}" must be non-empty text')
    # Only the system is checked here: a spec may map several kinds (chs/adt maps
    # adt_a01, adt_a03…), so the spec itself refuses a kind it does not map.
    if system is not None and values["system"] != system:
        raise RecordFormatError(
            f"the record is {values['system']}/{values['kind']}, not {system}/{kind}"
        )
    record_id = data.get("id", default_id)
    if not isinstance(record_id, str) or not record_id:
        raise RecordFormatError('"id" must be non-empty text')
    version = data.get("version")
    if version is not None and not isinstance(version, str):
        raise RecordFormatError('"version" must be text or null')
    fields = data["fields"]
    if not isinstance(fields, Mapping):
        raise RecordFormatError(f'"fields" must be a JSON object, not {kind_of(fields)}')
    origin = data.get("origin", "")
    meta = data.get("meta", {})
    if not isinstance(origin, str) or not isinstance(meta, Mapping):
        raise RecordFormatError('"origin" must be text and "meta" an object')
    return SourceRecord(
        system=values["system"],
        kind=values["kind"],
        id=record_id,
        version=version,
        fields=fields,
        origin=origin,
        meta=meta,
    )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 70 else text[:67] + "..."


def json_diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Return every difference as ``path: expected …, got …`` (empty when equal)."""
    out: list[str] = []
    _diff(expected, actual, path, out)
    return out


def _diff(expected: Any, actual: Any, path: str, out: list[str]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            where = f"{path}.{key}" if path else key
            if key not in actual:
                out.append(f"{where}: missing (expected {_short(value)})")
            else:
                _diff(value, actual[key], where, out)
        for key, value in actual.items():
            if key not in expected:
                out.append(
                    f"{path}.{key}: unexpected {_short(value)}"
                    if path
                    else f"{key}: unexpected {_short(value)}"
                )
        return
    if isinstance(expected, list) and isinstance(actual, list):
        for i in range(max(len(expected), len(actual))):
            where = f"{path}[{i}]"
            if i >= len(actual):
                out.append(f"{where}: missing (expected {_short(expected[i])})")
            elif i >= len(expected):
                out.append(f"{where}: unexpected {_short(actual[i])}")
            else:
                _diff(expected[i], actual[i], where, out)
        return
    if type(expected) is not type(actual) or expected != actual:
        out.append(f"{path or '(top)'}: expected {_short(expected)}, got {_short(actual)}")


def resources_diff(expected: list[Any], actual: list[dict[str, Any]]) -> list[str]:
    """Diff two lists of resources, each difference prefixed by ``[i] Type``."""
    out: list[str] = []
    for i in range(max(len(expected), len(actual))):
        exp = expected[i] if i < len(expected) else None
        act = actual[i] if i < len(actual) else None
        rtype = (exp or act or {}).get("resourceType", "?") if isinstance(exp or act, dict) else "?"
        label = f"[{i}] {rtype}"
        if act is None:
            out.append(f"{label}: missing (the mapping made {len(actual)} resource(s))")
        elif exp is None:
            out.append(f"{label}: unexpected (id {act.get('id')})")
        else:
            out.extend(
                f"{label}.{d}" if not d.startswith("(") else f"{label} {d}"
                for d in json_diff(exp, act)
            )
    return out


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one golden case."""

    name: str
    file: str
    spec: str | None
    passed: bool
    differences: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    resources: int = 0
    expects_error: bool = False


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _case_names(directory: Path) -> list[str]:
    def order(name: str) -> tuple[int, str]:
        return (int(name), "") if name.isdigit() else (1 << 30, name)

    names = [m.group(1) for p in directory.glob("*.input.json") if (m := _CASE_NAME.match(p.name))]
    return sorted(names, key=order)


def run_cases(mappings: Mappings, directory: Path | None = None) -> list[CaseResult]:
    """Run every case in ``DIR/cases`` (or ``directory``) against ``mappings``."""
    cases = directory or mappings.directory / CASES_DIR
    if not cases.is_dir():
        return []
    results: list[CaseResult] = []
    for name in _case_names(cases):
        results.append(run_case(mappings, cases, name))
    for path in sorted(cases.glob("*.json")):
        base = path.name.split(".", 1)[0]
        if base not in {r.name for r in results} or not re.match(
            r"^.+\.(input|output|error)\.json$", path.name
        ):
            results.append(
                CaseResult(
                    name=base,
                    file=f"{CASES_DIR}/{path.name}",
                    spec=None,
                    passed=False,
                    differences=(
                        "not part of a case: cases are N.input.json with N.output.json or"
                        " N.error.json",
                    ),
                )
            )
    return results


def run_case(mappings: Mappings, cases: Path, name: str) -> CaseResult:
    """Run one case."""
    file = f"{CASES_DIR}/{name}.input.json"
    output, error = cases / f"{name}.output.json", cases / f"{name}.error.json"

    def failed(*differences: str, spec: str | None = None) -> CaseResult:
        return CaseResult(name, file, spec, False, tuple(differences))

    if output.exists() == error.exists():
        return failed(f"give exactly one of {name}.output.json or {name}.error.json")
    try:
        record = record_from_json(_load_json(cases / f"{name}.input.json"), default_id=name)
        expected = _load_json(output if output.exists() else error)
    except (OSError, ValueError) as exc:
        return failed(f"cannot read the case: {exc}")
    spec = _spec_name(mappings, record)
    try:
        result = mappings.map(record, now=CASE_NOW)
    except MappingSpecError:
        return failed(f"not run: the spec {spec} has problems (listed above)", spec=spec)
    except BridgeError as exc:
        if output.exists():
            return failed(f"expected resources, but mapping failed: {exc.detail}", spec=spec)
        return _compare_error(name, file, spec, expected, exc)
    if error.exists():
        return failed(
            f"expected an error {_short(expected)}, but the mapping made"
            f" {len(result.resources)} resource(s)",
            spec=spec,
        )
    if not isinstance(expected, list):
        return failed(f"{name}.output.json must be a JSON list of resources", spec=spec)
    differences = resources_diff(expected, [m.resource for m in result.resources])
    return CaseResult(
        name,
        file,
        spec,
        not differences,
        tuple(differences),
        tuple(str(w) for w in result.warnings),
        len(result.resources),
    )


def _spec_name(mappings: Mappings, record: SourceRecord) -> str:
    """Name the spec (valid or not) that maps a record: ``chs/adt`` for an ``adt_a03``."""
    for info in mappings.spec_files:
        if info.name.partition("/")[0] == record.system and record.kind in info.kinds:
            return info.name
    return f"{record.system}/{record.kind}"


def _compare_error(name: str, file: str, spec: str, expected: Any, exc: BridgeError) -> CaseResult:
    if not isinstance(expected, dict) or not set(expected) <= set(ERROR_KEYS):
        return CaseResult(
            name,
            file,
            spec,
            False,
            (f"{name}.error.json must be an object with some of {', '.join(ERROR_KEYS)}",),
        )
    actual = {
        "code": exc.code,
        "spec": exc.extra.get("spec"),
        "rule": exc.extra.get("rule"),
        "source_field": exc.extra.get("source_field"),
        "element": exc.extra.get("element"),
    }
    differences = []
    for key, value in expected.items():
        if key == "detail_contains":
            if str(value) not in exc.detail:
                differences.append(
                    f"error detail: expected to contain {value!r}, got {exc.detail!r}"
                )
        elif actual.get(key) != value:
            differences.append(
                f"error {key}: expected {_short(value)}, got {_short(actual.get(key))}"
            )
    if not isinstance(exc, MappingError) and "code" not in expected:
        differences.append(f"expected a MappingError, got {exc.code}: {exc.detail}")
    return CaseResult(name, file, spec, not differences, tuple(differences), expects_error=True)


@dataclass(frozen=True)
class CheckReport:
    """The outcome of ``carebridge mappings check``: file problems and case results."""

    mappings: Mappings
    cases: tuple[CaseResult, ...]

    @property
    def ok(self) -> bool:
        """Say whether every file is valid and every case passed."""
        return self.mappings.valid and all(c.passed for c in self.cases)

    def lines(self) -> list[str]:
        """Return the report as text lines."""
        m = self.mappings
        out = [f"mappings {m.directory}", "specs"]
        for s in m.spec_files:
            status = "ok  " if s.valid else "FAIL"
            targets = ", ".join(s.targets)
            out.append(f"  {status}  {s.name:<20} {s.version or '-':<8} {s.file:<28} {targets}")
        bad_maps = [c for c in m.map_files if not c.valid]
        out.append(
            f"concept maps: {len(m.map_files) - len(bad_maps)} ok"
            + (f", {len(bad_maps)} with problems" if bad_maps else "")
        )
        if m.problems:
            out.append("problems")
            out.extend(f"  {p}" for p in m.problems)
        if m.notes:
            out.append("notes")
            out.extend(f"  {n}" for n in m.notes)
        out.append("cases")
        for c in self.cases:
            status = "ok  " if c.passed else "FAIL"
            made = f"{c.resources} resource{'s' * (c.resources != 1)}"
            if c.expects_error:
                made = "the expected error"
            made = made if c.passed else ""
            out.append(f"  {status}  {c.name:<4} {c.spec or '-':<20} {made}")
            out.extend(f"        {d}" for d in c.differences)
        failed = sum(not c.passed for c in self.cases)
        out.append(
            f"result: {len(m.spec_files)} specs, {len(m.map_files)} concept maps,"
            f" {len(self.cases)} cases: {len(m.problems)} problem(s), {failed} case(s) failed"
            + (" - OK" if self.ok else " - FAILED")
        )
        return out


def check_directory(directory: Path | None = None) -> CheckReport:
    """Validate every spec and concept map of a directory, then run its golden cases."""
    mappings = Mappings.load(directory, strict=False)
    return CheckReport(mappings, tuple(run_cases(mappings)))
