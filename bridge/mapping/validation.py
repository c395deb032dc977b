"""Validate produced resources with the ``fhir.resources`` R4B models, quickly.

Most of what a spec writes is the same from record to record: the ``meta.tag`` naming the
spec, constant categories, codes from concept maps, the organisation a reference names.
Validating those parts again for every record is most of the cost of validation, so
elements a spec marks as *repeating* (written only by constants, configuration, concept
maps and references by identifier) are validated once per distinct content and the
validated model is reused: pydantic accepts a model instance for a nested element without
validating it again. Elements *shared* by several resources of one record (the subject)
are reused within that record only. Everything else is validated in full each time, and
the resource as a whole always is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic

from bridge.fhir.validate import element_path, model_class
from bridge.mapping.elements import elements_of

_MAX_CACHED = 8192


class ResourceInvalid(Exception):
    """A produced resource failed validation: ``path`` is the element, ``reason`` why."""

    def __init__(self, path: str, reason: str, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.errors = errors


def _invalid(prefix: str, exc: pydantic.ValidationError) -> ResourceInvalid:
    errors = [
        {
            "path": element_path(prefix, tuple(e["loc"])),
            "reason": e["msg"].removeprefix("Value error, "),
        }
        for e in exc.errors(include_url=False)[:20]
    ]
    return ResourceInvalid(errors[0]["path"], errors[0]["reason"], errors)


@dataclass(frozen=True)
class Plan:
    """How to validate one kind of resource: its model and the elements to cache."""

    resource_type: str
    model: type[Any]
    # (element name, element model, is a list, cached per record rather than across records)
    cached: tuple[tuple[str, type[Any], bool, bool], ...]


def plan(resource_type: str, repeating: Collection[str], shared: Collection[str]) -> Plan:
    """Return the validation plan for a resource type (computed once per resource block)."""
    model = model_class(resource_type)
    elements = elements_of(model)
    cached = []
    for names, per_record in ((sorted(repeating), False), (sorted(shared), True)):
        for name in names:
            element = elements.get(name)
            if element is not None and element.model is not None:
                cached.append((name, element.model, element.is_list, per_record))
    return Plan(resource_type, model, tuple(cached))


class Validator:
    """Validates resources, reusing validated repeating elements (one per Mappings)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[type[Any], bytes], Any] = {}

    def _element(
        self,
        cache: dict[Any, Any],
        model: type[Any],
        value: Any,
        where: tuple[str, str, int | None],
    ) -> Any:
        if type(value) is not dict:
            return value  # let the resource validation report the wrong type
        key = (model, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
        cached = cache.get(key)
        if cached is None:
            try:
                cached = model.model_validate(value)
            except pydantic.ValidationError as exc:
                rtype, name, index = where
                at = f"{rtype}.{name}" + (f"[{index}]" if index is not None else "")
                raise _invalid(at, exc) from None
            if len(cache) >= _MAX_CACHED:
                cache.clear()
            cache[key] = cached
        return cached

    def validate(
        self,
        resource: dict[str, Any],
        how: Plan | None = None,
        record_cache: dict[Any, Any] | None = None,
    ) -> None:
        """Raise :class:`ResourceInvalid` when ``resource`` is not valid FHIR R4."""
        rtype = str(resource["resourceType"])
        if how is None or how.resource_type != rtype:
            how = Plan(rtype, model_class(rtype), ())
        data = resource
        if how.cached:
            data = dict(resource)
            for name, model, is_list, per_record in how.cached:
                value = resource.get(name)
                if value is None:
                    continue
                cache = self._cache
                if per_record:
                    if record_cache is None:
                        continue
                    cache = record_cache
                if is_list and type(value) is list:
                    data[name] = [
                        self._element(cache, model, item, (rtype, name, i))
                        for i, item in enumerate(value)
                    ]
                else:
                    data[name] = self._element(cache, model, value, (rtype, name, None))
        try:
            how.model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise _invalid(rtype, exc) from None
