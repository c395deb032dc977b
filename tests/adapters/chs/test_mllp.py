"""MLLP: the incremental decoder, and the asyncio server over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.chs.ack import build_ack
from adapters.chs.hl7 import parse_message, split_message
from adapters.chs.mllp import Frame, Junk, MllpDecoder, MllpServer, Oversized, frame
from tests.adapters.chs.builders import EVN, MSH_24, PID, PV1, message

MSH_ORIGINAL = MSH_24.replace("|AL|NE|", "|||")


def adt(control_id: str, filler: str = "") -> bytes:
    """Return an original-mode A01 with this control id (and optional bulk in a Z-segment)."""
    extra = [f"ZXX|{filler}"] if filler else []
    return message(MSH_ORIGINAL.replace("CTRL1", control_id), EVN, PID, PV1, *extra)


# --- the decoder -------------------------------------------------------------------------


class TestDecoder:
    def test_one_frame(self) -> None:
        assert MllpDecoder().feed(frame(b"MSH|x")) == [Frame(b"MSH|x")]

    def test_a_frame_fed_one_byte_at_a_time(self) -> None:
        decoder = MllpDecoder()
        events = [e for b in frame(b"MSH|abc\rPID|1") for e in decoder.feed(bytes([b]))]
        assert events == [Frame(b"MSH|abc\rPID|1")]

    def test_several_frames_in_one_read(self) -> None:
        data = frame(b"one") + frame(b"two") + frame(b"three")
        assert MllpDecoder().feed(data) == [Frame(b"one"), Frame(b"two"), Frame(b"three")]

    def test_junk_between_frames_is_skipped_and_reported(self) -> None:
        data = b"hello" + frame(b"one") + b"\r\n" + frame(b"two")
        assert MllpDecoder().feed(data) == [
            Junk(5, b"hello"),
            Frame(b"one"),
            Junk(2, b"\r\n"),
            Frame(b"two"),
        ]

    def test_trailing_junk_is_reported_at_close(self) -> None:
        decoder = MllpDecoder()
        assert decoder.feed(frame(b"one") + b"tail") == [Frame(b"one")]
        assert decoder.close() == [Junk(4, b"tail")]

    def test_an_unfinished_frame_is_junk_at_close(self) -> None:
        decoder = MllpDecoder()
        assert decoder.feed(b"\x0bMSH|half") == []
        assert decoder.close() == [Junk(9, b"\x0bMSH|half")]

    def test_a_new_start_block_abandons_the_unfinished_frame(self) -> None:
        events = MllpDecoder().feed(b"\x0bcut off" + frame(b"whole"))
        assert events == [Junk(8, b"\x0bcut off"), Frame(b"whole")]

    def test_an_end_block_split_across_reads(self) -> None:
        decoder = MllpDecoder()
        assert decoder.feed(b"\x0bmsg\x1c") == []
        assert decoder.feed(b"\x0d") == [Frame(b"msg")]

    def test_a_lone_0x1c_inside_a_frame_is_content(self) -> None:
        decoder = MllpDecoder()
        assert decoder.feed(b"\x0ba\x1c") == []
        assert decoder.feed(b"b\x1c\x0d") == [Frame(b"a\x1cb")]

    def test_an_oversized_frame_is_discarded_without_buffering_it(self) -> None:
        decoder = MllpDecoder(max_message_bytes=1000)
        body = b"MSH|^~\\&|APP" + b"x" * 100_000
        events: list[Any] = []
        for i in range(0, len(body), 777):
            events += decoder.feed((b"\x0b" if i == 0 else b"") + body[i : i + 777])
            assert decoder.buffered <= 1000
        events += decoder.feed(b"\x1c\x0d" + frame(b"next"))
        assert len(events) == 2
        assert isinstance(events[0], Oversized)
        assert events[0].size == len(body)
        assert events[0].head.startswith(b"MSH|^~\\&|APP")
        assert events[1] == Frame(b"next")

    def test_an_oversized_frame_whose_end_block_is_split(self) -> None:
        decoder = MllpDecoder(max_message_bytes=10)
        assert decoder.feed(b"\x0b" + b"y" * 50 + b"\x1c") == []
        events = decoder.feed(b"\x0d" + frame(b"ok"))
        assert events == [Oversized(50, b"y" * 50), Frame(b"ok")]

    def test_a_frame_of_exactly_the_limit_is_accepted(self) -> None:
        assert MllpDecoder(max_message_bytes=5).feed(frame(b"12345")) == [Frame(b"12345")]
        assert isinstance(MllpDecoder(max_message_bytes=5).feed(frame(b"123456"))[0], Oversized)

    def test_an_oversized_frame_cut_short_is_reported_at_close(self) -> None:
        decoder = MllpDecoder(max_message_bytes=3)
        decoder.feed(b"\x0babcdef")
        assert decoder.close() == [Oversized(6, b"abcdef")]


_BODY = st.binary(max_size=200).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))
_JUNK = st.binary(max_size=20).map(lambda b: b.replace(b"\x0b", b""))


class TestDecoderGenerated:
    @settings(max_examples=200)
    @given(st.lists(st.binary(max_size=100), max_size=10), st.integers(1, 2000))
    def test_arbitrary_chunks_never_raise_and_stay_bounded(
        self, chunks: list[bytes], limit: int
    ) -> None:
        decoder = MllpDecoder(max_message_bytes=limit)
        for chunk in chunks:
            for event in decoder.feed(chunk):
                assert isinstance(event, Frame | Junk | Oversized)
                if isinstance(event, Frame):
                    assert len(event.message) <= limit
            assert decoder.buffered <= limit
        decoder.close()

    @settings(max_examples=200)
    @given(
        st.lists(st.tuples(_JUNK, _BODY), max_size=8),
        st.lists(st.integers(1, 50), min_size=1, max_size=50),
    )
    def test_bodies_round_trip_whatever_the_chunk_boundaries(
        self, frames: list[tuple[bytes, bytes]], cuts: list[int]
    ) -> None:
        stream = b"".join(junk + frame(body) for junk, body in frames)
        decoder = MllpDecoder()
        got: list[bytes] = []
        pos = 0
        for size in itertools.cycle(cuts):
            if pos >= len(stream):
                break
            got += [
                e.message for e in decoder.feed(stream[pos : pos + size]) if isinstance(e, Frame)
            ]
            pos += size
        assert got == [body for _junk, body in frames]


# --- the server ---------------------------------------------------------------------------


def ack_for(message_bytes: bytes) -> bytes:
    """Return an AA for a message (the handler tests use)."""
    parsed = parse_message(message_bytes)
    return build_ack(parsed, "AA", control_id=f"ACK-{parsed.control_id}", timestamp="2026")


async def echo_ack(message_bytes: bytes) -> bytes:
    """A handler that accepts everything."""
    return ack_for(message_bytes)


class Client:
    """A minimal MLLP client: send framed messages, read framed replies."""

    # Every client a test opens, so the test can close them all (unclosed sockets warn).
    opened: ClassVar[list[Client]] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = MllpDecoder()
        self.pending: list[bytes] = []
        Client.opened.append(self)

    @classmethod
    async def close_all(cls) -> None:
        """Close every client opened so far."""
        while cls.opened:
            await cls.opened.pop().close()

    @classmethod
    async def connect(cls, server: MllpServer) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        return cls(reader, writer)

    async def send(self, data: bytes, *, framed: bool = True) -> None:
        self.writer.write(frame(data) if framed else data)
        await self.writer.drain()

    async def reply(self, timeout: float = 5.0) -> bytes:
        """Return the next ACK (raises on end of stream)."""
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise ConnectionError("closed")
            self.pending += [e.message for e in self.decoder.feed(data) if isinstance(e, Frame)]
        return self.pending.pop(0)

    async def closed(self, timeout: float = 5.0) -> bool:
        """Return True once the server has closed the connection."""
        return await asyncio.wait_for(self.reader.read(65536), timeout) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def msa(ack: bytes) -> tuple[str, str]:
    """Return MSA-1 and MSA-2 of an ACK."""
    fields = split_message(ack)["MSA"]
    return fields["1"][0]["1"], fields.get("2", [{"1": ""}])[0]["1"]


def run(
    handler: Callable[[bytes], Awaitable[bytes | None]],
    scenario: Callable[[MllpServer], Awaitable[None]],
    **options: Any,
) -> MllpServer:
    """Run ``scenario`` against a server on an ephemeral port; return the stopped server."""
    ids = itertools.count(1)
    server = MllpServer(
        handler,
        "127.0.0.1",
        0,
        control_ids=lambda: f"S{next(ids)}",
        **options,
    )

    async def main() -> None:
        async with server:
            try:
                await asyncio.wait_for(scenario(server), 20)
            finally:
                await Client.close_all()

    asyncio.run(main())
    return server


class TestServer:
    def test_many_messages_on_one_connection_are_answered_in_order(self) -> None:
        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            for i in range(50):
                await client.send(adt(f"M{i}"))
            for i in range(50):
                assert msa(await client.reply()) == ("AA", f"M{i}")

        server = run(echo_ack, scenario)
        assert (server.stats.connections, server.stats.messages) == (1, 50)

    def test_eight_concurrent_connections(self) -> None:
        async def one(server: MllpServer, n: int) -> None:
            client = await Client.connect(server)
            for i in range(25):
                await client.send(adt(f"C{n}-{i}"))
                assert msa(await client.reply()) == ("AA", f"C{n}-{i}")

        async def scenario(server: MllpServer) -> None:
            await asyncio.gather(*(one(server, n) for n in range(8)))

        server = run(echo_ack, scenario)
        assert (server.stats.connections, server.stats.messages) == (8, 200)

    def test_messages_from_concurrent_connections_are_handled_concurrently(self) -> None:
        both_arrived = asyncio.Event()
        arrived = 0

        async def handler(raw: bytes) -> bytes:
            nonlocal arrived
            arrived += 1
            if arrived == 2:
                both_arrived.set()
            # Each waits for the other: only concurrent handling can finish.
            await asyncio.wait_for(both_arrived.wait(), 5)
            return ack_for(raw)

        async def scenario(server: MllpServer) -> None:
            clients = [await Client.connect(server) for _ in range(2)]
            for n, client in enumerate(clients):
                await client.send(adt(f"P{n}"))
            for n, client in enumerate(clients):
                assert msa(await client.reply()) == ("AA", f"P{n}")

        run(handler, scenario)

    def test_an_oversized_frame_gets_ar_and_the_connection_still_works(self) -> None:
        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(adt("BIG", filler="x" * 10_000))
            code, control_id = msa(await client.reply())
            assert (code, control_id) == ("AR", "BIG")
            await client.send(adt("SMALL"))
            assert msa(await client.reply()) == ("AA", "SMALL")

        server = run(echo_ack, scenario, max_message_bytes=2000)
        assert server.stats.oversized == 1

    def test_a_failing_handler_gets_ar_and_the_connection_continues(self) -> None:
        async def handler(raw: bytes) -> bytes:
            if b"|BOOM|" in raw:
                raise RuntimeError("storage is down")
            return ack_for(raw)

        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(adt("BOOM"))
            ack = await client.reply()
            assert msa(ack) == ("AR", "BOOM")
            assert b"storage is down" not in ack  # internals stay in the log
            await client.send(adt("AFTER"))
            assert msa(await client.reply()) == ("AA", "AFTER")

        server = run(handler, scenario)
        assert server.stats.handler_errors == 1

    def test_enhanced_mode_failure_is_a_commit_error(self) -> None:
        async def handler(raw: bytes) -> bytes:
            raise RuntimeError("no")

        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(message(MSH_24.replace("CTRL1", "E1"), EVN, PID, PV1))
            assert msa(await client.reply()) == ("CE", "E1")

        run(handler, scenario)

    def test_a_handler_returning_the_wrong_type_counts_as_failing(self) -> None:
        async def handler(raw: bytes) -> bytes:
            return "not bytes"  # type: ignore[return-value]

        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(adt("T1"))
            assert msa(await client.reply()) == ("AR", "T1")

        assert run(handler, scenario).stats.handler_errors == 1

    def test_a_slow_handler_times_out_with_ar(self) -> None:
        async def handler(raw: bytes) -> bytes:
            if b"|SLOW|" in raw:
                await asyncio.sleep(30)
            return ack_for(raw)

        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(adt("SLOW"))
            ack = await client.reply()
            assert msa(ack) == ("AR", "SLOW")
            assert b"timed out" in ack
            await client.send(adt("FAST"))
            assert msa(await client.reply()) == ("AA", "FAST")

        server = run(handler, scenario, handler_timeout=0.2)
        assert server.stats.handler_timeouts == 1

    def test_a_handler_may_send_nothing(self) -> None:
        async def handler(raw: bytes) -> bytes | None:
            return None if b"|QUIET|" in raw else ack_for(raw)

        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(adt("QUIET"))
            await client.send(adt("LOUD"))
            assert msa(await client.reply()) == ("AA", "LOUD")

        run(handler, scenario)

    def test_junk_between_frames_is_skipped(self) -> None:
        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(b"noise" + frame(adt("J1")) + b"\r\n\r\n", framed=False)
            await client.send(adt("J2"))
            assert msa(await client.reply()) == ("AA", "J1")
            assert msa(await client.reply()) == ("AA", "J2")

        server = run(echo_ack, scenario)
        assert server.stats.junk_bytes == 9

    def test_an_unparseable_message_is_the_handlers_business(self) -> None:
        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            await client.send(b"not hl7 at all")
            assert msa(await client.reply())[0] == "AR"

        async def handler(raw: bytes) -> bytes:
            return ack_for(raw)  # raises Hl7Error: the server answers for it

        run(handler, scenario)

    def test_an_idle_connection_is_closed(self) -> None:
        async def scenario(server: MllpServer) -> None:
            client = await Client.connect(server)
            assert await client.closed(timeout=5)

        assert run(echo_ack, scenario, idle_timeout=0.2).stats.idle_closed == 1


class TestServerLifecycle:
    def test_stop_finishes_the_message_in_flight_then_closes(self) -> None:
        entered, release = asyncio.Event(), asyncio.Event()

        async def handler(raw: bytes) -> bytes:
            entered.set()
            await release.wait()
            return ack_for(raw)

        async def main() -> None:
            server = MllpServer(handler, "127.0.0.1", 0, control_ids=lambda: "S")
            await server.start()
            port = server.bound_port
            busy = await Client.connect(server)
            idle = await Client.connect(server)
            await busy.send(adt("INFLIGHT"))
            await asyncio.wait_for(entered.wait(), 5)
            stopping = asyncio.create_task(server.stop(grace=5))
            await asyncio.sleep(0.05)
            assert not stopping.done()  # waiting for the message in flight
            assert await idle.closed()  # idle connections close at once
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)
            release.set()
            assert msa(await busy.reply()) == ("AA", "INFLIGHT")
            assert await busy.closed()
            await asyncio.wait_for(stopping, 5)
            await Client.close_all()

        asyncio.run(main())

    def test_stop_cancels_a_handler_that_outlives_the_grace_period(self) -> None:
        async def handler(raw: bytes) -> bytes:
            await asyncio.sleep(30)
            return b""

        async def main() -> None:
            server = MllpServer(handler, "127.0.0.1", 0, handler_timeout=60)
            await server.start()
            client = await Client.connect(server)
            await client.send(adt("STUCK"))
            await asyncio.sleep(0.05)
            await asyncio.wait_for(server.stop(grace=0.1), 5)
            assert await client.closed()
            await Client.close_all()

        asyncio.run(main())

    def test_serve_forever_returns_after_stop(self) -> None:
        async def main() -> None:
            server = MllpServer(echo_ack, "127.0.0.1", 0)
            task = asyncio.create_task(server.serve_forever())
            while server._server is None:
                await asyncio.sleep(0.01)
            client = await Client.connect(server)
            await client.send(adt("F1"))
            assert msa(await client.reply()) == ("AA", "F1")
            await Client.close_all()
            await server.stop()
            await asyncio.wait_for(task, 5)

        asyncio.run(main())

    def test_the_port_is_unknown_before_start(self) -> None:
        with pytest.raises(RuntimeError, match="not started"):
            _ = MllpServer(echo_ack).bound_port
