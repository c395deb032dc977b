"""Read ASC JSON lines exports: one object per line, streamed, one bad line never stops the rest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from adapters.asc.kinds import Kind, get_kind, kind_for_path
from adapters.asc.records import build_record, unpaired_surrogate
from adapters.base import AdapterError, SourceRecord

BOM = b"\xef\xbb\xbf"


def read_jsonl(
    path: str | Path, *, kind: str | None = None
) -> Iterator[SourceRecord | AdapterError]:
    """Yield the records of a JSON lines export; the kind comes from the file name if not given."""
    p = Path(path)
    spec = get_kind(kind) if kind is not None else kind_for_path(p)[0]
    with open_export(p) as stream:
        yield from parse_jsonl(stream, kind=spec.name, name=p.name)


def parse_jsonl(
    lines: Iterable[bytes], *, kind: str, name: str
) -> Iterator[SourceRecord | AdapterError]:
    """Yield a record or an AdapterError for each non-blank line (as read from a binary file)."""
    spec = get_kind(kind)
    for number, line in enumerate(lines, start=1):
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        line = _strip_terminator(line)
        if not line.strip():
            continue
        yield _parse_line(spec, line, f"{name}:{number}")


def open_export(path: Path) -> BinaryIO:
    """Open an export file for binary reading, or raise an AdapterError naming it."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise AdapterError(
            f"{path.name}: cannot read: {exc.strerror}", field="file", origin=path.name
        ) from exc


def _strip_terminator(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line


def _parse_line(spec: Kind, line: bytes, origin: str) -> SourceRecord | AdapterError:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return AdapterError(
            f"{origin}: invalid UTF-8 at byte {exc.start + 1}", raw=line, origin=origin
        )
    try:
        row = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return AdapterError(
            f"{origin}: broken JSON ({exc.msg}, column {exc.colno})", raw=line, origin=origin
        )
    except (ValueError, RecursionError) as exc:
        # ValueError: NaN/Infinity (not JSON) or an integer too long to convert;
        # RecursionError: nesting deeper than the parser's stack allows.
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return AdapterError(f"{origin}: broken JSON ({reason})", raw=line, origin=origin)
    # An escaped lone surrogate ("\ud800") parses but is not Unicode text; anything that later
    # encodes the value as UTF-8 would fail, so it is rejected here, where the line is known.
    if "\\u" in text or "\\U" in text:
        where = unpaired_surrogate(row)
        if where is not None:
            return AdapterError(
                f"{origin}: field {where!r} holds an unpaired surrogate escape (not Unicode text)",
                field=where,
                raw=line,
                origin=origin,
            )
    return build_record(spec, row, raw=line, origin=origin)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
