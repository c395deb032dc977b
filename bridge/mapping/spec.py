"""The shape of mapping files: specs, concept maps and ``config.yaml`` (docs/mappings.md).

These models check structure only (keys, types, required parts). What needs the FHIR
models, the transforms, the concept maps or the configuration (unknown FHIR element,
unknown transform, missing concept map…) is checked when a spec is compiled.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$")]
Text = Annotated[str, StringConstraints(min_length=1)]
NAME_RULE = "lower-case letters, digits, '_' or '-', starting with a letter"


class When(BaseModel):
    """A condition: a test on one source field, or all/any/not of other conditions."""

    model_config = _STRICT

    field: Text | None = None
    equals: JsonValue = None
    not_equals: JsonValue = None
    in_: list[JsonValue] | None = Field(None, alias="in")
    not_in: list[JsonValue] | None = None
    present: bool | None = None
    all: list[When] | None = None
    any: list[When] | None = None
    not_: When | None = Field(None, alias="not")

    @model_validator(mode="after")
    def _one_test(self) -> When:
        tests = [
            k
            for k in ("equals", "not_equals", "in_", "not_in", "present")
            if k in self.model_fields_set
        ]
        groups = [k for k in ("all", "any", "not_") if k in self.model_fields_set]
        names = ", ".join(t.rstrip("_") for t in tests + groups)
        if len(tests) + len(groups) != 1:
            raise ValueError(
                "a condition needs exactly one of equals, not_equals, in, not_in, present"
                f" (with field), or all, any, not; found {names or 'none'}"
            )
        if tests and self.field is None:
            raise ValueError(f"'{names}' tests a source field: add field: <path>")
        if groups and self.field is not None:
            raise ValueError(f"'{names}' combines conditions and takes no field")
        return self

    @property
    def test(self) -> str:
        """Return which test this condition makes."""
        for name in ("equals", "not_equals", "in_", "not_in", "present", "all", "any", "not_"):
            if name in self.model_fields_set:
                return name.rstrip("_")
        raise AssertionError("validated: one test is set")


class ForEach(BaseModel):
    """Repeat a resource or a group once per item of a source list, bound to ``$as``."""

    model_config = _STRICT

    from_: Text = Field(alias="from")
    as_: Name = Field(alias="as")


class KeySpec(BaseModel):
    """The source key a produced resource's stable id derives from."""

    model_config = _STRICT

    system: Name | None = None
    kind: Name
    value: Text


class IdentifierRef(BaseModel):
    """A logical reference by identifier (system and value)."""

    model_config = _STRICT

    system: Text
    value: Text


class ReferenceSpec(BaseModel):
    """A reference to a produced resource, to a keyed resource, or by identifier."""

    model_config = _STRICT

    resource: Name | None = None
    type: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]+$")] | None = None
    key: KeySpec | None = None
    identifier: IdentifierRef | None = None
    display: Text | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ReferenceSpec:
        kinds = [k for k in ("resource", "key", "identifier") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a reference needs exactly one of resource (a resource this spec makes),"
                f" key or identifier; found {', '.join(kinds) or 'none'}"
            )
        if self.resource is not None and self.type is not None:
            raise ValueError("type comes from the referenced resource: drop type")
        if self.resource is None and self.type is None:
            raise ValueError("a key or identifier reference needs type: (e.g. Patient)")
        return self


SourceFrom = Text | list[Text] | dict[Text, Text | list[Text]]
_VALUE_SOURCES = ("from_", "value", "template", "reference", "rules")


class Rule(BaseModel):
    """One rule: where a value comes from, how it is changed, and where it goes."""

    model_config = _STRICT

    id: Text | None = None
    target: Text
    when: When | None = None
    for_each: ForEach | None = None
    from_: SourceFrom | None = Field(None, alias="from")
    value: JsonValue = None
    template: Text | None = None
    reference: ReferenceSpec | None = None
    rules: list[Rule] | None = None
    transform: Text | None = None
    args: dict[Text, JsonValue] | None = None
    map: Text | None = None
    text: Text | None = None
    default: JsonValue = None
    required: bool = False
    note: Text | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        sources = [s for s in _VALUE_SOURCES if s in self.model_fields_set]
        if len(sources) != 1:
            found = ", ".join(s.rstrip("_") for s in sources) or "none"
            raise ValueError(
                "a rule needs exactly one of from, value, template, reference or rules;"
                f" found {found}"
            )
        if "value" in self.model_fields_set and self.value is None:
            raise ValueError("value: null writes nothing; remove the rule instead")
        if self.transform and self.map:
            raise ValueError("use transform or map, not both (map the code in its own rule)")
        if self.args is not None and not self.transform:
            raise ValueError("args belong to a transform: add transform: <name>")
        if self.text is not None and not self.map:
            raise ValueError("text sets CodeableConcept.text of a mapped code: add map: <name>")
        if (self.transform or self.map) and self.from_ is None:
            raise ValueError("transform and map work on a source value: use from:")
        if self.rules is not None and ("default" in self.model_fields_set):
            raise ValueError("a group (rules:) has no default")
        if self.for_each is not None and self.rules is None:
            raise ValueError("for_each repeats a group: add rules:, or read a list with [*]")
        return self

    @property
    def source_kind(self) -> str:
        """Return which value source the rule uses."""
        return next(s.rstrip("_") for s in _VALUE_SOURCES if s in self.model_fields_set)


class SecurityRule(BaseModel):
    """A security label: a fixed one, or labels read from a field through a concept map."""

    model_config = _STRICT

    label: Text | None = None
    from_: Text | None = Field(None, alias="from")
    map: Text | None = None
    when: When | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SecurityRule:
        if (self.label is None) == (self.from_ is None):
            raise ValueError("a security rule needs label: (fixed) or from: with map:")
        if self.from_ is not None and self.map is None:
            raise ValueError("labels read from a field need map: <concept map>")
        if self.label is not None and self.map is not None:
            raise ValueError("a fixed label takes no map")
        return self


class SourceSpec(BaseModel):
    """Which source records a spec maps: one record kind, or several (``kinds``)."""

    model_config = _STRICT

    system: Name
    kind: Name | None = None
    kinds: Annotated[list[Name], Field(min_length=1)] | None = None
    description: Text | None = None
    fields: list[Text] | None = None

    @model_validator(mode="after")
    def _kind_or_kinds(self) -> SourceSpec:
        if (self.kind is None) == (self.kinds is None):
            raise ValueError(
                "give kind: (the one record kind the spec maps) or kinds: (a list, for a"
                " spec several record kinds share)"
            )
        if self.kinds is not None and len(set(self.kinds)) != len(self.kinds):
            twice = sorted({k for k in self.kinds if self.kinds.count(k) > 1})
            raise ValueError(f"kinds lists {', '.join(twice)} more than once")
        return self

    @property
    def record_kinds(self) -> tuple[str, ...]:
        """Return the record kinds the spec maps."""
        return (self.kind,) if self.kind is not None else tuple(self.kinds or ())


class ResourceSpec(BaseModel):
    """One FHIR resource (or one per item, with for_each) made from each record."""

    model_config = _STRICT

    name: Name
    type: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]+$")]
    key: KeySpec
    when: When | None = None
    for_each: ForEach | None = None
    security: list[SecurityRule] = []
    rules: Annotated[list[Rule], Field(min_length=1)]


class MappingSpec(BaseModel):
    """A mapping spec file: one source record kind to one or more FHIR resources."""

    model_config = _STRICT

    description: Text
    source: SourceSpec
    target: Annotated[list[Text], Field(min_length=1)]
    links: Annotated[list[Text], Field(min_length=1)]
    version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")]
    security: list[SecurityRule] = []
    resources: Annotated[list[ResourceSpec], Field(min_length=1)]


SPEC_OPENING = ("description", "source", "target", "links")


class ConceptTarget(BaseModel):
    """A target concept: code, display and (when not the map's) system."""

    model_config = _STRICT

    code: Text
    display: Text | None = None
    system: Text | None = None


class ConceptEntry(BaseModel):
    """One source code and its target (a code may appear in several entries: several targets)."""

    model_config = _STRICT

    source: Text
    code: Text | None = None
    display: Text | None = None
    system: Text | None = None
    no_map: bool = False

    @model_validator(mode="after")
    def _code_or_no_map(self) -> ConceptEntry:
        if self.no_map and (self.code or self.display or self.system):
            raise ValueError("no_map: true means the code has no target: drop code/display/system")
        if not self.no_map and not self.code:
            raise ValueError("give the target code:, or no_map: true for a code with no target")
        return self


class ConceptMapFile(BaseModel):
    """A concept map file: local codes to standard codes, and what to do with unknown ones."""

    model_config = _STRICT

    description: Text
    source: Text
    target: Text
    links: Annotated[list[Text], Field(min_length=1)]
    source_system: Text | None = None
    unmapped: Literal["fail", "text", "default"]
    default: ConceptTarget | None = None
    ignore_case: bool = False
    entries: list[ConceptEntry] | None = None
    entries_csv: Text | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ConceptMapFile:
        if (self.entries is None) == (self.entries_csv is None):
            raise ValueError("give the codes as entries: (a list) or entries_csv: <file.csv>")
        if self.unmapped == "default" and self.default is None:
            raise ValueError("unmapped: default needs default: {code: …, display: …}")
        if self.unmapped != "default" and self.default is not None:
            raise ValueError(f"default: is used only with unmapped: default, not {self.unmapped}")
        return self


class ConfigFile(BaseModel):
    """``config.yaml``: deployment values specs name as ``$config.<name>``."""

    model_config = _STRICT

    description: Text
    values: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], Text]


def known_keys() -> frozenset[str]:
    """Return every key the file formats know (for "did you mean" hints)."""
    keys: set[str] = set()
    for model in (
        When,
        ForEach,
        KeySpec,
        IdentifierRef,
        ReferenceSpec,
        Rule,
        SecurityRule,
        SourceSpec,
        ResourceSpec,
        MappingSpec,
        ConceptTarget,
        ConceptEntry,
        ConceptMapFile,
        ConfigFile,
    ):
        keys.update(f.alias or name for name, f in model.model_fields.items())
    return frozenset(keys)


def describe(value: Any) -> str:
    """Name a YAML value's type for an error message."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__
