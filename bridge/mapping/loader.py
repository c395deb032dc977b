"""Load a mappings directory: config, concept maps and specs, every problem with file:line.

Layout (docs/mappings.md)::

    DIR/config.yaml            deployment values ($config.<name>)
    DIR/<system>/<kind>.yaml   one spec per source system and record kind, or
    DIR/<system>/<name>.yaml   one spec several record kinds share (source.kinds)
    DIR/codes/<id>.yaml        concept maps (entries inline or in a CSV beside them)
    DIR/cases/N.input.json     golden cases (see bridge.mapping.cases)

Loading reads files once; mapping afterwards does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from difflib import get_close_matches
from importlib.resources import files
from pathlib import Path
from typing import Any

import pydantic

from adapters.base import SourceRecord
from bridge.core.errors import MappingError, MappingSpecError
from bridge.mapping.compiler import CompiledSpec, CompileProblem, CompileProblems, Compiler
from bridge.mapping.conceptmap import (
    ConceptMap,
    ConceptMapProblem,
    build_concept_map,
    read_csv_entries,
)
from bridge.mapping.paths import PathSyntaxError, UnknownNameError, parse_path
from bridge.mapping.result import MappingResult
from bridge.mapping.spec import (
    NAME_RULE,
    SPEC_OPENING,
    ConceptMapFile,
    ConfigFile,
    MappingSpec,
    describe,
    known_keys,
)
from bridge.mapping.validation import Validator
from bridge.mapping.yamlfile import LineDict, YamlSyntaxError, line_of, load_yaml

CONFIG_FILE = "config.yaml"
CODES_DIR = "codes"
CASES_DIR = "cases"


def default_directory() -> Path:
    """Return the shipped ``mappings`` package directory."""
    return Path(str(files("mappings")))


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a mapping file."""

    file: str  # relative to the mappings directory
    line: int | None
    message: str
    hint: str | None = None
    where: str | None = None  # the part of the file: "resources[0].rules[2].transform"

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        where = f" {self.where}:" if self.where else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{place}:{where} {self.message}{hint}"

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as plain data."""
        return {
            "file": self.file,
            "line": self.line,
            "where": self.where,
            "message": self.message,
            "hint": self.hint,
        }

    def to_error(self, more: int = 0) -> MappingSpecError:
        """Return the problem as an exception (``more`` other problems are mentioned)."""
        suffix = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
        return MappingSpecError(
            f"{self}{suffix}", file=self.file, line=self.line, hint=self.hint, field=self.where
        )


@dataclass(frozen=True)
class SpecInfo:
    """What the loader knows about one spec file, valid or not."""

    name: str  # "<system>/<kind>" (or "<system>/<name>") as the file's place says
    file: str
    version: str | None
    description: str | None
    targets: tuple[str, ...]
    problems: tuple[SpecProblem, ...]
    kinds: tuple[str, ...] = ()  # the record kinds it maps

    @property
    def valid(self) -> bool:
        """Say whether the spec compiled."""
        return not self.problems


@dataclass(frozen=True)
class ConceptMapInfo:
    """What the loader knows about one concept map file."""

    id: str
    file: str
    unmapped: str | None
    entries: int
    problems: tuple[SpecProblem, ...]

    @property
    def valid(self) -> bool:
        """Say whether the map loaded."""
        return not self.problems


def _render_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _data_loc(tree: Any, loc: Iterable[Any]) -> tuple[Any, ...]:
    """Keep the parts of a pydantic location that are keys or indexes in the data."""
    kept: list[Any] = []
    node = tree
    for part in loc:
        if isinstance(node, dict) and not isinstance(part, int) and part in node:
            kept.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(part)
            node = node[part]
    return tuple(kept)


_TYPE_WORDS = {
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "model_type": "a mapping",
}
_KNOWN_KEYS = known_keys()


def validation_problems(exc: pydantic.ValidationError, tree: Any, file: str) -> list[SpecProblem]:
    """Turn pydantic's errors about a mapping file into readable problems, one per place."""
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        grouped.setdefault(_data_loc(tree, error["loc"]), []).append(dict(error))
    problems: list[SpecProblem] = []
    for loc, errors in grouped.items():
        line = line_of(tree, loc)
        where = _render_loc(loc) or None
        first = errors[0]
        kind = first["type"]
        hint: str | None = None
        if kind == "extra_forbidden":
            key = str(first["loc"][-1])
            near = get_close_matches(key, sorted(_KNOWN_KEYS), n=1, cutoff=0.7)
            message = f"unknown key '{key}'"
            hint = f"did you mean '{near[0]}'?" if near else "see docs/mappings.md for the keys"
            where = _render_loc(loc[:-1]) or None
        elif kind == "missing":
            message = f"missing required key '{first['loc'][-1]}'"
            where = _render_loc(loc) or None
        elif all(e["type"] in _TYPE_WORDS for e in errors):
            wanted = " or ".join(dict.fromkeys(_TYPE_WORDS[e["type"]] for e in errors))
            got = describe(first.get("input"))
            message = f"expected {wanted}, got {got}"
            if "text" in wanted and got in ("a number", "true/false"):
                hint = f"put it in quotes: '{first.get('input')}'"
            elif wanted == "a list" and got == "text":
                hint = f"write [{first.get('input')}]"
        elif kind == "string_pattern_mismatch":
            message = "is not in the expected form"
            name = str(loc[-1]) if loc else ""
            if name in ("name", "system", "kind", "as"):
                hint = NAME_RULE
            elif name == "type":
                hint = "a FHIR resource type such as Patient"
            elif name == "version":
                hint = "e.g. '1.0.0' (letters, digits, '.', '+', '-')"
        elif kind == "too_short":
            message = "needs at least one item"
        elif kind == "literal_error":
            message = first["msg"].replace("Input should be", "must be")
        elif kind in ("value_error", "assertion_error"):
            message = first["msg"].removeprefix("Value error, ")
        else:
            message = first["msg"]
        problems.append(SpecProblem(file, line, message, hint, where))
    return problems


@dataclass
class Mappings:
    """All specs and concept maps of a directory, compiled; ``map(record, now=…)``."""

    directory: Path
    config: dict[str, str] = field(default_factory=dict)
    concept_maps: dict[str, ConceptMap] = field(default_factory=dict)
    # By the (system, kind) of the records each maps: a spec of several kinds is here
    # once per kind. ``by_name`` has each spec once, by its name ("chs/adt").
    specs: dict[tuple[str, str], CompiledSpec] = field(default_factory=dict)
    by_name: dict[str, CompiledSpec] = field(default_factory=dict)
    spec_files: list[SpecInfo] = field(default_factory=list)
    map_files: list[ConceptMapInfo] = field(default_factory=list)
    problems: list[SpecProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # advice that is not an error
    # (system, kind) -> the file of the first spec that says it maps those records.
    _claims: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    # -- loading --------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path | None = None, *, strict: bool = True) -> Mappings:
        """Load and compile a directory (default: the shipped one).

        ``strict`` raises :class:`MappingSpecError` for the first problem (naming how many
        more there are); otherwise problems are collected in ``problems`` and only valid
        specs are usable.
        """
        mappings = cls(directory=Path(directory) if directory else default_directory())
        mappings._load_all()
        if strict:
            mappings.raise_for_problems()
        return mappings

    def raise_for_problems(self) -> None:
        """Raise :class:`MappingSpecError` for the first problem, if any."""
        if self.problems:
            raise self.problems[0].to_error(more=len(self.problems) - 1)

    @property
    def valid(self) -> bool:
        """Say whether every file loaded without problems."""
        return not self.problems

    def _rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.directory.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def _read(self, path: Path) -> tuple[Any, list[SpecProblem]]:
        rel = self._rel(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return None, [SpecProblem(rel, None, f"cannot be read: {exc}")]
        try:
            tree = load_yaml(text)
        except YamlSyntaxError as exc:
            return None, [SpecProblem(rel, exc.line, f"is not valid YAML: {exc.message}")]
        if not isinstance(tree, dict):
            return None, [SpecProblem(rel, 1, "must be a YAML mapping of keys to values")]
        return tree, []

    def _load_all(self) -> None:
        if not self.directory.is_dir():
            self.problems.append(SpecProblem(self.directory.as_posix(), None, "is not a directory"))
            return
        config_ok = self._load_config()
        self._load_concept_maps()
        validator = Validator()
        for path in self._spec_paths():
            self._load_spec(path, validator, config_ok)
        self._check_references()

    def _load_config(self) -> bool:
        path = self.directory / CONFIG_FILE
        if not path.is_file():
            self.problems.append(
                SpecProblem(CONFIG_FILE, None, "is missing", "copy it from the shipped mappings")
            )
            return False
        tree, problems = self._read(path)
        if tree is not None:
            try:
                self.config = dict(ConfigFile.model_validate(tree).values)
            except pydantic.ValidationError as exc:
                problems = validation_problems(exc, tree, CONFIG_FILE)
        self.problems.extend(problems)
        return not problems

    def _resolver(self) -> Any:
        def resolve(text: str) -> str:
            if not text.startswith("$"):
                return text
            try:
                path = parse_path(text, variables=frozenset(), config=self.config)
            except UnknownNameError as exc:
                raise ConceptMapProblem(str(exc).split(";")[0], hint=exc.hint) from None
            except PathSyntaxError as exc:
                raise ConceptMapProblem(str(exc)) from None
            if not path.is_constant:
                raise ConceptMapProblem("only $config.<name> may be used here")
            return str(path.constant)

        return resolve

    def _load_concept_maps(self) -> None:
        codes = self.directory / CODES_DIR
        if not codes.is_dir():
            return
        used_csv: set[Path] = set()
        for path in sorted(codes.glob("*.yaml")):
            map_id = path.stem
            rel = self._rel(path)
            tree, problems = self._read(path)
            spec: ConceptMapFile | None = None
            entries: list[tuple[int | None, Any]] = []
            if tree is not None:
                try:
                    spec = ConceptMapFile.model_validate(tree)
                except pydantic.ValidationError as exc:
                    problems = validation_problems(exc, tree, rel)
            if spec is not None:
                if spec.entries is not None:
                    lines = tree.get("entries")
                    entries = [
                        (lines.item_lines[i] if hasattr(lines, "item_lines") else None, e)
                        for i, e in enumerate(spec.entries)
                    ]
                else:
                    assert spec.entries_csv is not None
                    csv_path = (path.parent / spec.entries_csv).resolve()
                    used_csv.add(csv_path)
                    csv_rel = self._rel(csv_path)
                    try:
                        entries = list(read_csv_entries(csv_path.read_text(encoding="utf-8")))
                    except OSError:
                        problems.append(
                            SpecProblem(
                                rel,
                                line_of(tree, ("entries_csv",)),
                                f"entries_csv: {spec.entries_csv} does not exist",
                                f"put it next to {path.name}",
                            )
                        )
                    except ConceptMapProblem as exc:
                        problems.append(SpecProblem(csv_rel, exc.line, str(exc), exc.hint))
                if not problems:
                    try:
                        self.concept_maps[map_id] = build_concept_map(
                            map_id, rel, spec, entries, resolve=self._resolver()
                        )
                    except ConceptMapProblem as exc:
                        problems.append(SpecProblem(rel, exc.line or tree.line, str(exc), exc.hint))
            self.map_files.append(
                ConceptMapInfo(
                    id=map_id,
                    file=rel,
                    unmapped=spec.unmapped if spec else None,
                    entries=len(entries),
                    problems=tuple(problems),
                )
            )
            self.problems.extend(problems)
        for path in sorted(codes.glob("*.csv")):
            if path.resolve() not in used_csv:
                self.problems.append(
                    SpecProblem(
                        self._rel(path),
                        None,
                        "no concept map uses this CSV file",
                        "name it in a concept map's entries_csv:, or remove it",
                    )
                )

    def _spec_paths(self) -> list[Path]:
        found: list[Path] = []
        for path in sorted(self.directory.rglob("*.y*ml")):
            rel = path.relative_to(self.directory)
            if rel.parts[0] in (CODES_DIR, CASES_DIR) or rel.as_posix() == CONFIG_FILE:
                continue
            found.append(path)
        return found

    def _load_spec(
        self, path: Path, validator: Validator, config_ok: bool, *, elsewhere: bool = False
    ) -> None:
        # ``elsewhere``: a file outside the directory (an edited copy being previewed) is
        # named by its last two path parts, as if it sat at <system>/<kind>.yaml.
        rel = path.as_posix() if elsewhere else self._rel(path)
        parts = path.parts[-2:] if elsewhere else Path(rel).parts
        name = "/".join((*parts[:-1], path.stem))
        tree, problems = self._read(path)
        if elsewhere:
            problems = [SpecProblem(rel, p.line, p.message, p.hint, p.where) for p in problems]
        spec: MappingSpec | None = None
        compiled: CompiledSpec | None = None
        if path.suffix != ".yaml":
            problems.append(SpecProblem(rel, None, "spec files end in .yaml"))
        elif len(parts) != 2:
            problems.append(
                SpecProblem(rel, None, "a spec lives at <system>/<kind>.yaml", "move it")
            )
        if tree is not None and not problems:
            keys = list(tree)
            if keys[: len(SPEC_OPENING)] != list(SPEC_OPENING):
                problems.append(
                    SpecProblem(
                        rel,
                        tree.line if isinstance(tree, LineDict) else 1,
                        "a spec opens with description, source, target and links, in that order",
                        f"it opens with {', '.join(keys[:4])}",
                    )
                )
            try:
                spec = MappingSpec.model_validate(tree)
            except pydantic.ValidationError as exc:
                problems.extend(validation_problems(exc, tree, rel))
        if spec is not None and not problems:
            source = spec.source
            # A spec of one kind is named by it; a spec of several kinds by its file.
            declared = f"{source.system}/{source.kind or Path(name).name}"
            claimed = [
                (kind, self._claims[(source.system, kind)])
                for kind in source.record_kinds
                if (source.system, kind) in self._claims
            ]
            if declared != name:
                problems.append(
                    SpecProblem(
                        rel,
                        line_of(tree, ("source",)),
                        f"declares source {declared}, but its file is {rel}",
                        f"move it to {declared}.yaml, or fix source.system and source.kind"
                        if source.kind
                        else f"move it to {source.system}/, or fix source.system",
                    )
                )
            elif claimed:
                kind, other = claimed[0]
                problems.append(
                    SpecProblem(
                        rel,
                        line_of(tree, ("source",)),
                        f"maps {source.system}/{kind} records, which {other} maps already",
                        "one spec per record kind: drop the kind from one of them",
                    )
                )
            elif not config_ok:
                problems.append(
                    SpecProblem(rel, None, "not compiled: config.yaml has problems (see above)")
                )
            else:
                compiler = Compiler(
                    spec=spec,
                    file=rel,
                    name=name,
                    lines=lambda loc, t=tree: line_of(t, loc),
                    concept_maps=self.concept_maps,
                    config=self.config,
                    validator=validator,
                    broken_maps={m.id: m.file for m in self.map_files if not m.valid},
                )
                try:
                    compiled = compiler.compile()
                except (CompileProblem, CompileProblems) as exc:
                    found = exc.problems if isinstance(exc, CompileProblems) else [exc]
                    problems.extend(
                        SpecProblem(
                            rel,
                            line_of(tree, p.loc),
                            p.message,
                            p.hint,
                            _render_loc(p.loc) or None,
                        )
                        for p in found
                    )
        if spec is not None:
            for kind in spec.source.record_kinds:
                self._claims.setdefault((spec.source.system, kind), rel)
        if compiled is not None:
            self.by_name[compiled.name] = compiled
            for kind in compiled.kinds:
                self.specs[(compiled.system, kind)] = compiled
        self.spec_files.append(
            SpecInfo(
                name=name,
                file=rel,
                version=spec.version if spec else None,
                description=spec.description if spec else None,
                targets=tuple(spec.target) if spec else (),
                problems=tuple(problems),
                kinds=spec.source.record_kinds if spec else (),
            )
        )
        self.problems.extend(problems)

    def _check_references(self) -> None:
        produced = {p for spec in self.by_name.values() for p in spec.produces()}
        for spec in self.by_name.values():
            for rtype, system, kind in spec.references:
                if (rtype, system, kind) not in produced:
                    self.notes.append(
                        f"{spec.file}: references {rtype} keyed ({system}, {kind}), which no"
                        " spec here makes yet (the reference will resolve once one does)"
                    )

    # -- use ------------------------------------------------------------------------------
    def spec(self, name: str) -> CompiledSpec:
        """Return the compiled spec ``<system>/<name>`` (or the one mapping ``<system>/<kind>``).

        Raise MappingError when there is none.
        """
        system, _, kind = name.partition("/")
        found = self.by_name.get(name) or self.specs.get((system, kind))
        if found is not None:
            return found
        info = next((s for s in self.spec_files if s.name == name), None)
        if info is not None:
            raise info.problems[0].to_error(more=len(info.problems) - 1)
        known = sorted({*self.by_name, *(f"{s}/{k}" for s, k in self.specs)})
        near = get_close_matches(name, known, n=3)
        raise MappingError(
            f"there is no mapping spec {name!r}"
            + (f"; did you mean {', '.join(near)}?" if near else f"; specs: {', '.join(known)}"),
            source_field="spec",
            extra={"specs": known},
        )

    def map(self, record: SourceRecord, *, now: datetime) -> MappingResult:
        """Map a record with the spec for its (system, kind); raise ``MappingError``."""
        found = self.specs.get((record.system, record.kind))
        if found is None:
            return self.spec(f"{record.system}/{record.kind}").map(record, now=now)
        return found.map(record, now=now)

    def compile_file(self, path: Path) -> CompiledSpec:
        """Compile one spec file (e.g. an edited copy) against this directory's maps and config."""
        scratch = Mappings(
            directory=self.directory,
            config=self.config,
            concept_maps=self.concept_maps,
        )
        scratch._load_spec(path, Validator(), True, elsewhere=not _inside(path, self.directory))
        info = scratch.spec_files[-1]
        if info.problems:
            raise info.problems[0].to_error(more=len(info.problems) - 1)
        return next(iter(scratch.by_name.values()))

    def summary(self) -> dict[str, Any]:
        """Return what is loaded and whether it is valid (for ``GET /admin/mappings``)."""
        return {
            "valid": self.valid,
            "specs": [
                {
                    "spec": s.name,
                    "kinds": list(s.kinds),
                    "file": s.file,
                    "version": s.version,
                    "description": s.description,
                    "targets": list(s.targets),
                    "valid": s.valid,
                    "problems": [p.to_dict() for p in s.problems],
                }
                for s in self.spec_files
            ],
            "concept_maps": [
                {
                    "id": m.id,
                    "file": m.file,
                    "unmapped": m.unmapped,
                    "entries": m.entries,
                    "valid": m.valid,
                    "problems": [p.to_dict() for p in m.problems],
                }
                for m in self.map_files
            ],
            "problems": [p.to_dict() for p in self.problems],
            "notes": list(self.notes),
        }


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


__all__ = [
    "ConceptMapInfo",
    "Mappings",
    "SpecInfo",
    "SpecProblem",
    "default_directory",
]
