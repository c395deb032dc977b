"""Alerts: rules write outbox rows with their trigger, consent decides what they carry, and
the worker delivers them to a real local webhook that is down for a while."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.chs.hl7 import parse_message
from bridge.access import AccessConfig, AccessGate
from bridge.audit.service import AuditLog
from bridge.core.clock import FixedClock
from bridge.ingest.service import Ingestor
from bridge.store.crypto import StoreCrypto
from bridge.store.models import AuditEntry, OutboxMessage
from bridge.store.resources import ResourceRepository
from bridge.store.sync import OutboxRepository
from bridge.sync.outbox import (
    SIGNATURE_HEADER,
    WITHHELD_SUMMARY,
    AlertContext,
    Deliverer,
    enqueue_alerts,
    verify,
)
from consent import ConsentEngine, load_policy
from tests.sync.conftest import RunnerFactory
from tests.sync.helpers import job

SECRET = b"test-webhook-secret"
EDNA_NHS = "9991656952"


def a01(control: str, nhs: str, mrn: str, visit: str, *, expected: str = "") -> bytes:
    """An inpatient admission (optionally with an expected discharge date, PV2-9)."""
    segments = [
        f"MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20261120090000+0000||ADT^A01^ADT_A01|{control}|P|2.4",
        "EVN|A01|20261120090000+0000",
        f"PID|1||{nhs}^^^NHS^NH~{mrn}^^^RXX^MR||Baker^Edna^^^Miss||19370212|F",
        f"PV1|1|I|ROWAN^BAY2^BED01^RXX|E|||C99119^Holmes^Gary^^^DR|||||||19|||||{visit}^^^RXX^VN"
        "|||||||||||||||||||||||||20261120090000+0000",
    ]
    if expected:
        segments.append(f"PV2|||||||||{expected}")
    return "\r".join(segments).encode()


@pytest.fixture
def context(
    ingestor: Ingestor, audit: AuditLog, crypto: StoreCrypto, clock: FixedClock
) -> AlertContext:
    gate = AccessGate(
        ConsentEngine(load_policy("explicit-consent")),
        audit,
        AccessConfig.from_mapping_config(ingestor.mappings.config),
        crypto=crypto,
        clock=clock,
    )
    return AlertContext(gate=gate, crypto=crypto, clock=clock, org="E08000999")


@pytest.fixture
def loaded(
    make_runner: RunnerFactory,
    context: AlertContext,
    asc_dir: Path,
    chs_dir: Path,
) -> None:
    """The sample of both systems loaded by sync jobs that enqueue alerts."""
    hook = lambda session, stored: enqueue_alerts(session, stored, context=context)  # noqa: E731
    for name, source, path in (("asc", "asc-export", asc_dir), ("chs", "chs-extracts", chs_dir)):
        text = f"jobs:\n  - {{name: {name}, source: {source}, path: {path}, schedule: 1m}}\n"
        assert make_runner(alert_hook=hook).run(job(text, path)).status == "succeeded"


def outbox(factory: sessionmaker[Session], crypto: StoreCrypto, clock: FixedClock) -> list[Any]:
    with factory() as s:
        repo = OutboxRepository(s, crypto=crypto, clock=clock)
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        return [repo._item(r) for r in rows]


class TestRules:
    @pytest.mark.usefixtures("loaded")
    def test_an_admission_of_an_allocated_person_alerts_the_team_with_what_consent_allows(
        self,
        session_factory: sessionmaker[Session],
        ingestor: Ingestor,
        context: AlertContext,
        crypto: StoreCrypto,
        clock: FixedClock,
    ) -> None:
        before = {a.idempotency_key for a in outbox(session_factory, crypto, clock)}
        record = parse_message(
            a01("ALERT0001", EDNA_NHS, "CHS6325914", "V99", expected="20261127")
        ).to_record()
        with session_factory() as s, s.begin():
            outcome = ingestor.apply(s, record, channel="test")
            assert outcome.status == "applied"
            repo = ResourceRepository(s, crypto=crypto, clock=clock)
            stored = [repo.read(*ref.split("/")) for ref in outcome.resources]
            added = enqueue_alerts(s, stored, context=context)
        new = [a for a in outbox(session_factory, crypto, clock) if a.idempotency_key not in before]
        assert added == len(new)
        assert {(a.rule, a.team) for a in new} == {
            ("inpatient-admitted", "T02"),
            ("expected-discharge", "T02"),
        }
        for alert in new:
            # Edna consented to share community health records (not mental health) with
            # social care: the alert carries the admission itself.
            assert alert.detailed
            assert alert.payload["resource"]["resourceType"] == "Encounter"
            assert alert.payload["see"] == f"/persons/{alert.person_id}"
        # The same trigger again (a re-applied record) makes no second alert.
        with session_factory() as s, s.begin():
            assert enqueue_alerts(s, stored, context=context) == 0
        with session_factory() as s:
            reads = s.scalars(select(AuditEntry).where(AuditEntry.action == "person.read")).all()
            assert sum(1 for r in reads if r.actor_user == "carebridge-alerts") >= 2

    @pytest.mark.usefixtures("loaded")
    def test_without_consent_an_alert_says_only_where_to_look(
        self, session_factory: sessionmaker[Session], crypto: StoreCrypto, clock: FixedClock
    ) -> None:
        alerts = outbox(session_factory, crypto, clock)
        assert alerts, "the sample makes alerts"
        bare = [a for a in alerts if not a.detailed]
        assert bare, "some persons in the sample have not consented"
        for alert in bare:
            assert alert.payload["summary"] == WITHHELD_SUMMARY
            assert "resource" not in alert.payload
            assert alert.team


class Receiver:
    """A webhook on localhost: checks the signature, can be down, records what arrived."""

    def __init__(self) -> None:
        self.down = True
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.rejected = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.down:
                    self.send_response(503)
                elif not verify(SECRET, body, self.headers.get(SIGNATURE_HEADER)):
                    outer.rejected += 1
                    self.send_response(401)
                else:
                    outer.received.append((self.headers["Idempotency-Key"], json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.mark.usefixtures("loaded")
class TestDelivery:
    def test_alerts_reach_a_webhook_that_was_down_once_each_in_order_per_person(
        self,
        session_factory: sessionmaker[Session],
        crypto: StoreCrypto,
        clock: FixedClock,
        receiver: Receiver,
        tmp_path: Path,
    ) -> None:
        expected = outbox(session_factory, crypto, clock)
        deliverer = Deliverer(
            session_factory,
            crypto=crypto,
            clock=clock,
            webhook_url=receiver.url,
            secret=SECRET,
            drop_dir=None,
            random=lambda: 1.0,
        )
        delivered, failed = deliverer.deliver_due()
        assert delivered == 0
        assert failed > 0
        assert receiver.received == []
        # Nothing is retried before its backoff has passed.
        assert deliverer.deliver_due() == (0, 0)
        receiver.down = False
        clock.advance(seconds=6)
        delivered, _failed = deliverer.deliver_due()
        assert delivered == len(expected)
        keys = [k for k, _ in receiver.received]
        assert sorted(keys) == sorted(a.idempotency_key for a in expected)
        order = {a.idempotency_key: a.id for a in expected}
        person = {a.idempotency_key: a.person_id for a in expected}
        for who in set(person.values()):
            ids = [order[k] for k in keys if person[k] == who]
            assert ids == sorted(ids)
        assert all(a.status == "delivered" for a in outbox(session_factory, crypto, clock))
        assert deliverer.deliver_due() == (0, 0)

    def test_a_wrong_signature_is_rejected_and_the_alert_stays_pending(
        self,
        session_factory: sessionmaker[Session],
        crypto: StoreCrypto,
        clock: FixedClock,
        receiver: Receiver,
    ) -> None:
        receiver.down = False
        deliverer = Deliverer(
            session_factory, crypto=crypto, clock=clock, webhook_url=receiver.url, secret=b"wrong"
        )
        delivered, failed = deliverer.deliver_due()
        assert delivered == 0
        assert failed == receiver.rejected > 0
        alerts = outbox(session_factory, crypto, clock)
        assert all(a.status == "pending" for a in alerts)
        assert {a.last_error for a in alerts if a.attempts} == {"webhook answered HTTP 401"}

    def test_a_file_drop_writes_communications_as_json_lines(
        self,
        session_factory: sessionmaker[Session],
        crypto: StoreCrypto,
        clock: FixedClock,
        tmp_path: Path,
    ) -> None:
        drop = tmp_path / "drop"
        deliverer = Deliverer(
            session_factory, crypto=crypto, clock=clock, drop_dir=drop, body_format="communication"
        )
        delivered, failed = deliverer.deliver_due()
        assert failed == 0
        (path,) = drop.iterdir()
        assert path.name == f"alerts-{datetime(2026, 11, 23, tzinfo=UTC):%Y-%m-%d}.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(lines) == delivered
        assert {c["resourceType"] for c in lines} == {"Communication"}
        assert all(c["recipient"][0]["identifier"]["value"] for c in lines)
