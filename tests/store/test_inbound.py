"""Raw inbound messages (dedupe) and dead letters (kept whole, repeat bumps attempts)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.core.clock import FixedClock
from bridge.core.errors import NotFoundError, ValidationError
from bridge.store.crypto import StoreCrypto
from bridge.store.inbound import DeadLetterRepository, InboundRepository
from bridge.store.models import DeadLetter, InboundMessage

RAW = b"MSH|^~\\&|CHS|RXX|CAREBRIDGE|X|20261101120000||ADT^A01^ADT_A01|MSG0001|P|2.4\r"


@pytest.fixture
def inbound(session: Session, crypto: StoreCrypto, clock: FixedClock) -> InboundRepository:
    return InboundRepository(session, crypto=crypto, clock=clock)


@pytest.fixture
def dead(session: Session, crypto: StoreCrypto, clock: FixedClock) -> DeadLetterRepository:
    return DeadLetterRepository(session, crypto=crypto, clock=clock)


class TestInbound:
    def test_record_then_duplicate(self, inbound: InboundRepository, session: Session) -> None:
        first = inbound.record(source_system="chs", channel="mllp", dedupe_key="MSG0001", raw=RAW)
        assert not first.duplicate
        again = inbound.record(source_system="chs", channel="mllp", dedupe_key="MSG0001", raw=RAW)
        assert again.duplicate
        assert again.id == first.id
        others = select(InboundMessage.id).where(InboundMessage.id != first.id)
        assert session.scalar(others) is None
        assert inbound.raw(first.id) == RAW

    def test_same_key_from_another_source_is_not_a_duplicate(
        self, inbound: InboundRepository
    ) -> None:
        inbound.record(source_system="chs", channel="mllp", dedupe_key="K", raw=RAW)
        other = inbound.record(source_system="asc", channel="file", dedupe_key="K", raw=RAW)
        assert not other.duplicate

    def test_mark_status(self, inbound: InboundRepository, clock: FixedClock) -> None:
        rec = inbound.record(source_system="chs", channel="mllp", dedupe_key="K", raw=RAW)
        inbound.mark(rec.id, "applied")
        again = inbound.record(source_system="chs", channel="mllp", dedupe_key="K", raw=RAW)
        assert again.status == "applied"
        with pytest.raises(ValueError, match="unknown inbound status"):
            inbound.mark(rec.id, "done")
        with pytest.raises(NotFoundError):
            inbound.mark(99999, "applied")

    def test_raw_is_encrypted_at_rest(self, inbound: InboundRepository, session: Session) -> None:
        rec = inbound.record(source_system="chs", channel="mllp", dedupe_key="K", raw=RAW)
        stored = session.scalar(select(InboundMessage.payload).where(InboundMessage.id == rec.id))
        assert stored is not None
        assert b"ADT^A01" not in stored


class TestDeadLetters:
    def test_kept_whole_with_reason(self, dead: DeadLetterRepository) -> None:
        err = ValidationError("PID-7 date of birth '19411307' is not a date", field="PID-7")
        dl = dead.add(source_system="chs", channel="mllp", raw=RAW, error=err, source_kind="adt")
        view = dead.get(dl)
        assert view.raw == RAW
        assert view.error_code == "BRIDGE-0100"
        assert view.error_field == "PID-7"
        assert view.attempts == 1
        assert view.status == "open"

    def test_same_input_again_bumps_attempts(
        self, dead: DeadLetterRepository, clock: FixedClock, session: Session
    ) -> None:
        err = ValidationError("bad", field="x")
        first = dead.add(source_system="chs", channel="file", raw=RAW, error=err)
        clock.advance(hours=1)
        second = dead.add(
            source_system="chs", channel="file", raw=RAW, error=ValidationError("worse", field="y")
        )
        assert first == second
        view = dead.get(first)
        assert view.attempts == 2
        assert view.error_message == "worse"
        assert view.last_seen > view.first_seen
        assert len(session.scalars(select(DeadLetter.id)).all()) == 1

    def test_list_and_status(self, dead: DeadLetterRepository) -> None:
        a = dead.add(source_system="asc", channel="file", raw=b"{bad", error=ValidationError("a"))
        b = dead.add(source_system="asc", channel="file", raw=b"{worse", error=ValidationError("b"))
        assert {d.id for d in dead.list()} == {a, b}
        dead.set_status(a, "reprocessed")
        assert [d.id for d in dead.list()] == [b]
        assert {d.id for d in dead.list(status=None)} == {a, b}
        with pytest.raises(ValueError, match="unknown dead-letter status"):
            dead.set_status(a, "gone")
        with pytest.raises(NotFoundError):
            dead.get(123456)
