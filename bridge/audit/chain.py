"""The chain: canonical form of an entry and the keyed hash linking it to the previous one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from bridge.core.clock import fhir_instant
from bridge.core.crypto import Hasher

CHAIN_VERSION = b"carebridge-audit-v1"
# Every column but the hashes is covered, so no stored byte can change unnoticed.
CHAINED_FIELDS = (
    "seq",
    "recorded_at",
    "actor_user",
    "actor_roles",
    "actor_org",
    "actor_team",
    "action",
    "person_id",
    "outcome",
    "purpose",
    "break_glass",
    "request_id",
    "client_address",
    "detail",
)


def canonical(values: Mapping[str, Any]) -> bytes:
    """Serialise the chained fields of an entry deterministically."""
    out: dict[str, Any] = {}
    for name in CHAINED_FIELDS:
        value = values[name]
        if isinstance(value, datetime):
            value = fhir_instant(value)
        out[name] = value
    return orjson.dumps(out, option=orjson.OPT_SORT_KEYS)


def link(hasher: Hasher, prev_hash: str, values: Mapping[str, Any]) -> str:
    """Return the entry's hash: HMAC over (version, previous hash, canonical entry)."""
    return hasher.mac(CHAIN_VERSION, prev_hash.encode(), canonical(values))


def entry_values(row: Any) -> dict[str, Any]:
    """Read the chained fields off a stored row."""
    return {name: getattr(row, name) for name in CHAINED_FIELDS}
