"""Key rotation re-encrypts every stored value and keeps everything readable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from bridge.core.clock import FixedClock
from bridge.core.crypto import Hasher, KeyRing
from bridge.core.errors import ValidationError
from bridge.store.access import BreakGlassRepository
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory, transaction
from bridge.store.inbound import DeadLetterRepository, InboundRepository
from bridge.store.keys import ENCRYPTED_TABLES, key_usage, reencrypt_batch
from bridge.store.resources import ResourceRepository
from bridge.store.sync import OutboxRepository
from tests.fixtures.fhir import patient


def test_rotation_reencrypts_all_tables_in_batches(
    db: Engine, tmp_path: Path, clock: FixedClock
) -> None:
    ring_path = tmp_path / "ring.json"
    KeyRing.generate(development=True).save(ring_path)
    hasher = Hasher(b"k" * 32)
    crypto = StoreCrypto(KeyRing.load(ring_path), hasher, ring_path=ring_path)
    factory = make_session_factory(db)
    with transaction(factory) as s:
        repo = ResourceRepository(s, crypto=crypto, clock=clock)
        for n in range(7):
            repo.put(patient(rid=f"p{n}"))
            repo.put(patient(rid=f"p{n}", given="Changed"))
        InboundRepository(s, crypto=crypto, clock=clock).record(
            source_system="chs", channel="mllp", dedupe_key="M1", raw=b"MSH|..."
        )
        DeadLetterRepository(s, crypto=crypto, clock=clock).add(
            source_system="asc", channel="file", raw=b"{broken", error=ValidationError("bad")
        )
        BreakGlassRepository(s, crypto=crypto).add(
            record_id="bg-1",
            user="W1",
            roles=("social_worker",),
            org=None,
            team="T1",
            person_id="person-1",
            reason="Found collapsed at home, need medication history",
            started_at=clock.now(),
            expires_at=clock.now() + timedelta(hours=4),
            audit_seq=None,
        )
        OutboxRepository(s, crypto=crypto, clock=clock).add(
            idempotency_key="alert-1",
            person_id="person-1",
            rule="inpatient-admitted",
            team="T1",
            org=None,
            detailed=True,
            payload={"summary": "Admitted to hospital"},
        )
    old = crypto.keyring.active

    # A second process (the CLI) rotates; this process notices on its next read of a new value.
    rotator = StoreCrypto(KeyRing.load(ring_path).with_new_active_key(), hasher)
    rotator.keyring.save(ring_path)
    new = rotator.keyring.active
    total = 0
    for spec in ENCRYPTED_TABLES:
        while True:
            with transaction(factory) as s:
                n = reencrypt_batch(s, rotator, spec, limit=3)
            total += n
            if n == 0:
                break
    assert total == 7 + 14 + 1 + 1 + 1 + 1
    with factory() as s:
        usage = key_usage(s)
    assert usage == {
        "resource": {new: 7},
        "resource_history": {new: 14},
        "inbound_message": {new: 1},
        "dead_letter": {new: 1},
        "identity_match": {},
        "break_glass": {new: 1},
        "outbox": {new: 1},
    }
    assert old != new
    # The long-running process still has only the old key loaded, and reads the new values.
    with factory() as s:
        repo = ResourceRepository(s, crypto=crypto, clock=clock)
        assert repo.read("Patient", "p3").content["name"][0]["given"] == ["Changed"]  # type: ignore[index]
        assert repo.vread("Patient", "p3", 1).content["name"][0]["given"] == ["Adaeze"]  # type: ignore[index]
        assert DeadLetterRepository(s, crypto=crypto, clock=clock).list()[0].raw == b"{broken"
        bg = BreakGlassRepository(s, crypto=crypto).get("bg-1")
        assert bg is not None
        assert bg.reason == "Found collapsed at home, need medication history"
        (alert,) = OutboxRepository(s, crypto=crypto, clock=clock).deliverable()
        assert alert.payload == {"summary": "Admitted to hospital"}
    assert crypto.keyring.active == new
