"""Stream the community health record's JSON-lines extracts as source records.

One file per record kind (``referrals.jsonl`` → kind ``referral``), one JSON object per
line, the record's id in its kind's id field and its last change in ``updated_at``. Values
are passed through untouched: checking dates and codes is the mapping's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from adapters.base import AdapterError, SourceRecord
from adapters.chs.hl7 import SYSTEM

# File stem → (record kind, id field).
EXTRACTS: Final = {
    "referrals": ("referral", "referral_id"),
    "contacts": ("contact", "contact_id"),
    "problems": ("problem", "problem_id"),
    "key_professionals": ("key_professional", "key_professional_id"),
    "alerts": ("alert", "alert_id"),
}
VERSION_FIELD: Final = "updated_at"
DEFAULT_MAX_LINE_BYTES: Final = 1024 * 1024


def extract_kind(path: str | Path) -> tuple[str, str]:
    """Return ``(kind, id field)`` for an extract file name, or raise naming the known ones."""
    p = Path(path)
    stem = p.name.removesuffix(".jsonl")
    if p.name.endswith(".jsonl") and stem in EXTRACTS:
        return EXTRACTS[stem]
    known = ", ".join(f"{name}.jsonl" for name in EXTRACTS)
    raise AdapterError(
        f"{p.name!r} is not a community health extract; the known files are {known}",
        origin=p.name,
    )


def read_extract(
    path: str | Path,
    kind: str | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[SourceRecord | AdapterError]:
    """Yield each row of an extract file as a :class:`SourceRecord`, or the error for it.

    ``kind`` defaults to the one the file name implies; passing it lets a differently
    named file be read as a known kind. Raises :class:`AdapterError` at once (before
    iterating) when the kind is unknown. Blank lines are skipped.
    """
    if kind is None:
        kind, id_field = extract_kind(path)
    else:
        by_kind = {k: f for k, f in EXTRACTS.values()}
        if kind not in by_kind:
            raise AdapterError(
                f"extract kind {kind!r} is unknown; the known kinds are {', '.join(by_kind)}",
                origin=Path(path).name,
            )
        id_field = by_kind[kind]
    return _rows(Path(path), kind, id_field, max_line_bytes)


def _rows(
    path: Path, kind: str, id_field: str, max_line_bytes: int
) -> Iterator[SourceRecord | AdapterError]:
    """Read the file line by line (never more than one line in memory)."""
    with path.open("rb") as stream:
        line_no = 0
        while True:
            raw = stream.readline(max_line_bytes + 1)
            if not raw:
                return
            line_no += 1
            origin = f"{path.name}:{line_no}"
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                # Skip the rest of the overlong line without holding it.
                while True:
                    rest = stream.readline(max_line_bytes)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield AdapterError(
                    f"line {line_no} is longer than {max_line_bytes:,} bytes",
                    raw=raw[:max_line_bytes],
                    origin=origin,
                )
                continue
            if not raw.strip():
                continue
            yield _row(raw, kind, id_field, line_no, origin)


def _row(
    raw: bytes, kind: str, id_field: str, line_no: int, origin: str
) -> SourceRecord | AdapterError:
    """Return one line as a record, or the error saying why it is not one."""
    try:
        # Without the line end, a cut-off line reports where it was cut, not "line 2".
        row = json.loads(raw.rstrip(b"\r\n"))
    except UnicodeDecodeError as exc:
        return AdapterError(
            f"line {line_no} is not UTF-8 (byte {exc.start})", raw=raw, origin=origin
        )
    except json.JSONDecodeError as exc:
        return AdapterError(
            f"line {line_no} is not valid JSON: {exc.msg}: character {exc.pos + 1}",
            raw=raw,
            origin=origin,
        )
    if not isinstance(row, dict):
        return AdapterError(
            f"line {line_no} is a JSON {type(row).__name__}, not an object",
            raw=raw,
            origin=origin,
        )
    record_id = row.get(id_field)
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    if not isinstance(record_id, str) or not record_id.strip():
        what = "missing" if record_id is None else f"not a usable id: {record_id!r}"
        return AdapterError(
            f"line {line_no}: {id_field} is {what}", field=id_field, raw=raw, origin=origin
        )
    version = row.get(VERSION_FIELD)
    return SourceRecord(
        system=SYSTEM,
        kind=kind,
        id=record_id,
        version=version if isinstance(version, str) and version else None,
        fields=row,
        raw=raw.rstrip(b"\r\n"),
        origin=origin,
    )


def parse_extract_line(raw: bytes, origin: str) -> SourceRecord | AdapterError:
    """Re-read one extract line kept elsewhere (a dead letter) from its ``file:line`` origin."""
    name, _, line = origin.rpartition(":")
    try:
        kind, id_field = extract_kind(name or origin)
    except AdapterError as exc:
        return AdapterError(exc.reason, raw=raw, origin=origin)
    line_no = int(line) if line.isdigit() else 0
    return _row(raw, kind, id_field, line_no, origin)
