"""Community health record adapter: HL7 v2 ADT (MLLP, batch files) and JSON-lines extracts.

What an ingest service calls:

- :func:`parse_message` / :func:`parse_record` — one message (bytes) → parsed / record;
- :func:`build_ack`, :func:`build_error_ack`, :func:`ack_code` — the reply to send;
- :class:`MllpServer` (with :class:`MllpDecoder` underneath) — the listener;
- :func:`read_batch`, :func:`read_extract`, :class:`ChsAdapter` — files.

See ``docs/adapters-chs.md``.
"""

from adapters.chs.ack import (
    Outcome,
    ack_code,
    build_ack,
    build_error_ack,
    is_enhanced_mode,
    outcome_of,
    wants_application_ack,
    wants_commit_ack,
)
from adapters.chs.adapter import ChsAdapter
from adapters.chs.batch import read_batch
from adapters.chs.extract import EXTRACTS, parse_extract_line, read_extract
from adapters.chs.hl7 import (
    DEFAULT_MAX_MESSAGE_BYTES,
    SUPPORTED_EVENTS,
    SUPPORTED_VERSIONS,
    SYSTEM,
    Hl7Error,
    MessageHeader,
    ParsedMessage,
    Separators,
    hl7_datetime_to_iso,
    parse_message,
    parse_record,
    salvage_header,
    split_message,
)
from adapters.chs.mllp import Frame, Junk, MllpDecoder, MllpServer, MllpStats, Oversized, frame

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "EXTRACTS",
    "SUPPORTED_EVENTS",
    "SUPPORTED_VERSIONS",
    "SYSTEM",
    "ChsAdapter",
    "Frame",
    "Hl7Error",
    "Junk",
    "MessageHeader",
    "MllpDecoder",
    "MllpServer",
    "MllpStats",
    "Outcome",
    "Oversized",
    "ParsedMessage",
    "Separators",
    "ack_code",
    "build_ack",
    "build_error_ack",
    "frame",
    "hl7_datetime_to_iso",
    "is_enhanced_mode",
    "outcome_of",
    "parse_extract_line",
    "parse_message",
    "parse_record",
    "read_batch",
    "read_extract",
    "salvage_header",
    "split_message",
    "wants_application_ack",
    "wants_commit_ack",
]
