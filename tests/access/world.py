"""A small, hand-made world loaded through the real adapters, mapping specs and ingest.

Four people (NHS numbers from the 999 test range, valid check digits), each known to both
systems, and the workers of two teams:

- ``consented``: allocated to worker W1 of team T1 since 2025-12-01; agreed on 2026-01-08
  to share community health records with the council, except mental health. Community
  health holds a physical problem, a mental health problem (PSY), a sexual health
  problem (SEX, STD) and a falls alert.
- ``no_consent``: allocated to W1 and T1, no recorded consent; a physical problem.
- ``unrelated``: allocated to W9 of team T9 only (W1 has no care relationship); agreed
  to share; a physical problem.
- ``restricted``: allocated to W1; a sensitive address in social care (so the Patient is
  labelled restricted) while community health holds the address; agreed to share; an
  open safeguarding concern in social care (a Flag and an Observation, restricted).

Expected outcomes are written by hand in the tests from these facts, not from the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from adapters.asc import AscAdapter
from adapters.chs import ChsAdapter, read_batch
from bridge.core.clock import Clock
from bridge.core.nhs_number import NHS_NUMBER_SYSTEM
from bridge.core.settings import Settings
from bridge.ingest.service import Ingestor, ingest_stream
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory
from bridge.store.resources import ResourceRepository

COUNCIL = "E08000999"
TRUST = "RXX"

PEOPLE: dict[str, dict[str, Any]] = {
    "consented": {
        "asc": "ASC7000001",
        "chs": "CHS7000001",
        "nhs": "9990000018",
        "given": "Maud",
        "family": "Pilkington",
        "dob": "1938-05-02",
    },
    "no_consent": {
        "asc": "ASC7000002",
        "chs": "CHS7000002",
        "nhs": "9990000026",
        "given": "Reginald",
        "family": "Oddie",
        "dob": "1941-11-19",
    },
    "unrelated": {
        "asc": "ASC7000003",
        "chs": "CHS7000003",
        "nhs": "9990000034",
        "given": "Winifred",
        "family": "Castleton",
        "dob": "1935-07-30",
    },
    "restricted": {
        "asc": "ASC7000004",
        "chs": "CHS7000004",
        "nhs": "9990000042",
        "given": "Agatha",
        "family": "Threlfall",
        "dob": "1950-01-14",
    },
}
ADDRESS = {"line1": "7 Larch Close", "line2": "Roundhay", "town": "Leeds", "postcode": "LS8 2QT"}


def _asc_person(p: dict[str, Any], *, sensitive: bool = False) -> dict[str, Any]:
    return {
        "person_id": p["asc"],
        "nhs_number": p["nhs"],
        "title": None,
        "given_name": p["given"],
        "middle_names": None,
        "family_name": p["family"],
        "preferred_name": None,
        "date_of_birth": p["dob"],
        "gender": "Female",
        "address_line_1": ADDRESS["line1"],
        "address_line_2": ADDRESS["line2"],
        "town": ADDRESS["town"],
        "postcode": ADDRESS["postcode"],
        "sensitive_address": sensitive,
        "phone": None,
        "mobile": "07700 900111",
        "preferred_language": "en",
        "interpreter_required": False,
        "ethnicity_code": None,
        "accessibility_needs": [],
        "gp_practice_code": "Y12345",
        "gp_practice_name": "Larch Surgery",
        "client_type": "service_user",
        "primary_support_reason": "physical_support_personal_care",
        "accommodation_status": "owner_occupier",
        "has_unpaid_carer": False,
        "updated_at": "2025-11-01T09:00:00+00:00",
    }


def _allocation(n: int, p: dict[str, Any], worker: str, team: str) -> dict[str, Any]:
    return {
        "allocation_id": f"ALC7{n:07d}",
        "person_id": p["asc"],
        "worker_id": worker,
        "worker_name": f"Worker {worker}",
        "worker_role": "Social Worker",
        "team_id": team,
        "team_name": f"Team {team}",
        "start_date": "2025-12-01",
        "end_date": None,
        "updated_at": "2025-12-01T09:00:00+00:00",
    }


def _consent(n: int, p: dict[str, Any], excluded: list[str]) -> dict[str, Any]:
    return {
        "consent_id": f"CNS7{n:07d}",
        "person_id": p["asc"],
        "decision": "agreed",
        "purpose": "direct_care",
        "scope": "community_health",
        "excluded_categories": excluded,
        "decision_date": "2026-01-08",
        "valid_until": "2027-01-08",
        "capacity": "has_capacity",
        "recorded_by_worker_id": "W5",
        "recorded_by_name": "Nadia Pemberton",
        "supersedes_consent_id": None,
        "updated_at": "2026-01-08T11:20:00+00:00",
    }


def _problem(n: int, p: dict[str, Any], text: str, category: str) -> dict[str, Any]:
    return {
        "problem_id": f"PRB7{n:07d}",
        "patient_id": p["chs"],
        "local_code": "P002",
        "local_text": text,
        "snomed_code": "59621000",
        "category": category,
        "onset_date": "2016-09-03",
        "status": "active",
        "recorded_date": "2025-11-08",
        "updated_at": "2025-11-08T17:20:00+00:00",
    }


def _a28(n: int, p: dict[str, Any]) -> str:
    dob = p["dob"].replace("-", "")
    return "\r".join(
        [
            f"MSH|^~\\&|CHS|{TRUST}|CAREBRIDGE|CAREBRIDGE|20251101090000+0000||ADT^A28^ADT_A05"
            f"|7{n:09d}|P|2.4|||AL|NE|GBR|UNICODE UTF-8",
            "EVN|A28|20251101090000+0000",
            f"PID|1||{p['nhs']}^^^NHS^NH~{p['chs']}^^^{TRUST}^MR||{p['family']}^{p['given']}^^^Mrs"
            f"||{dob}|F|||{ADDRESS['line1']}^{ADDRESS['line2']}^{ADDRESS['town']}^^"
            f"{ADDRESS['postcode']}^^H||0113 496 0000^PRN^PH",
            "PV1|1|N",
        ]
    )


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_sources(root: Path) -> Path:
    """Write the world's source files in the systems' native formats; return ``root``."""
    c, nc, un, rs = (PEOPLE[k] for k in ("consented", "no_consent", "unrelated", "restricted"))
    asc = root / "asc"
    _jsonl(
        asc / "persons.jsonl",
        [_asc_person(c), _asc_person(nc), _asc_person(un), _asc_person(rs, sensitive=True)],
    )
    _jsonl(
        asc / "allocations.jsonl",
        [
            _allocation(1, c, "W1", "T1"),
            _allocation(2, nc, "W1", "T1"),
            _allocation(3, un, "W9", "T9"),
            _allocation(4, rs, "W1", "T1"),
        ],
    )
    _jsonl(
        asc / "consents.jsonl",
        [_consent(1, c, ["mental_health"]), _consent(2, un, []), _consent(3, rs, [])],
    )
    _jsonl(
        asc / "safeguarding.jsonl",
        [
            {
                "concern_id": "SGC70000001",
                "person_id": rs["asc"],
                "concern_date": "2026-10-02",
                "source": "provider",
                "category_code": "SG05",
                "category": "Psychological abuse",
                "location_of_risk": "own_home",
                "status": "section_42_enquiry",
                "outcome": None,
                "outcome_date": None,
                "person_views_sought": True,
                "updated_at": "2026-10-02T12:15:00+01:00",
            }
        ],
    )
    adt = root / "chs" / "adt"
    adt.mkdir(parents=True)
    (adt / "adt.hl7").write_text(
        "\r".join(_a28(i, p) for i, p in enumerate((c, nc, un, rs), start=1)) + "\r"
    )
    extracts = root / "chs" / "extracts"
    _jsonl(
        extracts / "problems.jsonl",
        [
            _problem(1, c, "Essential hypertension", "physical"),
            _problem(2, c, "Depressive episode", "mental_health"),
            _problem(3, c, "Chlamydia infection", "sexual_health"),
            _problem(4, nc, "Osteoarthritis of knee", "physical"),
            _problem(5, un, "Type 2 diabetes", "physical"),
            _problem(6, rs, "Asthma", "physical"),
        ],
    )
    _jsonl(
        extracts / "alerts.jsonl",
        [
            {
                "alert_id": "ALR70000001",
                "patient_id": c["chs"],
                "alert_code": "FALLS",
                "alert_text": "High risk of falls",
                "status": "active",
                "start_date": "2026-03-18",
                "end_date": None,
                "updated_at": "2026-03-18T18:45:00+00:00",
            }
        ],
    )
    return root


@dataclass(frozen=True)
class World:
    """Person ids by role in the world."""

    persons: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.persons[key]


def load(root: Path, settings: Settings, engine: Engine, clock: Clock) -> World:
    """Ingest the world through the adapters and return its person ids."""
    write_sources(root)
    ingestor = Ingestor.from_settings(settings, clock)
    factory = make_session_factory(engine)
    asc = ingest_stream(
        factory, AscAdapter([root / "asc"]).read(), ingestor=ingestor, system="asc", channel="file"
    )
    adt = ingest_stream(
        factory,
        read_batch(root / "chs" / "adt" / "adt.hl7"),
        ingestor=ingestor,
        system="chs",
        channel="file",
    )
    extracts = ingest_stream(
        factory,
        ChsAdapter(sorted((root / "chs" / "extracts").glob("*.jsonl"))).read(),
        ingestor=ingestor,
        system="chs",
        channel="file",
    )
    for summary in (asc, adt, extracts):
        assert summary.counts["dead_lettered"] == 0, summary.as_text()
    crypto = StoreCrypto.from_settings(settings)
    persons: dict[str, str] = {}
    with factory() as s:
        repo = ResourceRepository(s, crypto=crypto, clock=clock)
        for key, p in PEOPLE.items():
            found = {
                r.person_id
                for r in repo.find_by_identifier(
                    NHS_NUMBER_SYSTEM, p["nhs"], resource_type="Patient"
                )
            }
            assert len(found) == 1, (key, found)
            assert None not in found, key
            persons[key] = str(found.pop())
    return World(persons)
