"""What every source adapter produces and how it reports bad input.

Adapters fetch and parse only: no business rules, no database, no consent. They depend on
the standard library and their own parsers, never on ``bridge``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SourceRecord:
    """One record from a source system, parsed into JSON-shaped fields.

    ``system`` is the source system code (``chs``, ``asc``); ``kind`` the record kind the
    mapping specs key on (``person``, ``adt_a01``, ``referral``…); ``id`` the source's own
    id for the record; ``version`` what orders changes to it (an ``updated_at`` or an HL7
    message date-time), ``None`` when the source has none; ``fields`` the parsed content
    (dicts, lists, strings, numbers, booleans, None only); ``raw`` the bytes as received,
    kept for the inbound store and dead letters.
    """

    system: str
    kind: str
    id: str
    version: str | None
    fields: Mapping[str, Any]
    raw: bytes = b""
    # Where in the input the record came from (file and line, or channel and control id).
    origin: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


class AdapterError(Exception):
    """Input an adapter could not parse: names the field (or position) and the reason."""

    def __init__(
        self, reason: str, *, field: str | None = None, raw: bytes = b"", origin: str = ""
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.raw = raw
        self.origin = origin


class SourceAdapter(Protocol):
    """A source of records (files, a socket, an HTTP pull).

    Called by ingest commands and sync jobs. ``read`` yields records in source order and
    yields an :class:`AdapterError` in place of a record it cannot parse, so one bad record
    never stops the rest. It must not write anywhere, apply business rules or hold more
    than one record's worth of input in memory (streaming). Cost: proportional to input.
    """

    system: str

    def read(self) -> Iterator[SourceRecord | AdapterError]: ...
