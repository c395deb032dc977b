"""Turn one parsed row into a SourceRecord, or an AdapterError naming what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.asc.kinds import SYSTEM, Kind
from adapters.base import AdapterError, SourceRecord


def json_type(value: object) -> str:
    """Name a parsed JSON value's type the way a reader of the error would."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def build_record(
    kind: Kind,
    row: object,
    *,
    raw: bytes,
    origin: str,
    meta: Mapping[str, Any] | None = None,
) -> SourceRecord | AdapterError:
    """Return the row as a SourceRecord of ``kind``, or an AdapterError if it has no usable id.

    Error messages name the origin, the field and the reason but never a value: values may be
    personal data and travel with the error only as ``raw`` (kept encrypted as a dead letter).
    """
    if not isinstance(row, dict):
        return AdapterError(
            f"{origin}: expected a JSON object, got {json_type(row)}", raw=raw, origin=origin
        )
    id_field = kind.id_field
    if id_field not in row:
        return _field_error(kind, id_field, "is missing", raw, origin)
    record_id = row[id_field]
    if record_id is None or (isinstance(record_id, str) and not record_id.strip()):
        return _field_error(kind, id_field, "is empty", raw, origin)
    if not isinstance(record_id, str):
        return _field_error(
            kind, id_field, f"must be a string, got {json_type(record_id)}", raw, origin
        )
    version = row.get(kind.version_field)
    if version is not None and not isinstance(version, str):
        return _field_error(
            kind, kind.version_field, f"must be a string, got {json_type(version)}", raw, origin
        )
    return SourceRecord(
        system=SYSTEM,
        kind=kind.name,
        id=record_id,
        version=version,
        fields=row,
        raw=raw,
        origin=origin,
        meta=dict(meta or {}),
    )


def _field_error(kind: Kind, name: str, problem: str, raw: bytes, origin: str) -> AdapterError:
    return AdapterError(
        f"{origin}: {kind.name} field {name!r} {problem}", field=name, raw=raw, origin=origin
    )


def unpaired_surrogate(value: object, path: str = "") -> str | None:
    """Return the path of the first string (or key) holding a lone surrogate, else None."""
    if isinstance(value, str):
        if has_surrogate(value):
            return path or "(value)"
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = unpaired_surrogate(item, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if has_surrogate(key):
                return path or "(key)"
            found = unpaired_surrogate(item, child)
            if found is not None:
                return found
    return None


def has_surrogate(text: str) -> bool:
    """Return whether text holds a surrogate code point (so it cannot be encoded as UTF-8)."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)
