"""Compile a validated spec into plain callables, and run them on one record.

Compiling checks everything the file format alone cannot: FHIR element paths and types,
transform names and arguments, concept maps (existence, target codes, policy fits the
target), configuration names, references between resources, variables in scope. Each
problem raises :class:`CompileProblem` with the location of the offending part, so
``carebridge mappings check`` can print ``file:line``.

Running is pure: the record, ``now`` and the compiled spec in, resources and warnings out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from difflib import get_close_matches
from typing import Any

import orjson

from adapters.base import SourceRecord
from bridge.core.errors import MappingError
from bridge.core.ids import stable_id
from bridge.mapping import labels
from bridge.mapping.conceptmap import ConceptMap
from bridge.mapping.elements import (
    APPEND,
    Element,
    Segment,
    TargetPath,
    TargetPathError,
    accepts,
    elements_of,
    resolve_target,
    resource_model,
)
from bridge.mapping.paths import (
    PathSyntaxError,
    Scope,
    SourcePath,
    SourceShapeError,
    Template,
    UnknownNameError,
    kind_of,
    parse_path,
    parse_template,
)
from bridge.mapping.result import MappedResource, MappingResult, MappingWarning
from bridge.mapping.spec import (
    ForEach,
    MappingSpec,
    ReferenceSpec,
    ResourceSpec,
    Rule,
    SecurityRule,
    When,
)
from bridge.mapping.transforms import REGISTRY, Transform, TransformContext, TransformError
from bridge.mapping.validation import Plan, ResourceInvalid, Validator, plan

Loc = tuple[str | int, ...]
_JSON_KINDS = {
    "string": "text",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "object": "an object",
}


class CompileProblem(Exception):
    """A spec cannot be compiled: ``loc`` locates the part in the file, ``hint`` helps."""

    def __init__(self, message: str, loc: Loc, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint


class CompileProblems(Exception):
    """Every problem found compiling one spec (its parts are checked independently)."""

    def __init__(self, problems: list[CompileProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


# -- per-record state ---------------------------------------------------------------------


@dataclass
class Run:
    """The state of mapping one record."""

    spec: CompiledSpec
    now: datetime
    tctx: TransformContext
    warnings: list[MappingWarning] = field(default_factory=list)
    ids: dict[str, str | None] = field(default_factory=dict)
    # When set, every write is noted as (element path, rule), to explain a validation failure.
    trace: list[tuple[str, CompiledRule]] | None = None
    # Stable ids of referenced keys, and validated elements every resource of this record
    # shares (validation.py): each computed once per record.
    ref_ids: dict[tuple[str, str, str], str] = field(default_factory=dict)
    shared: dict[Any, Any] = field(default_factory=dict)

    def stable_id(self, system: str, kind: str, value: str) -> str:
        """Return ``stable_id(system, kind, value)``, once per record."""
        key = (system, kind, value)
        found = self.ref_ids.get(key)
        if found is None:
            found = self.ref_ids[key] = stable_id(system, kind, value)
        return found

    def fail(
        self, rule: CompiledRule | None, detail: str, source_field: str | None
    ) -> MappingError:
        """Build the MappingError for a rule (the caller raises it)."""
        label = rule.label if rule else None
        where = f" rule {label} ({rule.location})" if rule else ""
        field_text = f"{source_field}: " if source_field else ""
        # Every error names a field: a rule that reads none (a constant) names its target.
        source_field = source_field or (rule.target.text if rule else None)
        return MappingError(
            f"{self.spec.name}{where}: {field_text}{detail}",
            spec=self.spec.name,
            rule=label,
            source_field=source_field,
            extra={"location": rule.location} if rule else None,
        )

    def warn(self, rule: CompiledRule, source_field: str | None, message: str) -> None:
        """Record a warning for a rule."""
        self.warnings.append(MappingWarning(self.spec.name, rule.label, source_field, message))


# -- conditions ---------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    # YAML true must not equal the number 1 (Python says True == 1).
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


Condition = Callable[[Scope], bool]


# -- rules --------------------------------------------------------------------------------


class CompiledRule:
    """Base of compiled rules: where it writes and when."""

    __slots__ = ("default", "label", "location", "repeating", "required", "target", "when")

    def __init__(
        self,
        *,
        label: str,
        location: str,
        target: TargetPath,
        when: Condition | None,
        required: bool,
        default: Any,
        repeating: bool,
    ) -> None:
        self.label = label
        self.location = location
        self.target = target
        self.when = when
        self.required = required
        self.default = default
        # Written only from constants, configuration and concept maps (see validation.py).
        self.repeating = repeating

    @property
    def source_field(self) -> str | None:
        """Name the source field(s) the rule reads, for messages."""
        return None

    def apply(self, node: dict[str, Any], scope: Scope, run: Run, at: str) -> None:
        """Write into ``node`` (the element at path ``at``) if the rule applies."""
        raise NotImplementedError

    def _missing(self, node: dict[str, Any], run: Run, at: str, field_name: str | None) -> None:
        if self.default is not None:
            self._write(node, _copy(self.default), run, at, field_name, extend=False)
        elif self.required:
            raise run.fail(self, "is required but missing", field_name or self.source_field)

    def _write(
        self,
        node: dict[str, Any],
        value: Any,
        run: Run,
        at: str,
        field_name: str | None,
        *,
        extend: bool,
    ) -> None:
        segments = self.target.segments
        if run.trace is None:
            for seg in segments[:-1]:
                node = _step_into(node, seg, run, self, field_name)
            self._write_leaf(node, segments[-1], value, run, field_name, extend=extend)
            return
        # Tracing (explaining a validation failure): note the concrete paths written.
        path = at
        for seg in segments[:-1]:
            name = seg.element.name
            path = f"{path}.{name}" if path else name
            if seg.index is not None:
                count = len(node.get(name) or [])
                path += f"[{count if seg.index == APPEND else seg.index}]"
            node = _step_into(node, seg, run, self, field_name)
        last = segments[-1]
        name = last.element.name
        path = f"{path}.{name}" if path else name
        start = len(node.get(name) or [])
        self._write_leaf(node, last, value, run, field_name, extend=extend)
        if last.index is None:
            run.trace.append((path, self))
        else:
            run.trace.extend((f"{path}[{i}]", self) for i in range(start, len(node[name])))

    def _write_leaf(
        self,
        node: dict[str, Any],
        last: Segment,
        value: Any,
        run: Run,
        field_name: str | None,
        *,
        extend: bool,
    ) -> None:
        name = last.element.name
        index = last.index
        if index is None:
            if name in node:
                raise run.fail(
                    self,
                    f"writes {self.target.text}, which an earlier rule already wrote; give"
                    " one of the rules a when: so only one applies",
                    field_name or self.source_field,
                )
            node[name] = value
            return
        items = node.get(name)
        if items is None:
            items = node[name] = []
        if index == APPEND:
            if extend:
                items.extend(value)
            else:
                items.append(value)
        elif index == len(items) and (not extend or len(value) == 1):
            items.append(value[0] if extend else value)
        else:
            raise run.fail(
                self,
                f"writes {self.target.text} but {name} has {len(items)} item(s): an earlier"
                " rule must write the items before it",
                field_name or self.source_field,
            )


def _step_into(
    node: dict[str, Any],
    seg: Segment,
    run: Run,
    rule: CompiledRule,
    field_name: str | None,
) -> dict[str, Any]:
    name = seg.element.name
    if seg.index is None:
        child = node.get(name)
        if child is None:
            child = node[name] = {}
        return child  # type: ignore[no-any-return]
    items = node.get(name)
    if items is None:
        items = node[name] = []
    if seg.index == APPEND:
        child = {}
        items.append(child)
        return child
    assert isinstance(seg.index, int)
    if seg.index < len(items):
        return items[seg.index]  # type: ignore[no-any-return]
    if seg.index == len(items):
        child = {}
        items.append(child)
        return child
    raise run.fail(
        rule,
        f"writes into {name}[{seg.index}] ({rule.target.text}) but {name} has {len(items)} item(s)",
        field_name or rule.source_field,
    )


def _copy(value: Any) -> Any:
    """Copy JSON data (constants are shared by every record; results must not be)."""
    if isinstance(value, dict | list):
        return orjson.loads(orjson.dumps(value))
    return value


def _copier(value: Any) -> Callable[[], Any]:
    """Return a function making fresh copies of a constant (serialised once)."""
    if not isinstance(value, dict | list):
        return lambda: value
    blob = orjson.dumps(value)
    return lambda: orjson.loads(blob)


Reader = Callable[[Scope], Any]
Convert = Callable[[Any, Scope, Run, "ValueRule", str | None], Any]


class ValueRule(CompiledRule):
    """A rule that writes one value (or one per item of a ``[*]`` path)."""

    __slots__ = ("convert", "fan_out", "fields", "path", "read", "var_path", "wants_object")

    def __init__(
        self,
        *,
        read: Reader,
        path: SourcePath | None,
        fields: str | None,
        convert: Convert | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.read = read
        self.path = path
        self.fan_out = path is not None and path.fans_out
        self.var_path = path is not None and path.variable not in (None, "record", "config")
        self.wants_object = self.target.leaf.json_kind == "object"
        self.fields = fields
        self.convert = convert

    @property
    def source_field(self) -> str | None:
        return self.fields

    def apply(self, node: dict[str, Any], scope: Scope, run: Run, at: str) -> None:
        when = self.when
        if when is not None and not when(scope):
            return
        if self.fan_out:
            self._apply_each(node, scope, run, at)
            return
        try:
            value = self.read(scope)
            if value is not None:
                where = self._field_of(scope) if self.var_path else self.fields
                convert = self.convert
                if convert is not None:
                    value = convert(value, scope, run, self, where)
                if value is not None and not (self.wants_object and type(value) is dict):
                    value = _check_json(value, self.target.leaf, run, self, where)
        except SourceShapeError as exc:
            # Wrongly shaped data met reading the field or a template placeholder.
            raise run.fail(self, exc.reason, exc.path) from None
        if value is None:
            self._missing(node, run, at, self.fields)
        else:
            self._write(node, value, run, at, self.fields, extend=False)

    def _apply_each(self, node: dict[str, Any], scope: Scope, run: Run, at: str) -> None:
        assert self.path is not None
        try:
            items = self.path.get_all(scope)
        except SourceShapeError as exc:
            raise run.fail(self, exc.reason, exc.path) from None
        values = []
        for item, where in items:
            value = item
            if self.convert is not None:
                try:
                    value = self.convert(value, scope, run, self, where)
                except SourceShapeError as exc:
                    raise run.fail(self, exc.reason, exc.path) from None
            if value is not None:
                values.append(_check_json(value, self.target.leaf, run, self, where))
        if values:
            self._write(node, values, run, at, self.fields, extend=True)
        else:
            self._missing(node, run, at, self.fields)

    def _field_of(self, scope: Scope) -> str | None:
        # A $variable reads as the concrete item it is bound to ("eligible_outcomes[2]").
        assert self.path is not None
        bound = scope.variables.get(str(self.path.variable))
        if bound is not None:
            return bound[1] + self.path.text[len(self.path.root) :]
        return self.fields


def _check_json(
    value: Any, element: Element, run: Run, rule: CompiledRule, where: str | None
) -> Any:
    kind = element.json_kind
    if kind == "string":
        if isinstance(value, str):
            if element.codes is not None and value not in element.codes:
                raise run.fail(
                    rule,
                    f"{value!r} is not an allowed code for {element.name}"
                    f" ({', '.join(element.codes)})",
                    where,
                )
            if element.fhir_type in ("uri", "url", "canonical") and any(c.isspace() for c in value):
                raise run.fail(rule, f"a {element.fhir_type} cannot contain spaces", where)
            return value
        if isinstance(value, int) and not isinstance(value, bool) and element.codes is None:
            return str(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif isinstance(value, dict):
        return value
    raise run.fail(
        rule,
        f"{element.name} needs {_JSON_KINDS[kind]}, but the value is {kind_of(value)}",
        where,
    )


class GroupRule(CompiledRule):
    """A rule that builds one element (or one per item) from child rules."""

    __slots__ = ("children", "each", "each_var", "fields")

    def __init__(
        self,
        *,
        children: Sequence[CompiledRule],
        each: SourcePath | None,
        each_var: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.children = tuple(children)
        self.each = each
        self.each_var = each_var
        read = dict.fromkeys(f for c in self.children if (f := c.source_field))
        self.fields = each.text if each is not None else (", ".join(read) or None)

    @property
    def source_field(self) -> str | None:
        return self.fields

    def apply(self, node: dict[str, Any], scope: Scope, run: Run, at: str) -> None:
        if self.when is not None and not self.when(scope):
            return
        if self.each is None:
            scopes = [scope]
        else:
            try:
                items = self.each.get_all(scope)
            except SourceShapeError as exc:
                raise run.fail(self, exc.reason, exc.path) from None
            assert self.each_var is not None
            scopes = [scope.bind(self.each_var, value, where) for value, where in items]
        built: list[dict[str, Any]] = []
        traces: list[list[tuple[str, CompiledRule]]] = []
        for item_scope in scopes:
            element: dict[str, Any] = {}
            mark = len(run.trace) if run.trace is not None else 0
            for child in self.children:
                child.apply(element, item_scope, run, "")
            if run.trace is not None:
                # Children traced paths relative to this element; anchor them once written.
                traces.append(run.trace[mark:])
                del run.trace[mark:]
            if element:
                built.append(element)
            elif traces:
                traces.pop()
        if not built:
            if self.required:
                raise run.fail(self, "is required but wrote nothing", self.source_field)
            return
        mark = len(run.trace) if run.trace is not None else 0
        if self.target.leaf.is_list:
            self._write(node, built, run, at, self.source_field, extend=True)
        else:
            self._write(node, built[0], run, at, self.source_field, extend=False)
        if run.trace is not None:
            written = [path for path, _ in run.trace[mark:]]
            for base, entries in zip(written, traces, strict=False):
                run.trace.extend((f"{base}.{path}", rule) for path, rule in entries)


# -- security labels ----------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledSecurity:
    """A compiled security rule."""

    label: str
    location: str
    when: Condition | None
    fixed: dict[str, Any] | None
    path: SourcePath | None
    concept_map: ConceptMap | None

    def codings(self, scope: Scope, run: Run) -> list[dict[str, Any]]:
        """Return the labels this rule assigns to a record."""
        if self.when is not None and not self.when(scope):
            return []
        if self.fixed is not None:
            return [self.fixed]
        assert self.path is not None
        assert self.concept_map is not None
        try:
            value = self.path.get(scope)
        except SourceShapeError as exc:
            raise self.fail(run, exc.reason, exc.path) from None
        if value is None:
            return []
        found: list[dict[str, Any]] = []
        for code in value if isinstance(value, list) else [value]:
            found.extend(_security_lookup(self, code, run))
        return found

    def fail(self, run: Run, detail: str, source_field: str, **extra: Any) -> MappingError:
        """Build the MappingError for this rule (the caller raises it)."""
        return MappingError(
            f"{run.spec.name} {self.label} ({self.location}): {source_field}: {detail}",
            spec=run.spec.name,
            rule=self.label,
            source_field=source_field,
            extra={"location": self.location, **extra},
        )


def _security_lookup(rule: CompiledSecurity, code: Any, run: Run) -> list[dict[str, Any]]:
    assert rule.concept_map is not None
    assert rule.path is not None
    cmap = rule.concept_map
    field_name = rule.path.text
    text = _code_text(code)
    if text is None:
        raise rule.fail(run, f"expected a code, got {kind_of(code)}", field_name)
    targets = cmap.lookup(text)
    if targets is None:
        if cmap.unmapped == "default":
            run.warnings.append(
                MappingWarning(
                    run.spec.name,
                    rule.label,
                    field_name,
                    f"code {text!r} is not in concept map {cmap.id}; labelled with its default",
                )
            )
            return [labels.canonical(t) for t in cmap.default]
        raise rule.fail(
            run,
            f"code {text!r} is not in concept map {cmap.id}, so its sensitivity is unknown",
            field_name,
            concept_map=cmap.id,
        )
    # The label table's codings, whatever display the map gives: one label, one form.
    return [labels.canonical(t) for t in targets]


def _code_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# -- resources and specs ------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledResource:
    """A compiled resource block."""

    name: str
    type: str
    key_system: str
    key_kind: str
    key_value: Template
    location: str
    when: Condition | None
    each: SourcePath | None
    each_var: str | None
    rules: tuple[CompiledRule, ...]
    security: tuple[CompiledSecurity, ...]
    repeating: frozenset[str]  # top-level elements worth caching (validation.py)
    shared: frozenset[str]  # top-level elements cached for the record's other resources
    plan: Plan  # how the validator caches them

    def key_for(self, scope: Scope, run: Run) -> str | None:
        """Return the key value for a record (item), or raise naming the missing field."""
        try:
            value = self.key_value.render(scope)
        except SourceShapeError as exc:
            raise run.fail(None, exc.reason, exc.path) from None
        if value is None:
            fields = ", ".join(p.text for p in self.key_value.paths) or "key"
            raise MappingError(
                f"{run.spec.name} resource {self.name} ({self.location}): {fields}: the key"
                f" {self.key_value.text!r} needs a value",
                spec=run.spec.name,
                rule=f"{self.name}.key",
                source_field=fields,
                extra={"location": self.location},
            )
        return value


@dataclass(frozen=True)
class CompiledSpec:
    """A spec ready to run: ``map(record, now=…)``."""

    name: str  # "<system>/<kind>", or "<system>/<name>" for a spec of several kinds
    system: str
    kind: str  # the record kind; for a spec of several kinds, its name ("adt")
    version: str
    file: str
    description: str
    targets: tuple[str, ...]
    resources: tuple[CompiledResource, ...]
    security: tuple[CompiledSecurity, ...]
    config: Mapping[str, str]
    validator: Validator
    references: tuple[tuple[str, str, str], ...]  # (type, key system, key kind) it points to
    kinds: tuple[str, ...] = ()  # the record kinds it maps (default: just ``kind``)

    def __post_init__(self) -> None:
        if not self.kinds:
            object.__setattr__(self, "kinds", (self.kind,))

    @property
    def tag(self) -> dict[str, Any]:
        """Return the ``meta.tag`` Coding every produced resource carries."""
        return {
            "system": labels.MAPPING_SPEC_TAG_SYSTEM,
            "version": self.version,
            "code": self.name,
        }

    def produces(self) -> list[tuple[str, str, str]]:
        """Return (resource type, key system, key kind) of every resource block."""
        return [(r.type, r.key_system, r.key_kind) for r in self.resources]

    def map(self, record: SourceRecord, *, now: datetime) -> MappingResult:
        """Map one record; raise ``MappingError`` naming the spec, rule and source field."""
        if record.system != self.system or record.kind not in self.kinds:
            raise MappingError(
                f"{self.name}: the record is {record.system}/{record.kind}, not"
                f" {self.system}/{'|'.join(self.kinds)}",
                spec=self.name,
                source_field="kind",
            )
        if not isinstance(record.fields, Mapping):
            raise MappingError(
                f"{self.name}: the record's fields must be an object, not {kind_of(record.fields)}",
                spec=self.name,
                source_field="fields",
            )
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        scope = Scope(
            record.fields,
            {
                "id": record.id,
                "system": record.system,
                "kind": record.kind,
                "version": record.version,
            },
        )
        run = Run(spec=self, now=now, tctx=TransformContext(now=now, config=self.config))
        spec_labels = self._labels(self.security, scope, run)
        keys: dict[str, str] = {}
        for block in self.resources:
            if block.each is None:
                key = block.key_for(scope, run) if block.when is None or block.when(scope) else None
                run.ids[block.name] = (
                    None if key is None else stable_id(block.key_system, block.key_kind, key)
                )
                if key is not None:
                    keys[block.name] = key
        out: list[MappedResource] = []
        seen: dict[tuple[str, str], str] = {}  # (type, id) -> the block that made it
        for block in self.resources:
            if block.each is None:
                rid = run.ids[block.name]
                if rid is None:
                    continue
                items = [(scope, keys[block.name], rid)]
            elif block.when is not None and not block.when(scope):
                continue
            else:
                items = self._items(block, scope, run)
            for item_scope, key, rid in items:
                maker = seen.get((block.type, rid))
                if maker is not None and maker != block.name:
                    # Two blocks of one record claim one resource (a merge of a patient
                    # into itself): no way to tell which is meant.
                    fields = ", ".join(p.text for p in block.key_value.paths) or "key"
                    raise MappingError(
                        f"{self.name} resource {block.name} ({block.location}): {fields}:"
                        f" makes {block.type} keyed {key!r}, which resource {maker} already"
                        " made from this record",
                        spec=self.name,
                        rule=f"{block.name}.key",
                        source_field=fields,
                        extra={"location": block.location},
                    )
                if maker is not None:
                    run.warnings.append(
                        MappingWarning(
                            self.name,
                            f"{block.name}.key",
                            block.each.text if block.each else None,
                            f"two items give the same key {key!r}; the first is kept",
                        )
                    )
                    continue
                seen[(block.type, rid)] = block.name
                resource = self._build(block, item_scope, run, rid, spec_labels)
                out.append(MappedResource(resource, (block.key_system, block.key_kind, key)))
        return MappingResult(self.name, self.version, tuple(out), tuple(run.warnings))

    def _items(
        self, block: CompiledResource, scope: Scope, run: Run
    ) -> list[tuple[Scope, str, str]]:
        assert block.each is not None
        assert block.each_var is not None
        try:
            found = block.each.get_all(scope)
        except SourceShapeError as exc:
            raise run.fail(None, exc.reason, exc.path) from None
        items = []
        for value, where in found:
            item_scope = scope.bind(block.each_var, value, where)
            key = block.key_for(item_scope, run)
            assert key is not None
            items.append((item_scope, key, stable_id(block.key_system, block.key_kind, key)))
        return items

    def _labels(
        self, rules: Sequence[CompiledSecurity], scope: Scope, run: Run
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for rule in rules:
            for coding in rule.codings(scope, run):
                if coding not in found:
                    found.append(coding)
        return found

    def _build(
        self,
        block: CompiledResource,
        scope: Scope,
        run: Run,
        rid: str,
        spec_labels: list[dict[str, Any]],
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {"resourceType": block.type, "id": rid, "meta": {}}
        for rule in block.rules:
            rule.apply(resource, scope, run, "")
        meta = resource["meta"]
        meta["tag"] = [self.tag]
        security = spec_labels + [
            c for c in self._labels(block.security, scope, run) if c not in spec_labels
        ]
        if security:
            meta["security"] = [dict(c) for c in security]
        try:
            self.validator.validate(resource, block.plan, run.shared)
        except ResourceInvalid as exc:
            raise self._explain(block, scope, run, rid, exc) from None
        return resource

    def _explain(
        self, block: CompiledResource, scope: Scope, run: Run, rid: str, exc: ResourceInvalid
    ) -> MappingError:
        """Re-run the block tracing writes, to name the rule behind an invalid element."""
        trace: list[tuple[str, CompiledRule]] = []
        rerun = Run(
            spec=self,
            now=run.now,
            tctx=TransformContext(now=run.now, config=self.config),
            ids=run.ids,
            trace=trace,
        )
        scratch: dict[str, Any] = {"resourceType": block.type, "id": rid, "meta": {}}
        for rule in block.rules:
            rule.apply(scratch, scope, rerun, "")
        element = exc.path.removeprefix(block.type + ".")
        culprit: CompiledRule | None = None
        best = -1
        for written, rule in trace:
            if (element == written or element.startswith((written + ".", written + "["))) and len(
                written
            ) > best:
                culprit, best = rule, len(written)
        source_field = (culprit.source_field if culprit else None) or exc.path
        rule_text = f" rule {culprit.label} ({culprit.location})" if culprit else ""
        return MappingError(
            f"{self.name}{rule_text}: produced an invalid {block.type}: {exc.path}: {exc.reason}",
            spec=self.name,
            rule=culprit.label if culprit else None,
            source_field=source_field,
            extra={
                "element": exc.path,
                "errors": exc.errors,
                **({"location": culprit.location} if culprit else {}),
            },
        )


# -- the compiler -------------------------------------------------------------------------


@dataclass
class Compiler:
    """Compiles one spec file; raises :class:`CompileProblem` for the first problem."""

    spec: MappingSpec
    file: str  # relative to the mappings directory, e.g. "asc/person.yaml"
    lines: Callable[[Loc], int | None]
    concept_maps: Mapping[str, ConceptMap]
    config: Mapping[str, str]
    validator: Validator
    broken_maps: Mapping[str, str] = field(default_factory=dict)  # id -> its file
    # "<system>/<kind>" by default; the loader names a spec of several kinds by its file.
    name: str = ""

    def __post_init__(self) -> None:
        self.problems: list[CompileProblem] = []
        source = self.spec.source
        self.name = self.name or f"{source.system}/{source.kind or source.record_kinds[0]}"
        self.fields = set(self.spec.source.fields) if self.spec.source.fields else None
        self.blocks = {r.name: r for r in self.spec.resources}
        self.references: list[tuple[str, str, str]] = []
        # The for_each variables the rule being compiled reads.
        self.vars_read: set[str] = set()
        # Can one record make several resources? Then their common parts are shared.
        self.several = len(self.spec.resources) > 1 or any(
            r.for_each is not None for r in self.spec.resources
        )

    def location(self, loc: Loc) -> str:
        """Return ``file:line`` for a location."""
        line = self.lines(loc)
        return f"{self.file}:{line}" if line else self.file

    # -- paths ----------------------------------------------------------------------------
    def path(self, text: str, loc: Loc, variables: frozenset[str]) -> SourcePath:
        """Compile a source path, checking variables, configuration and declared fields."""
        try:
            path = parse_path(text, variables=variables, config=self.config)
        except UnknownNameError as exc:
            raise CompileProblem(str(exc).split(";")[0], loc, exc.hint) from None
        except PathSyntaxError as exc:
            raise CompileProblem(str(exc), loc) from None
        self._check_field(path, loc)
        if path.variable not in (None, "config", "record"):
            self.vars_read.add(str(path.variable))
        return path

    def template(self, text: str, loc: Loc, variables: frozenset[str]) -> Template:
        """Compile a template, checking its placeholders like paths."""
        try:
            template = parse_template(text, variables=variables, config=self.config)
        except UnknownNameError as exc:
            raise CompileProblem(str(exc).split(";")[0], loc, exc.hint) from None
        except PathSyntaxError as exc:
            raise CompileProblem(str(exc), loc) from None
        for path in template.paths:
            self._check_field(path, loc)
        return template

    def _check_field(self, path: SourcePath, loc: Loc) -> None:
        name = path.field_name
        if self.fields is not None and name is not None and name not in self.fields:
            near = get_close_matches(name, sorted(self.fields), n=3)
            raise CompileProblem(
                f"'{name}' is not one of the source fields this spec declares (source.fields)",
                loc,
                f"did you mean {', '.join(near)}?" if near else "add it to source.fields",
            )

    def constant_text(self, text: str, loc: Loc) -> str:
        """Resolve a literal or ``$config.name`` (a URI, a code) at compile time."""
        if text.startswith("$"):
            path = self.path(text, loc, frozenset())
            if not path.is_constant:
                raise CompileProblem("only $config.<name> may be used here", loc)
            return str(path.constant)
        return text

    def condition(self, when: When, loc: Loc, variables: frozenset[str]) -> Condition:
        """Compile a condition."""
        test = when.test
        if test in ("all", "any"):
            parts = [
                self.condition(w, (*loc, test, i), variables)
                for i, w in enumerate(getattr(when, test))
            ]
            if test == "all":
                return lambda scope: all(p(scope) for p in parts)
            return lambda scope: any(p(scope) for p in parts)
        if test == "not":
            assert when.not_ is not None
            inner = self.condition(when.not_, (*loc, "not"), variables)
            return lambda scope: not inner(scope)
        assert when.field is not None
        path = self.path(when.field, (*loc, "field"), variables)

        def read(scope: Scope) -> Any:
            try:
                return path.get(scope)
            except SourceShapeError:
                # A record of the wrong shape fails no condition loudly: the rule that
                # reads the field reports it.
                return None

        if test == "present":
            wanted = bool(when.present)
            return lambda scope: (read(scope) is not None) is wanted
        if test == "equals":
            expected = when.equals
            return lambda scope: _same(read(scope), expected)
        if test == "not_equals":
            unexpected = when.not_equals
            return lambda scope: not _same(read(scope), unexpected)
        options = list(when.in_ or []) if test == "in" else list(when.not_in or [])
        inside = test == "in"
        return lambda scope: any(_same(read(scope), o) for o in options) is inside

    # -- spec -----------------------------------------------------------------------------
    def compile(self) -> CompiledSpec:
        """Compile the whole spec."""
        spec = self.spec
        made = [r.type for r in spec.resources]
        for i, name in enumerate(spec.target):
            if name not in made:
                raise CompileProblem(
                    f"target lists {name} but no resource makes one", ("target", i)
                )
        for i, block in enumerate(spec.resources):
            if block.type not in spec.target:
                raise CompileProblem(
                    f"resource {block.name} makes {_a(block.type)}, which target does not list",
                    ("resources", i, "type"),
                    f"add {block.type} to target",
                )
        names = [r.name for r in spec.resources]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise CompileProblem(f"two resources are named {name}", ("resources", i, "name"))
        security = self.each_part(
            spec.security, lambda rule, i: self.security(rule, ("security", i), frozenset())
        )
        resources = self.each_part(
            spec.resources, lambda block, i: self.resource(block, ("resources", i))
        )
        if self.problems:
            raise CompileProblems(self.problems)
        # Two blocks may make one type under one key kind (the surviving and the retired
        # Patient of a merge) only from different key values; the same template would
        # give the same id every time.
        keys = [(r.type, r.key_system, r.key_kind, r.key_value.text) for r in resources]
        for i, key in enumerate(keys):
            if keys.index(key) != i:
                raise CompileProblem(
                    f"two resources make {key[0]} keyed by ({key[1]}, {key[2]}) from the same"
                    f" value {key[3]!r}: their ids would collide",
                    ("resources", i, "key", "kind"),
                    "give each a different key kind or value",
                )
        return CompiledSpec(
            name=self.name,
            system=spec.source.system,
            kind=spec.source.kind or self.name.partition("/")[2],
            kinds=spec.source.record_kinds,
            version=spec.version,
            file=self.file,
            description=spec.description,
            targets=tuple(spec.target),
            resources=resources,
            security=security,
            config=self.config,
            validator=self.validator,
            references=tuple(dict.fromkeys(self.references)),
        )

    def each_part(
        self, parts: Sequence[Any], compile_part: Callable[[Any, int], Any]
    ) -> tuple[Any, ...]:
        """Compile each part; note a part's problem and carry on with the next one."""
        done = []
        for i, part in enumerate(parts):
            try:
                done.append(compile_part(part, i))
            except CompileProblem as exc:
                self.problems.append(exc)
        return tuple(done)

    def resource(self, block: ResourceSpec, loc: Loc) -> CompiledResource:
        """Compile one resource block."""
        try:
            model = resource_model(block.type)
        except TargetPathError as exc:
            raise CompileProblem(str(exc), (*loc, "type"), exc.hint) from None
        variables: frozenset[str] = frozenset()
        each = each_var = None
        if block.for_each is not None:
            each, each_var = self.for_each(block.for_each, (*loc, "for_each"), variables)
            variables = variables | {each_var}
        when = self.condition(block.when, (*loc, "when"), frozenset()) if block.when else None
        key_value = self.template(block.key.value, (*loc, "key", "value"), variables)
        if each_var is not None and not any(p.variable == each_var for p in key_value.paths):
            raise CompileProblem(
                f"each item needs its own key: use {{${each_var}}} in key.value",
                (*loc, "key", "value"),
                f'e.g. value: "{{{self._first_field(key_value)}}}:{{${each_var}}}"',
            )
        varying: set[str] = set()
        before = len(self.problems)

        def one_rule(rule: Rule, i: int) -> CompiledRule:
            self.vars_read.clear()
            compiled = self.rule(
                rule, model, (*loc, "rules", i), variables, context=block.type, base=""
            )
            if self.vars_read:
                varying.add(compiled.target.segments[0].element.name)
            return compiled

        rules = list(self.each_part(block.rules, one_rule))
        if len(self.problems) > before:
            # The rules' problems are noted; the block as a whole cannot be built.
            raise self.problems.pop()
        self._check_required(model, block, rules, loc)
        security = tuple(
            self.security(s, (*loc, "security", i), variables) for i, s in enumerate(block.security)
        )
        repeating = frozenset(
            name
            for name in {r.target.segments[0].element.name for r in rules}
            if all(r.repeating for r in rules if r.target.segments[0].element.name == name)
        ) | {"meta"}
        # References (subject, encounter) recur across a record's resources; in a for_each
        # block so does everything that does not read the item.
        shared = (
            frozenset(
                r.target.segments[0].element.name
                for r in rules
                if (
                    block.for_each is not None
                    or r.target.segments[0].element.fhir_type == "Reference"
                )
            )
            - varying
            - repeating
            if self.several
            else frozenset()
        )
        return CompiledResource(
            name=block.name,
            type=block.type,
            key_system=block.key.system or self.spec.source.system,
            key_kind=block.key.kind,
            key_value=key_value,
            location=self.location((*loc, "name")),
            when=when,
            each=each,
            each_var=each_var,
            rules=tuple(rules),
            security=security,
            repeating=repeating,
            shared=shared,
            plan=plan(block.type, repeating, shared),
        )

    @staticmethod
    def _first_field(template: Template) -> str:
        return next((p.text for p in template.paths), "id")

    def _check_required(
        self, model: type[Any], block: ResourceSpec, rules: list[CompiledRule], loc: Loc
    ) -> None:
        written = {r.target.segments[0].element.name for r in rules}
        for element in elements_of(model).values():
            if element.required and element.name not in written:
                raise CompileProblem(
                    f"{block.type}.{element.name} is required (1..1) and no rule writes it",
                    (*loc, "rules"),
                    f"add a rule with target: {element.name}",
                )

    def for_each(
        self, each: ForEach, loc: Loc, variables: frozenset[str]
    ) -> tuple[SourcePath, str]:
        """Compile a for_each: a ``[*]`` path and a new variable name."""
        path = self.path(each.from_, (*loc, "from"), variables)
        if not path.fans_out:
            raise CompileProblem(f"for_each reads a list: write {path.text}[*]", (*loc, "from"))
        if each.as_ in variables or each.as_ in ("config", "record"):
            raise CompileProblem(f"${each.as_} is already defined here", (*loc, "as"))
        return path, each.as_

    # -- rules ----------------------------------------------------------------------------
    def rule(
        self,
        rule: Rule,
        model: type[Any],
        loc: Loc,
        variables: frozenset[str],
        *,
        context: str,
        base: str,
    ) -> CompiledRule:
        """Compile one rule against the model it writes into."""
        try:
            target = resolve_target(model, rule.target, context=context, base=base)
        except TargetPathError as exc:
            raise CompileProblem(str(exc), (*loc, "target"), exc.hint) from None
        leaf = target.leaf
        label = rule.id or rule.target
        when = self.condition(rule.when, (*loc, "when"), variables) if rule.when else None
        common: dict[str, Any] = {
            "label": label,
            "location": self.location(loc),
            "target": target,
            "when": when,
            "required": rule.required,
            "default": None,
        }
        if "default" in rule.model_fields_set and rule.default is not None:
            common["default"] = self.constant(rule.default, leaf, (*loc, "default"))
        kind = rule.source_kind
        if kind == "rules":
            return self.group(rule, target, loc, variables, common, context, base)
        if kind == "value":
            fresh = _copier(self.constant(rule.value, leaf, (*loc, "value")))
            return ValueRule(
                read=lambda scope: fresh(),
                path=None,
                fields=None,
                convert=None,
                repeating=True,
                **common,
            )
        if kind == "template":
            assert rule.template is not None
            if leaf.json_kind != "string":
                raise CompileProblem(
                    f"a template makes text, but {leaf.name} is {_a(leaf.fhir_type)}",
                    (*loc, "template"),
                )
            template = self.template(rule.template, (*loc, "template"), variables)
            return ValueRule(
                read=template.render,
                path=None,
                fields=", ".join(p.text for p in template.paths) or None,
                convert=None,
                repeating=not template.paths,
                **common,
            )
        if kind == "reference":
            assert rule.reference is not None
            return self.reference(rule.reference, leaf, (*loc, "reference"), variables, common)
        return self.value_from(rule, leaf, loc, variables, common)

    def group(
        self,
        rule: Rule,
        target: TargetPath,
        loc: Loc,
        variables: frozenset[str],
        common: dict[str, Any],
        context: str,
        base: str,
    ) -> GroupRule:
        """Compile a group: child rules relative to the element it builds."""
        leaf = target.leaf
        if leaf.model is None:
            raise CompileProblem(
                f"{leaf.name} is {_a(leaf.fhir_type)}: a group (rules:) builds a complex element",
                (*loc, "rules"),
            )
        each = each_var = None
        if rule.for_each is not None:
            each, each_var = self.for_each(rule.for_each, (*loc, "for_each"), variables)
            variables = variables | {each_var}
            if not target.appends:
                raise CompileProblem(
                    "for_each makes several elements: the target must end in [+]",
                    (*loc, "target"),
                )
        plain = ".".join([base] * bool(base) + [s.element.name for s in target.segments])
        children = [
            self.rule(
                child,
                leaf.model,
                (*loc, "rules", i),
                variables,
                context=f"{context}.{target.text}",
                base=plain,
            )
            for i, child in enumerate(rule.rules or [])
        ]
        if not children:
            raise CompileProblem("a group needs at least one rule", (*loc, "rules"))
        return GroupRule(
            children=children,
            each=each,
            each_var=each_var,
            repeating=each is None and all(c.repeating for c in children),
            **common,
        )

    def constant(self, value: Any, leaf: Element, loc: Loc) -> Any:
        """Check a constant (``value:`` or ``default:``) against its element now."""
        if isinstance(value, str) and value.startswith("$config."):
            value = self.constant_text(value, loc)
        if leaf.model is not None:
            if not isinstance(value, dict):
                raise CompileProblem(
                    f"{leaf.name} is {_a(leaf.fhir_type)}: give a mapping of its parts",
                    loc,
                )
            try:
                leaf.model.model_validate(value)
            except Exception as exc:  # pydantic.ValidationError, via the FHIR models
                first = str(exc).splitlines()
                raise CompileProblem(
                    f"not a valid {leaf.fhir_type}: {' '.join(first[1:3]).strip()}", loc
                ) from None
            return value
        expected = leaf.json_kind
        ok = {
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
        }[expected]
        if not ok:
            raise CompileProblem(
                f"{leaf.name} needs {_JSON_KINDS[expected]}, not {kind_of(value)}",
                loc,
                "put text in quotes" if expected == "string" else None,
            )
        if leaf.codes is not None and value not in leaf.codes:
            near = get_close_matches(str(value), leaf.codes, n=3)
            raise CompileProblem(
                f"{value!r} is not a code {leaf.name} allows",
                loc,
                f"did you mean {', '.join(near)}?" if near else "allowed: " + ", ".join(leaf.codes),
            )
        return value

    def reference(
        self,
        ref: ReferenceSpec,
        leaf: Element,
        loc: Loc,
        variables: frozenset[str],
        common: dict[str, Any],
    ) -> ValueRule:
        """Compile a reference rule."""
        if leaf.fhir_type != "Reference":
            raise CompileProblem(f"{leaf.name} is {_a(leaf.fhir_type)}, not a Reference", (*loc,))
        display = self.template(ref.display, (*loc, "display"), variables) if ref.display else None
        if ref.resource is not None:
            block = self.blocks.get(ref.resource)
            if block is None:
                raise CompileProblem(
                    f"no resource named {ref.resource} in this spec",
                    (*loc, "resource"),
                    f"resources: {', '.join(self.blocks)}",
                )
            if block.for_each is not None:
                raise CompileProblem(
                    f"{ref.resource} makes one resource per item: it cannot be referenced",
                    (*loc, "resource"),
                )
            rtype, block_name = block.type, block.name
            self._check_ref_type(leaf, rtype, (*loc, "resource"))

            def build_local(value: Any, scope: Scope, run: Run, rule: ValueRule, where: Any) -> Any:
                rid = run.ids.get(block_name)
                if rid is None:
                    return None
                out: dict[str, Any] = {"reference": f"{rtype}/{rid}"}
                return _with_display(out, display, scope)

            return ValueRule(
                read=lambda scope: True,
                path=None,
                fields=None,
                convert=build_local,
                repeating=False,
                **common,
            )
        assert ref.type is not None
        self._check_ref_type(leaf, ref.type, (*loc, "type"))
        rtype = ref.type
        if ref.key is not None:
            key = ref.key
            key_system = key.system or self.spec.source.system
            value = self.template(key.value, (*loc, "key", "value"), variables)
            self.references.append((rtype, key_system, key.kind))

            def build_key(_: Any, scope: Scope, run: Run, rule: ValueRule, where: Any) -> Any:
                key_value = value.render(scope)
                if key_value is None:
                    return None
                out: dict[str, Any] = {
                    "reference": f"{rtype}/{run.stable_id(key_system, key.kind, key_value)}"
                }
                return _with_display(out, display, scope)

            return ValueRule(
                read=lambda scope: True,
                path=None,
                fields=", ".join(p.text for p in value.paths) or None,
                convert=build_key,
                repeating=False,
                **common,
            )
        assert ref.identifier is not None
        system = self.constant_text(ref.identifier.system, (*loc, "identifier", "system"))
        _check_uri(system, (*loc, "identifier", "system"))
        ident_value = self.template(ref.identifier.value, (*loc, "identifier", "value"), variables)

        def build_identifier(_: Any, scope: Scope, run: Run, rule: ValueRule, where: Any) -> Any:
            text = ident_value.render(scope)
            if text is None:
                return None
            out: dict[str, Any] = {"type": rtype, "identifier": {"system": system, "value": text}}
            return _with_display(out, display, scope)

        fields = [p.text for p in ident_value.paths] + [
            p.text for p in (display.paths if display else ())
        ]
        return ValueRule(
            read=lambda scope: True,
            path=None,
            fields=", ".join(fields) or None,
            convert=build_identifier,
            # Organisations and practitioners named by identifier recur across records
            # (a GP practice, a worker's caseload): worth validating once each.
            repeating=True,
            **common,
        )

    def _check_ref_type(self, leaf: Element, rtype: str, loc: Loc) -> None:
        allowed = leaf.reference_types
        if allowed and rtype not in allowed and "Resource" not in allowed:
            raise CompileProblem(
                f"{leaf.name} may reference {', '.join(allowed)}, not {rtype}", loc
            )

    def value_from(
        self,
        rule: Rule,
        leaf: Element,
        loc: Loc,
        variables: frozenset[str],
        common: dict[str, Any],
    ) -> ValueRule:
        """Compile a ``from:`` rule with its optional transform or concept map."""
        source = rule.from_
        floc = (*loc, "from")
        path: SourcePath | None = None
        parts: dict[str, SourcePath | list[SourcePath]] = {}
        listed: list[SourcePath] = []
        if isinstance(source, str):
            path = self.path(source, floc, variables)
            read: Reader = path.get
            fields = path.text
            repeating = path.is_constant
        elif isinstance(source, list):
            listed = [self.path(p, (*floc, i), variables) for i, p in enumerate(source)]
            read = _read_list(listed)
            fields = ", ".join(p.text for p in listed)
            repeating = False
        else:
            assert isinstance(source, dict)
            for name, spec in source.items():
                if isinstance(spec, list):
                    parts[name] = [
                        self.path(p, (*floc, name, i), variables) for i, p in enumerate(spec)
                    ]
                else:
                    parts[name] = self.path(spec, (*floc, name), variables)
            read = _read_parts(parts)
            fields = ", ".join(
                p.text for v in parts.values() for p in (v if isinstance(v, list) else [v])
            )
            repeating = False
        if path is not None and path.fans_out and not (leaf.is_list and common["target"].appends):
            raise CompileProblem(
                f"{path.text} reads every item of a list: the target must end in [+]",
                (*loc, "target"),
            )
        if rule.transform:
            convert = self.transform(rule, leaf, loc, path, parts, listed)
            repeating = False
        elif rule.map:
            convert = self.concept_map(rule, leaf, loc, variables)
            # Codes from a concept map repeat across records (a few targets, a few texts).
            repeating = True
        else:
            convert = None
            if leaf.model is not None:
                raise CompileProblem(
                    f"{leaf.name} is {_a(leaf.fhir_type)}: copy into its parts (e.g."
                    f" {rule.target}.<part>), or use a transform or map",
                    (*loc, "target"),
                )
            if parts or listed:
                raise CompileProblem("several source fields need a transform to combine them", floc)
        return ValueRule(
            read=read, path=path, fields=fields, convert=convert, repeating=repeating, **common
        )

    def transform(
        self,
        rule: Rule,
        leaf: Element,
        loc: Loc,
        path: SourcePath | None,
        parts: dict[str, Any],
        listed: list[SourcePath],
    ) -> Convert:
        """Compile a transform call: name, args, input shape and output type."""
        assert rule.transform is not None
        tloc = (*loc, "transform")
        found = REGISTRY.get(rule.transform)
        if found is None:
            near = get_close_matches(rule.transform, list(REGISTRY), n=3, cutoff=0.6)
            raise CompileProblem(
                f"unknown transform '{rule.transform}'",
                tloc,
                f"did you mean {', '.join(near)}?"
                if near
                else "known: " + ", ".join(sorted(REGISTRY)),
            )
        t: Transform = found
        if not accepts(leaf, t.output):
            raise CompileProblem(
                f"{t.name} makes {_a(t.output)}, but {leaf.name} is {_a(leaf.fhir_type)}",
                (*loc, "target"),
            )
        if parts:
            unknown = sorted(set(parts) - t.parts)
            if unknown:
                raise CompileProblem(
                    f"{t.name} takes no part named {', '.join(unknown)}",
                    (*loc, "from", unknown[0]),
                    "its parts: " + ", ".join(sorted(t.parts)) if t.parts else None,
                )
        elif listed and not t.accepts_value:
            raise CompileProblem(
                f"{t.name} takes parts: from: {{{', '.join(f'{p}: …' for p in sorted(t.parts))}}}",
                (*loc, "from"),
            )
        elif not t.accepts_value:
            raise CompileProblem(
                f"{t.name} takes parts: from: {{{', '.join(f'{p}: …' for p in sorted(t.parts))}}}",
                (*loc, "from"),
            )
        args = self.transform_args(t, rule.args or {}, (*loc, "args"))
        for name in t.config:
            if name not in self.config:
                raise CompileProblem(
                    f"{t.name} needs the configuration value {name}",
                    tloc,
                    "add it under values: in config.yaml",
                )
        func = t.func
        part_paths = {
            name: ", ".join(p.text for p in (v if isinstance(v, list) else [v]))
            for name, v in parts.items()
        }

        def call(value: Any, scope: Scope, run: Run, rule_: ValueRule, where: str | None) -> Any:
            ctx = run.tctx
            try:
                result = func(value, args, ctx)
            except TransformError as exc:
                at = part_paths.get(exc.part or "", where) if exc.part else where
                raise run.fail(rule_, exc.reason, at) from None
            except Exception as exc:  # a bug in a transform must still name the rule
                raise run.fail(
                    rule_, f"transform {t.name} failed unexpectedly ({type(exc).__name__})", where
                ) from exc
            if ctx.warnings:
                for message, part in ctx.warnings:
                    at = part_paths.get(part or "", where) if part else where
                    run.warn(rule_, at, message)
                ctx.warnings.clear()
            return result

        return call

    def transform_args(self, t: Transform, given: Mapping[str, Any], loc: Loc) -> dict[str, Any]:
        """Check a transform's args and fill in defaults."""
        args: dict[str, Any] = {}
        for name in given:
            if name not in t.args:
                near = get_close_matches(name, list(t.args), n=3)
                raise CompileProblem(
                    f"{t.name} takes no argument '{name}'",
                    (*loc, name),
                    f"did you mean {', '.join(near)}?"
                    if near
                    else ("its args: " + ", ".join(t.args) if t.args else f"{t.name} takes none"),
                )
        for name, arg in t.args.items():
            if name not in given:
                if arg.required:
                    raise CompileProblem(f"{t.name} needs the argument '{name}'", loc, arg.help)
                args[name] = arg.default
                continue
            value = given[name]
            if arg.type is str and isinstance(value, str):
                value = self.constant_text(value, (*loc, name))
            if not isinstance(value, arg.type) or (arg.type is int and isinstance(value, bool)):
                raise CompileProblem(
                    f"argument '{name}' of {t.name} must be {arg.type.__name__}, not"
                    f" {kind_of(value)}",
                    (*loc, name),
                )
            if arg.choices and value not in arg.choices:
                raise CompileProblem(
                    f"argument '{name}' of {t.name} must be one of {', '.join(arg.choices)}",
                    (*loc, name),
                )
            if name == "system":
                _check_uri(value, (*loc, name))
            if name == "zone":
                _check_zone(value, (*loc, name))
            args[name] = value
        return args

    def concept_map(
        self, rule: Rule, leaf: Element, loc: Loc, variables: frozenset[str]
    ) -> Convert:
        """Compile a concept map lookup; its output shape follows the target element."""
        assert rule.map is not None
        mloc = (*loc, "map")
        cmap = self.concept_maps.get(rule.map)
        if cmap is None and rule.map in self.broken_maps:
            raise CompileProblem(
                f"concept map '{rule.map}' has problems of its own",
                mloc,
                f"fix {self.broken_maps[rule.map]} first",
            )
        if cmap is None:
            near = get_close_matches(rule.map, list(self.concept_maps), n=3, cutoff=0.6)
            raise CompileProblem(
                f"no concept map '{rule.map}' in codes/",
                mloc,
                f"did you mean {', '.join(near)}?" if near else f"add codes/{rule.map}.yaml",
            )
        if leaf.fhir_type in ("code", "string"):
            output = "code"
        elif leaf.fhir_type == "Coding":
            output = "coding"
        elif leaf.fhir_type == "CodeableConcept":
            output = "codeable_concept"
        else:
            raise CompileProblem(
                f"a concept map makes a code, Coding or CodeableConcept, not {_a(leaf.fhir_type)}",
                (*loc, "target"),
            )
        if output != "codeable_concept":
            if cmap.unmapped == "text":
                raise CompileProblem(
                    f"concept map {cmap.id} keeps unknown codes as text, which only a"
                    f" CodeableConcept can hold; {leaf.name} is {_a(leaf.fhir_type)}",
                    mloc,
                    "use unmapped: fail or default in the map, or target a CodeableConcept",
                )
            if not cmap.single_target:
                raise CompileProblem(
                    f"concept map {cmap.id} maps some codes to several targets, but"
                    f" {leaf.name} holds one",
                    mloc,
                )
            if rule.text is not None:
                raise CompileProblem("text: needs a CodeableConcept target", (*loc, "text"))
        if output == "code" and leaf.codes is not None:
            for coding in cmap.targets():
                if coding["code"] not in leaf.codes:
                    raise CompileProblem(
                        f"concept map {cmap.id} gives {coding['code']!r}, which {leaf.name}"
                        f" does not allow ({', '.join(leaf.codes)})",
                        mloc,
                    )
        text = self.template(rule.text, (*loc, "text"), variables) if rule.text else None
        map_id = cmap.id

        def translate(
            value: Any, scope: Scope, run: Run, rule_: ValueRule, where: str | None
        ) -> Any:
            code = _code_text(value)
            if code is None:
                raise run.fail(rule_, f"expected a code, got {kind_of(value)}", where)
            targets = cmap.lookup(code)
            label = text.render(scope) if text is not None else None
            if targets is None:
                if cmap.unmapped == "fail":
                    raise run.fail(rule_, f"code {code!r} is not in concept map {map_id}", where)
                if cmap.unmapped == "default":
                    run.warn(
                        rule_,
                        where,
                        f"code {code!r} is not in concept map {map_id}; mapped to its default"
                        f" {cmap.default[0]['code']!r}",
                    )
                    targets = cmap.default
                else:
                    run.warn(
                        rule_, where, f"code {code!r} is not in concept map {map_id}; kept as text"
                    )
                    # The source code stands in for the text when the rule gives none.
                    return _concept(cmap, (), code, label, label or code)
            if output == "code":
                return targets[0]["code"] if targets else None
            if output == "coding":
                return dict(targets[0]) if targets else None
            return _concept(cmap, targets, code, label, label)

        return translate

    # -- security -------------------------------------------------------------------------
    def security(self, rule: SecurityRule, loc: Loc, variables: frozenset[str]) -> CompiledSecurity:
        """Compile a security label rule."""
        when = self.condition(rule.when, (*loc, "when"), variables) if rule.when else None
        if rule.label is not None:
            if rule.label not in labels.LABELS:
                near = get_close_matches(rule.label, list(labels.LABELS), n=3)
                raise CompileProblem(
                    f"unknown security label '{rule.label}'",
                    (*loc, "label"),
                    f"did you mean {', '.join(near)}?"
                    if near
                    else "known: " + ", ".join(labels.LABELS),
                )
            return CompiledSecurity(
                label=f"security {rule.label}",
                location=self.location(loc),
                when=when,
                fixed=labels.label_coding(rule.label),
                path=None,
                concept_map=None,
            )
        assert rule.from_ is not None
        assert rule.map is not None
        path = self.path(rule.from_, (*loc, "from"), variables)
        cmap = self.concept_maps.get(rule.map)
        if cmap is None:
            hint = (
                f"fix {self.broken_maps[rule.map]} first"
                if rule.map in self.broken_maps
                else f"add codes/{rule.map}.yaml"
            )
            raise CompileProblem(f"no usable concept map '{rule.map}'", (*loc, "map"), hint)
        if cmap.unmapped == "text":
            raise CompileProblem(
                f"concept map {cmap.id} keeps unknown codes as text, but a security label"
                " must be a code: use unmapped: fail (safest) or default",
                (*loc, "map"),
            )
        for coding in cmap.targets():
            if not labels.is_label(coding.get("system"), coding.get("code")):
                raise CompileProblem(
                    f"concept map {cmap.id} gives {coding.get('system')}|{coding.get('code')},"
                    " which is not a security label carebridge knows",
                    (*loc, "map"),
                    "labels: " + ", ".join(labels.LABELS),
                )
        return CompiledSecurity(
            label=f"security from {path.text}",
            location=self.location(loc),
            when=when,
            fixed=None,
            path=path,
            concept_map=cmap,
        )


def _concept(
    cmap: ConceptMap,
    targets: Sequence[dict[str, Any]],
    code: str,
    display: str | None,
    text: str | None,
) -> dict[str, Any] | None:
    codings = [dict(t) for t in targets]
    if cmap.source_system:
        local: dict[str, Any] = {"system": cmap.source_system, "code": code}
        if display:
            local["display"] = display
        codings.append(local)
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if text:
        concept["text"] = text
    return concept or None


def _with_display(out: dict[str, Any], display: Template | None, scope: Scope) -> dict[str, Any]:
    if display is not None:
        text = display.render(scope)
        if text:
            out["display"] = text
    return out


def _read_list(paths: list[SourcePath]) -> Reader:
    def read(scope: Scope) -> Any:
        values = []
        for p in paths:
            v = p.get(scope)
            if v is not None:
                values.extend(v) if p.fans_out else values.append(v)
        return values or None

    return read


def _read_parts(parts: Mapping[str, SourcePath | list[SourcePath]]) -> Reader:
    def read(scope: Scope) -> Any:
        values: dict[str, Any] = {}
        for name, spec in parts.items():
            if isinstance(spec, list):
                v = _read_list(spec)(scope)
            else:
                v = spec.get(scope)
            if v is not None:
                values[name] = v
        return values or None

    return read


def _check_uri(value: str, loc: Loc) -> None:
    if not value or any(c.isspace() for c in value) or ":" not in value:
        raise CompileProblem(f"{value!r} is not a URI (e.g. https://fhir.example.org/Id/x)", loc)


def _check_zone(value: str, loc: Loc) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise CompileProblem(f"unknown time zone {value!r}", loc, "e.g. Europe/London") from None


def _a(word: str) -> str:
    """Return ``word`` with its indefinite article ("an Address", "a Coding")."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
