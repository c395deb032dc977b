"""Benchmark: the person view under load, over real HTTP, against GET /health (issue 7).

    python bench/bench_view.py [--persons N] [--seed S] [--database-url URL] [--workers W]
                               [--clients C] [--duration S] [--reload] [--quick] [--json]

With N generated persons (default 100,000; ``--quick`` 300) in PostgreSQL, a real server
(uvicorn, ``--workers`` processes, default 2, the app as ``carebridge serve`` builds it,
development token issuer) is driven by C concurrent clients (default 32; asyncio + httpx,
one keep-alive connection each) for a fixed time after a warm-up:

1. the floor: ``GET /health`` alone, same clients, same server;
2. ``GET /persons/{id}/view`` by social workers (one token per team, ``team`` claim) for
   persons their team is allocated to (checked with the access gate before the run, so
   every one should answer 200), and a share (``--deny-share``, default 10%) by a social
   worker with no care relationship to anyone, which must answer 403 (audited, reported
   separately). Any other status, or a connection error, is an error and fails the run.

Reported: p50/p95/p99/max latency and requests/s of each, the view/health ratios, the
audit entries the run appended (one per view or refusal), and the client's own CPU use
(the client runs on the same cores as the server and PostgreSQL).

DATA SETUP IS NOT INGEST. The population is bulk-loaded (``bench/_view_load.py``): the
real adapters and mapping specs, rows written as ``ResourceRepository.put`` writes them
(the same crypto, versions and blind index; batched statements), person links taken from
the generator's truth file instead of identity scoring. Ingest throughput is measured by
bench_mllp.py and bench_asc.py; this benchmark also times real ingest on a small population
(``--ingest-persons``, default 200) so the two rates can be compared. The loaded database
(``carebridge_bench_view_<N>_s<seed>``) is kept with its keys under ``var/bench-view/``, so
later runs start at once; ``--reload`` loads it afresh.

Targets (2 cores): view p95 <= 50 ms, p99 <= 150 ms, at least 300 views/s.
``--json`` prints one JSON object of the figures as the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _view_load import ORG, Dataset, ensure_loaded, peak_rss_mb, start_server

TARGETS = {"p95_ms": 50.0, "p99_ms": 150.0, "views_per_s": 300.0}
DEFAULT_URL = "postgresql://postgres@127.0.0.1:55432/postgres"
STRANGER_TEAM = "T-NONE"  # a team no record names


# -- real ingest on a small population (for comparison with the bulk load) ---------------
def ingest_rate(admin_url: str, persons: int) -> dict[str, Any]:
    """Ingest a small population as `carebridge ingest` does; return records/s and counts."""
    import uuid

    from sqlalchemy import text

    from adapters.asc import AscAdapter
    from adapters.chs import ChsAdapter
    from bridge.core.clock import SystemClock
    from bridge.core.settings import Settings
    from bridge.ingest.service import Ingestor, ingest_stream
    from bridge.store.db import make_engine, make_session_factory
    from bridge.store.migrate import upgrade
    from bridge.synth import generate

    name = f"carebridge_bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        from sqlalchemy.engine import make_url

        url = make_url(admin_url).set(database=name).render_as_string(False)
        with tempfile.TemporaryDirectory(prefix="bench-view-ingest-") as tmp:
            generate(Path(tmp) / "data", persons=persons, seed=11)
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, data_dir=Path(tmp) / "var", database_url=url
            )
            ingestor = Ingestor.from_settings(settings, SystemClock())
            engine = make_engine(url)
            upgrade(engine)
            factory = make_session_factory(engine)
            start = time.perf_counter()
            total = Counter[str]()
            for system, adapter in (
                ("asc", AscAdapter([Path(tmp) / "data" / "asc"])),
                ("chs", ChsAdapter([Path(tmp) / "data" / "chs"])),
            ):
                summary = ingest_stream(
                    factory, adapter.read(), ingestor=ingestor, system=system, channel="file"
                )
                total.update(summary.counts)
            seconds = time.perf_counter() - start
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    records = sum(total.values())
    return {
        "persons": persons,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1),
        "outcomes": dict(total),
    }


# -- who may see whom ----------------------------------------------------------------------
def viewable(ds: Dataset, teams: list[str], per_team: int, seed: int) -> list[tuple[str, str]]:
    """Return (team, person) pairs the team may view, checked with the app's own gate.

    Candidates are the persons whose records name the team (the caseload index); each is
    screened as the server will screen it (care relationship in force now, break-glass
    none), so the load only asks for views that should answer 200.
    """
    from bridge.api.app import create_app
    from bridge.auth.principal import Principal
    from bridge.auth.roles import Role
    from bridge.store.resources import ResourceRepository

    app = create_app(ds.settings())
    gate = app.state.gate
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    with app.state.session_factory() as session:
        repo = ResourceRepository(session, crypto=gate.crypto, clock=gate.clock)
        at = gate.clock.now()
        for team in teams:
            candidates: set[str] = set()
            for system in gate.config.team_systems:
                candidates |= repo.persons_involving(system, team)
            order = sorted(candidates)
            rng.shuffle(order)
            who = Principal(
                user=f"bench.{team}", roles=frozenset({Role.SOCIAL_WORKER}), team=team, org=ORG
            )
            found = 0
            for person in order[: per_team * 3]:
                if gate.screen(session, who, person, at=at).permitted:
                    pairs.append((team, person))
                    found += 1
                    if found >= per_team:
                        break
    app.state.engine.dispose()
    return pairs


def audit_count(ds: Dataset) -> int:
    """Return how many audit entries the dataset's database holds."""
    from sqlalchemy import func, select

    from bridge.store.db import make_engine
    from bridge.store.models.audit import AuditEntry

    engine = make_engine(ds.url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
    finally:
        engine.dispose()


# -- the load ------------------------------------------------------------------------------
@dataclass
class Samples:
    """Latencies (s) and statuses of one kind of request."""

    name: str
    expect: int
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, latency: float, status: int) -> None:
        self.latencies.append(latency)
        self.statuses[status] += 1
        if status != self.expect:
            self.errors[f"HTTP {status}"] += 1

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """Return the q-th percentile latency in ms (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "per_s": round(self.rate, 1),
            "p50_ms": round(self.pct(50), 2),
            "p95_ms": round(self.pct(95), 2),
            "p99_ms": round(self.pct(99), 2),
            "max_ms": round(self.pct(100), 2),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
        }


async def drive(
    base_url: str,
    *,
    clients: int,
    warmup: float,
    duration: float,
    pick: Any,
    kinds: dict[str, Samples],
) -> float:
    """Run ``clients`` request loops; record what ends after the warm-up. Return client CPU s.

    ``pick(rng)`` returns (kind, path, token) for the next request.
    """
    import httpx

    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    stop = measure_from + duration
    checked = 0

    async def client(i: int) -> None:
        nonlocal checked
        rng = random.Random(i)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
            while True:
                kind, path, token = pick(rng)
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                t0 = loop.time()
                if t0 >= stop:
                    return
                try:
                    response = await http.get(path, headers=headers)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    if t0 >= measure_from:
                        kinds[kind].errors[type(exc).__name__] += 1
                    continue
                t1 = loop.time()
                if t0 >= measure_from and t1 <= stop:
                    kinds[kind].add(t1 - t0, status)
                    # Now and then, check the answer is the view asked for (cheaply).
                    if status == 200 and kind == "view" and rng.random() < 0.02:
                        checked += 1
                        if response.json().get("person") != path.split("/")[2]:
                            kinds[kind].errors["wrong person"] += 1

    cpu0 = time.process_time()
    await asyncio.gather(*(client(i) for i in range(clients)))
    for s in kinds.values():
        s.seconds = duration
    return time.process_time() - cpu0


# -- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table (and a JSON line with --json). Exit 1 on errors."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000, help="population size")
    parser.add_argument("--seed", type=int, default=2026, help="generator seed")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CAREBRIDGE_BENCH_DATABASE_URL", DEFAULT_URL),
        help="PostgreSQL server URL (an admin database; the benchmark's is made beside it)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--load-workers", type=int, default=2, help="bulk loader processes")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds not measured")
    parser.add_argument("--deny-share", type=float, default=0.1, help="share of 403 requests")
    parser.add_argument("--pool", type=int, default=2000, help="persons viewed (at most)")
    parser.add_argument(
        "--ingest-persons", type=int, default=200, help="real-ingest timing size (0: skip)"
    )
    parser.add_argument("--reload", action="store_true", help="load the database afresh")
    parser.add_argument("--quick", action="store_true", help="300 persons, 5 s (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print figures as JSON last")
    args = parser.parse_args(argv)
    if args.quick:
        args.persons, args.duration, args.warmup = 300, 5.0, 2.0
        args.pool, args.ingest_persons = min(args.pool, 300), min(args.ingest_persons, 30)
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL (the benchmark's target)")

    import logging

    logging.getLogger().setLevel(logging.ERROR)

    ingest = None
    if args.ingest_persons:
        print(f"timing real ingest of {args.ingest_persons} persons (scratch database)...")
        ingest = ingest_rate(args.database_url, args.ingest_persons)

    ds = Dataset(args.persons, args.seed, args.database_url)
    load = ensure_loaded(ds, reload=args.reload, workers=args.load_workers)
    teams = list(load.teams)
    pairs = viewable(ds, teams, max(1, args.pool // max(1, len(teams))), args.seed)
    if not pairs:
        raise SystemExit("no person is viewable by any team: nothing to measure")

    from bridge.auth.tokens import mint_dev_token

    settings = ds.settings()

    def token(team: str) -> str:
        return mint_dev_token(
            settings,
            user=f"bench.{team}",
            roles=["social_worker"],
            team=team,
            org=ORG,
            ttl_minutes=240,
        )

    tokens = {team: token(team) for team in {t for t, _ in pairs}}
    stranger = token(STRANGER_TEAM)
    audit_before = audit_count(ds)

    health = Samples("GET /health", 200)
    view = Samples("GET /persons/{id}/view", 200)
    deny = Samples("  same, no relationship", 403)

    def pick_health(_rng: random.Random) -> tuple[str, str, str | None]:
        return "health", "/health", None

    def pick_view(rng: random.Random) -> tuple[str, str, str | None]:
        team, person = rng.choice(pairs)
        if rng.random() < args.deny_share:
            return "deny", f"/persons/{person}/view", stranger
        return "view", f"/persons/{person}/view", tokens[team]

    server = start_server(ds, workers=args.workers)
    try:
        health_phase = max(3.0, args.duration / 3)
        health_cpu = asyncio.run(
            drive(
                server.base_url,
                clients=args.clients,
                warmup=args.warmup,
                duration=health_phase,
                pick=pick_health,
                kinds={"health": health},
            )
        )
        view_cpu = asyncio.run(
            drive(
                server.base_url,
                clients=args.clients,
                warmup=args.warmup,
                duration=args.duration,
                pick=pick_view,
                kinds={"view": view, "deny": deny},
            )
        )
    finally:
        server.stop()
    audited = audit_count(ds) - audit_before

    # -- report ----------------------------------------------------------------------------
    cpus = os.cpu_count()
    resources = load.resources_stored
    print(
        f"person view benchmark: {args.persons:,} persons ({resources:,} resources, "
        f"{load.database_mb:,.0f} MB), PostgreSQL; server: {args.workers} uvicorn workers; "
        f"{args.clients} clients; {args.duration:g} s after {args.warmup:g} s warm-up; "
        f"{cpus} CPUs shared by client, server and database" + (" [quick]" if args.quick else "")
    )
    print(
        f"data setup: BULK LOAD, not ingest ({load.records:,} records mapped with the real "
        f"specs in {load.load_s:,.0f} s = {load.records_per_s:,.0f} records/s with "
        f"{load.workers} processes; peak RSS {load.peak_rss_worker_mb:,.0f} MB per worker, "
        f"{load.peak_rss_loader_mb:,.0f} MB parent). Ingest throughput: bench_mllp.py, "
        "bench_asc.py."
    )
    if ingest:
        print(
            f"real ingest (ingest_stream, linking on), {ingest['persons']} persons: "
            f"{ingest['records']:,} records in {ingest['seconds']:.1f} s = "
            f"{ingest['records_per_s']:,.0f} records/s"
        )
    print(
        f"viewed: {len(pairs):,} (team, person) pairs checked with the gate, "
        f"{len(tokens)} team tokens; {args.deny_share:.0%} of view requests by a worker "
        "with no relationship (403)"
    )
    print(
        f"{'request':<30}{'count':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    )
    for s in (health, view, deny):
        f = s.figures()
        print(
            f"{s.name:<30}{f['requests']:>8,}{f['per_s']:>9,.0f}{f['p50_ms']:>9.1f}"
            f"{f['p95_ms']:>9.1f}{f['p99_ms']:>9.1f}{f['max_ms']:>9.1f}{f['errors']:>8}"
        )
    ratio_p50 = view.pct(50) / health.pct(50) if health.pct(50) else 0.0
    ratio_rate = view.rate / health.rate if health.rate else 0.0
    print(
        f"view / health: p50 {ratio_p50:.1f}x the latency, {ratio_rate:.3f}x the requests/s; "
        f"client CPU {view_cpu / args.duration:.0%} of a core during views "
        f"({health_cpu / health_phase:.0%} during /health)"
    )
    requests = view.count + deny.count
    print(
        f"audit entries appended: {audited:,} (measured view requests {requests:,}, "
        "plus warm-up and in-flight)"
    )
    checks = [
        ("view p95", view.pct(95), TARGETS["p95_ms"], "ms", view.pct(95) <= TARGETS["p95_ms"]),
        ("view p99", view.pct(99), TARGETS["p99_ms"], "ms", view.pct(99) <= TARGETS["p99_ms"]),
        (
            "views/s",
            view.rate + deny.rate,
            TARGETS["views_per_s"],
            "/s",
            view.rate + deny.rate >= TARGETS["views_per_s"],
        ),
    ]
    for name, got, want, unit, ok in checks:
        op = ">=" if unit == "/s" else "<="
        print(f"target {name} {op} {want:g}{unit}: {got:,.1f}{unit} {'met' if ok else 'MISSED'}")
    errors = sum(s.figures()["errors"] for s in (health, view, deny))
    if errors:
        print(
            f"FAILED: {errors} errors: "
            + json.dumps({s.name: dict(s.errors) for s in (health, view, deny)})
        )
    if audited < requests:
        print(f"FAILED: {requests - audited} view requests were not audited")
    if args.json:
        out = {
            "persons": args.persons,
            "seed": args.seed,
            "resources": resources,
            "database_mb": round(load.database_mb),
            "server_workers": args.workers,
            "clients": args.clients,
            "duration_s": args.duration,
            "cpus": cpus,
            "python": platform.python_version(),
            "health": health.figures(),
            "view": view.figures(),
            "view_denied": deny.figures(),
            "views_per_s": round(view.rate + deny.rate, 1),
            "ratio_view_vs_health_p50": round(ratio_p50, 2),
            "ratio_view_vs_health_rate": round(ratio_rate, 4),
            "client_cpu_share": round(view_cpu / args.duration, 3),
            "audit_entries": audited,
            "pairs": len(pairs),
            "load": {
                "records": load.records,
                "seconds": round(load.load_s, 1),
                "records_per_s": round(load.records_per_s, 1),
                "peak_rss_worker_mb": round(load.peak_rss_worker_mb),
                "peak_rss_loader_mb": round(load.peak_rss_loader_mb),
                "workers": load.workers,
            },
            "real_ingest": ingest,
            "targets": TARGETS,
            "meets_targets": all(ok for *_, ok in checks),
            "errors": errors,
            "peak_rss_bench_mb": round(peak_rss_mb()),
            "quick": args.quick,
        }
        print(json.dumps(out, sort_keys=True))
    return 1 if errors or audited < requests else 0


if __name__ == "__main__":
    raise SystemExit(main())
