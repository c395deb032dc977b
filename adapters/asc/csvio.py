"""Read and write ASC exports as CSV: a header row of the JSON field names, one row a record.

Cells are decoded by the kind's column types (:data:`adapters.asc.kinds.KINDS`): text is kept
verbatim (dates too: parsing them is the mapping's job), ``bool`` accepts true/false, yes/no,
y/n and 1/0, ``number`` gives an int or a float as JSON would, ``list`` is ``;``-separated
text. An empty cell is ``None`` (an empty list in a ``list`` column).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters.asc.jsonl import BOM, open_export
from adapters.asc.kinds import ColumnType, Kind, get_kind, kind_for_path
from adapters.asc.records import build_record, has_surrogate, json_type
from adapters.base import AdapterError, SourceRecord

LIST_SEPARATOR = ";"
TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
# ASCII digits only: int() and float() would also take Arabic-Indic digits and underscores.
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# surrogateescape turns each undecodable byte into one of these; ASCII (and so the CSV
# structure) is never affected, so the row can be split first and the cell blamed after.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def read_csv(path: str | Path, *, kind: str | None = None) -> Iterator[SourceRecord | AdapterError]:
    """Yield the records of a CSV export; the kind comes from the file name if not given."""
    p = Path(path)
    spec = get_kind(kind) if kind is not None else kind_for_path(p)[0]
    with open_export(p) as stream:
        yield from parse_csv(stream, kind=spec.name, name=p.name)


def parse_csv(
    lines: Iterable[bytes], *, kind: str, name: str
) -> Iterator[SourceRecord | AdapterError]:
    """Yield a record or an AdapterError for each data row (lines as read from a binary file).

    A broken header (missing id column, unnamed or repeated columns, undecodable) gives one
    AdapterError and ends the file, since no row after it could be read correctly.
    """
    spec = get_kind(kind)
    feed = _LineFeed(lines)
    # strict: a stray quote inside a field is an error rather than silently kept.
    reader = csv.reader(feed, strict=True)
    header: list[str] | None = None
    while True:
        first_line = feed.consumed + 1
        origin = f"{name}:{first_line}"
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield AdapterError(f"{origin}: malformed CSV: {exc}", raw=feed.take(), origin=origin)
            if header is None:
                return
            continue
        raw = feed.take()
        if all(not cell.strip() for cell in row):
            continue
        if header is None:
            problem = _header_problem(spec, row)
            if problem is not None:
                yield AdapterError(f"{origin}: CSV header {problem}", raw=raw, origin=origin)
                return
            header = row
            continue
        yield _decode_row(spec, header, row, raw=raw, origin=origin)


def decode_cell(column_type: ColumnType, cell: str) -> Any:
    """Return a CSV cell's value for its column type; raise ValueError saying what it is not."""
    if column_type == "text":
        return cell if cell else None
    value = cell.strip()
    if column_type == "list":
        return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
    if not value:
        return None
    if column_type == "bool":
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("is not a boolean (expected true/false, yes/no, y/n or 1/0)")
    if _INT.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise ValueError("is a number too long to read") from None
    if _FLOAT.fullmatch(value):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("is a number out of range")
        return number
    raise ValueError("is not a number")


def encode_cell(column_type: ColumnType, value: Any) -> str:
    """Return the CSV text for a value; raise ValueError if it would not read back equal."""
    if column_type == "text":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError(f"is a text column, so {json_type(value)} would read back as text")
        if not value:
            raise ValueError("holds an empty string, which reads back as null")
        if has_surrogate(value):
            raise ValueError("holds text that is not valid Unicode (a lone surrogate)")
        return value
    if column_type == "list":
        if not isinstance(value, list):
            raise ValueError(f"is a list column and cannot hold {json_type(value)}")
        for item in value:
            if (
                not isinstance(item, str)
                or not item
                or item != item.strip()
                or LIST_SEPARATOR in item
                or has_surrogate(item)
            ):
                raise ValueError(
                    "list items must be non-empty text without surrounding spaces or ';'"
                )
        return LIST_SEPARATOR.join(value)
    if value is None:
        return ""
    if column_type == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"is a boolean column and cannot hold {json_type(value)}")
        return "true" if value else "false"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"is a number column and cannot hold {json_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("is a number column and cannot hold NaN or infinity")
    try:
        # repr gives the shortest text that reads back to the same float, as JSON writes it.
        return repr(value)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise ValueError("holds a number too long to write") from None


def write_csv(
    kind: str,
    rows: Iterable[Mapping[str, Any]],
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Write rows of one kind as CSV that :func:`read_csv` reads back equal; return the count.

    The header is ``columns`` or the first row's keys; every row must have exactly those keys.
    Raises ValueError (naming the row and column, never the value) for anything CSV cannot
    carry: nested objects, empty strings, non-text in text columns, list items with ``;``.
    """
    spec = get_kind(kind)
    header: list[str] | None = list(columns) if columns is not None else None
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        # CRLF (RFC 4180) also makes the writer quote a lone "\r" inside a value.
        writer = csv.writer(out, lineterminator="\r\n")
        for count, row in enumerate(rows, start=1):
            if header is None:
                header = list(row)
            if count == 1:
                _check_header_for_writing(spec, header)
                writer.writerow(header)
            if row.keys() != set(header):
                raise ValueError(f"row {count} has different fields from the header")
            writer.writerow([_encode(spec, column, row[column], count) for column in header])
        if count == 0:
            header = header if header is not None else [spec.id_field, spec.version_field]
            _check_header_for_writing(spec, header)
            writer.writerow(header)
    return count


class _LineFeed:
    """Feed decoded lines to csv.reader and keep the bytes of the record being read."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = iter(lines)
        self._buffer: list[str] = []
        self.consumed = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if self.consumed == 0 and line.startswith(BOM):
            line = line[len(BOM) :]
        self.consumed += 1
        text = line.decode("utf-8", "surrogateescape")
        self._buffer.append(text)
        return text

    def take(self) -> bytes:
        """Return the bytes of the lines read since the last call, without the final newline."""
        text = "".join(self._buffer)
        self._buffer.clear()
        if text.endswith("\n"):
            text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
        return text.encode("utf-8", "surrogateescape")


def _header_problem(spec: Kind, header: list[str]) -> str | None:
    for position, column in enumerate(header, start=1):
        if _ESCAPED_BYTE.search(column):
            return f"column {position} has invalid UTF-8 in its name"
        if not column:
            return f"column {position} has no name"
    seen: set[str] = set()
    for column in header:
        if column in seen:
            return f"names column {column!r} twice"
        seen.add(column)
    if spec.id_field not in seen:
        return f"has no {spec.id_field!r} column (the {spec.name} id)"
    return None


def _decode_row(
    spec: Kind, header: list[str], row: list[str], *, raw: bytes, origin: str
) -> SourceRecord | AdapterError:
    if len(row) != len(header):
        return AdapterError(
            f"{origin}: expected {len(header)} columns as in the header, found {len(row)}",
            raw=raw,
            origin=origin,
        )
    fields: dict[str, Any] = {}
    for column, cell in zip(header, row, strict=True):
        if _ESCAPED_BYTE.search(cell):
            return AdapterError(
                f"{origin}: field {column!r} has invalid UTF-8",
                field=column,
                raw=raw,
                origin=origin,
            )
        try:
            fields[column] = decode_cell(spec.column_type(column), cell)
        except ValueError as exc:
            return AdapterError(
                f"{origin}: field {column!r} {exc}", field=column, raw=raw, origin=origin
            )
    return build_record(spec, fields, raw=raw, origin=origin)


def _check_header_for_writing(spec: Kind, header: list[str]) -> None:
    problem = _header_problem(spec, header)
    if problem is None and any(has_surrogate(column) for column in header):
        problem = "has a column name that is not valid Unicode"
    if problem is None and header[0].startswith("\ufeff"):
        # A reader takes a leading byte order mark for the file's, not the name's.
        problem = "starts with a byte order mark"
    if problem is not None:
        raise ValueError(f"cannot write {spec.name} CSV: header {problem}")


def _encode(spec: Kind, column: str, value: Any, row_number: int) -> str:
    if column == spec.id_field and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"row {row_number}: {column!r} must be non-blank text (the record id)")
    try:
        return encode_cell(spec.column_type(column), value)
    except ValueError as exc:
        raise ValueError(f"row {row_number}: column {column!r} {exc}") from None
