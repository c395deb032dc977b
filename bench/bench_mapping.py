"""Benchmark: source records to validated FHIR resources through the mapping engine.

Generates a synthetic population (bridge.synth), reads the adult social care persons and
assessments and the community health problem list, and maps them with the shipped specs on
one core, validation on. In the same run, a baseline only parses and dumps the same JSON
lines with orjson. Target: at least 2,000 records/s per core for a typical record that
makes 2-3 resources (an assessment with one or two eligible needs).

    python bench/bench_mapping.py [--persons N] [--rounds R] [--quick] [--json]

Each figure is the best of R rounds over the same records (the first round also warms the
caches a long-running ingest would have warm); a workload smaller than 1,500 records is
mapped several times per round and every pass counts.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from adapters.base import SourceRecord
from bridge.core.errors import MappingError
from bridge.mapping import Mappings
from bridge.synth import generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SOURCES = (
    ("asc/person", "asc/persons.jsonl", "person_id"),
    ("asc/assessment", "asc/assessments.jsonl", "assessment_id"),
    ("chs/problem", "chs/extracts/problems.jsonl", "problem_id"),
)
TARGET = 2_000
MIN_RECORDS = 1_500


@dataclass
class Workload:
    """A named set of records and the lines they came from."""

    name: str
    records: list[SourceRecord]
    lines: list[bytes]


@dataclass
class Figure:
    """Throughput of one workload."""

    name: str
    records: int
    resources: int
    failed: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def resources_per_s(self) -> float:
        return self.resources / self.seconds


def read(out: Path) -> dict[str, Workload]:
    """Read the generated exports as SourceRecords, keeping the raw lines for the baseline."""
    loads: dict[str, Workload] = {}
    for spec, rel, id_field in SOURCES:
        system, kind = spec.split("/")
        records, lines = [], []
        for line in (out / rel).read_bytes().splitlines():
            try:
                fields = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the generator truncates a few lines on purpose
            records.append(
                SourceRecord(system, kind, str(fields[id_field]), fields["updated_at"], fields)
            )
            lines.append(line)
        loads[spec] = Workload(spec, records, lines)
    return loads


def best_of(rounds: int, run: Callable[[], tuple[int, int, int]]) -> tuple[float, int, int, int]:
    """Run ``rounds`` times; return the fastest time and the run's counts."""
    best = float("inf")
    counts = (0, 0, 0)
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        counts = run()
        best = min(best, time.perf_counter() - started)
    return (best, *counts)


def map_all(
    mappings: Mappings, records: Sequence[SourceRecord], min_records: int
) -> Callable[[], tuple[int, int, int]]:
    # Small workloads are run several times per round, so a timing is not a few milliseconds.
    passes = max(1, -(-min_records // max(1, len(records))))

    def run() -> tuple[int, int, int]:
        made = failed = 0
        for _ in range(passes):
            for record in records:
                try:
                    made += len(mappings.map(record, now=NOW).resources)
                except MappingError:
                    failed += 1
        return len(records) * passes, made, failed

    return run


def parse_and_dump(lines: Sequence[bytes]) -> Callable[[], tuple[int, int, int]]:
    def run() -> tuple[int, int, int]:
        for line in lines:
            orjson.dumps(orjson.loads(line))
        return len(lines), 0, 0

    return run


def main() -> None:
    """Run the benchmark and print a table (and one JSON object last with --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--persons", type=int, default=2_000, help="population size (default 2,000)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per figure (best is kept)")
    ap.add_argument("--quick", action="store_true", help="300 persons, 2 rounds: a few seconds")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON, last")
    args = ap.parse_args()
    persons, rounds = (300, 2) if args.quick else (args.persons, args.rounds)
    min_records = 400 if args.quick else MIN_RECORDS

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), persons=persons, seed=2026, as_of=date(2026, 11, 1))
        loads = read(Path(tmp))
    mappings = Mappings.load()

    # The typical record the target names: an assessment that makes 2-3 resources.
    typical = [
        r
        for r in loads["asc/assessment"].records
        if 1 <= len(r.fields.get("eligible_outcomes") or []) <= 2
    ]
    everything = [r for w in loads.values() for r in w.records]
    runs: list[tuple[str, Callable[[], tuple[int, int, int]]]] = [
        (name, map_all(mappings, w.records, min_records)) for name, w in loads.items()
    ]
    runs.append(("assessment making 2-3 resources", map_all(mappings, typical, min_records)))
    runs.append(("all three kinds", map_all(mappings, everything, min_records)))
    figures = [Figure(name, *reversed_counts(best_of(rounds, run))) for name, run in runs]
    all_lines = [line for w in loads.values() for line in w.lines]
    baseline_s, baseline_n, _, _ = best_of(rounds, parse_and_dump(all_lines))
    baseline = baseline_n / baseline_s

    typical_fig = next(f for f in figures if f.name.startswith("assessment making"))
    overall = figures[-1]
    print(f"mapping: source record -> validated FHIR R4 resources; {persons:,} persons,")
    print(f"one core, validation on, best of {rounds} rounds (records counted per pass)")
    print(
        f"  {'workload':<34} {'records':>8} {'resources':>10} {'failed':>7}"
        f" {'records/s':>10} {'resources/s':>12}"
    )
    for f in figures:
        print(
            f"  {f.name:<34} {f.records:>8,} {f.resources:>10,} {f.failed:>7,}"
            f" {f.records_per_s:>10,.0f} {f.resources_per_s:>12,.0f}"
        )
    label = "baseline: orjson parse + dump"
    print(f"  {label:<34} {baseline_n:>8,} {'':>10} {'':>7} {baseline:>10,.0f}")
    ratio = baseline / overall.records_per_s
    print(f"  engine is {ratio:,.0f}x slower than parse + dump (all three kinds)")
    met = typical_fig.records_per_s >= TARGET
    print(
        f"  target: >= {TARGET:,} records/s for a record making 2-3 resources:"
        f" {typical_fig.records_per_s:,.0f} records/s - {'met' if met else 'NOT met'}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "mapping",
                    "persons": persons,
                    "rounds": rounds,
                    "workloads": {
                        f.name: {
                            "records": f.records,
                            "resources": f.resources,
                            "failed": f.failed,
                            "records_per_s": round(f.records_per_s),
                            "resources_per_s": round(f.resources_per_s),
                        }
                        for f in figures
                    },
                    "baseline_records_per_s": round(baseline),
                    "engine_records_per_s": round(overall.records_per_s),
                    "baseline_to_engine_ratio": round(ratio, 1),
                    "typical_records_per_s": round(typical_fig.records_per_s),
                    "target_records_per_s": TARGET,
                    "target_met": met,
                }
            )
        )


def reversed_counts(timed: tuple[float, int, int, int]) -> tuple[int, int, int, float]:
    """Reorder (seconds, records, resources, failed) as Figure's fields after the name."""
    seconds, records, resources, failed = timed
    return records, resources, failed, seconds


if __name__ == "__main__":
    main()
