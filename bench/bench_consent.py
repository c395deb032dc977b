"""Benchmark the consent engine: resource decisions per second for one person view.

The person has 10 recorded consents (agreements with nested exclusions, a withdrawal, a
later partial objection, inactive ones) and 500 candidate records from both systems. The
figures are single-threaded, so per core:

- ``person view``: one request, ``evaluate`` + ``decide_all`` over the 500 records (the
  per-request work is included); records alike (type, source, labels) share a decision;
- ``all records distinct``: the same, but every record made unlike the others (its own
  resource category), so nothing is shared: the engine's worst case;
- ``view incl. reading consents``: also reads the 10 FHIR Consents (``read_consents``,
  with fhir.resources validation) every request, as a gate without a cache would;
- baselines over the same inputs, measured in the same run: ``allow-all`` (a loop that
  builds a permit decision per record, the floor any per-record engine pays) and the
  independent reference model from the tests (written for clarity, not speed).

Usage: ``python bench/bench_consent.py [--quick] [--json] [--policy direct-care-implied]``.
``--json`` prints one JSON object of figures as the last line of stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consent import (  # noqa: E402
    ConsentEngine,
    Decision,
    Effect,
    PersonContext,
    Reason,
    read_consents,
)
from tests.consent.reference_model import expected_decisions  # noqa: E402
from tests.consent.worlds import (  # noqa: E402
    AT0,
    LABELS,
    RandomChooser,
    World,
    consent_to_fhir,
    preset,
    to_engine,
)

RESOURCES = 500
CONSENTS = 10
TARGET = 50_000
TYPES = (
    ("Encounter", 30),
    ("Observation", 20),
    ("Condition", 15),
    ("ServiceRequest", 10),
    ("CarePlan", 8),
    ("Flag", 5),
    ("EpisodeOfCare", 5),
    ("RelatedPerson", 4),
    ("Patient", 3),
)


def _prov(type_: str, **conds: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": type_,
        "start": None,
        "end": None,
        "actors": [],
        "purposes": [],
        "actions": [],
        "classes": [],
        "labels": [],
        "data": [],
        "children": [],
    }
    base.update(conds)
    return base


def build_world(policy_name: str, *, distinct: bool) -> World:
    """Return the benchmark's person: 10 consents, 500 records, an allocated worker."""
    ch = RandomChooser(2026)
    at = AT0
    recipient: dict[str, Any] = {"kind": "recipient", "org": "L1", "team": None, "roles": []}
    trust: dict[str, Any] = {"kind": "custodian", "org": "RXX", "team": None, "roles": []}
    psy, eth = LABELS[0], LABELS[2]
    roots = [
        # Agreed, everything except mental health and substance misuse, for a year.
        _prov(
            "permit",
            start=at - timedelta(days=400),
            end=at - timedelta(days=35),
            actors=[recipient],
            purposes=["TREAT"],
            children=[_prov("deny", labels=[psy]), _prov("deny", labels=[eth])],
        ),
        # Withdrawn, then agreed again with the trust's records only.
        _prov("deny", actors=[recipient]),
        _prov(
            "permit",
            start=at - timedelta(days=30),
            end=at + timedelta(days=335),
            actors=[recipient, trust],
            purposes=["TREAT"],
            children=[
                _prov("deny", labels=[psy], children=[_prov("permit", classes=["CarePlan"])]),
                _prov("deny", classes=["Observation"], labels=[eth]),
            ],
        ),
        # A later partial objection: no referrals shared.
        _prov("deny", actors=[recipient], classes=["ServiceRequest"]),
        # Consents for other organisations and purposes (never apply here).
        _prov("permit", actors=[{**recipient, "org": "L2"}], purposes=["TREAT"]),
        _prov("permit", actors=[recipient], purposes=["HRESCH"]),
        _prov("deny", actors=[{**recipient, "team": "T9", "org": None}]),
        _prov("permit", actors=[recipient], labels=[LABELS[3]]),
        _prov("permit", actors=[recipient]),
        _prov("deny", actors=[recipient]),
    ]
    days = (400, 200, 30, 10, 300, 250, 90, 60, 500, 450)
    statuses = ["active"] * 8 + ["inactive", "inactive"]
    consents = [
        {
            "id": f"CNS{i:08d}",
            "version": "1",
            "status": statuses[i],
            "scope": "patient-privacy",
            "recorded": at - timedelta(days=days[i]),
            "recorded_by": "Sam Patel",
            "unreadable": False,
            "root": root,
        }
        for i, root in enumerate(roots[:CONSENTS])
    ]
    weighted = [t for t, w in TYPES for _ in range(w)]
    candidates = []
    for i in range(RESOURCES):
        source = "chs" if ch.chance(70) else "asc"
        labels = [lb for lb in LABELS[:8] if ch.chance(2)]
        candidates.append(
            {
                "type": ch.choice(weighted),
                "id": f"r{i:05d}",
                "source": source,
                "labels": labels,
                "category": f"unique-{i}" if distinct else None,
            }
        )
    return World(
        policy=copy.deepcopy(preset(policy_name)),
        request={
            "user": "W1",
            "roles": {"social_worker"},
            "org": "L1",
            "team": "T02",
            "purpose": "TREAT",
            "at": at,
            "break_glass": None,
        },
        relationships=[
            {
                "kind": "allocated_worker",
                "user": "W1",
                "team": None,
                "start": at - timedelta(days=60),
                "end": None,
            }
        ],
        consents=consents,
        restricted_demographics=False,
        candidates=candidates,
        encodings=[{"root_type_by_policy_rule": False, "defect": ""} for _ in consents],
    )


def rate(fn: Callable[[], object], per_call: int, *, seconds: float, repeats: int) -> float:
    """Return the best rate (items/s) over ``repeats`` runs of about ``seconds`` each."""
    fn()  # warm up
    best = 0.0
    for _ in range(repeats):
        calls = 0
        started = time.perf_counter()
        elapsed = 0.0
        while elapsed < seconds:
            fn()
            calls += 1
            elapsed = time.perf_counter() - started
        best = max(best, calls * per_call / elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (and, with --json, one JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print a JSON line of figures last")
    parser.add_argument("--policy", default="explicit-consent", help="preset to run under")
    args = parser.parse_args(argv)
    seconds, repeats = (0.15, 2) if args.quick else (1.0, 5)

    view = build_world(args.policy, distinct=False)
    distinct = build_world(args.policy, distinct=True)
    policy, request, person, candidates = to_engine(view)
    _, _, _, distinct_candidates = to_engine(distinct)
    engine = ConsentEngine(policy)
    fhir = [consent_to_fhir(c, e) for c, e in zip(view.consents, view.encodings, strict=True)]

    # The figures mean nothing if the engine is wrong on these inputs.
    got = engine.evaluate(request, person).decide_all(candidates)
    want = expected_decisions(view)
    assert [(d.effect.value, d.rule, d.codes) for d in got] == [
        (w.effect, w.rule, w.codes) for w in want
    ], "engine and reference model disagree on the benchmark inputs"
    permits = sum(d.permitted for d in got)

    def person_view() -> list[Decision]:
        return engine.evaluate(request, person).decide_all(candidates)

    def all_distinct() -> list[Decision]:
        return engine.evaluate(request, person).decide_all(distinct_candidates)

    def with_reading() -> list[Decision]:
        read = PersonContext("p1", tuple(read_consents(fhir)), person.relationships)
        return engine.evaluate(request, read).decide_all(candidates)

    why = (Reason("allow-all", "Shown."),)

    def allow_all() -> list[Decision]:
        return [
            Decision(Effect.PERMIT, why, "allow-all", policy.name, categories=frozenset())
            for _c in candidates
        ]

    def reference() -> object:
        return expected_decisions(view)

    n = len(candidates)
    figures = {
        "person_view": rate(person_view, n, seconds=seconds, repeats=repeats),
        "all_distinct": rate(all_distinct, n, seconds=seconds, repeats=repeats),
        "with_reading_consents": rate(with_reading, n, seconds=seconds, repeats=repeats),
        "allow_all_baseline": rate(allow_all, n, seconds=seconds, repeats=repeats),
        "reference_model_baseline": rate(
            reference, n, seconds=seconds, repeats=max(1, repeats // 2)
        ),
    }
    base = figures["allow_all_baseline"]
    ref = figures["reference_model_baseline"]
    rows = [
        ("person view", figures["person_view"]),
        ("all records distinct", figures["all_distinct"]),
        ("view incl. reading consents", figures["with_reading_consents"]),
        ("baseline: allow-all loop", base),
        ("baseline: reference model", ref),
    ]
    print(
        f"consent engine: policy {policy.name}, {CONSENTS} consents, {n} records "
        f"({permits} released), Python {platform.python_version()}, one core"
        + (" [quick]" if args.quick else "")
    )
    print(f"{'scenario':<30} {'decisions/s':>13} {'us/decision':>12} {'vs allow-all':>13}")
    for name, value in rows:
        print(f"{name:<30} {value:>13,.0f} {1e6 / value:>12.2f} {value / base:>12.2f}x")
    worst = figures["all_distinct"]
    verdict = "meets" if worst >= TARGET else "MISSES"
    print(
        f"worst case {worst:,.0f}/s {verdict} the target of {TARGET:,}/s per core; "
        f"person view is {figures['person_view'] / ref:.1f}x the reference model"
    )
    if args.json:
        out: dict[str, Any] = {f"{k}_per_s": round(v) for k, v in figures.items()}
        out.update(
            {
                "policy": policy.name,
                "consents": CONSENTS,
                "resources": n,
                "ratio_person_view_vs_allow_all": round(figures["person_view"] / base, 3),
                "ratio_all_distinct_vs_allow_all": round(worst / base, 3),
                "ratio_person_view_vs_reference": round(figures["person_view"] / ref, 2),
                "target_per_s": TARGET,
                "meets_target": worst >= TARGET,
                "quick": args.quick,
            }
        )
        print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
