"""The MLLP listener SIGKILLed again and again while a sender streams 1,000 messages (issue 4).

The real `carebridge mllp serve` runs as a child process. A sender sends distinct A28
registrations over one connection, one at a time, waiting for each ACK, and resends
whatever was not acknowledged after each of 30 SIGKILLs (and restarts). Kills are aimed
at each stage without any hook in the product, by watching from outside:

- ``mid-frame``: half a frame is sent, so the listener is reading an unfinished message;
- ``in-transaction``: kill once the listener's transaction is visibly under way (on
  PostgreSQL its server session is no longer idle; on SQLite the WAL file is being
  written), i.e. during apply or commit;
- ``on-commit``: kill once the message's row is visible as committed, i.e. between the
  commit and the ACK reaching the sender;
- ``delay``: kill at a random delay of up to 1.5 median round trips after a whole frame,
  landing anywhere from parsing to after the ACK.

Where each kill really landed is then read off the sender and the database (ACK received;
committed without an ACK; not committed) and logged. The plan is seeded but the timing is
not, so the assertions never depend on where kills land: every acknowledged message is
stored, at every kill and at the end (0 lost after ACK); every control id is stored once,
its Patient (and the Person identity linking made for it) has one version, its identity
link and audit entry exist once and the audit chain is intact (0 duplicates); all 1,000
are stored, none dead-lettered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, func, text
from sqlalchemy import select as sql_select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from adapters.chs import Frame, MllpDecoder, frame, split_message
from bridge.audit.service import audit_log_from_settings
from bridge.core.clock import SystemClock
from bridge.core.settings import Settings
from bridge.store.crypto import StoreCrypto
from bridge.store.inbound import InboundRepository
from bridge.store.models import (
    AuditEntry,
    DeadLetter,
    IdentityLink,
    InboundMessage,
    ResourceCurrent,
    ResourceHistory,
)
from bridge.store.resources import ResourceRepository
from tests.conftest import REPO_ROOT

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)

MESSAGES = 1_000
KILLS = {"mid-frame": 6, "in-transaction": 6, "on-commit": 6, "delay": 12}
SEED = 20261123
# The first messages are never killed: their round trips size the random delays.
WARM_UP = 20
DELAY_SPAN_RTTS = 1.5
# How long a targeted kill waits for its moment before killing anyway.
AIM_TIMEOUT = 2.0
# Set on the listener's PostgreSQL connections: the probe finds its sessions by this name.
APP_NAME = "carebridge-crash-test"
# What `carebridge mllp serve` prints once it accepts connections (a line of its own: a
# traceback quoting the source must not look like it).
READY_LINE = re.compile(r"^MLLP listening on \S+:(\d+) ", re.MULTILINE)


def a28(n: int) -> tuple[str, str, bytes]:
    """Return (control id, MRN, message) for the n-th distinct registration."""
    control_id, mrn = f"CRASH{n:05d}", f"CHS{n:07d}"
    message = (
        "MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20261101090000+0000||ADT^A28^ADT_A05|"
        f"{control_id}|P|2.4\r"
        "EVN|A28|20261101090000+0000\r"
        f"PID|1||9990000018^^^NHS^NH~{mrn}^^^RXX^MR||Crash{n:05d}^Ada||19410307|F\r"
    ).encode()
    return control_id, mrn, message


def dedupe_key(control_id: str) -> str:
    return f"CHS|RXX|{control_id}"


def msa(ack: bytes) -> tuple[str, str]:
    m = split_message(ack)["MSA"]
    return m["1"][0]["1"], m["2"][0]["1"] if "2" in m else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Listener:
    """`carebridge mllp serve` as a child process that can be SIGKILLed and restarted."""

    def __init__(self, *, port: int, env: dict[str, str], workdir: Path) -> None:
        self.port = port
        self.env = env
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _log(self) -> Path:
        return self.workdir / f"listener-{self.starts}.log"

    def start(self) -> float:
        """Start the listener and return how long it took to accept connections."""
        began = time.monotonic()
        for _attempt in range(3):
            if self._spawn():
                return time.monotonic() - began
            # While the listener was down another process may have taken its port as a
            # client's local port: listen on another (the sender reconnects to self.port).
            if "address already in use" not in self.output().lower():
                break
            self.port = free_port()
        raise AssertionError(f"the listener did not start:\n{self.output()}")

    def _spawn(self) -> bool:
        """Run the listener; return True once it accepts connections, False if it exited."""
        self.starts += 1
        with self._log().open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from bridge.cli import main; main()",
                    *("mllp", "serve", "--host", "127.0.0.1", "--port", str(self.port)),
                ],
                env=self.env,
                cwd=self.workdir,  # not the repository: no .env file is read
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = READY_LINE.search(self._log().read_text(errors="replace"))
            if ready is not None and self.proc.poll() is None:
                assert int(ready.group(1)) == self.port
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.01)
        raise AssertionError(f"the listener did not start in 60 s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the listener (if it runs) and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def output(self) -> str:
        return self._log().read_text(errors="replace")[-4000:]


class Sender:
    """One MLLP connection from the sender's side (blocking socket, one message at a time)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = MllpDecoder()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def readable(self) -> bool:
        """Say whether bytes (an ACK, or the end of the connection) are waiting."""
        return bool(select.select([self.sock], [], [], 0)[0])

    def ack(self, timeout: float) -> bytes | None:
        """Return the next ACK, or None when the connection ends (or is reset) first."""
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(65536)
            except (ConnectionError, TimeoutError):
                return None
            if not data:
                return None
            frames = [e.message for e in self.decoder.feed(data) if isinstance(e, Frame)]
            if frames:
                # One message in flight at a time: exactly one ACK can come back.
                assert len(frames) == 1, frames
                return frames[0]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Probe:
    """The test's view of the database while the listener runs; it never takes a lock.

    (The product's SQLite engine begins every transaction IMMEDIATE, which would queue
    the listener's writes behind the probe; this plain autocommit engine only reads.)
    """

    def __init__(self, db: Engine) -> None:
        self.postgres = db.dialect.name == "postgresql"
        # SQLite: wait rather than fail while a restarted listener recovers the WAL index.
        args = {} if self.postgres else {"timeout": 30}
        self.engine = create_engine(db.url, isolation_level="AUTOCOMMIT", connect_args=args)
        self.conn: Connection = self.engine.connect()
        self._cursor = self.conn.connection.cursor()
        mark = "%s" if self.postgres else "?"
        self._probe_sql = f"SELECT 1 FROM inbound_message WHERE dedupe_key = {mark}"
        self.wal = None if self.postgres else Path(f"{db.url.database}-wal")
        self._wal_seen: tuple[int, int] | None = None

    def close(self) -> None:
        self._cursor.close()
        self.conn.close()
        self.engine.dispose()

    def statuses(self) -> dict[str, str]:
        """Return the committed inbound messages: {dedupe key: status}."""
        rows = self.conn.execute(sql_select(InboundMessage.dedupe_key, InboundMessage.status))
        return {key: status for key, status in rows}

    def committed(self, control_id: str) -> bool:
        """Say whether the message's inbound row is committed (polled: kept cheap)."""
        # The driver's own cursor: SQLAlchemy's overhead would widen the polling interval
        # beyond the moment between a commit and its ACK that on-commit kills aim at.
        self._cursor.execute(self._probe_sql, (dedupe_key(control_id),))
        return self._cursor.fetchone() is not None

    def _wal_state(self) -> tuple[int, int]:
        assert self.wal is not None
        try:
            st = self.wal.stat()
        except FileNotFoundError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def mark(self) -> None:
        """Remember the WAL file's state, to notice the next write to it."""
        if self.wal is not None:
            self._wal_seen = self._wal_state()

    def transaction_open(self) -> bool:
        """Say whether the listener is visibly inside a transaction (or its commit)."""
        if self.wal is not None:
            return self._wal_state() != self._wal_seen
        busy = self.conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = :n AND state <> 'idle'"
            ),
            {"n": APP_NAME},
        )
        return bool(busy)

    def settle(self) -> None:
        """Wait until a killed listener's PostgreSQL sessions have ended (SQLite: at once).

        Until then a COMMIT the listener sent just before dying may still be applied.
        """
        if not self.postgres:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = self.conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": APP_NAME},
            )
            if not left:
                return
            time.sleep(0.005)
        raise AssertionError("the killed listener's database sessions did not end")


@dataclass(frozen=True)
class Kill:
    """Where one kill landed, as far as the sender and the database can tell."""

    message: int
    mode: str
    after_ms: float
    stage: str


def kill_plan() -> dict[int, tuple[str, float]]:
    """Return {message index: (mode, a random fraction)}: seeded, so the same every run."""
    rng = random.Random(SEED)
    modes = [mode for mode, n in KILLS.items() for _ in range(n)]
    rng.shuffle(modes)
    points = rng.sample(range(WARM_UP, MESSAGES), len(modes))
    return {p: (m, rng.random()) for p, m in zip(points, modes, strict=True)}


def wait_for(aim: Callable[[], bool], sender: Sender) -> bool:
    """Return True once ``aim()`` holds; False if the ACK arrives or time is up first."""
    deadline = time.monotonic() + AIM_TIMEOUT
    while not sender.readable() and time.monotonic() < deadline:
        # Spin rather than sleep: the stages last a few milliseconds at most.
        if aim():
            return True
    return False


def listener_env(db: Engine, data_dir: Path, mappings_dir: Path) -> dict[str, str]:
    url = make_url(db.url.render_as_string(hide_password=False))
    if db.dialect.name == "postgresql":
        url = url.update_query_dict({"application_name": APP_NAME})
    # Nothing of the caller's own carebridge configuration leaks into the child.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_DATABASE_URL=url.render_as_string(hide_password=False),
        CAREBRIDGE_DATA_DIR=str(data_dir),
        CAREBRIDGE_MAPPINGS_DIR=str(mappings_dir),
        CAREBRIDGE_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",  # the ready line must reach the log file at once
    )
    return env


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    d = tmp_path / "mappings"
    shutil.copytree(HERE / "data" / "mappings", d)
    shutil.copy(REPO_ROOT / "mappings" / "config.yaml", d / "config.yaml")
    return d


@pytest.fixture
def probe(db: Engine) -> Iterator[Probe]:
    p = Probe(db)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def listener(probe: Probe, db: Engine, tmp_path: Path, mappings_dir: Path) -> Iterator[Listener]:
    env = listener_env(db, tmp_path / "var", mappings_dir)
    proc = Listener(port=free_port(), env=env, workdir=tmp_path)
    try:
        yield proc
    finally:
        # Whatever happened, no listener outlives the test (nor holds the database).
        proc.kill()
        probe.settle()


def test_kills_lose_nothing_acknowledged_and_apply_nothing_twice(
    db: Engine, listener: Listener, probe: Probe, tmp_path: Path
) -> None:
    messages = [a28(n) for n in range(MESSAGES)]
    plan = kill_plan()
    acks: dict[str, tuple[str, str]] = {}
    kills: list[Kill] = []
    rtts: list[float] = []
    startups = [listener.start()]
    sender = Sender(listener.port)
    began = time.monotonic()
    try:
        i = 0
        while i < MESSAGES:
            control_id, _mrn, message = messages[i]
            data = frame(message)
            step = plan.pop(i, None)
            if step is None:
                sent = time.perf_counter()
                sender.send(data)
                ack = sender.ack(timeout=30)
                assert ack is not None, f"no ACK for {control_id}:\n{listener.output()}"
                rtts.append(time.perf_counter() - sent)
                acks[control_id] = msa(ack)
                i += 1
                continue

            mode, fraction = step
            probe.mark()
            sent = time.perf_counter()
            if mode == "mid-frame":
                sender.send(data[: len(data) // 2])
                time.sleep(fraction * 0.002)
            else:
                sender.send(data)
            in_transaction = False
            if mode == "delay":
                time.sleep(fraction * DELAY_SPAN_RTTS * statistics.median(rtts))
            elif mode == "in-transaction":
                in_transaction = wait_for(probe.transaction_open, sender)
            elif mode == "on-commit":
                wait_for(lambda c=control_id: probe.committed(c), sender)
            after_ms = (time.perf_counter() - sent) * 1000
            listener.kill()
            ack = sender.ack(timeout=10) if mode != "mid-frame" else None
            sender.close()
            probe.settle()

            stored = probe.statuses()
            # 0 lost after ACK, checked at every kill: what was acknowledged is already there.
            lost = [c for c in acks if stored.get(dedupe_key(c)) != "applied"]
            assert not lost, f"acknowledged but not stored after kill {len(kills) + 1}: {lost}"
            if ack is not None:
                stage = "ACK written (kill after it)"
                acks[control_id] = msa(ack)
                i += 1
            elif mode == "mid-frame":
                stage = "read (half a frame)"
            elif dedupe_key(control_id) in stored:
                stage = "committed, ACK not received"
                # Nothing half-written: a row that committed committed whole.
                assert stored[dedupe_key(control_id)] == "applied"
            elif probe.wal is not None and probe.transaction_open():
                # SQLite writes nothing before the commit: the kill tore the WAL write.
                stage = "commit (WAL partly written, discarded)"
            elif in_transaction:
                stage = "apply or commit (transaction rolled back)"
            elif probe.wal is not None:
                stage = "parse or apply (nothing written yet)"
            else:
                stage = "parse, apply or commit (rolled back)"
            kills.append(Kill(i, mode, round(after_ms, 2), stage))
            startups.append(listener.start())
            sender = Sender(listener.port)
        elapsed = time.monotonic() - began
    finally:
        sender.close()
        listener.kill()
        probe.settle()

    log.info(
        "%d messages, %d kills in %.1f s (listener start %.2f s median; round trip %.2f ms median)",
        MESSAGES,
        len(kills),
        elapsed,
        statistics.median(startups),
        statistics.median(rtts) * 1000,
    )
    for (mode, stage), n in sorted(Counter((k.mode, k.stage) for k in kills).items()):
        log.info("  %-15s -> %-40s %2d", mode, stage, n)
    for k in kills:
        log.debug("kill at message %d (%s, %.2f ms): %s", k.message, k.mode, k.after_ms, k.stage)

    assert len(kills) == sum(KILLS.values())
    # Every message was acknowledged AA in the end: resending after a kill always succeeds.
    assert acks == {c: ("AA", c) for c, _m, _b in messages}
    check_store(db, messages, tmp_path / "var")


def check_store(db: Engine, messages: list[tuple[str, str, bytes]], data_dir: Path) -> None:
    """Assert each control id is stored once, applied once, and decrypts to what was sent."""
    # The listener's own keys (created under its data dir on its first start).
    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    crypto = StoreCrypto.from_settings(settings)
    clock = SystemClock()
    with Session(db) as s:
        rows = s.execute(
            sql_select(InboundMessage.id, InboundMessage.dedupe_key, InboundMessage.status)
        ).all()
        keys = Counter(r.dedupe_key for r in rows)
        assert keys == Counter(dedupe_key(c) for c, _m, _b in messages)  # each exactly once
        assert {r.status for r in rows} == {"applied"}
        inbound = InboundRepository(s, crypto=crypto, clock=clock)
        sent = {dedupe_key(c): raw for c, _m, raw in messages}
        for r in rows:
            assert inbound.raw(r.id) == sent[r.dedupe_key]

        patients = s.execute(
            sql_select(ResourceCurrent.id, ResourceCurrent.source_id).where(
                ResourceCurrent.resource_type == "Patient"
            )
        ).all()
        assert sorted(p.source_id for p in patients) == sorted(m for _c, m, _b in messages)
        # Applied once: no resource (the Patients, the Persons they are linked to) has a
        # second version, and history holds exactly the current versions.
        versions = s.execute(sql_select(ResourceCurrent.version_id)).scalars().all()
        assert set(versions) == {1}
        assert s.scalar(sql_select(func.count()).select_from(ResourceHistory)) == len(versions)
        assert s.scalar(sql_select(func.count()).select_from(DeadLetter)) == 0
        repo = ResourceRepository(s, crypto=crypto, clock=clock)
        for p in patients:
            content = repo.read("Patient", p.id).content
            assert content is not None
            assert [i["value"] for i in content["identifier"]] == [p.source_id]

        # Identity linking ran once per Patient, in the message's transaction, and its
        # audit entries form an unbroken chain across all the kills.
        linked = Counter(
            s.execute(sql_select(IdentityLink.patient_id).where(IdentityLink.ended_at.is_(None)))
            .scalars()
            .all()
        )
        assert linked == Counter(p.id for p in patients)
        assert s.scalar(sql_select(func.count()).select_from(IdentityLink)) == MESSAGES
        actions = Counter(s.execute(sql_select(AuditEntry.action)).scalars().all())
        # One link per Patient, nothing twice; and the mapping files recorded once, by
        # the first listener to start (the restarts found them unchanged).
        assert actions == {"identity.link": MESSAGES, "mapping.change": 1}
        report = audit_log_from_settings(settings, clock).verify(s)
        assert report.ok, report.as_text()
