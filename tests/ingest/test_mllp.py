"""The MLLP listener end to end on a real localhost socket: durable before ACK, duplicates
answered with the stored ACK, bad messages dead-lettered, nothing lost."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.base import SourceRecord
from adapters.chs import Frame, MllpDecoder, MllpServer, frame, split_message
from bridge.core.clock import FixedClock
from bridge.ingest.mllp import MllpIngest
from bridge.ingest.service import Ingestor, IngestOutcome
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory
from bridge.store.models import DeadLetter, InboundMessage, ResourceCurrent
from tests.conftest import REPO_ROOT

HERE = Path(__file__).resolve().parent


def a28(control_id: str, mrn: str = "CHS0000001", family: str = "Testperson") -> bytes:
    return (
        "MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20261101090000+0000||ADT^A28^ADT_A05|"
        f"{control_id}|P|2.4\r"
        "EVN|A28|20261101090000+0000\r"
        f"PID|1||9990000018^^^NHS^NH~{mrn}^^^RXX^MR||{family}^Ada||19410307|F\r"
    ).encode()


@pytest.fixture(scope="module")
def mappings(tmp_path_factory: pytest.TempPathFactory) -> Mappings:
    d = tmp_path_factory.mktemp("mappings")
    shutil.copytree(HERE / "data" / "mappings", d, dirs_exist_ok=True)
    shutil.copy(REPO_ROOT / "mappings" / "config.yaml", d / "config.yaml")
    return Mappings.load(d)


@pytest.fixture
def factory(db: Engine) -> sessionmaker[Session]:
    return make_session_factory(db)


@pytest.fixture
def service(
    factory: sessionmaker[Session], mappings: Mappings, crypto: StoreCrypto, clock: FixedClock
) -> MllpIngest:
    ingestor = Ingestor(mappings=mappings, crypto=crypto, clock=clock)
    return MllpIngest(factory=factory, ingestor=ingestor, clock=clock)


@pytest.fixture
async def port(service: MllpIngest) -> AsyncIterator[int]:
    server = MllpServer(service.handle, "127.0.0.1", 0, handler_timeout=20)
    await server.start()
    try:
        yield server.bound_port
    finally:
        await server.stop(grace=5)


async def exchange(port: int, messages: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = MllpDecoder()
    acks: list[bytes] = []
    try:
        for n, m in enumerate(messages, start=1):
            writer.write(frame(m))
            await writer.drain()
            while len(acks) < n:
                data = await asyncio.wait_for(reader.read(65536), timeout=20)
                assert data, "connection closed before the ACK"
                acks += [e.message for e in decoder.feed(data) if isinstance(e, Frame)]
    finally:
        writer.close()
        await writer.wait_closed()
    return acks


def msa(ack: bytes) -> tuple[str, str]:
    fields = split_message(ack)
    m = fields["MSA"]
    control = m["2"][0]["1"] if "2" in m else ""
    return m["1"][0]["1"], control


def count(factory: sessionmaker[Session], model: object) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestListener:
    async def test_valid_message_is_stored_then_acknowledged(
        self, port: int, factory: sessionmaker[Session]
    ) -> None:
        acks = await exchange(port, [a28("M1"), a28("M2", mrn="CHS0000002")])
        assert [msa(a) for a in acks] == [("AA", "M1"), ("AA", "M2")]
        assert count(factory, ResourceCurrent) == 2
        assert count(factory, InboundMessage) == 2

    async def test_duplicate_gets_the_stored_ack_and_is_applied_once(
        self, port: int, factory: sessionmaker[Session]
    ) -> None:
        first = await exchange(port, [a28("D1")])
        again = await exchange(port, [a28("D1", family="Changed")])
        assert again == first  # byte for byte: the stored ACK, same control id
        assert count(factory, InboundMessage) == 1
        with factory() as s:
            assert s.scalar(select(ResourceCurrent.version_id)) == 1

    async def test_unparseable_message_is_rejected_and_kept(
        self, port: int, factory: sessionmaker[Session]
    ) -> None:
        bad = b"MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20261101||ADT^A28|X1|P|2.4\rPID|1"
        broken_header = b"EVN|A28\rPID|1||x"
        acks = await exchange(port, [broken_header, bad, a28("OK1")])
        assert msa(acks[0]) == ("AR", "")  # no MSH: nothing to echo
        assert b"no MSH segment" in acks[0]
        assert msa(acks[1])[0] in ("AR", "AE")
        assert msa(acks[1])[1] == "X1"
        assert msa(acks[2]) == ("AA", "OK1")  # the connection carried on
        assert count(factory, DeadLetter) == 2
        assert count(factory, ResourceCurrent) == 1

    async def test_mapping_failure_is_an_application_error_and_dead_lettered(
        self, port: int, factory: sessionmaker[Session]
    ) -> None:
        # A01 has no spec in the test mapping directory: the message cannot be applied.
        a01 = (
            a28("E1")
            .replace(b"ADT^A28^ADT_A05", b"ADT^A01^ADT_A01")
            .replace(b"EVN|A28", b"EVN|A01")
        )
        acks = await exchange(port, [a01 + b"PV1|1|I\r"])
        code, control = msa(acks[0])
        assert (code, control) == ("AE", "E1")
        assert b"no mapping spec" in acks[0]
        assert count(factory, DeadLetter) == 1
        assert count(factory, ResourceCurrent) == 0
        with factory() as s:
            assert s.scalar(select(InboundMessage.status)) == "failed"

    async def test_eight_connections_at_once(
        self, port: int, factory: sessionmaker[Session]
    ) -> None:
        batches = [[a28(f"C{c}-{i}", mrn=f"CHS{c}{i:05d}") for i in range(10)] for c in range(8)]
        results = await asyncio.gather(*(exchange(port, b) for b in batches))
        for c, acks in enumerate(results):
            assert [msa(a) for a in acks] == [("AA", f"C{c}-{i}") for i in range(10)]
        assert count(factory, ResourceCurrent) == 80


class TestGroupCommit:
    async def test_messages_waiting_together_share_one_commit(
        self, service: MllpIngest, factory: sessionmaker[Session], db: Engine
    ) -> None:
        commits: list[object] = []

        def on_commit(conn: object) -> None:
            commits.append(conn)

        event.listen(db, "commit", on_commit)
        try:
            messages = [a28(f"G{i}", mrn=f"CHS{i:07d}") for i in range(5)]
            # The first message again, in the same group: it gets the first one's ACK.
            acks = await asyncio.gather(*(service.handle(m) for m in [*messages, messages[0]]))
        finally:
            event.remove(db, "commit", on_commit)
        assert [msa(a) for a in acks if a] == [("AA", f"G{i}") for i in range(5)] + [("AA", "G0")]
        assert acks[5] == acks[0]  # byte for byte: the stored ACK
        assert len(commits) == 1
        assert count(factory, InboundMessage) == 5
        assert count(factory, ResourceCurrent) == 5

    async def test_one_message_failing_unexpectedly_loses_no_other(
        self, service: MllpIngest, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        apply = service.ingestor.apply

        def failing(session: Session, record: SourceRecord, **kw: Any) -> IngestOutcome:
            if record.meta.get("control_id") == "BAD":
                raise RuntimeError("a bug, not a bad message")
            return apply(session, record, **kw)

        monkeypatch.setattr(service.ingestor, "apply", failing)
        results = await asyncio.gather(
            *(
                service.handle(a28(c, mrn=f"CHS{n:07d}"))
                for n, c in enumerate(["OK1", "BAD", "OK2"])
            ),
            return_exceptions=True,
        )
        assert isinstance(results[1], RuntimeError)
        assert [msa(r) for r in (results[0], results[2]) if isinstance(r, bytes)] == [
            ("AA", "OK1"),
            ("AA", "OK2"),
        ]
        # The group was rolled back and its messages applied one by one: the failing one
        # left nothing (its sender is answered AR by the server and sends it again).
        assert count(factory, InboundMessage) == 2
        assert count(factory, ResourceCurrent) == 2
