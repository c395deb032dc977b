"""Benchmark: quality of identity linking on synthetic data that knows who is who.

Generates a population with ``bridge.synth`` (default 2,000 persons; ``--quick`` 300),
ingests the social care person export and the community health ADT stream (A28/A31
registrations and updates, A40 merges, visits) through the shipped mapping specs into a
fresh SQLite database, and links every stored Patient as ingest will
(``identity_service.link_patient`` after each Patient, ``attach_resource`` after every other
resource). Then it compares the Persons with ``truth.jsonl``:

* precision: of the pairs of Patient records put in one Person, the share that truly are
  one human; recall: of the pairs that truly are one human, the share put in one Person.
  Targets: precision >= 0.999, recall >= 0.98;
* the same figures for the pairs without a shared valid NHS number (the demographic
  matching proper), the review queue (open pairs, how many truly match) and links by rule.

    python bench/bench_identity.py [--persons N] [--seed S] [--quick] [--json]
        [--order asc-first|chs-first] [--auto T] [--review T]

``--json`` prints one JSON object of the figures as the last line of stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.asc import AscAdapter
from adapters.base import AdapterError, SourceRecord
from adapters.chs import ChsAdapter
from bridge.audit.service import AuditLog
from bridge.core.clock import FixedClock
from bridge.core.crypto import Hasher, KeyRing
from bridge.identity import service as identity_service
from bridge.identity.scoring import Thresholds
from bridge.ingest.service import Ingestor
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_engine, make_session_factory
from bridge.store.identity import IdentityRepository
from bridge.store.migrate import upgrade
from bridge.store.models import IdentityLink, MatchCandidate, ResourceCurrent
from bridge.store.resources import ResourceRepository
from bridge.synth import generate

TARGET_PRECISION = 0.999
TARGET_RECALL = 0.98
ADT_KINDS = ("adt_a28", "adt_a31", "adt_a40")
Pair = tuple[str, str]


@dataclass
class Truth:
    """Which source record belongs to which true person, and their NHS numbers."""

    person_of: dict[str, str]  # "chs:MRN" / "asc:ID" -> person key
    nhs_of: dict[str, str | None]  # person key -> true NHS number


def load_truth(path: Path) -> Truth:
    """Read truth.jsonl."""
    person_of: dict[str, str] = {}
    nhs_of: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        key = row["person_key"]
        nhs_of[key] = row["nhs_number"]
        if row["chs_patient_id"]:
            person_of[f"chs:{row['chs_patient_id']}"] = key
        for mrn in row["chs_merged_patient_ids"]:
            person_of[f"chs:{mrn}"] = key
        if row["asc_person_id"]:
            person_of[f"asc:{row['asc_person_id']}"] = key
    return Truth(person_of, nhs_of)


def records(out: Path, order: str, with_visits: bool) -> Iterator[SourceRecord | AdapterError]:
    """Yield the ASC persons and the CHS ADT stream in the chosen order."""
    asc = AscAdapter(out / "asc" / "persons.jsonl").read()
    chs = (
        r
        for r in ChsAdapter(out / "chs" / "adt").read()
        if with_visits or isinstance(r, AdapterError) or r.kind in ADT_KINDS
    )
    yield from itertools.chain(asc, chs) if order == "asc-first" else itertools.chain(chs, asc)


def pairs(groups: Iterable[Iterable[str]]) -> set[Pair]:
    """Return every unordered pair within each group."""
    found: set[Pair] = set()
    for group in groups:
        members = sorted(set(group))
        found.update(itertools.combinations(members, 2))
    return found


def ratio(num: int, den: int) -> float:
    """Return num/den, or 1.0 when there is nothing to measure."""
    return num / den if den else 1.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate, ingest, link and measure; return the figures."""
    persons = args.persons or (300 if args.quick else 2_000)
    thresholds = Thresholds(auto=args.auto, review=args.review)
    with tempfile.TemporaryDirectory(prefix="bench-identity-") as tmp:
        out = Path(tmp) / "synth"
        generate(out, persons=persons, seed=args.seed, as_of=date(2026, 11, 1))
        truth = load_truth(out / "truth.jsonl")
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        crypto = StoreCrypto(KeyRing.generate(development=True), Hasher(os.urandom(32)))
        clock = FixedClock(datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
        audit = AuditLog(Hasher(os.urandom(32)), clock)
        mappings = Mappings.load(strict=False)
        missing = [k for k in ADT_KINDS if ("chs", k) not in mappings.specs]
        if missing or ("asc", "person") not in mappings.specs:
            raise SystemExit(f"the shipped mapping specs lack {missing or ['asc/person']}")
        ingestor = Ingestor(mappings=mappings, crypto=crypto, clock=clock)
        factory = make_session_factory(engine)
        statuses: Counter[str] = Counter()
        actions: Counter[str] = Counter()
        started = time.perf_counter()
        linked = 0
        session = factory()
        session.begin()
        for n, item in enumerate(records(out, args.order, args.visits), 1):
            clock.advance(seconds=1)
            if isinstance(item, AdapterError):
                statuses["unreadable"] += 1
                continue
            outcome = ingestor.apply(session, item, channel="file")
            statuses[outcome.status] += 1
            if outcome.status == "applied":
                linked += _link(
                    session, outcome.resources, crypto, clock, audit, thresholds, actions
                )
            if n % 500 == 0:
                session.commit()
                session.begin()
        session.commit()
        elapsed = time.perf_counter() - started
        figures = measure(session, truth, crypto)
        session.close()
        engine.dispose()
    figures.update(
        persons=persons,
        seed=args.seed,
        order=args.order,
        thresholds={"auto": thresholds.auto, "review": thresholds.review},
        ingest=dict(statuses),
        link_actions=dict(actions),
        patients_linked_per_s=round(linked / elapsed, 1) if elapsed else None,
        seconds=round(elapsed, 2),
    )
    return figures


def _link(
    session: Session,
    refs: Iterable[str],
    crypto: StoreCrypto,
    clock: FixedClock,
    audit: AuditLog,
    thresholds: Thresholds,
    actions: Counter[str],
) -> int:
    """Do what ingest will do after storing a record's resources."""
    repo = ResourceRepository(session, crypto=crypto, clock=clock)
    done = 0
    for ref in refs:
        rtype, rid = ref.split("/", 1)
        stored = repo.read(rtype, rid)
        if rtype == "Patient":
            outcome = identity_service.link_patient(
                session,
                patient=stored,
                crypto=crypto,
                clock=clock,
                audit=audit,
                thresholds=thresholds,
            )
            actions[f"{outcome.action}:{outcome.rule}"] += 1
            done += 1
        else:
            identity_service.attach_resource(session, resource=stored, crypto=crypto, clock=clock)
    return done


def measure(session: Session, truth: Truth, crypto: StoreCrypto) -> dict[str, Any]:
    """Compare the Persons with the truth."""
    rows = session.execute(
        select(ResourceCurrent.id, ResourceCurrent.source_system, ResourceCurrent.source_id).where(
            ResourceCurrent.resource_type == "Patient", ResourceCurrent.deleted.is_(False)
        )
    ).all()
    record_of = {rid: f"{system}:{sid}" for rid, system, sid in rows}
    true_groups: defaultdict[str, list[str]] = defaultdict(list)
    for rid, rec in record_of.items():
        true_groups[truth.person_of.get(rec, f"unknown:{rec}")].append(rid)
    true_pairs = pairs(true_groups.values())

    links = session.execute(
        select(IdentityLink.patient_id, IdentityLink.person_id, IdentityLink.rule).where(
            IdentityLink.ended_at.is_(None)
        )
    ).all()
    linked_groups: defaultdict[str, list[str]] = defaultdict(list)
    rules: Counter[str] = Counter()
    for patient_id, person_id, rule in links:
        linked_groups[person_id].append(patient_id)
        rules[rule] += 1
    linked_pairs = pairs(linked_groups.values())

    # Pairs whose records both carry the same valid NHS number are the easy half; the rest
    # is what demographic scoring (and merges) must find.
    repo = ResourceRepository(session, crypto=crypto, clock=FixedClock(datetime.now(UTC)))
    nhs: dict[str, str | None] = {}
    for rid in record_of:
        content = repo.read("Patient", rid).content or {}
        nhs[rid] = next(
            (
                i["value"]
                for i in content.get("identifier") or []
                if i.get("system") == "https://fhir.nhs.uk/Id/nhs-number"
            ),
            None,
        )

    def hard(pair: Pair) -> bool:
        a, b = pair
        return not (nhs[a] and nhs[a] == nhs[b])

    tp = len(true_pairs & linked_pairs)
    hard_true = {p for p in true_pairs if hard(p)}
    hard_linked = {p for p in linked_pairs if hard(p)}
    hard_tp = len(hard_true & hard_linked)

    ids = IdentityRepository(session, crypto=crypto)
    open_pairs = [
        tuple(sorted((r.patient_a, r.patient_b)))
        for r in session.scalars(select(MatchCandidate).where(MatchCandidate.status == "open"))
    ]
    review_true = sum(1 for p in open_pairs if p in true_pairs)
    return {
        "patients": len(record_of),
        "persons_true": len(true_groups),
        "persons_linked": len(linked_groups),
        "true_pairs": len(true_pairs),
        "linked_pairs": len(linked_pairs),
        "correct_pairs": tp,
        "precision": round(ratio(tp, len(linked_pairs)), 6),
        "recall": round(ratio(tp, len(true_pairs)), 6),
        "without_shared_nhs_number": {
            "true_pairs": len(hard_true),
            "linked_pairs": len(hard_linked),
            "correct_pairs": hard_tp,
            "precision": round(ratio(hard_tp, len(hard_linked)), 6),
            "recall": round(ratio(hard_tp, len(hard_true)), 6),
        },
        "links_by_rule": dict(rules),
        "review_queue": {
            "open": ids.count_candidates("open"),
            "truly_same_person": review_true,
            "recall_if_reviewers_accept_true_pairs": round(
                ratio(tp + review_true, len(true_pairs)), 6
            ),
        },
        "false_links": sorted(linked_pairs - true_pairs)[:5],
        "missed": len(true_pairs - linked_pairs),
    }


def table(f: dict[str, Any]) -> str:
    """Render the figures for people."""
    hard = f["without_shared_nhs_number"]
    queue = f["review_queue"]
    ok_p = "ok" if f["precision"] >= TARGET_PRECISION else "BELOW TARGET"
    ok_r = "ok" if f["recall"] >= TARGET_RECALL else "BELOW TARGET"
    by_rule = ", ".join(f"{k} {v}" for k, v in sorted(f["links_by_rule"].items()))
    ingest = ", ".join(f"{k} {v}" for k, v in sorted(f["ingest"].items()))
    lines = [
        f"identity linking: {f['persons']} persons (seed {f['seed']}, {f['order']}),"
        f" thresholds auto {f['thresholds']['auto']} / review {f['thresholds']['review']}",
        f"  Patient records          {f['patients']:>8}   true persons {f['persons_true']},"
        f" Persons made {f['persons_linked']}",
        f"  pairs truly one person   {f['true_pairs']:>8}",
        f"  pairs linked             {f['linked_pairs']:>8}   correct {f['correct_pairs']}",
        f"  precision                {f['precision']:>8.4f}   target >= {TARGET_PRECISION}  {ok_p}",
        f"  recall                   {f['recall']:>8.4f}   target >= {TARGET_RECALL}  {ok_r}",
        f"  without a shared NHS no. {hard['true_pairs']:>8} true pairs,"
        f" {hard['linked_pairs']} linked, precision {hard['precision']:.4f},"
        f" recall {hard['recall']:.4f}",
        f"  links by rule            {by_rule}",
        f"  review queue             {queue['open']:>8} open, {queue['truly_same_person']} truly"
        f" one person (recall if accepted {queue['recall_if_reviewers_accept_true_pairs']:.4f})",
        f"  ingest                   {ingest}",
        f"  linking                  {f['patients_linked_per_s']} Patients linked/s"
        f" (ingest included), {f['seconds']} s",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and print a table (and, with --json, one JSON line)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--persons", type=int, default=None, help="persons (default 2,000)")
    ap.add_argument("--quick", action="store_true", help="300 persons")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--order", choices=("asc-first", "chs-first"), default="asc-first")
    ap.add_argument("--visits", action="store_true", help="ingest visit messages too (slower)")
    defaults = Thresholds()
    ap.add_argument("--auto", type=float, default=defaults.auto, help="auto-link threshold")
    ap.add_argument("--review", type=float, default=defaults.review, help="review threshold")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = ap.parse_args()
    figures = run(args)
    print(table(figures))
    if args.json:
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
