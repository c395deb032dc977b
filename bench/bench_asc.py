"""Benchmark: social care exports end to end (parse, map, validate, encrypt, store).

Generates N persons with the synthetic generator, then ingests the social care exports into
a fresh database exactly as `carebridge ingest --system asc` does, against a baseline that
only parses the same files with the adapter. Reports rows/s, the ratio, and peak memory
(streaming: it must not grow with N).

    python bench/bench_asc.py [--persons N] [--quick] [--json] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _scratch import peak_mb, scratch_database
from sqlalchemy import text

from adapters.asc import AscAdapter
from adapters.base import SourceRecord
from bridge.core.clock import SystemClock
from bridge.core.crypto import Hasher, KeyRing
from bridge.ingest.service import Ingestor, ingest_stream
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_engine, make_session_factory
from bridge.store.migrate import upgrade
from bridge.synth import generate


def main() -> None:
    """Run the benchmark and print a table (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="500 persons")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--database-url", default=None, help="PostgreSQL server URL")
    ap.add_argument("--batch", type=int, default=500, help="records per transaction")
    args = ap.parse_args()
    persons = 500 if args.quick else args.persons
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        generate(tmp / "data", persons=persons, seed=7)
        gen_s = time.perf_counter() - t0
        files = [tmp / "data" / "asc"]

        t0 = time.perf_counter()
        parsed = sum(1 for i in AscAdapter(files).read() if isinstance(i, SourceRecord))
        baseline_s = time.perf_counter() - t0
        mem_before = peak_mb()

        url, cleanup = scratch_database(args.database_url, tmp)
        engine = make_engine(url)
        upgrade(engine)
        crypto = StoreCrypto(KeyRing.generate(development=True), Hasher(os.urandom(32)))
        ingestor = Ingestor(mappings=Mappings.load(), crypto=crypto, clock=SystemClock())
        t0 = time.perf_counter()
        summary = ingest_stream(
            make_session_factory(engine),
            AscAdapter(files).read(),
            ingestor=ingestor,
            system="asc",
            channel="file",
            batch_size=args.batch,
        )
        ingest_s = time.perf_counter() - t0
        engine.dispose()
        if cleanup is not None:
            admin, name = cleanup  # type: ignore[misc]
            with admin.connect() as conn:  # type: ignore[attr-defined]
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()  # type: ignore[attr-defined]
    rows = summary.total
    figures = {
        "database": url.split(":")[0],
        "persons": persons,
        "rows": rows,
        "applied": summary.counts["applied"],
        "dead_lettered": summary.counts["dead_lettered"],
        "resources": sum(summary.resources.values()),
        "generate_s": round(gen_s, 1),
        "parse_only_rows_per_s": round(parsed / baseline_s),
        "end_to_end_rows_per_s": round(rows / ingest_s),
        "end_to_end_vs_parse_ratio": round((rows / ingest_s) / (parsed / baseline_s), 4),
        "peak_rss_mb_before_ingest": round(mem_before, 1),
        "peak_rss_mb": round(peak_mb(), 1),
    }
    print(f"social care exports end to end, {figures['database']}, {persons:,} persons")
    print(f"  {'rows (all kinds)':<34} {rows:>10,}")
    print(
        f"  {'applied / dead-lettered':<34} {summary.counts['applied']:>10,} / "
        f"{summary.counts['dead_lettered']:,} (the generator's deliberate bad rows)"
    )
    print(f"  {'baseline: adapter parse only':<34} {figures['parse_only_rows_per_s']:>10,} rows/s")
    print(f"  {'end to end: parse+map+store':<34} {figures['end_to_end_rows_per_s']:>10,} rows/s")
    print(f"  {'end to end / parse only':<34} {figures['end_to_end_vs_parse_ratio']:>10}")
    print(f"  {'peak RSS before / after ingest':<34} {mem_before:>7.1f} / {peak_mb():.1f} MB")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
