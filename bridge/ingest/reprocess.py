"""Re-read and re-apply dead letters after the cause is fixed (a mapping, a code map)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from adapters.asc import kind_for_path, parse_jsonl
from adapters.base import AdapterError, SourceRecord
from adapters.chs import parse_extract_line, parse_record
from bridge.core.errors import ValidationError
from bridge.ingest.service import Ingestor, IngestOutcome
from bridge.store.inbound import DeadLetterRepository, DeadLetterView

DONE = frozenset({"applied", "unchanged", "stale", "duplicate"})


def reparse(letter: DeadLetterView) -> SourceRecord | AdapterError:
    """Parse a dead letter's raw input again with the adapter that first read it."""
    raw, origin = letter.raw, letter.origin or ""
    if letter.source_system == "chs":
        if letter.channel == "mllp" or raw.lstrip().startswith(b"MSH"):
            try:
                return parse_record(raw, origin=origin or letter.channel)
            except AdapterError as exc:
                return exc
        return parse_extract_line(raw, origin)
    if letter.source_system == "asc":
        name = origin.rpartition(":")[0] or origin
        if name.endswith(".csv"):
            return AdapterError(
                "a CSV row cannot be re-read without its file's header; fix the file and"
                " ingest it again (rows already applied are skipped as duplicates)",
                raw=raw,
                origin=origin,
            )
        try:
            kind = letter.source_kind or kind_for_path(Path(name))[0].name
        except AdapterError as exc:
            return AdapterError(exc.reason, raw=raw, origin=origin)
        return next(iter(parse_jsonl([raw], kind=kind, name=name)))
    return AdapterError(f"no adapter re-reads input from {letter.source_system!r}", raw=raw)


def reprocess(session: Session, ingestor: Ingestor, dead_letter_id: int) -> IngestOutcome:
    """Apply one open dead letter again; mark it reprocessed when it now goes through."""
    letters = DeadLetterRepository(session, crypto=ingestor.crypto, clock=ingestor.clock)
    letter = letters.get(dead_letter_id)
    if letter.status != "open":
        raise ValidationError(
            f"dead letter {dead_letter_id} is {letter.status}, not open", field="id"
        )
    item = reparse(letter)
    if isinstance(item, AdapterError):
        outcome = ingestor.reject(
            session,
            item,
            system=letter.source_system,
            channel=letter.channel,
            kind=letter.source_kind,
        )
    else:
        outcome = ingestor.apply(session, item, channel=letter.channel)
    if outcome.status in DONE:
        letters.set_status(dead_letter_id, "reprocessed")
    return outcome
