"""The engine's small input and output types."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from consent import (
    AccessRequest,
    BreakGlass,
    Candidate,
    Decision,
    Effect,
    Label,
    Period,
    PersonContext,
    Reason,
    Relationship,
    RelationshipKind,
)
from consent.record import LONDON
from tests.consent.builders import ACT_CODE, AT, PSY

NAIVE = datetime(2026, 6, 1, 10, 0)


class TestLabel:
    def test_parses_a_system_code_token(self) -> None:
        assert Label.parse(f"{ACT_CODE}|PSY") == PSY

    def test_prints_as_a_token(self) -> None:
        assert str(PSY) == f"{ACT_CODE}|PSY"

    @pytest.mark.parametrize("token", ["PSY", "|PSY", f"{ACT_CODE}|"])
    def test_rejects_a_token_without_system_and_code(self, token: str) -> None:
        with pytest.raises(ValueError, match="system\\|code"):
            Label.parse(token)


class TestPeriod:
    def test_is_half_open(self) -> None:
        period = Period(AT, AT + timedelta(hours=1))
        assert period.contains(AT)
        assert not period.contains(AT + timedelta(hours=1))
        assert not period.contains(AT - timedelta(seconds=1))

    def test_open_sides_are_unbounded(self) -> None:
        assert Period().contains(AT)
        assert Period(start=AT).contains(AT + timedelta(days=9999))
        assert Period(end=AT).contains(AT - timedelta(days=9999))

    def test_rejects_naive_times(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            Period(NAIVE)
        with pytest.raises(ValueError, match="timezone-aware"):
            Period(None, NAIVE)

    def test_of_dates_includes_the_whole_last_day(self) -> None:
        period = Period.of_dates(date(2026, 5, 1), date(2026, 6, 1), LONDON)
        # 23:30 BST on 1 June is 22:30 UTC: still allocated.
        assert period.contains(datetime(2026, 6, 1, 22, 30, tzinfo=UTC))
        assert not period.contains(datetime(2026, 6, 1, 23, 30, tzinfo=UTC))
        assert Period.of_dates(None, None, LONDON) == Period()


class TestAccessRequest:
    def test_rejects_a_naive_time(self) -> None:
        with pytest.raises(ValueError, match=r"AccessRequest\.at"):
            AccessRequest("W1", frozenset(), "L1", None, "TREAT", NAIVE)

    def test_accepts_any_collection_of_roles(self) -> None:
        req = AccessRequest("W1", {"social_worker"}, "L1", None, "TREAT", AT)  # type: ignore[arg-type]
        assert req.roles == frozenset({"social_worker"})


class TestBreakGlass:
    def test_rejects_a_naive_start(self) -> None:
        with pytest.raises(ValueError, match="started_at"):
            BreakGlass("reason", NAIVE)


class TestRelationship:
    def test_an_allocated_worker_needs_a_user(self) -> None:
        with pytest.raises(ValueError, match="needs a user"):
            Relationship(RelationshipKind.ALLOCATED_WORKER, Period(), team="T1")

    @pytest.mark.parametrize(
        "kind",
        [
            RelationshipKind.ALLOCATED_TEAM,
            RelationshipKind.OPEN_REFERRAL,
            RelationshipKind.OPEN_EPISODE,
        ],
    )
    def test_a_team_relationship_needs_a_team(self, kind: RelationshipKind) -> None:
        with pytest.raises(ValueError, match="needs a team"):
            Relationship(kind, Period(), user="W1")


class TestCandidate:
    def test_accepts_any_collection_of_labels(self) -> None:
        cand = Candidate("Condition", "c1", "chs", [PSY])  # type: ignore[arg-type]
        assert cand.security_labels == frozenset({PSY})
        assert cand.reference == "Condition/c1"


class TestPersonContext:
    def test_keeps_sequences_as_tuples(self) -> None:
        who = PersonContext("p1", [], [])  # type: ignore[arg-type]
        assert who.consents == ()
        assert who.relationships == ()


class TestDecision:
    def test_names_the_consent_or_the_policy_rule(self) -> None:
        why = (Reason("own-record", "Shown."),)
        by_rule = Decision(Effect.PERMIT, why, "own-records", "explicit-consent")
        assert by_rule.permitted
        assert by_rule.decided_by == "explicit-consent#own-records"
        assert by_rule.codes == ("own-record",)
        by_consent = Decision(Effect.DENY, why, "objection", "p", consent="Consent/c1/_history/2")
        assert not by_consent.permitted
        assert by_consent.decided_by == "Consent/c1/_history/2"
