"""Nothing identifying is stored in clear: scan the SQLite file and a PostgreSQL dump."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from bridge.core.clock import FixedClock
from bridge.core.errors import ValidationError
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory, transaction
from bridge.store.inbound import DeadLetterRepository, InboundRepository
from bridge.store.resources import ResourceRepository, SourceRef
from tests.fixtures.at_rest import stored_bytes
from tests.fixtures.fhir import NHS_NUMBERS, patient

PEOPLE = [
    ("Quennell-Sandiford", "Philippa", NHS_NUMBERS[0]),
    ("Abernethy-Zorzi", "Ignatius", NHS_NUMBERS[1]),
    ("Wolstenholme", "Marguerite", NHS_NUMBERS[2]),
]


def _needles() -> list[bytes]:
    out: list[bytes] = []
    for family, given, nhs in PEOPLE:
        spaced = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
        out += [family.encode(), given.encode(), nhs.encode(), spaced.encode()]
        out += [family.encode("utf-16-le"), nhs.encode("utf-16-le")]
    return out


def _load(engine: Engine, crypto: StoreCrypto, clock: FixedClock) -> None:
    with transaction(make_session_factory(engine)) as s:
        repo = ResourceRepository(s, crypto=crypto, clock=clock)
        inbound = InboundRepository(s, crypto=crypto, clock=clock)
        dead = DeadLetterRepository(s, crypto=crypto, clock=clock)
        for n, (family, given, nhs) in enumerate(PEOPLE):
            src = SourceRef("asc", "person", f"ASC{n:06d}")
            repo.put(patient(rid=None, family=family, given=given, nhs_number=nhs), source=src)
            changed = patient(rid=None, family=family, given=given + "x", nhs_number=nhs)
            repo.put(changed, source=src)
            raw = f"PID|1||{nhs}^^^NHS^NH||{family}^{given}".encode()
            inbound.record(source_system="chs", channel="mllp", dedupe_key=f"M{n}", raw=raw)
            dead.add(
                source_system="chs",
                channel="mllp",
                raw=raw + b"|broken",
                error=ValidationError("PID-7 is not a date", field="PID-7"),
            )


def _assert_absent(blob: bytes, where: str) -> None:
    found = [n.decode("utf-8", "replace") for n in _needles() if n in blob]
    assert not found, f"found in clear in {where}: {found}"


def test_no_identifiers_in_clear(
    db: Engine, crypto: StoreCrypto, clock: FixedClock, tmp_path: Path
) -> None:
    _load(db, crypto, clock)
    # Sanity: the needles are really stored (readable through the repository).
    with make_session_factory(db)() as s:
        repo = ResourceRepository(s, crypto=crypto, clock=clock)
        assert repo.count("Patient") == len(PEOPLE)
    for where, blob in stored_bytes(db):
        if where == "pg_dump":
            assert b"COPY public.resource " in blob  # the dump really holds the tables
        _assert_absent(blob, where)
