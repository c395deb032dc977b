"""Load the synthetic sample for `carebridge demo` through the real adapters, and say what
to try.

The social care exports and community health extracts go through `ingest` (adapters,
mapping specs, store); the HL7 ADT messages go through the MLLP listener's own handler, one
message at a time, exactly as if a sender had delivered them. Nothing here maps a field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

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
from bridge.store.resources import ResourceRepository
from bridge.store.sync import OutboxRepository
from bridge.sync.outbox import alert_hook_from_settings


@dataclass(frozen=True)
class DemoPerson:
    """A person of the sample and the worker allocated to them (ids only)."""

    person_id: str
    worker: str
    team: str
    family_name: str


@dataclass
class LoadResult:
    """What the demo loaded, per source."""

    summaries: dict[str, IngestSummary] = field(default_factory=dict)
    acks: dict[str, int] = field(default_factory=dict)
    patients: list[str] = field(default_factory=list)
    skipped_kinds: set[str] = field(default_factory=set)
    # A person to show with consent and one without, each with their allocated worker.
    examples: dict[str, DemoPerson] = field(default_factory=dict)
    # Alerts queued for the social care teams (admissions, discharges, referrals).
    alerts: int = 0

    def as_text(self) -> str:
        """Summarise the load in a few lines per source."""
        lines: list[str] = []
        for name, summary in self.summaries.items():
            lines.append(f"{name}:")
            lines += [f"  {line}" for line in summary.as_text().splitlines()]
        if self.acks:
            acks = ", ".join(f"{code} {n}" for code, n in sorted(self.acks.items()))
            lines.append(f"  HL7 acknowledgements sent: {acks}")
        if self.alerts:
            lines.append(
                f"alerts queued for the allocated social care teams: {self.alerts}"
                " (GET /admin/outbox; `carebridge worker` delivers them)"
            )
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
    # Admissions, expected discharges and new referrals queue alerts for the allocated
    # social care team (GET /admin/outbox), as the MLLP listener does.
    ingestor.after_apply = alert_hook_from_settings(settings, ingestor, clock)
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
    result.examples = _examples(sample, factory, ingestor)
    with factory() as session:
        result.alerts = len(
            OutboxRepository(session, crypto=ingestor.crypto, clock=clock).rows(limit=100_000)
        )
    return result


def _rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows  # a sample without that export
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # the sample's deliberately broken lines
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _examples(
    sample: Path, factory: sessionmaker[Session], ingestor: Ingestor
) -> dict[str, DemoPerson]:
    """Pick, from the sample's own files, a person whose consent lets their allocated
    worker see community health records, and one with no recorded consent (ids only)."""
    asc = sample / "asc"
    names = {r["person_id"]: r.get("family_name") or "" for r in _rows(asc / "persons.jsonl")}
    open_allocations = [
        r for r in _rows(asc / "allocations.jsonl") if not r.get("end_date") and r.get("team_id")
    ]
    consents: dict[str, list[dict[str, Any]]] = {}
    for r in _rows(asc / "consents.jsonl"):
        consents.setdefault(r["person_id"], []).append(r)
    today = ingestor.clock.now().date().isoformat()
    system = ingestor.mappings.config.get("asc_person_system", "")
    found: dict[str, DemoPerson] = {}
    with factory() as session:
        repo = ResourceRepository(session, crypto=ingestor.crypto, clock=ingestor.clock)
        for alloc in sorted(open_allocations, key=lambda r: r["allocation_id"]):
            decisions = sorted(
                consents.get(alloc["person_id"], []), key=lambda r: r["decision_date"]
            )
            latest = decisions[-1] if decisions else None
            if latest is None:
                kind = "withheld"
            elif latest["decision"] == "agreed" and (latest.get("valid_until") or "9") > today:
                kind = "consented"
            else:
                continue
            if kind in found:
                continue
            patients = repo.find_by_identifier(system, alloc["person_id"], resource_type="Patient")
            person_id = patients[0].person_id if patients else None
            if person_id is None:
                continue
            records = repo.find_by_person(person_id)
            if not any(
                r.source and r.source.system == "chs" and r.resource_type != "Patient"
                for r in records
            ):
                continue  # nothing from community health to show or withhold
            found[kind] = DemoPerson(
                person_id, alloc["worker_id"], alloc["team_id"], names.get(alloc["person_id"], "")
            )
    return found


def settings_org(settings: Settings) -> str:
    """Return the council's organisation code from the mapping config (the demo's org)."""
    return str(Mappings.load(settings.mappings_dir).config.get("asc_organisation_code", ""))


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
    council = settings_org(settings)
    person_lines: list[str] = []
    for kind, words in (
        ("consented", "consent recorded: community health items shown, each with why"),
        ("withheld", "no consent recorded: health items withheld, with the reasons"),
    ):
        ex = result.examples.get(kind)
        if ex is None:
            continue
        tok = mint_dev_token(
            settings,
            user=ex.worker,
            roles=["social_worker"],
            team=ex.team,
            org=council,
            name=f"Demo social worker {ex.worker}",
        )
        var = f"SW_{kind.upper()}"
        person_lines += [
            f"  # {ex.worker} of team {ex.team} supports this person; {words}",
            f"  export {var}='{tok}'",
            f'  curl -s -H "Authorization: Bearer ${var}" "{base}/persons?q={ex.family_name}"',
            f'  curl -s -H "Authorization: Bearer ${var}" {base}/persons/{ex.person_id}/view',
            "",
        ]
    if len(result.examples) == 2:
        a, b = result.examples["consented"], result.examples["withheld"]
        if a.team != b.team:
            person_lines += [
                "  # a worker with no care relationship gets 403 with the reason:",
                f'  curl -s -H "Authorization: Bearer $SW_CONSENTED" {base}/persons/'
                f"{b.person_id}/view",
                "",
            ]
    persons = "\n".join(person_lines)
    return f"""
carebridge demo is starting on {base}  (Ctrl-C stops it)

Try:
  curl -s {base}/health
  curl -si {base}/fhir/Patient/{pid}    # 401 without a token

  export NURSE='{nurse}'
  curl -s -H "Authorization: Bearer $NURSE" {base}/fhir/Patient/{pid}
  curl -s -H "Authorization: Bearer $NURSE" {base}/fhir/Patient/{pid}/_history
  curl -s -H "Authorization: Bearer $NURSE" {base}/fhir/metadata

The unified person view (docs/person-view.md):
{persons}
  export SW='{social}'
  curl -s -H "Authorization: Bearer $SW" {base}/fhir/Patient/{pid}    # 403: social workers
                                                   # see health data only through /persons

  Web pages:      {base}/web   (sign in as a demo user: W81442 Sarah Hill, social worker,
                  team T02, e.g. search "Baker"; IG0001 Imran Gill, IG officer: audit log and
                  emergency access reviews; ENG0001 Erin Ng, integration engineer)
  API pages:      {base}/docs
  More tokens:    .venv/bin/carebridge token --user me --role ig_officer
  Dead letters:   .venv/bin/carebridge dead-letters list     (the sample's deliberate bad rows)
  Audit log:      .venv/bin/carebridge audit verify
"""
