"""Benchmark: a full initial load by the sync jobs, both systems (issue 8).

Generates N persons with the synthetic generator, then runs the two sync jobs a worker
would (social care export, then community health files) into a fresh database, with
identity linking, checkpoints, leases, the run audit and the alert rules, as
`carebridge sync run` does. Reports wall time, records/s, resources stored and peak memory
(streaming: it must not grow with N). Target (issue 8): 100,000 persons in under 10 minutes
on 2 cores on PostgreSQL, peak memory under 500 MB.

    python bench/bench_sync.py [--persons N] [--quick] [--json] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _scratch import peak_mb, scratch_database
from sqlalchemy import func, select, text

from bridge.audit.service import audit_log_from_settings
from bridge.core.clock import SystemClock
from bridge.core.settings import Settings
from bridge.ingest.service import Ingestor
from bridge.store.db import make_engine, make_session_factory
from bridge.store.migrate import upgrade
from bridge.store.models import OutboxMessage, ResourceCurrent
from bridge.sync.jobs import parse_jobs
from bridge.sync.outbox import alert_hook_from_settings
from bridge.sync.runner import JobRunner
from bridge.synth import generate


def main() -> None:
    """Run the benchmark and print a table (and JSON, last line, with --json)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="200 persons")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--database-url", default=None, help="PostgreSQL server URL")
    ap.add_argument("--batch", type=int, default=500, help="records per transaction")
    ap.add_argument("--no-alerts", action="store_true", help="skip the alert rules")
    args = ap.parse_args()
    persons = 200 if args.quick else args.persons
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        generate(tmp / "data", persons=persons, seed=7)
        gen_s = time.perf_counter() - t0
        url, cleanup = scratch_database(args.database_url, tmp)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp / "var", database_url=url
        )
        engine = make_engine(url)
        upgrade(engine)
        clock = SystemClock()
        ingestor = Ingestor.from_settings(settings, clock)
        runner = JobRunner(
            make_session_factory(engine),
            ingestor=ingestor,
            audit=audit_log_from_settings(settings, clock),
            clock=clock,
            alert_hook=None
            if args.no_alerts
            else alert_hook_from_settings(settings, ingestor, clock),
        )
        jobs = parse_jobs(
            "jobs:\n"
            f"  - {{name: asc, source: asc-export, path: data/asc, schedule: 1h,"
            f" options: {{batch_size: {args.batch}}}}}\n"
            f"  - {{name: chs, source: chs-extracts, path: data/chs, schedule: 1h,"
            f" options: {{batch_size: {args.batch}}}}}\n",
            file="bench",
            base=tmp,
        )
        mem_before = peak_mb()
        t0 = time.perf_counter()
        results = [runner.run(job) for job in jobs]
        wall_s = time.perf_counter() - t0
        with make_session_factory(engine)() as s:
            resources = s.scalar(select(func.count()).select_from(ResourceCurrent))
            alerts = s.scalar(select(func.count()).select_from(OutboxMessage))
        engine.dispose()
        if cleanup is not None:
            admin, name = cleanup  # type: ignore[misc]
            with admin.connect() as conn:  # type: ignore[attr-defined]
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()  # type: ignore[attr-defined]
    assert all(r.status == "succeeded" for r in results), [r.as_text() for r in results]
    read = sum(r.counts.records_read for r in results)
    figures = {
        "database": url.split(":")[0],
        "alerts_on": not args.no_alerts,
        "persons": persons,
        "records": read,
        "applied": sum(r.counts.applied for r in results),
        "dead_lettered": sum(r.counts.dead_lettered for r in results),
        "resources": resources,
        "alerts": alerts,
        "generate_s": round(gen_s, 1),
        "wall_s": round(wall_s, 1),
        "records_per_s": round(read / wall_s),
        "peak_rss_mb_before_load": round(mem_before, 1),
        "peak_rss_mb": round(peak_mb(), 1),
    }
    print(f"initial load by sync jobs, {figures['database']}, {persons:,} persons")
    for r in results:
        print(f"  {r.as_text()}")
    print(f"  {'wall time':<32} {wall_s:>10.1f} s")
    print(f"  {'records/s':<32} {figures['records_per_s']:>10,}")
    print(f"  {'resources stored / alerts':<32} {resources:>10,} / {alerts:,}")
    print(f"  {'peak RSS before / after load':<32} {mem_before:>7.1f} / {peak_mb():.1f} MB")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
