"""Stream ADT messages out of HL7 batch files, one at a time, in bounded memory.

A batch file is either wrapped (``FHS BHS MSH… MSH… BTS FTS``) or plain consecutive
messages; segments end in CR, LF or CRLF. A message starts at each MSH segment. It also
ends at a blank line and, in files whose segments end in a bare CR, at the LF that ends
its line — the common "one message per line" layout, which is also how a message whose
MSH is missing is told apart from the one before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from adapters.base import AdapterError, SourceRecord
from adapters.chs.hl7 import (
    DATA_TYPE_ERROR,
    DEFAULT_MAX_MESSAGE_BYTES,
    Hl7Error,
    parse_message,
)

CHUNK_BYTES: Final = 65536
_EOL = re.compile(rb"\r\n|\r|\n")
_WRAPPERS: Final = (b"FHS", b"BHS", b"BTS", b"FTS")
_BOM: Final = b"\xef\xbb\xbf"


def _segments(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[bytes, bytes, int, bool]]:
    """Yield ``(segment, terminator, line, overflow)`` for each segment of the stream.

    ``line`` counts LF-terminated lines from 1. A segment longer than ``max_bytes`` is cut
    to its first ``max_bytes`` bytes, the rest discarded up to its terminator, and flagged
    ``overflow``, so memory stays bounded whatever the input.
    """
    buf = b""
    line = 1
    cut: bytes | None = None  # the start of an overlong segment whose rest is discarded
    while True:
        data = stream.read(CHUNK_BYTES)
        eof = not data
        buf += data
        pos = 0
        while True:
            m = _EOL.search(buf, pos)
            # A CR at the very end may be the first half of a CRLF: wait for more.
            if m is None or (m.group() == b"\r" and m.end() == len(buf) and not eof):
                break
            if cut is not None:
                yield cut, m.group(), line, True
                cut = None
            else:
                seg = buf[pos : m.start()]
                yield seg[:max_bytes], m.group(), line, len(seg) > max_bytes
            if m.group() != b"\r":
                line += 1
            pos = m.end()
        buf = buf[pos:]
        if len(buf) > max_bytes + 1:
            if cut is None:
                cut = buf[:max_bytes]
            buf = b"\r" if buf.endswith(b"\r") else b""
        if eof:
            if cut is not None:
                yield cut, b"", line, True
            elif buf:
                yield buf, b"", line, False
            return


class _Message:
    """Segments collected for one message, bounded by the size limit."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.parts: list[bytes] = []
        self.size = 0
        self.oversized = False
        self.bare_cr = False

    def add(self, segment: bytes, terminator: bytes, max_bytes: int) -> None:
        """Add a segment with its terminator, keeping at most ``max_bytes`` of raw bytes."""
        piece = segment + terminator
        self.size += len(piece)
        if self.size > max_bytes:
            self.oversized = True
        else:
            self.parts.append(piece)
        if terminator == b"\r":
            self.bare_cr = True

    def raw(self) -> bytes:
        """Return the message's bytes as in the file, without the line break ending it."""
        data = b"".join(self.parts)
        if data.endswith(b"\n"):
            data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
        return data


def read_batch(
    source: str | Path | BinaryIO,
    *,
    strict: bool = False,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    origin: str | None = None,
) -> Iterator[SourceRecord | AdapterError]:
    """Yield each message of a batch file as a :class:`SourceRecord`, or the error for it.

    ``source`` is a path or a binary stream. Each record's and error's ``origin`` is
    ``NAME:LINE`` (``adt-0001.hl7:49``): the file name (or ``origin``) and the line,
    counting LFs from 1, where the message starts; for files with one message per line
    that is the message's position (a file with no LF at all is all line 1). A bad
    message never stops the rest; its error keeps its raw bytes (cut at
    ``max_message_bytes``).
    """
    if isinstance(source, str | Path):
        path = Path(source)
        name = origin or path.name
        with path.open("rb") as stream:
            yield from _read(stream, name, strict, max_message_bytes)
    else:
        name = origin or Path(str(getattr(source, "name", "<stream>"))).name
        yield from _read(source, name, strict, max_message_bytes)


def _read(
    stream: BinaryIO, name: str, strict: bool, max_bytes: int
) -> Iterator[SourceRecord | AdapterError]:
    """Split the stream into messages and parse each one."""
    current: _Message | None = None
    for segment, terminator, line, overflow in _segments(stream, max_bytes):
        if line == 1 and segment.startswith(_BOM):
            segment = segment[len(_BOM) :]
        stripped = segment.lstrip()
        head = stripped[:3]
        if head == b"MSH" or head in _WRAPPERS or not stripped:
            if current is not None:
                yield _parse(current, name, strict, max_bytes)
                current = None
            if head != b"MSH":
                continue  # batch wrappers and blank lines carry no message content
        if current is None:
            current = _Message(line)
        current.add(segment, terminator, max_bytes)
        if overflow:
            current.oversized = True
        if terminator in (b"\n", b"\r\n") and current.bare_cr:
            yield _parse(current, name, strict, max_bytes)
            current = None
    if current is not None:
        yield _parse(current, name, strict, max_bytes)


def _parse(
    message: _Message, name: str, strict: bool, max_bytes: int
) -> SourceRecord | AdapterError:
    """Return the record for one collected message, or its error."""
    origin = f"{name}:{message.line}"
    raw = message.raw()
    if message.oversized:
        return Hl7Error(
            f"message is over the {max_bytes:,}-byte limit",
            condition=DATA_TYPE_ERROR,
            reject=True,
            raw=raw,
            origin=origin,
        )
    try:
        return parse_message(raw, strict=strict, max_bytes=max_bytes).to_record(origin)
    except AdapterError as exc:
        exc.raw = raw
        exc.origin = origin
        return exc
