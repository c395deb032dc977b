"""Benchmark: verifying the audit chain (target: 1,000,000 entries in under 60 s).

Builds a chain of N entries in a fresh database (SQLite file, or --database-url), then times
`AuditLog.verify` against a baseline that streams the same rows without checking them.

    python bench/bench_audit.py [--entries N] [--quick] [--json] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, update

from bridge.audit import chain
from bridge.audit.service import AuditLog
from bridge.core.clock import FixedClock
from bridge.core.crypto import Hasher
from bridge.store.audit import GENESIS_HASH, AuditRepository
from bridge.store.db import make_engine, make_session_factory, transaction
from bridge.store.migrate import upgrade
from bridge.store.models import AuditEntry, AuditHead


def build(factory: Any, hasher: Hasher, n: int) -> None:
    """Write a valid chain of n entries in batches (the fast path, not the request path)."""
    prev, start = GENESIS_HASH, datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[dict[str, Any]] = []
    with transaction(factory) as s:
        AuditRepository(s).lock_head()
    for seq in range(1, n + 1):
        values: dict[str, Any] = {
            "seq": seq,
            "recorded_at": start + timedelta(milliseconds=seq),
            "actor_user": f"user{seq % 97}",
            "actor_roles": "social_worker",
            "actor_org": None,
            "actor_team": "north-locality",
            "action": "person.read",
            "person_id": f"person-{seq % 5003}",
            "outcome": "partial",
            "purpose": "direct-care",
            "break_glass": False,
            "request_id": f"r{seq}",
            "client_address": "127.0.0.1",
            "detail": orjson.dumps(
                {"resources": [f"Condition/c{seq}/1"], "withheld": ["PSY"]},
                option=orjson.OPT_SORT_KEYS,
            ).decode(),
        }
        values["prev_hash"] = prev
        values["hash"] = prev = chain.link(hasher, prev, values)
        batch.append(values)
        if len(batch) == 10_000 or seq == n:
            with transaction(factory) as s:
                s.execute(insert(AuditEntry), batch)
                s.execute(update(AuditHead).values(seq=seq, hash=prev))
            batch = []


def main() -> None:
    """Run the benchmark and print a table (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="20,000 entries")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    n = 20_000 if args.quick else args.entries
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
        hasher = Hasher(b"b" * 32)
        t0 = time.perf_counter()
        build(factory, hasher, n)
        build_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        with factory() as s:
            streamed = sum(1 for _ in AuditRepository(s).iter_all())
        baseline_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        with factory() as s:
            report = AuditLog(hasher, FixedClock(datetime.now(UTC))).verify(s)
        verify_s = time.perf_counter() - t0
        engine.dispose()
    if not report.ok or report.entries != n or streamed != n:
        raise SystemExit(f"verification did not see a valid chain of {n}: {report}")
    figures = {
        "database": url.split(":")[0],
        "entries": n,
        "build_s": round(build_s, 2),
        "stream_only_s": round(baseline_s, 2),
        "verify_s": round(verify_s, 2),
        "verify_entries_per_s": round(n / verify_s),
        "verify_vs_stream_ratio": round(verify_s / baseline_s, 2),
        "projected_1m_s": round(verify_s * 1_000_000 / n, 1),
    }
    print(f"audit chain verification, {figures['database']}, {n:,} entries")
    print(f"  {'build (not timed target)':<28} {build_s:8.2f} s")
    print(f"  {'baseline: stream rows only':<28} {baseline_s:8.2f} s")
    print(f"  {'verify (HMAC chain)':<28} {verify_s:8.2f} s  {n / verify_s:>10,.0f} entries/s")
    print(f"  {'verify / baseline':<28} {verify_s / baseline_s:8.2f} x")
    print(f"  {'projected for 1,000,000':<28} {figures['projected_1m_s']:8.1f} s  (target < 60 s)")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
