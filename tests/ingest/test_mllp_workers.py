"""`carebridge mllp serve --workers 2`: two listener processes on one port (SO_REUSEPORT)
keep the guarantees of one: a message delivered on many connections at once (so to both
workers) is applied once and every delivery gets the same stored ACK."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from adapters.chs import Frame, MllpDecoder, frame, split_message
from bridge.store.models import InboundMessage, ResourceCurrent
from tests.conftest import REPO_ROOT
from tests.ingest.test_mllp_crash import READY_LINE, free_port, listener_env

HERE = Path(__file__).resolve().parent
CONNECTIONS = 24


def a28(control_id: str, n: int) -> bytes:
    """Return the registration of the n-th of several people nobody would take for one."""
    return (
        "MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20261101090000+0000||ADT^A28^ADT_A05|"
        f"{control_id}|P|2.4\r"
        "EVN|A28|20261101090000+0000\r"
        f"PID|1||X{n:07d}^^^XX^PI~CHS{n:07d}^^^RXX^MR||Worker{chr(65 + n)}^Ada||19{10 + n}0307|F\r"
    ).encode()


def exchange(port: int, messages: list[bytes]) -> list[bytes]:
    """Send messages over one connection, each after the previous one's ACK."""
    import socket

    acks: list[bytes] = []
    decoder = MllpDecoder()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for m in messages:
            sock.sendall(frame(m))
            got: list[bytes] = []
            while not got:
                data = sock.recv(65536)
                assert data, "connection closed before the ACK"
                got = [e.message for e in decoder.feed(data) if isinstance(e, Frame)]
            acks += got
    return acks


def msa(ack: bytes) -> tuple[str, str]:
    m = split_message(ack)["MSA"]
    return m["1"][0]["1"], m["2"][0]["1"]


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    d = tmp_path / "mappings"
    shutil.copytree(HERE / "data" / "mappings", d)
    shutil.copy(REPO_ROOT / "mappings" / "config.yaml", d / "config.yaml")
    return d


def test_two_workers_apply_a_message_once_and_answer_every_delivery_alike(
    db: Engine, tmp_path: Path, mappings_dir: Path
) -> None:
    port = free_port()
    out = tmp_path / "listener.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from bridge.cli import main; main()",
                *("mllp", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
            ],
            env=listener_env(db, tmp_path / "data", mappings_dir),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while len(READY_LINE.findall(out.read_text(errors="replace"))) < 2:
            assert proc.poll() is None, out.read_text(errors="replace")
            assert time.monotonic() < deadline, out.read_text(errors="replace")
            time.sleep(0.05)
        # Each connection sends the same message first (the kernel spreads connections
        # over both workers), then one of its own.
        feeds = [[a28("SAME1", 0), a28(f"OWN{c}", c + 1)] for c in range(CONNECTIONS)]
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            results = list(pool.map(lambda f: exchange(port, f), feeds))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    text = out.read_text(errors="replace")
    assert code == 0, text
    served = [
        int(n)
        for n in re.findall(r"stopped: worker \d, pid \d+; MllpStats\(connections=(\d+)", text)
    ]
    # Both workers took connections (all 24 on one would be a 1 in 8 million chance).
    assert len(served) == 2, text
    assert min(served) > 0, text
    assert sum(served) == CONNECTIONS
    firsts = {acks[0] for acks in results}
    assert len(firsts) == 1  # byte for byte: the first delivery's stored ACK, everywhere
    assert msa(firsts.pop()) == ("AA", "SAME1")
    assert sorted(msa(acks[1]) for acks in results) == sorted(
        ("AA", f"OWN{c}") for c in range(CONNECTIONS)
    )
    with db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(InboundMessage)) == CONNECTIONS + 1
        versions = conn.scalars(
            select(ResourceCurrent.version_id).where(ResourceCurrent.resource_type == "Patient")
        ).all()
    assert versions == [1] * (CONNECTIONS + 1)  # one Patient each, written once
