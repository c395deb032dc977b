"""Load the synthetic sample for `carebridge demo` and say what to try.

Until the adapters and mapping specs arrive, the demo loads only the social care person
export, with a deliberately small person → Patient conversion kept here; rows it cannot
take go to the dead-letter store with the reason, as the adapters' will.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from bridge.core.clock import SystemClock
from bridge.core.errors import BridgeError, ValidationError
from bridge.core.nhs_number import NHS_NUMBER_SYSTEM, invalid_reason
from bridge.core.settings import Settings
from bridge.fhir.identifiers import ODS_ORGANIZATION_SYSTEM
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory, transaction
from bridge.store.inbound import DeadLetterRepository, InboundRepository
from bridge.store.resources import ResourceRepository, SourceRef

ASC_PERSON_SYSTEM = "https://carebridge.example.org/Id/asc-person"
_GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


@dataclass
class LoadResult:
    """What the demo loaded."""

    patients: list[str] = field(default_factory=list)
    unchanged: int = 0
    dead_letters: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        """Summarise the load in a few lines."""
        lines = [
            f"loaded {len(self.patients)} social care persons as FHIR Patients"
            f" ({self.unchanged} already up to date)"
        ]
        if self.dead_letters:
            lines.append(f"{len(self.dead_letters)} rows kept as dead letters:")
            lines += [f"  - {d}" for d in self.dead_letters]
        return "\n".join(lines)


def person_to_patient(row: dict[str, Any]) -> dict[str, Any]:
    """Build a Patient from one social care person row (interim, replaced by mapping specs)."""
    pid = row.get("person_id")
    if not isinstance(pid, str) or not pid:
        raise ValidationError("person_id is missing", field="person_id")
    identifiers = [{"system": ASC_PERSON_SYSTEM, "value": pid}]
    nhs = row.get("nhs_number")
    if nhs:
        reason = invalid_reason(str(nhs))
        if reason:
            raise ValidationError(f"nhs_number {reason}", field="nhs_number")
        identifiers.insert(0, {"system": NHS_NUMBER_SYSTEM, "value": str(nhs)})
    given = [row["given_name"]] if row.get("given_name") else []
    if row.get("middle_names"):
        given += str(row["middle_names"]).split()
    name: dict[str, Any] = {"use": "official", "family": row.get("family_name"), "given": given}
    if row.get("title"):
        name["prefix"] = [row["title"]]
    names = [{k: v for k, v in name.items() if v}]
    if row.get("preferred_name"):
        names.append({"use": "usual", "given": [row["preferred_name"]]})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": names,
        "gender": _GENDER.get(str(row.get("gender", "")).lower(), "unknown"),
        "birthDate": row.get("date_of_birth"),
    }
    # A sensitive (restricted) address is never copied out of the source system.
    if row.get("postcode") and not row.get("sensitive_address"):
        lines = [row[k] for k in ("address_line_1", "address_line_2") if row.get(k)]
        patient["address"] = [
            {"use": "home", "line": lines, "city": row.get("town"), "postalCode": row["postcode"]}
        ]
    telecom = [
        {"system": "phone", "value": row[k], "use": use}
        for k, use in (("phone", "home"), ("mobile", "mobile"))
        if row.get(k)
    ]
    if telecom:
        patient["telecom"] = telecom
    if row.get("gp_practice_code"):
        patient["generalPractitioner"] = [
            {
                "identifier": {"system": ODS_ORGANIZATION_SYSTEM, "value": row["gp_practice_code"]},
                "display": row.get("gp_practice_name"),
            }
        ]
    return {k: v for k, v in patient.items() if v is not None}


def load_sample(settings: Settings, engine: Engine, sample: Path) -> LoadResult:
    """Load the sample's social care persons; each row in its own transaction."""
    path = sample / "asc" / "persons.jsonl"
    if not path.is_file():
        raise ValidationError(f"{path} not found: generate a sample first", field="sample")
    crypto = StoreCrypto.from_settings(settings)
    clock = SystemClock()
    factory = make_session_factory(engine)
    result = LoadResult()
    with path.open("rb") as lines:
        for lineno, raw in enumerate(lines, start=1):
            raw = raw.rstrip(b"\n")
            if not raw.strip():
                continue
            try:
                with transaction(factory) as s:
                    row = _parse(raw)
                    InboundRepository(s, crypto=crypto, clock=clock).record(
                        source_system="asc",
                        channel="file",
                        dedupe_key=f"person:{row['person_id']}:{row.get('updated_at')}",
                        raw=raw,
                    )
                    put = ResourceRepository(s, crypto=crypto, clock=clock).put(
                        person_to_patient(row), source=SourceRef("asc", "person", row["person_id"])
                    )
                result.patients.append(put.stored.id)
                result.unchanged += 0 if put.changed else 1
            except BridgeError as exc:
                with transaction(factory) as s:
                    DeadLetterRepository(s, crypto=crypto, clock=clock).add(
                        source_system="asc",
                        channel="file",
                        source_kind="person",
                        raw=raw,
                        error=exc,
                    )
                result.dead_letters.append(f"persons.jsonl line {lineno}: {exc.detail}")
    return result


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        row = json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"not valid JSON ({exc.args[0]})", field="line") from None
    if not isinstance(row, dict):
        raise ValidationError("a person row must be a JSON object", field="line")
    if not isinstance(row.get("person_id"), str):
        raise ValidationError("person_id is missing", field="person_id")
    return row


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
  Dead letters:   rows the demo could not load are listed above, kept whole in the database
"""
