"""The MLLP listener's handler: durable commit before the ACK, stored ACKs for duplicates.

A message's raw bytes (encrypted), the resources it maps to (or its dead letter), and the
ACK that will be sent are committed together, and only then is the ACK returned to the
socket. A re-delivered message (same MSH-3, MSH-4, MSH-10) gets the stored ACK of its
first delivery and is not applied again. Database work runs in a worker thread so one slow
commit never stalls the event loop's other connections.

Group commit: the messages that arrive on other connections while a transaction is being
written wait, then go into the next transaction together (at most ``max_batch``), so many
connections share one commit (one fsync) instead of queueing for one each. Each message is
still all-or-nothing on its own (the ingestor's savepoint), and each is acknowledged only
after the transaction holding it has committed. If the shared transaction fails as a whole
(an unexpected error in one message, a failed commit), it is rolled back and its messages
are applied again one per transaction, so one bad message never loses or half-writes
another; a single waiting message is simply its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from adapters.chs import (
    Hl7Error,
    MllpServer,
    MllpStats,
    Outcome,
    ParsedMessage,
    ack_code,
    build_ack,
    build_error_ack,
    parse_message,
    wants_commit_ack,
)
from bridge.core.clock import Clock
from bridge.ingest.service import Ingestor, IngestOutcome
from bridge.store.db import transaction
from bridge.store.inbound import InboundRepository

log = logging.getLogger("carebridge.mllp")
SYSTEM = "chs"
CHANNEL = "mllp"


def new_control_id() -> str:
    """Return a unique control id for an ACK we send (MSH-10, at most 20 characters)."""
    return "CB" + uuid.uuid4().hex[:18]


@dataclass(frozen=True)
class _Refused:
    """A message that did not parse: the error, and the ACK that refuses it."""

    error: Hl7Error
    ack: bytes


# One message's result in a group: its ACK, or the error its handler raises.
_Result = bytes | None | Exception


@dataclass
class _Group:
    """The messages waiting for the next transaction on one event loop."""

    waiting: list[tuple[bytes, asyncio.Future[bytes | None]]] = field(default_factory=list)
    writers: set[asyncio.Task[None]] = field(default_factory=set)


class MllpIngest:
    """Turns one framed HL7 message into a committed result and the ACK to send."""

    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        ingestor: Ingestor,
        clock: Clock,
        strict: bool = False,
        max_message_bytes: int = 1_048_576,
        max_batch: int = 64,
        writers: int | None = None,
    ) -> None:
        self.factory = factory
        self.ingestor = ingestor
        self.clock = clock
        self.strict = strict
        self.max_message_bytes = max_message_bytes
        self.max_batch = max_batch
        # SQLite runs one writer at a time whatever we do; PostgreSQL overlaps one
        # transaction's round trips with another's work.
        if writers is None:
            bind = factory.kw.get("bind")
            writers = 2 if bind is not None and bind.dialect.name == "postgresql" else 1
        self.writers = writers
        self._groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Group] = (
            weakref.WeakKeyDictionary()
        )

    async def handle(self, raw: bytes) -> bytes | None:
        """Process a message off the event loop; return the ACK (None: sender wants none).

        The message joins the next group commit; the ACK comes once that has committed.
        """
        loop = asyncio.get_running_loop()
        group = self._groups.setdefault(loop, _Group())
        done: asyncio.Future[bytes | None] = loop.create_future()
        group.waiting.append((raw, done))
        if len(group.writers) < self.writers:
            task = loop.create_task(self._write(group))
            group.writers.add(task)
            task.add_done_callback(group.writers.discard)
        return await done

    async def _write(self, group: _Group) -> None:
        """Commit the waiting messages, a group at a time, until none are left."""
        try:
            while group.waiting:
                batch = group.waiting[: self.max_batch]
                del group.waiting[: self.max_batch]
                try:
                    results = await asyncio.to_thread(self.process_many, [r for r, _ in batch])
                except BaseException as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    raise
                for (_, done), result in zip(batch, results, strict=True):
                    # A handler that timed out was cancelled: its message still committed.
                    if done.done():
                        continue
                    if isinstance(result, Exception):
                        done.set_exception(result)
                    else:
                        done.set_result(result)
        finally:
            group.writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    def process(self, raw: bytes) -> bytes | None:
        """Parse, apply and commit one message; return the ACK to send."""
        prepared = self._prepare(raw)
        with transaction(self.factory) as s:
            ack = self._apply(s, prepared)
        # The transaction has committed: only now may the sender be told it is safe.
        return ack

    def process_many(self, raws: list[bytes]) -> list[_Result]:
        """Apply messages in one transaction; return each one's ACK (or error) once committed.

        If the transaction fails as a whole, each message is applied again on its own.
        """
        if len(raws) == 1:
            return [self._process_one(raws[0])]
        prepared = [self._prepare(raw) for raw in raws]
        try:
            with transaction(self.factory) as s:
                acks: list[_Result] = [self._apply(s, p) for p in prepared]
        except Exception:
            log.warning(
                "group commit failed; applying its messages one by one",
                extra={"fields": {"messages": len(raws)}},
                exc_info=True,
            )
            return [self._process_one(raw) for raw in raws]
        # The transaction has committed: only now may the senders be told it is safe.
        return acks

    def _process_one(self, raw: bytes) -> _Result:
        try:
            return self.process(raw)
        except Exception as exc:
            return exc

    def _prepare(self, raw: bytes) -> ParsedMessage | _Refused:
        """Parse a message (outside the transaction: it needs no database)."""
        try:
            return parse_message(raw, strict=self.strict, max_bytes=self.max_message_bytes)
        except Hl7Error as exc:
            ack = build_error_ack(raw, exc, control_id=new_control_id(), timestamp=self.clock.now())
            return _Refused(exc, ack)

    def _apply(self, s: Session, parsed: ParsedMessage | _Refused) -> bytes | None:
        """Apply one parsed message in the caller's transaction; return its ACK."""
        if isinstance(parsed, _Refused):
            exc = parsed.error
            self.ingestor.reject(s, exc, system=SYSTEM, channel=CHANNEL)
            log.info(
                "message rejected", extra={"fields": {"reason": exc.reason, "field": exc.field}}
            )
            return parsed.ack
        record = parsed.to_record(origin=CHANNEL)
        outcome = self.ingestor.apply(s, record, channel=CHANNEL)
        inbound = InboundRepository(s, crypto=self.ingestor.crypto, clock=self.clock)
        if outcome.status == "duplicate" and outcome.inbound_id is not None:
            stored = inbound.reply(outcome.inbound_id)
            if stored is not None:
                return stored
        ack = self._ack(parsed, outcome)
        if outcome.inbound_id is not None and ack is not None:
            inbound.set_reply(outcome.inbound_id, ack)
        return ack

    def _ack(self, parsed: ParsedMessage, outcome: IngestOutcome) -> bytes | None:
        if outcome.status == "dead_lettered":
            result = Outcome.ERROR
            text = outcome.error or "the message could not be processed"
        else:
            result, text = Outcome.ACCEPTED, None
        if not wants_commit_ack(parsed, result):
            return None
        return build_ack(
            parsed,
            ack_code(parsed, result),
            control_id=new_control_id(),
            text=text[:200] if text else None,
            timestamp=self.clock.now(),
        )


async def serve(
    service: MllpIngest,
    *,
    host: str,
    port: int,
    handler_timeout: float = 30.0,
    idle_timeout: float = 300.0,
    on_ready: Callable[[int], None] | None = None,
    reuse_port: bool = False,
) -> MllpStats:
    """Listen until SIGINT/SIGTERM, then stop accepting and finish in-flight messages.

    ``reuse_port=True`` lets other processes listen on the same port (``run_workers``).
    """
    server = MllpServer(
        service.handle,
        host,
        port,
        max_message_bytes=service.max_message_bytes,
        handler_timeout=handler_timeout,
        idle_timeout=idle_timeout,
        reuse_port=reuse_port,
    )
    await server.start()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    if on_ready is not None:
        on_ready(server.bound_port)
    try:
        await stopping.wait()
    finally:
        await server.stop(grace=handler_timeout)
    return server.stats


def run_workers(count: int, target: Callable[..., Any], *args: Any) -> int:
    """Run ``target(*args, worker)`` in ``count`` processes until all exit; return failures.

    For listeners sharing one port (``serve(reuse_port=True)``): the kernel spreads the
    connections over them. They share nothing but the database, whose constraints keep
    the guarantees across processes: a message re-delivered to another worker meets the
    first delivery's inbound row (unique dedupe key) and gets its stored ACK; two workers
    writing one resource meet the conditional update (a conflict, tried again). SIGINT
    and SIGTERM are passed on, so each worker finishes its in-flight messages and stops;
    a worker that dies is not restarted (the others go on serving the port).
    """
    spawn = multiprocessing.get_context("spawn")
    procs = [
        spawn.Process(target=target, args=(*args, n), name=f"mllp-worker-{n}")
        for n in range(1, count + 1)
    ]
    for proc in procs:
        proc.start()

    def forward(_signum: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.pid is not None and proc.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for proc in procs:
            proc.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return sum(1 for proc in procs if proc.exitcode != 0)
