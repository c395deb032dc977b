"""The MLLP listener's handler: durable commit before the ACK, stored ACKs for duplicates.

Each message is one transaction: the raw message (encrypted), the resources it maps to (or
its dead letter), and the ACK that will be sent are committed together, and only then is
the ACK returned to the socket. A re-delivered message (same MSH-3, MSH-4, MSH-10) gets the
stored ACK of its first delivery and is not applied again. Database work runs in a worker
thread so one slow commit never stalls the event loop's other connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Callable

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
    ) -> None:
        self.factory = factory
        self.ingestor = ingestor
        self.clock = clock
        self.strict = strict
        self.max_message_bytes = max_message_bytes

    async def handle(self, raw: bytes) -> bytes | None:
        """Process a message off the event loop; return the ACK (None: sender wants none)."""
        return await asyncio.to_thread(self.process, raw)

    def process(self, raw: bytes) -> bytes | None:
        """Parse, apply and commit one message; return the ACK to send."""
        try:
            parsed = parse_message(raw, strict=self.strict, max_bytes=self.max_message_bytes)
        except Hl7Error as exc:
            ack = build_error_ack(raw, exc, control_id=new_control_id(), timestamp=self.clock.now())
            with transaction(self.factory) as s:
                self.ingestor.reject(s, exc, system=SYSTEM, channel=CHANNEL)
            log.info(
                "message rejected", extra={"fields": {"reason": exc.reason, "field": exc.field}}
            )
            return ack
        record = parsed.to_record(origin=CHANNEL)
        with transaction(self.factory) as s:
            outcome = self.ingestor.apply(s, record, channel=CHANNEL)
            inbound = InboundRepository(s, crypto=self.ingestor.crypto, clock=self.clock)
            if outcome.status == "duplicate" and outcome.inbound_id is not None:
                stored = inbound.reply(outcome.inbound_id)
                if stored is not None:
                    return stored
            ack = self._ack(parsed, outcome)
            if outcome.inbound_id is not None and ack is not None:
                inbound.set_reply(outcome.inbound_id, ack)
        # The transaction has committed: only now may the sender be told it is safe.
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
) -> MllpStats:
    """Listen until SIGINT/SIGTERM, then stop accepting and finish in-flight messages."""
    server = MllpServer(
        service.handle,
        host,
        port,
        max_message_bytes=service.max_message_bytes,
        handler_timeout=handler_timeout,
        idle_timeout=idle_timeout,
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
