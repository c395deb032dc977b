"""Stored resources as the consent engine's candidates, and redaction of released ones."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from bridge.store.resources import StoredResource
from consent import Candidate, Label

# A resource with no source system (written through the API) is not from a system the
# policy lists, so the engine withholds it (reason ``unknown-source``).
NO_SOURCE = "carebridge"


def labels_of(content: dict[str, Any]) -> frozenset[Label]:
    """Return the ``meta.security`` codings of a resource as labels."""
    out: set[Label] = set()
    for coding in (content.get("meta") or {}).get("security") or ():
        if isinstance(coding, dict) and coding.get("system") and coding.get("code"):
            out.add(Label(str(coding["system"]), str(coding["code"])))
    return frozenset(out)


def category_of(content: dict[str, Any]) -> str | None:
    """Return the first category code of a resource that has one."""
    raw = content.get("category")
    concepts = raw if isinstance(raw, list) else [raw]
    for concept in concepts:
        if isinstance(concept, dict):
            for coding in concept.get("coding") or ():
                if isinstance(coding, dict) and coding.get("code"):
                    return str(coding["code"])
    return None


def candidate_of(stored: StoredResource) -> Candidate:
    """Return what the engine needs to know about a stored resource."""
    content = stored.content or {}
    return Candidate(
        resource_type=stored.resource_type,
        resource_id=stored.id,
        source_system=stored.source.system if stored.source else NO_SOURCE,
        security_labels=labels_of(content),
        category=category_of(content),
    )


def _strip(node: Any, path: Sequence[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _strip(item, path)
        return
    if not isinstance(node, dict) or not path:
        return
    head, rest = path[0], path[1:]
    if not rest:
        node.pop(head, None)
    elif head in node:
        _strip(node[head], rest)


def redact(content: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``content`` without the elements named (``Patient.address``)."""
    if not paths:
        return content
    out = copy.deepcopy(content)
    for path in paths:
        rtype, _, rest = path.partition(".")
        if rtype == content.get("resourceType") and rest:
            _strip(out, rest.split("."))
    return out
