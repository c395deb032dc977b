"""MLLP framing (``0x0B message 0x1C 0x0D``) and an asyncio MLLP server.

The decoder is incremental and bounded: feed it whatever the socket returns and it hands
back complete messages, reports bytes outside frames, and refuses a frame larger than the
limit without holding it (it keeps only the first few kilobytes, enough to acknowledge it).

The server keeps each connection open for as many messages as the sender likes, answers
them strictly in order, and survives handlers that raise or hang. It does no parsing and
no storage of its own: the ``handler`` decides what a message means and returns the ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from adapters.chs.ack import Outcome, ack_code, build_ack
from adapters.chs.hl7 import DEFAULT_MAX_MESSAGE_BYTES, salvage_header

START_BLOCK: Final = b"\x0b"
END_BLOCK: Final = b"\x1c\x0d"
# Enough of an oversized frame to read its MSH and acknowledge it.
HEAD_BYTES: Final = 4096
JUNK_SAMPLE_BYTES: Final = 64

log = logging.getLogger("adapters.chs.mllp")


def frame(message: bytes) -> bytes:
    """Wrap one message in an MLLP frame."""
    return START_BLOCK + message + END_BLOCK


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete message received inside a frame (without the framing bytes)."""

    message: bytes


@dataclass(frozen=True, slots=True)
class Junk:
    """Bytes outside any frame (or a frame cut short by a new start block), skipped."""

    size: int
    sample: bytes


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame longer than the limit: discarded, only its first bytes kept."""

    size: int
    head: bytes


Event = Frame | Junk | Oversized


class MllpDecoder:
    """Turn a byte stream into MLLP events, holding at most one frame (bounded) at a time.

    A start block inside a frame means the sender abandoned that frame: its bytes are
    reported as junk and the new frame begins. Bytes between frames are reported as one
    :class:`Junk` event just before the next frame (or at :meth:`close`).
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be positive")
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        # "out" between frames, "in" inside a frame, "skip" discarding an oversized frame.
        self._state = "out"
        self._junk = 0
        self._junk_sample = bytearray()
        self._skipped = 0
        self._head = b""
        # The last chunk ended in 0x1C while skipping: the end block may finish next chunk.
        self._pending_fs = False

    @property
    def buffered(self) -> int:
        """Return how many bytes the decoder holds (never more than the limit)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> list[Event]:
        """Consume ``data`` and return the events it completes, in stream order."""
        data = bytes(data)
        events: list[Event] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._state == "out":
                start = data.find(START_BLOCK, pos)
                if start < 0:
                    self._add_junk(data[pos:end])
                    break
                self._add_junk(data[pos:start])
                self._flush_junk(events)
                self._state = "in"
                pos = start + 1
            elif self._state == "in":
                pos = self._feed_frame(data, pos, end, events)
            else:
                pos = self._feed_skip(data, pos, end, events)
        return events

    def _feed_frame(self, data: bytes, pos: int, end: int, events: list[Event]) -> int:
        """Add frame bytes from ``pos``; return where the caller carries on."""
        # The end block split across reads: the frame so far ends in 0x1C.
        if self._buf.endswith(b"\x1c") and data[pos : pos + 1] == b"\x0d":
            del self._buf[-1]
            return self._emit(events, pos + 1)
        stop = data.find(END_BLOCK, pos)
        limit = stop if stop >= 0 else end
        restart = data.find(START_BLOCK, pos, limit)
        if restart >= 0:
            self._add_junk(START_BLOCK + bytes(self._buf) + data[pos:restart])
            self._buf.clear()
            self._state = "out"
            return restart
        if len(self._buf) + (limit - pos) > self.max_message_bytes:
            self._head = (bytes(self._buf) + data[pos : pos + HEAD_BYTES])[:HEAD_BYTES]
            self._skipped = len(self._buf)
            self._buf.clear()
            self._state = "skip"
            return pos
        self._buf += data[pos:limit]
        return end if stop < 0 else self._emit(events, stop + len(END_BLOCK))

    def _emit(self, events: list[Event], pos: int) -> int:
        """Report the buffered frame as complete and return ``pos``."""
        events.append(Frame(bytes(self._buf)))
        self._buf.clear()
        self._state = "out"
        return pos

    def _feed_skip(self, data: bytes, pos: int, end: int, events: list[Event]) -> int:
        """Discard an oversized frame's bytes up to its end block (or a new start block)."""
        if self._pending_fs and data[pos : pos + 1] == b"\x0d":
            self._skipped -= 1  # that 0x1C was the end block's, not content
            self._end_skip(events)
            return pos + 1
        self._pending_fs = False
        stop = data.find(END_BLOCK, pos)
        restart = data.find(START_BLOCK, pos, stop if stop >= 0 else end)
        if restart >= 0:
            self._skipped += restart - pos
            self._end_skip(events)
            return restart
        if stop < 0:
            self._skipped += end - pos
            self._pending_fs = data[end - 1 : end] == b"\x1c"
            return end
        self._skipped += stop - pos
        self._end_skip(events)
        return stop + len(END_BLOCK)

    def _end_skip(self, events: list[Event]) -> None:
        """Report the oversized frame and go back to looking for a start block."""
        # The head never holds more than the frame's content (a split end block's 0x1C).
        events.append(Oversized(size=self._skipped, head=self._head[: self._skipped]))
        self._skipped = 0
        self._head = b""
        self._pending_fs = False
        self._state = "out"

    def _add_junk(self, data: bytes) -> None:
        """Count bytes outside frames, keeping a short sample for the log."""
        if not data:
            return
        self._junk += len(data)
        room = JUNK_SAMPLE_BYTES - len(self._junk_sample)
        if room > 0:
            self._junk_sample += data[:room]

    def _flush_junk(self, events: list[Event]) -> None:
        """Report the junk seen since the last frame, if any."""
        if self._junk:
            events.append(Junk(self._junk, bytes(self._junk_sample)))
            self._junk = 0
            self._junk_sample.clear()

    def close(self) -> list[Event]:
        """Return what is left at end of stream: an unfinished frame counts as junk."""
        events: list[Event] = []
        if self._state == "in":
            self._add_junk(START_BLOCK + bytes(self._buf))
        elif self._state == "skip":
            events.append(Oversized(size=self._skipped, head=self._head))
        self._buf.clear()
        self._flush_junk(events)
        self._state = "out"
        self._skipped = 0
        self._head = b""
        self._pending_fs = False
        return events


Handler = Callable[[bytes], Awaitable[bytes | None]]


def _default_control_ids() -> Callable[[], str]:
    """Return a generator of unique ACK control ids (random prefix, then a counter)."""
    prefix = secrets.token_hex(3).upper()
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):010d}"


@dataclass
class MllpStats:
    """Counters a server keeps, for logs and metrics."""

    connections: int = 0
    open_connections: int = 0
    messages: int = 0
    handler_errors: int = 0
    handler_timeouts: int = 0
    oversized: int = 0
    junk_bytes: int = 0
    idle_closed: int = 0


class MllpServer:
    """An asyncio MLLP listener: many connections, many messages per connection, in order.

    ``handler(message) -> ack`` is awaited for each framed message, one at a time per
    connection; the ACK it returns is framed and sent before the next message is read.
    A handler may return ``None`` to send nothing (enhanced mode with MSH-15 NE). When
    the handler raises or takes longer than ``handler_timeout`` seconds (it is then
    cancelled), the server answers AR (CE in enhanced mode) itself and the connection
    stays usable. A frame over ``max_message_bytes`` is discarded unread and answered AR
    (CR). A connection silent for ``idle_timeout`` seconds is closed.

    ``stop()`` stops accepting, lets each connection finish the message it is handling
    and send its ACK, then closes every connection.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 2575,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        handler_timeout: float = 30.0,
        idle_timeout: float = 300.0,
        control_ids: Callable[[], str] | None = None,
        clock: Callable[[], datetime] | None = None,
        read_size: int = 65536,
        reuse_port: bool = False,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.handler_timeout = handler_timeout
        self.idle_timeout = idle_timeout
        self.stats = MllpStats()
        self._control_ids = control_ids or _default_control_ids()
        self._clock = clock or (lambda: datetime.now().astimezone())
        self._read_size = read_size
        self.reuse_port = reuse_port
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._closing = False
        self._stopped: asyncio.Event | None = None

    @property
    def bound_port(self) -> int:
        """Return the port actually listened on (useful when ``port=0``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Start listening (returns once the socket is bound)."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._closing = False
        self._stopped = asyncio.Event()
        # reuse_port: several processes listen on one port and the kernel spreads the
        # connections over them (SO_REUSEPORT).
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_port=self.reuse_port or None
        )
        log.info("MLLP listening on %s:%s", self.host, self.bound_port)

    async def serve_forever(self) -> None:
        """Start if needed and serve until :meth:`stop` (or cancellation, which stops)."""
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            await self.stop()
            raise

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, let in-flight messages finish (up to ``grace`` s), close all."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            if not conn.busy:
                conn.close()
        tasks = list(self._connections)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._stopped is not None:
            self._stopped.set()

    async def __aenter__(self) -> MllpServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until it closes, idles out or the server stops."""
        task = asyncio.current_task()
        assert task is not None
        conn = _Connection(writer)
        if self._closing:
            conn.close()
            return
        self._connections[task] = conn
        self.stats.connections += 1
        self.stats.open_connections += 1
        peer = writer.get_extra_info("peername")
        decoder = MllpDecoder(self.max_message_bytes)
        try:
            while not self._closing:
                try:
                    data = await asyncio.wait_for(
                        reader.read(self._read_size), timeout=self.idle_timeout
                    )
                except TimeoutError:
                    self.stats.idle_closed += 1
                    log.info("MLLP %s idle for %ss: closing", peer, self.idle_timeout)
                    break
                if not data:
                    for event in decoder.close():
                        self._note(event, peer)
                    break
                # Set before any await so stop() sees this connection as busy.
                conn.busy = True
                try:
                    for event in decoder.feed(data):
                        if self._closing:
                            break
                        reply = await self._answer(event, peer)
                        if reply is not None:
                            writer.write(frame(reply))
                            await writer.drain()
                finally:
                    conn.busy = False
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("MLLP %s connection lost: %s", peer, exc)
        finally:
            self.stats.open_connections -= 1
            self._connections.pop(task, None)
            conn.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _note(self, event: Event, peer: object) -> None:
        """Log and count events that carry no message."""
        if isinstance(event, Junk):
            self.stats.junk_bytes += event.size
            log.warning(
                "MLLP %s: skipped %d bytes outside frames: %r", peer, event.size, event.sample
            )
        elif isinstance(event, Oversized):
            self.stats.oversized += 1
            log.warning(
                "MLLP %s: discarded a %d-byte frame over the %d-byte limit",
                peer,
                event.size,
                self.max_message_bytes,
            )

    async def _answer(self, event: Event, peer: object) -> bytes | None:
        """Return the ACK for one event (None for junk, which gets no answer)."""
        if isinstance(event, Junk):
            self._note(event, peer)
            return None
        if isinstance(event, Oversized):
            self._note(event, peer)
            header = salvage_header(event.head)
            return build_ack(
                header,
                ack_code(header, Outcome.REJECTED),
                control_id=self._control_ids(),
                text=f"message is over {self.max_message_bytes:,} bytes",
                timestamp=self._clock(),
            )
        self.stats.messages += 1
        try:
            reply = await asyncio.wait_for(self.handler(event.message), self.handler_timeout)
            if reply is None or isinstance(reply, bytes):
                return reply
            raise TypeError(f"the handler returned {type(reply).__name__}, not bytes")
        except TimeoutError:
            self.stats.handler_timeouts += 1
            log.error("MLLP %s: handler took over %ss", peer, self.handler_timeout)
            reason = "the receiver timed out processing the message; resend it"
        except Exception:
            self.stats.handler_errors += 1
            log.exception("MLLP %s: handler failed", peer)
            reason = "the receiver failed processing the message; resend it"
        header = salvage_header(event.message)
        return build_ack(
            header,
            ack_code(header, Outcome.FAILED),
            control_id=self._control_ids(),
            text=reason,
            timestamp=self._clock(),
        )


class _Connection:
    """One client connection's state as ``stop()`` needs it."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.busy = False

    def close(self) -> None:
        """Close the transport (a pending read then returns end of stream)."""
        if not self.writer.is_closing():
            self.writer.close()
