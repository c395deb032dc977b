"""What the FHIR R4 models say about an element path: exists? list? which type? which codes?

Read once per element from the ``fhir.resources`` R4B models, so a spec that names an
unknown element, writes text into a boolean or a code outside the element's value set is
refused when it is compiled, not when the first record arrives.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from typing import Any

from fhir.resources.R4B.resource import Resource

from bridge.fhir.validate import model_class

_TARGET_SEGMENT = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\[(\+|\d+)\])?$")
_INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt", "integer64"})
# Elements the engine itself writes on every produced resource.
RESERVED = frozenset({"resourceType", "id", "meta.tag", "meta.security"})
APPEND = "+"


class TargetPathError(ValueError):
    """A target path is malformed or names no FHIR element; ``hint`` suggests a fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Element:
    """One FHIR element of a model."""

    name: str  # as in FHIR JSON (``class``, not ``class_fhir``)
    is_list: bool
    fhir_type: str  # "boolean", "code", "dateTime"… or a complex type ("CodeableConcept")
    model: type[Any] | None  # the complex type's model; None for primitives
    json_kind: str  # "string", "boolean", "integer", "number" or "object"
    required: bool
    codes: tuple[str, ...] | None  # the required value set of a code element, when closed
    reference_types: tuple[str, ...] | None


@dataclass(frozen=True)
class Segment:
    """One step of a target path: an element and, for lists, which item."""

    element: Element
    index: str | int | None  # "+" appends a new item; n picks item n; None for non-lists


@dataclass(frozen=True)
class TargetPath:
    """A resolved target path such as ``name[+].given[+]``."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def leaf(self) -> Element:
        """Return the element the path writes."""
        return self.segments[-1].element

    @property
    def appends(self) -> bool:
        """Say whether the path adds a new item to a list at its end."""
        return self.segments[-1].index == APPEND


def _primitive_name(marker: Any) -> str:
    name = type(marker).__name__
    return name[0].lower() + name[1:]


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _describe(annotation: Any) -> tuple[bool, str, type[Any] | None]:
    """Return (is_list, fhir type, complex model) for a field annotation."""
    annotation = _strip_optional(annotation)
    is_list = typing.get_origin(annotation) is list
    if is_list:
        annotation = _strip_optional(typing.get_args(annotation)[0])
    if annotation is bool:
        return is_list, "boolean", None
    if typing.get_origin(annotation) is typing.Annotated:
        metadata = getattr(annotation, "__metadata__", ())
        return is_list, _primitive_name(metadata[0]) if metadata else "string", None
    if annotation is str:
        return is_list, "string", None
    getter = getattr(annotation, "get_model_klass", None)
    if getter is not None:
        model = getter()
        return is_list, str(getattr(model, "__resource_type__", model.__name__)), model
    return is_list, "unknown", None


def _json_kind(fhir_type: str, model: type[Any] | None) -> str:
    if model is not None:
        return "object"
    if fhir_type == "boolean":
        return "boolean"
    if fhir_type in _INTEGER_TYPES:
        return "integer"
    if fhir_type == "decimal":
        return "number"
    return "string"


@cache
def elements_of(model: type[Any]) -> dict[str, Element]:
    """Return the elements of a FHIR model keyed by their JSON name."""
    found: dict[str, Element] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property") or name.endswith("__ext"):
            continue
        json_name = info.alias or name
        is_list, fhir_type, sub = _describe(info.annotation)
        if fhir_type == "unknown" or (sub is not None and issubclass(sub, Resource)):
            continue  # contained resources and the like are not mapping targets
        codes = extra.get("enum_values")
        closed = isinstance(codes, list) and "+" not in codes
        refs = extra.get("enum_reference_types")
        found[json_name] = Element(
            name=json_name,
            is_list=is_list,
            fhir_type=fhir_type,
            model=sub,
            json_kind=_json_kind(fhir_type, sub),
            required=bool(extra.get("element_required")) or info.is_required(),
            codes=tuple(str(c) for c in codes) if closed and isinstance(codes, list) else None,
            reference_types=tuple(str(r) for r in refs) if isinstance(refs, list) else None,
        )
    return found


def resource_model(resource_type: str) -> type[Any]:
    """Return the R4B model of a resource type carebridge supports (ValueError otherwise)."""
    from bridge.core.errors import UnknownResourceTypeError

    try:
        return model_class(resource_type)
    except UnknownResourceTypeError as exc:
        raise TargetPathError(
            f"'{resource_type}' is not a FHIR resource type carebridge stores",
            hint=_near(resource_type, exc.extra.get("supported", [])),
        ) from None


def _near(name: str, known: typing.Iterable[str]) -> str | None:
    matches = get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f"did you mean {', '.join(matches)}?" if matches else None


def resolve_target(model: type[Any], text: str, *, context: str, base: str = "") -> TargetPath:
    """Resolve a target path against a model.

    ``context`` names the model in messages (``Patient``, ``Patient.name``); ``base`` is
    the plain element path of an enclosing group within the resource ("" at the top).
    """
    if not isinstance(text, str) or not text.strip():
        raise TargetPathError("the target is empty")
    segments: list[Segment] = []
    current = model
    where = context
    parts = text.strip().split(".")
    for n, part in enumerate(parts):
        match = _TARGET_SEGMENT.match(part)
        if not match:
            raise TargetPathError(
                f"'{part}' is not an element step: write name, name[+] or name[0]",
                hint="[+] adds a new item to a list; [0] means its first item",
            )
        name, index = match.group(1), match.group(2)
        elements = elements_of(current)
        element = elements.get(name)
        if element is None:
            raise TargetPathError(
                f"{where} has no element '{name}'",
                hint=_near(name, elements) or f"see the FHIR R4 definition of {where}",
            )
        last = n == len(parts) - 1
        if element.is_list and index is None:
            raise TargetPathError(
                f"{where}.{name} is a list: write {name}[+] to add an item",
                hint=f"or {name}[0] to write into its first item",
            )
        if not element.is_list and index is not None:
            raise TargetPathError(f"{where}.{name} is a single element: drop [{index}]")
        if not last and element.model is None:
            raise TargetPathError(f"{where}.{name} is {_a(element.fhir_type)}: it has no parts")
        segments.append(
            Segment(element, APPEND if index == APPEND else (int(index) if index else None))
        )
        where = f"{where}.{name}"
        if element.model is not None:
            current = element.model
    path = TargetPath(text=text.strip(), segments=tuple(segments))
    plain = ".".join([base] * bool(base) + [s.element.name for s in path.segments])
    if any(plain == r or plain.startswith(r + ".") for r in RESERVED):
        raise TargetPathError(
            f"{plain} is written by the engine",
            hint="the id comes from key:, meta.tag names the spec, meta.security comes"
            " from security:",
        )
    return path


# Which FHIR types a value of one kind may be written to.
COMPATIBLE: dict[str, frozenset[str]] = {
    "date": frozenset({"date", "dateTime"}),
    "dateTime": frozenset({"dateTime"}),
    "instant": frozenset({"instant", "dateTime"}),
    "string": frozenset({"string", "markdown"}),
    "code": frozenset({"code", "string"}),
}


def accepts(element: Element, produced: str) -> bool:
    """Say whether an element can hold a value of FHIR type ``produced``."""
    if produced == element.fhir_type:
        return True
    return element.fhir_type in COMPATIBLE.get(produced, frozenset())


def _a(word: str) -> str:
    """Return ``word`` with its indefinite article ("an Address", "a Coding")."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
