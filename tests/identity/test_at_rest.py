"""Identity tables hold no demographics in clear: scan the SQLite file and a PostgreSQL dump."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, func, select

from bridge.audit.service import Actor, AuditLog
from bridge.core.clock import FixedClock
from bridge.core.crypto import Hasher
from bridge.identity import service as identity_service
from bridge.identity.scoring import Thresholds
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory, transaction
from bridge.store.models import IdentityLink, MatchCandidate, MatchKey
from bridge.store.resources import ResourceRepository, SourceRef
from tests.fixtures.at_rest import stored_bytes
from tests.identity.builders import CHS_SYSTEM, NHS, person

FAMILY, GIVEN, OTHER_GIVEN = "Abernethy-Zorzi", "Ignatius", "Bartholomew"
BIRTH, POSTCODE = "1937-10-29", "WF13 4QX"
NOTE = f"{GIVEN} {FAMILY} is not {OTHER_GIVEN}"


def _needles() -> list[bytes]:
    values = [FAMILY, "Abernethy", "Zorzi", GIVEN, OTHER_GIVEN, NHS[3], BIRTH, "19371029"]
    values += [POSTCODE, POSTCODE.replace(" ", ""), "abernethy", "ignatius", NOTE]
    return [v.encode() for v in values] + [FAMILY.encode("utf-16-le")]


def _load(engine: Engine, crypto: StoreCrypto, clock: FixedClock) -> None:
    audit = AuditLog(Hasher(os.urandom(32)), clock)
    with transaction(make_session_factory(engine)) as s:
        repo = ResourceRepository(s, crypto=crypto, clock=clock)
        queued: tuple[int, ...] = ()
        common = {"family": FAMILY, "birth_date": BIRTH, "postcode": POSTCODE, "gender": "male"}
        for system, rid, body in (
            ("asc", "ASC1", person("ASC1", given=GIVEN, nhs_number=NHS[3], **common)),
            ("chs", "CHS1", person("CHS1", given=GIVEN, local_system=CHS_SYSTEM, **common)),
            ("chs", "CHS2", person("CHS2", given=OTHER_GIVEN, local_system=CHS_SYSTEM, **common)),
        ):
            body.pop("id")
            stored = repo.put(body, source=SourceRef(system, "person", rid)).stored
            outcome = identity_service.link_patient(
                s, patient=stored, crypto=crypto, clock=clock, audit=audit, thresholds=Thresholds()
            )
            queued += outcome.queued
        assert queued
        identity_service.decide_match(
            s,
            candidate_id=queued[0],
            accept=False,
            note=NOTE,
            actor=Actor("ig-1"),
            crypto=crypto,
            clock=clock,
            audit=audit,
        )


def _assert_absent(blob: bytes, where: str) -> None:
    found = [n.decode("utf-8", "replace") for n in _needles() if n in blob]
    assert not found, f"found in clear in {where}: {found}"


def test_no_demographics_in_clear(
    db: Engine, crypto: StoreCrypto, clock: FixedClock, tmp_path: Path
) -> None:
    _load(db, crypto, clock)
    # Sanity: the identity tables really hold rows.
    with make_session_factory(db)() as s:
        assert s.scalar(select(func.count()).select_from(IdentityLink)) == 3
        assert s.scalar(select(func.count()).select_from(MatchKey))
        assert s.scalar(select(func.count()).select_from(MatchCandidate)) == 1
    for where, blob in stored_bytes(db):
        if where == "pg_dump":
            assert b"COPY public.identity_match_key " in blob  # the dump really holds the tables
        _assert_absent(blob, where)
