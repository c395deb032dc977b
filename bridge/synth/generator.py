"""Generate a deterministic synthetic population in both source systems' native formats."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bridge.synth.asc import emit_asc
from bridge.synth.chs import emit_chs
from bridge.synth.output import HL7_DIR, HL7_MESSAGES_PER_FILE, JSONL_FILES, InvalidRow, Sink
from bridge.synth.population import (
    Identifiers,
    Person,
    make_person,
    make_pools,
    system_copies,
)

GENERATOR = "carebridge.synth"
# Bump whenever the same (persons, seed, as_of) would give different bytes.
GENERATOR_VERSION = "1"
DEFAULT_AS_OF = date(2026, 11, 1)
MAX_PERSONS = 800_000  # the 999 NHS number test range holds about 909,000 valid numbers
MANIFEST = "manifest.json"
TRUTH = "truth.jsonl"


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    """What a run wrote: rows per file and the rows that are invalid on purpose."""

    out_dir: Path
    persons: int
    seed: int
    as_of: date
    counts: dict[str, int]
    invalid_rows: list[InvalidRow] = field(default_factory=list)

    @property
    def hl7_messages(self) -> int:
        """Return the number of ADT messages over all batch files."""
        return sum(n for rel, n in self.counts.items() if rel.startswith(HL7_DIR + "/"))

    def as_table(self) -> str:
        """Return a plain-text table of rows per file and invalid rows, for the CLI."""
        rows: list[tuple[str, str]] = []
        hl7_files = 0
        for rel in sorted(self.counts):
            if rel.startswith(HL7_DIR + "/"):
                hl7_files += 1
                continue
            rows.append((rel, f"{self.counts[rel]:,}"))
        rows.append((f"{HL7_DIR}/adt-*.hl7 ({hl7_files} files)", f"{self.hl7_messages:,}"))
        kinds = Counter(r.kind for r in self.invalid_rows)
        width = max(len(name) for name, _ in rows)
        lines = [
            f"carebridge synthetic data: {self.persons:,} persons, seed {self.seed}, "
            f"as of {self.as_of.isoformat()} -> {self.out_dir}",
            f"{'file':<{width}}  {'rows':>10}",
        ]
        lines += [f"{name:<{width}}  {n:>10}" for name, n in rows]
        detail = ", ".join(f"{k} {kinds[k]}" for k in sorted(kinds))
        lines.append(f"invalid on purpose: {len(self.invalid_rows)} rows ({detail or 'none'})")
        return "\n".join(lines)


def generate(
    out_dir: Path,
    *,
    persons: int,
    seed: int,
    as_of: date = DEFAULT_AS_OF,
) -> GenerationSummary:
    """Write a synthetic population of ``persons`` people into ``out_dir`` and a manifest.

    The same (persons, seed, as_of) always gives byte-identical files: nothing reads the
    clock or global random state. Files from an earlier run in ``out_dir`` are replaced;
    other files there are left alone.
    """
    if not 1 <= persons <= MAX_PERSONS:
        raise ValueError(f"persons must be between 1 and {MAX_PERSONS}, got {persons}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous(out_dir)

    master = random.Random(seed)
    ids = Identifiers(master)
    pools = make_pools(master)
    sink = Sink(out_dir, random.Random(master.getrandbits(64)))
    person_seed = master.getrandbits(64) * 1_000_003
    rng = random.Random()
    try:
        for i in range(persons):
            # Each person draws from their own seeded stream, so one person's randomness never
            # depends on how much another person used.
            rng.seed(person_seed + i)
            person = make_person(i, rng, ids, pools, as_of)
            chs_copy, asc_copy, notes = system_copies(person, rng)
            person.discrepancies = notes
            history = None
            if person.in_chs:
                history = emit_chs(person, chs_copy, rng, ids, pools, sink, as_of)
            if person.in_asc:
                emit_asc(person, asc_copy, rng, ids, pools, sink, as_of, history)
            sink.write(TRUTH, _truth(person))
    finally:
        sink.close()

    summary = GenerationSummary(
        out_dir=out_dir,
        persons=persons,
        seed=seed,
        as_of=as_of,
        counts=dict(sorted(sink.counts.items())),
        invalid_rows=sink.invalid,
    )
    _write_manifest(out_dir, summary)
    return summary


def _truth(person: Person) -> dict[str, Any]:
    """Return the ground-truth line for a person (what identity matching should find)."""
    known_nhs = person.in_chs or person.asc_has_nhs
    return {
        "person_key": person.key,
        "chs_patient_id": person.chs_patient_id,
        "asc_person_id": person.asc_person_id,
        "nhs_number": person.nhs_number if known_nhs else None,
        "chs_merged_patient_ids": person.chs_merged_ids,
        "discrepancies": person.discrepancies,
    }


def _remove_previous(out_dir: Path) -> None:
    """Delete the files an earlier run wrote (stale batch files would otherwise linger)."""
    for rel in (MANIFEST, *JSONL_FILES):
        (out_dir / rel).unlink(missing_ok=True)
    adt = out_dir / HL7_DIR
    if adt.is_dir():
        for path in adt.glob("adt-*.hl7"):
            path.unlink()


def _write_manifest(out_dir: Path, summary: GenerationSummary) -> None:
    manifest = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": summary.seed,
        "persons": summary.persons,
        "as_of": summary.as_of.isoformat(),
        "time_zone": "Europe/London",
        "hl7": {
            "version": "2.4",
            "messages_per_file": HL7_MESSAGES_PER_FILE,
            "segment_separator": "\r",
            "message_terminator": "\n",
        },
        "counts": summary.counts,
        "invalid_rows": [r.as_dict() for r in summary.invalid_rows],
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out_dir / MANIFEST).write_text(text, encoding="utf-8", newline="\n")
