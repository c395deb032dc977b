"""Benchmark: MLLP messages/s acknowledged-durable, against a parse-only baseline (issue 4).

    python bench/bench_mllp.py [--persons N] [--database-url URL] [--mappings DIR]
                               [--connections C] [--workers W] [--quick] [--json]

Generates a synthetic population (bridge.synth) and sends its HL7 v2 ADT messages to an
in-process MLLP listener (MllpServer + MllpIngest on an ephemeral port, in a background
thread's event loop, with the ingestor `carebridge mllp serve` builds: mapping, storing,
identity linking and its audit entries) from a separate sender process, over one
connection and over C concurrent connections (default 8), each message waiting for its
ACK. Every ACK is sent only after the message, its resources and the ACK
are committed (SQLite with synchronous=FULL by default; PostgreSQL with --database-url,
in a scratch database created and dropped by the run). In the same run, a baseline
listener only frames and parses the same messages and acknowledges them without storing.
Then `ingest_stream` (what `carebridge ingest --system chs` runs) reads the same messages
from the generated HL7 batch files into a fresh database. Each measurement gets a fresh,
migrated database, so every message is applied, never a duplicate.

With ``--workers W`` (W > 1) the C-connection figure is also measured against W listener
processes sharing one port (SO_REUSEPORT), as `carebridge mllp serve --workers W` runs.

Messages are split across connections by patient (MRN), as separate feeds would be, so
one patient's messages keep their order. ACK codes are counted: AE/AR mean the message
was dead-lettered or refused, and a run where most are would be measuring the wrong thing.

Targets on a 2-core machine: at least 1,000 messages/s over 8 connections on PostgreSQL,
at least 300/s over a single connection, and `carebridge ingest` at least 2,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.chs import Frame, MllpDecoder, frame  # noqa: E402

Handler = Callable[[bytes], Awaitable[bytes | None]]
TARGETS = {"mllp_8_pg": 1_000, "mllp_1": 300, "ingest": 2_000}


# -- sender (runs in its own process) ----------------------------------------------------
def ack_code(ack: bytes) -> str:
    """Return MSA-1 of an ACK (cheaply: the sender must not be the bottleneck)."""
    for segment in ack.split(b"\r"):
        if segment.startswith(b"MSA"):
            return segment[4:6].decode()
    return "??"


async def _send_feed(port: int, messages: list[bytes]) -> Counter[str]:
    """Send messages over one connection, each after the previous one's ACK."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = MllpDecoder()
    codes: Counter[str] = Counter()
    try:
        for m in messages:
            writer.write(frame(m))
            acks: list[bytes] = []
            while not acks:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("the listener closed the connection")
                acks = [e.message for e in decoder.feed(data) if isinstance(e, Frame)]
            codes[ack_code(acks[0])] += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return codes


def send_feeds(port: int, feeds: list[list[bytes]]) -> tuple[float, dict[str, int]]:
    """Send every feed on its own connection at once; return (seconds, ACK code counts)."""

    async def run() -> tuple[float, Counter[str]]:
        start = time.perf_counter()
        results = await asyncio.gather(*(_send_feed(port, f) for f in feeds if f))
        return time.perf_counter() - start, sum(results, Counter())

    elapsed, codes = asyncio.run(run())
    return elapsed, dict(codes)


# -- listener (in this process, in a background thread's event loop) --------------------
@contextmanager
def listening(handler: Handler) -> Iterator[int]:
    """Run an MllpServer with ``handler`` on an ephemeral port; yield the port."""
    from adapters.chs import MllpServer

    loop = asyncio.new_event_loop()
    server = MllpServer(handler, "127.0.0.1", 0, handler_timeout=120)
    thread = threading.Thread(target=loop.run_forever, name="mllp-listener", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result()
    try:
        yield server.bound_port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(grace=30), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


# -- databases ---------------------------------------------------------------------------
class Databases:
    """Fresh migrated databases: SQLite files in a temp dir, or scratch PostgreSQL ones."""

    def __init__(self, admin_url: str | None, workdir: Path) -> None:
        from bridge.store.db import make_engine

        self.admin_url = admin_url
        self.workdir = workdir
        self.created: list[str] = []
        self.admin = make_engine(admin_url, isolation_level="AUTOCOMMIT") if admin_url else None
        self.kind = "PostgreSQL" if admin_url else "SQLite (WAL, synchronous=FULL)"

    def fresh(self) -> str:
        """Create and migrate an empty database; return its URL."""
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        from bridge.store.db import make_engine
        from bridge.store.migrate import upgrade

        name = f"carebridge_bench_{uuid.uuid4().hex[:12]}"
        if self.admin is None:
            url = f"sqlite:///{self.workdir / (name + '.db')}"
        else:
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            assert self.admin_url is not None
            url = make_url(self.admin_url).set(database=name).render_as_string(False)
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return url

    def drop_all(self) -> None:
        """Drop every scratch database this run created."""
        from sqlalchemy import text

        if self.admin is None:
            return
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


# -- workload ------------------------------------------------------------------------------
@dataclass
class Workload:
    """The messages to send, split into feeds by patient, and the batch files they came from."""

    messages: list[bytes]
    mrns: list[str]
    files: list[Path]
    source: str


def load_workload(persons: int, workdir: Path, mappings: object) -> Workload:
    """Generate ADT messages; fall back to A28-only messages if ADT cannot be mapped yet."""
    from adapters.base import AdapterError
    from adapters.chs import read_batch
    from bridge.synth import generate

    generate(workdir / "synth", persons=persons, seed=4)
    files = sorted((workdir / "synth" / "chs" / "adt").glob("*.hl7"))
    specs = getattr(mappings, "specs", {})
    kinds = {k for s, k in specs if s == "chs" and k.startswith("adt_")}
    messages, mrns, mapped = [], [], 0
    for path in files:
        for item in read_batch(path):
            if isinstance(item, AdapterError):
                continue  # the generator's deliberately broken messages: not the point here
            assert item.raw is not None
            messages.append(item.raw)
            mrns.append(mrn_of(item.fields))
            mapped += item.kind in kinds
    if mapped >= len(messages) / 2:
        return Workload(messages, mrns, files, f"synthetic ADT, {len(kinds)} mapped events")
    if "adt_a28" not in kinds:
        raise SystemExit(f"the mapping directory maps no ADT events carebridge can send: {kinds}")
    # The mapping dir maps registrations only: send as many distinct A28s instead.
    n = len(messages)
    a28s = [synthetic_a28(i) for i in range(n)]
    batch = workdir / "a28.hl7"
    batch.write_bytes(b"\n".join(a28s) + b"\n")
    return Workload(a28s, [f"CHS{i:07d}" for i in range(n)], [batch], "A28 only (no ADT specs)")


def mrn_of(fields: dict[str, object]) -> str:
    """Return the PID-3 repetition of type MR (the patient's MRN), or '' if none."""
    try:
        reps = fields["PID"]["3"]  # type: ignore[index]
        for rep in reps:
            if rep.get("5") == "MR":
                return str(rep.get("1", ""))
    except (KeyError, TypeError):
        pass
    return ""


def synthetic_a28(i: int) -> bytes:
    return (
        "MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20261101090000+0000||ADT^A28^ADT_A05|"
        f"BENCH{i:07d}|P|2.4\r"
        "EVN|A28|20261101090000+0000\r"
        f"PID|1||9990000018^^^NHS^NH~CHS{i:07d}^^^RXX^MR||Bench{i:07d}^Ada||19410307|F\r"
    ).encode()


def split_feeds(w: Workload, connections: int) -> list[list[bytes]]:
    """Split the messages into feeds by MRN, so one patient's messages keep their order."""
    feeds: list[list[bytes]] = [[] for _ in range(connections)]
    for m, mrn in zip(w.messages, w.mrns, strict=True):
        feeds[zlib.crc32(mrn.encode()) % connections].append(m)
    return feeds


# -- handlers --------------------------------------------------------------------------------
def parse_only_handler() -> Handler:
    """Frame, parse and acknowledge without storing (the baseline)."""
    from adapters.chs import Hl7Error, Outcome, build_ack, build_error_ack, parse_message
    from adapters.chs import ack_code as code_for
    from bridge.core.clock import SystemClock
    from bridge.ingest.mllp import new_control_id

    clock = SystemClock()

    def process(raw: bytes) -> bytes:
        try:
            parsed = parse_message(raw)
        except Hl7Error as exc:
            return build_error_ack(raw, exc, control_id=new_control_id(), timestamp=clock.now())
        parsed.to_record(origin="mllp")
        return build_ack(
            parsed,
            code_for(parsed, Outcome.ACCEPTED),
            control_id=new_control_id(),
            timestamp=clock.now(),
        )

    async def handle(raw: bytes) -> bytes | None:
        # The same hop to a worker thread as the durable handler makes.
        return await asyncio.to_thread(process, raw)

    return handle


@dataclass
class Measure:
    """One throughput figure."""

    name: str
    messages: int
    seconds: float
    codes: dict[str, int]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def accepted(self) -> int:
        return self.codes.get("AA", 0) + self.codes.get("CA", 0)


def measure_mllp(
    name: str,
    handler: Handler,
    feeds: list[list[bytes]],
    sender: ProcessPoolExecutor,
) -> Measure:
    with listening(handler) as port:
        elapsed, codes = sender.submit(send_feeds, port, feeds).result()
    return Measure(name, sum(map(len, feeds)), elapsed, codes)


def measure_durable(
    name: str,
    url: str,
    ingestor: object,
    feeds: list[list[bytes]],
    sender: ProcessPoolExecutor,
) -> Measure:
    from bridge.core.clock import SystemClock
    from bridge.ingest.mllp import MllpIngest
    from bridge.ingest.service import Ingestor
    from bridge.store.db import make_engine, make_session_factory

    assert isinstance(ingestor, Ingestor)
    engine = make_engine(url)
    try:
        service = MllpIngest(
            factory=make_session_factory(engine), ingestor=ingestor, clock=SystemClock()
        )
        return measure_mllp(name, service.handle, feeds, sender)
    finally:
        engine.dispose()


def _worker(url: str, settings: object, port: int, ready: object, stop: object) -> None:
    """One listener process of a multi-worker measurement (runs until ``stop`` is set)."""
    import logging

    from adapters.chs import MllpServer
    from bridge.core.clock import SystemClock
    from bridge.ingest.mllp import MllpIngest
    from bridge.ingest.service import Ingestor
    from bridge.store.db import make_engine, make_session_factory

    logging.getLogger().setLevel(logging.ERROR)
    clock = SystemClock()
    ingestor = Ingestor.from_settings(settings, clock)  # type: ignore[arg-type]
    engine = make_engine(url)
    service = MllpIngest(factory=make_session_factory(engine), ingestor=ingestor, clock=clock)

    async def run() -> None:
        server = MllpServer(service.handle, "127.0.0.1", port, handler_timeout=120, reuse_port=True)
        await server.start()
        ready.put(port)  # type: ignore[attr-defined]
        await asyncio.to_thread(stop.wait)  # type: ignore[attr-defined]
        await server.stop(grace=30)

    try:
        asyncio.run(run())
    finally:
        engine.dispose()


def measure_workers(
    name: str,
    url: str,
    settings: object,
    workers: int,
    feeds: list[list[bytes]],
    sender: ProcessPoolExecutor,
) -> Measure:
    import socket

    spawn = multiprocessing.get_context("spawn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ready, stop = spawn.Queue(), spawn.Event()
    procs = [
        spawn.Process(target=_worker, args=(url, settings, port, ready, stop))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        elapsed, codes = sender.submit(send_feeds, port, feeds).result()
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
    return Measure(name, sum(map(len, feeds)), elapsed, codes)


def measure_ingest(url: str, ingestor: object, files: list[Path]) -> Measure:
    from adapters.chs import ChsAdapter
    from bridge.ingest.service import Ingestor, ingest_stream
    from bridge.store.db import make_engine, make_session_factory

    assert isinstance(ingestor, Ingestor)
    engine = make_engine(url)
    try:
        start = time.perf_counter()
        summary = ingest_stream(
            make_session_factory(engine),
            ChsAdapter(files).read(),
            ingestor=ingestor,
            system="chs",
            channel="file",
        )
        elapsed = time.perf_counter() - start
    finally:
        engine.dispose()
    counts = {"applied": summary.counts["applied"], "dead_lettered": 0}
    counts["dead_lettered"] = summary.counts["dead_lettered"]
    counts["other"] = summary.total - counts["applied"] - counts["dead_lettered"]
    return Measure("ingest_stream (batch files)", summary.total, elapsed, counts)


# -- main ------------------------------------------------------------------------------------
def main() -> None:
    """Run the benchmark and print the table (and JSON)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000, help="synthetic population size")
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: SQLite files)")
    parser.add_argument("--mappings", type=Path, help="mapping directory (default: shipped)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--workers", type=int, default=1, help="also measure C connections to W listeners"
    )
    parser.add_argument("--quick", action="store_true", help="small and fast (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print figures as JSON last")
    args = parser.parse_args()
    persons = 60 if args.quick else args.persons

    import logging

    from bridge.core.clock import SystemClock
    from bridge.core.settings import Settings
    from bridge.ingest.service import Ingestor

    # The listener logs a line per dead letter; the table is what matters here.
    logging.getLogger().setLevel(logging.ERROR)
    mappings_dir = str(args.mappings) if args.mappings else "shipped mappings/"

    with tempfile.TemporaryDirectory(prefix="bench-mllp-") as tmp:
        workdir = Path(tmp)
        # The ingestor every edge builds (`carebridge mllp serve` included): the mappings,
        # development keys made under the temp dir, audit, identity linking on ingest.
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=workdir / "var", mappings_dir=args.mappings
        )
        ingestor = Ingestor.from_settings(settings, SystemClock())
        workload = load_workload(persons, workdir, ingestor.mappings)
        one = [workload.messages]
        many = split_feeds(workload, args.connections)
        dbs = Databases(args.database_url, workdir)
        spawn = multiprocessing.get_context("spawn")
        try:
            with ProcessPoolExecutor(1, mp_context=spawn) as sender:
                sender.submit(int).result()  # start the sender process before timing anything
                parse_only = parse_only_handler()
                c = args.connections
                results = [
                    measure_mllp("baseline 1 conn (frame+parse+ACK)", parse_only, one, sender),
                    measure_mllp(f"baseline {c} conns", parse_only, many, sender),
                    measure_durable("durable 1 conn", dbs.fresh(), ingestor, one, sender),
                    measure_durable(f"durable {c} conns", dbs.fresh(), ingestor, many, sender),
                ]
                if args.workers > 1:
                    w = args.workers
                    results.append(
                        measure_workers(
                            f"durable {c} conns, {w} workers",
                            dbs.fresh(),
                            settings,
                            w,
                            many,
                            sender,
                        )
                    )
            results.insert(4, measure_ingest(dbs.fresh(), ingestor, workload.files))
        finally:
            dbs.drop_all()

    report(results, workload, dbs.kind, mappings_dir, args)


def report(
    results: list[Measure], w: Workload, db_kind: str, mappings_dir: str, args: argparse.Namespace
) -> None:
    base1, base_n, dur1, dur_n, ingest = results[:5]
    workers = results[5] if len(results) > 5 else None
    avg = sum(map(len, w.messages)) / len(w.messages)
    cpu = os.cpu_count()
    print(
        f"MLLP benchmark: {len(w.messages)} messages ({w.source}; {avg:.0f} bytes on average),"
        f" mappings: {mappings_dir}; database: {db_kind}; {cpu} CPUs"
    )
    print(f"{'what':<38}{'messages':>9}{'seconds':>9}{'messages/s':>13}  acks / outcomes")
    for m in results:
        codes = " ".join(f"{k} {v}" for k, v in sorted(m.codes.items()) if v)
        print(f"{m.name:<38}{m.messages:>9}{m.seconds:>9.2f}{m.rate:>13,.0f}  {codes}")
    ratio1 = dur1.rate / base1.rate if base1.rate else 0.0
    ratio_n = dur_n.rate / base_n.rate if base_n.rate else 0.0
    print(f"durable / baseline, 1 connection:    {ratio1:.3f}")
    print(f"durable / baseline, {args.connections} connections:   {ratio_n:.3f}")
    if workers is not None:
        ratio_w = workers.rate / base_n.rate if base_n.rate else 0.0
        c, w = args.connections, args.workers
        print(f"durable / baseline, {c} connections, {w} workers: {ratio_w:.3f}")
    for m in (dur1, dur_n, *([workers] if workers else [])):
        if m.accepted < m.messages:
            print(f"warning: {m.name}: {m.messages - m.accepted} messages not accepted (AE/AR)")
    postgres = args.database_url is not None
    checks = [
        (
            f"durable {args.connections} conns on PostgreSQL",
            max(dur_n.rate, workers.rate if workers else 0.0),
            TARGETS["mllp_8_pg"],
        )
        if postgres
        else None,
        ("durable 1 conn", dur1.rate, TARGETS["mllp_1"]),
        ("ingest_stream", ingest.rate, TARGETS["ingest"]),
    ]
    for check in checks:
        if check is not None:
            label, got, want = check
            print(f"target {label}: >= {want:,}/s: {'met' if got >= want else 'MISSED'}")
    if args.json:
        figures = {
            "messages": len(w.messages),
            "source": w.source,
            "mappings": mappings_dir,
            "database": "postgresql" if postgres else "sqlite",
            "connections": args.connections,
            "baseline_1_msgs_per_s": round(base1.rate, 1),
            "baseline_n_msgs_per_s": round(base_n.rate, 1),
            "durable_1_msgs_per_s": round(dur1.rate, 1),
            "durable_n_msgs_per_s": round(dur_n.rate, 1),
            "ingest_msgs_per_s": round(ingest.rate, 1),
            "workers": args.workers,
            "durable_n_workers_msgs_per_s": round(workers.rate, 1) if workers else None,
            "durable_vs_baseline_1": round(ratio1, 4),
            "durable_vs_baseline_n": round(ratio_n, 4),
            "durable_1_acks": dur1.codes,
            "durable_n_acks": dur_n.codes,
            "ingest_outcomes": ingest.codes,
            "cpus": cpu,
            "python": platform.python_version(),
            "quick": args.quick,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
