"""Load the synthetic sample for `carebridge demo` through the real adapters, and say what
to try.

The social care exports and community health extracts go through `ingest` (adapters,
mapping specs, store); the HL7 ADT messages go through the MLLP listener's own handler, one
message at a time, exactly as if a sender had delivered them. Nothing here maps a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from adapters.asc import AscAdapter
from adapters.base import AdapterError, SourceRecord
from adapters.chs import EXTRACTS, ChsAdapter, read_batch, split_message
from bridge.core.clock import SystemClock
from bridge.core.errors import ValidationError
from bridge.core.settings import Settings
from bridge.ingest.mllp import MllpIngest
from bridge.ingest.service import Ingestor, IngestOutcome, IngestSummary, ingest_stream
from bridge.mapping import Mappings
from bridge.store.db import make_session_factory


@dataclass
class LoadResult:
    """What the demo loaded, per source."""

    summaries: dict[str, IngestSummary] = field(default_factory=dict)
    acks: dict[str, int] = field(default_factory=dict)
    patients: list[str] = field(default_factory=list)
    skipped_kinds: set[str] = field(default_factory=set)

    def as_text(self) -> str:
        """Summarise the load in a few lines per source."""
        lines: list[str] = []
        for name, summary in self.summaries.items():
            lines.append(f"{name}:")
            lines += [f"  {line}" for line in summary.as_text().splitlines()]
        if self.acks:
            acks = ", ".join(f"{code} {n}" for code, n in sorted(self.acks.items()))
            lines.append(f"  HL7 acknowledgements sent: {acks}")
        if self.skipped_kinds:
            lines.append(
                "not loaded (no mapping spec yet): " + ", ".join(sorted(self.skipped_kinds))
            )
        return "\n".join(lines)


def _with_specs(
    items: list[SourceRecord | AdapterError] | object, mappings: Mappings, skipped: set[str]
):  # type: ignore[no-untyped-def]
    for item in items:  # type: ignore[attr-defined]
        if isinstance(item, SourceRecord) and (item.system, item.kind) not in mappings.specs:
            skipped.add(f"{item.system}/{item.kind}")
            continue
        yield item


def load_sample(settings: Settings, engine: Engine, sample: Path) -> LoadResult:
    """Load the sample through the adapters, the mapping specs and the MLLP handler."""
    if not (sample / "asc").is_dir() or not (sample / "chs").is_dir():
        raise ValidationError(
            f"{sample} is not a generated sample (needs asc/ and chs/): run"
            " `carebridge examples generate --out DIR` first",
            field="sample",
        )
    clock = SystemClock()
    ingestor = Ingestor.from_settings(settings, clock)
    mappings = ingestor.mappings
    factory = make_session_factory(engine)
    result = LoadResult()

    def note_patient(outcome: IngestOutcome) -> None:
        result.patients += [
            r.split("/", 1)[1] for r in outcome.resources if r.startswith("Patient/")
        ][:1]

    # Social care first: the people; then the HL7 feed; then the community extracts.
    result.summaries["adult social care exports"] = ingest_stream(
        factory,
        _with_specs(AscAdapter([sample / "asc"]).read(), mappings, result.skipped_kinds),
        ingestor=ingestor,
        system="asc",
        channel="file",
        on_item=note_patient,
    )
    mllp = MllpIngest(factory=factory, ingestor=ingestor, clock=clock)
    hl7 = IngestSummary()
    for path in sorted((sample / "chs" / "adt").glob("*.hl7")):
        for item in read_batch(path):
            ack = mllp.process(item.raw)
            code = split_message(ack)["MSA"]["1"][0]["1"] if ack else "none"
            result.acks[code] = result.acks.get(code, 0) + 1
            hl7.counts["applied" if code in ("AA", "CA") else "dead_lettered"] += 1
    result.summaries["community health HL7 ADT (through the MLLP handler)"] = hl7
    extracts = [sample / "chs" / "extracts" / f"{name}.jsonl" for name in EXTRACTS]
    result.summaries["community health extracts"] = ingest_stream(
        factory,
        _with_specs(
            ChsAdapter([p for p in extracts if p.exists()]).read(), mappings, result.skipped_kinds
        ),
        ingestor=ingestor,
        system="chs",
        channel="file",
    )
    return result


def try_these(settings: Settings, result: LoadResult, *, host: str, port: int) -> str:
    """Return the commands a newcomer should try against the running demo."""
    from bridge.auth.tokens import mint_dev_token

    base = f"http://{host}:{port}"
    nurse = mint_dev_token(
        settings,
        user="demo.nurse",
        roles=["health_professional"],
        org="RXX",
        team="district-nursing",
        name="Demo District Nurse",
    )
    social = mint_dev_token(
        settings,
        user="demo.social-worker",
        roles=["social_worker"],
        team="north-locality",
        name="Demo Social Worker",
    )
    pid = result.patients[0] if result.patients else "<id>"
    return f"""
carebridge demo is starting on {base}  (Ctrl-C stops it)

Try:
  curl -s {base}/health
  curl -si {base}/fhir/Patient/{pid}    # 401 without a token

  export NURSE='{nurse}'
  curl -s -H "Authorization: Bearer $NURSE" {base}/fhir/Patient/{pid}
  curl -s -H "Authorization: Bearer $NURSE" {base}/fhir/Patient/{pid}/_history
  curl -s -H "Authorization: Bearer $NURSE" {base}/fhir/metadata

  export SW='{social}'
  curl -s -H "Authorization: Bearer $SW" {base}/fhir/Patient/{pid}    # 403 until the consent gate

  API pages:      {base}/docs
  More tokens:    .venv/bin/carebridge token --user me --role ig_officer
  Dead letters:   .venv/bin/carebridge dead-letters list     (the sample's deliberate bad rows)
  Audit log:      .venv/bin/carebridge audit verify
"""
