"""Reading FHIR R4 Consent resources, including the nested-provision shape and bad shapes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from consent import ConsentParseError, ConsentRecord, Effect, Label, Period, UnreadableConsent
from consent.record import LONDON, ActorKind, _Reader, parse_fhir_time, read_consents
from tests.consent.builders import (
    ACT_CODE,
    COUNCIL,
    PSY,
    RECORDED_BY,
    TRUST,
    actor,
    consent,
    provision,
)


def read(data: dict[str, Any]) -> ConsentRecord:
    return ConsentRecord.from_fhir(data)


def parse_error(data: Any) -> ConsentParseError:
    with pytest.raises(ConsentParseError) as info:
        ConsentRecord.from_fhir(data)
    return info.value


class TestParseFhirTime:
    @pytest.mark.parametrize(
        ("value", "start", "end"),
        [
            ("2026", datetime(2026, 1, 1, tzinfo=LONDON), datetime(2027, 1, 1, tzinfo=LONDON)),
            ("2026-05", datetime(2026, 5, 1, tzinfo=LONDON), datetime(2026, 6, 1, tzinfo=LONDON)),
            ("2026-12", datetime(2026, 12, 1, tzinfo=LONDON), datetime(2027, 1, 1, tzinfo=LONDON)),
            (
                "2026-06-01",
                datetime(2026, 6, 1, tzinfo=LONDON),
                datetime(2026, 6, 2, tzinfo=LONDON),
            ),
            (
                "2026-06-01T10:00:00+01:00",
                datetime(2026, 6, 1, 9, tzinfo=UTC),
                datetime(2026, 6, 1, 9, 0, 1, tzinfo=UTC),
            ),
            (
                "2026-06-01T10:00:00.250Z",
                datetime(2026, 6, 1, 10, 0, 0, 250000, tzinfo=UTC),
                datetime(2026, 6, 1, 10, 0, 0, 250001, tzinfo=UTC),
            ),
        ],
    )
    def test_a_value_covers_its_whole_precision(
        self, value: str, start: datetime, end: datetime
    ) -> None:
        assert parse_fhir_time(value, LONDON) == start
        assert parse_fhir_time(value, LONDON, end=True) == end

    @pytest.mark.parametrize("value", ["", "01/06/2026", "2026-06-01T10:00:00", "2026-6-1"])
    def test_rejects_what_is_not_a_fhir_date(self, value: str) -> None:
        with pytest.raises(ValueError, match="not a FHIR date"):
            parse_fhir_time(value, LONDON)


class TestNestedProvisions:
    def test_reads_share_everything_except_mental_health(self) -> None:
        root = provision(
            "permit",
            start="2026-03-01",
            end="2027-03-01",
            actors=[actor(), actor(TRUST, custodian=True)],
            purposes=["TREAT"],
            actions=["access"],
            children=[provision("deny", labels=[PSY])],
        )
        rec = read(consent("c9", root, version="3"))
        assert rec.reference == "Consent/c9/_history/3"
        assert rec.in_use
        assert rec.status == "active"
        assert rec.scope == "patient-privacy"
        assert rec.recorded == datetime(2026, 3, 1, tzinfo=LONDON)
        assert rec.recorded_by == "Sam Patel"
        assert rec.patient == "Patient/p1"
        top = rec.provision
        assert top is not None
        assert top.type is Effect.PERMIT
        assert top.path == "provision"
        assert top.period == Period(
            datetime(2026, 3, 1, tzinfo=LONDON), datetime(2027, 3, 2, tzinfo=LONDON)
        )
        assert [(a.kind, a.organisation) for a in top.actors] == [
            (ActorKind.RECIPIENT, COUNCIL),
            (ActorKind.CUSTODIAN, TRUST),
        ]
        assert top.purposes == {"TREAT"}
        assert top.actions == {"access"}
        [child] = top.provisions
        assert child.type is Effect.DENY
        assert child.path == "provision.provision[0]"
        assert child.labels == {PSY}

    def test_reads_every_condition(self) -> None:
        root = provision(
            "deny",
            actors=[actor(team="T02", roles=["social_worker"])],
            classes=["Condition", "Observation"],
            data=["Condition/abc"],
            children=[
                provision("permit", children=[provision("deny", labels=[PSY])]),
            ],
        )
        top = read(consent("c1", root)).provision
        assert top is not None
        [who] = top.actors
        assert (who.kind, who.team, who.organisation, who.roles) == (
            ActorKind.RECIPIENT,
            "T02",
            None,
            frozenset({"social_worker"}),
        )
        assert top.classes == {"Condition", "Observation"}
        assert top.data == {"Condition/abc"}
        assert top.provisions[0].provisions[0].path == "provision.provision[0].provision[0]"

    def test_policy_rule_gives_the_root_type(self) -> None:
        permit = read(consent("c1", provision(None), policy_rule="OPTIN")).provision
        deny = read(consent("c1", provision(None), policy_rule="OPTOUT")).provision
        assert permit is not None
        assert permit.type is Effect.PERMIT
        assert deny is not None
        assert deny.type is Effect.DENY

    def test_an_explicit_root_type_wins_over_policy_rule(self) -> None:
        top = read(consent("c1", provision("deny"), policy_rule="OPTIN")).provision
        assert top is not None
        assert top.type is Effect.DENY

    def test_a_consent_without_provision_uses_policy_rule(self) -> None:
        data = consent("c1", policy_rule="OPTOUT")
        del data["provision"]
        top = read(data).provision
        assert top is not None
        assert top.type is Effect.DENY
        assert top.actors == ()


class TestWhoRecordedIt:
    def test_from_a_reference_display(self) -> None:
        data = consent(
            recorded_by=None,
            extension=[{"url": RECORDED_BY, "valueReference": {"display": "Ann Lee"}}],
        )
        assert read(data).recorded_by == "Ann Lee"

    def test_from_the_organisation_otherwise(self) -> None:
        data = consent(
            recorded_by=None,
            extension=[{"url": "urn:other", "valueString": "x"}],
            organization=[{"reference": "Organization/o1"}, {"display": "Aire Valley Council"}],
        )
        assert read(data).recorded_by == "Aire Valley Council"

    def test_an_empty_extension_is_skipped(self) -> None:
        data = consent(
            recorded_by=None,
            extension=[{"url": RECORDED_BY, "valueReference": {"reference": "Practitioner/1"}}],
        )
        assert read(data).recorded_by is None
        assert read(consent(recorded_by=None, version=None)).reference == "Consent/c1"


class TestNotInUse:
    @pytest.mark.parametrize("status", ["inactive", "draft", "rejected", "entered-in-error"])
    def test_a_consent_that_is_not_active_is_kept_but_not_interpreted(self, status: str) -> None:
        data = consent(status=status, recorded=None)
        data["provision"]["actor"] = [{"role": {"text": "x"}, "reference": {"reference": "X/1"}}]
        rec = read(data)
        assert not rec.in_use
        assert rec.status == status
        assert rec.recorded is None

    def test_a_consent_about_something_else_is_not_used(self) -> None:
        assert not read(consent(scope="research")).in_use
        both = consent()
        both["scope"]["coding"].insert(0, {"system": "urn:local", "code": "x"})
        assert read(both).scope == "patient-privacy"
        data = consent()
        data["scope"] = {"text": "privacy"}
        rec = read(data)
        assert rec.scope is None
        assert not rec.in_use


class TestBadShapes:
    def test_an_error_without_an_element_still_reads(self) -> None:
        assert str(ConsentParseError("unclear")) == "Consent: unclear"

    def test_not_a_consent(self) -> None:
        assert parse_error({"resourceType": "Patient"}).element == "resourceType"
        err = parse_error(["not", "a", "mapping"])
        assert err.consent_id is None
        assert str(err) == "Consent resourceType: not a Consent resource"

    def test_fhir_validation_errors_name_the_element(self) -> None:
        err = parse_error(consent(recorded="01/03/2026"))
        assert err.element == "dateTime"
        assert str(err).startswith("Consent/c1 dateTime:")
        bad = consent()
        bad["provision"]["actor"] = [{"role": {"text": "x"}}]
        assert parse_error(bad).element == "provision.actor[0].reference"

    def test_an_id_is_required(self) -> None:
        data = consent()
        del data["id"]
        assert parse_error(data).element == "id"

    def test_an_active_consent_needs_a_date(self) -> None:
        assert parse_error(consent(recorded=None)).element == "dateTime"

    def test_the_root_needs_a_type(self) -> None:
        err = parse_error(consent("c1", provision(None)))
        assert err.element == "provision.type"
        assert "policyRule" in err.message
        other = consent("c1", provision(None), policy_rule="OPTOUTX")
        assert parse_error(other).element == "provision.type"
        foreign = consent("c1", provision(None))
        foreign["policyRule"] = {"coding": [{"system": "urn:x", "code": "OPTIN"}]}
        assert parse_error(foreign).element == "provision.type"

    def test_a_nested_provision_needs_a_type(self) -> None:
        err = parse_error(consent("c1", provision(children=[provision(None)])))
        assert err.element == "provision.provision[0].type"
        assert "set type" in err.message

    def test_a_type_must_be_permit_or_deny(self) -> None:
        assert "'maybe'" in parse_error(consent("c1", provision("maybe"))).message

    @pytest.mark.parametrize(
        ("path", "where"),
        [
            ((), "modifierExtension"),
            (("provision",), "provision.modifierExtension"),
            (("provision", "provision", 0), "provision.provision[0].modifierExtension"),
        ],
    )
    def test_modifier_extensions_are_refused(self, path: tuple[str | int, ...], where: str) -> None:
        data = consent("c1", provision(children=[provision("deny")]))
        node: Any = data
        for part in path:
            node = node[part]
        node["modifierExtension"] = [{"url": "urn:x", "valueBoolean": True}]
        assert parse_error(data).element == where

    @pytest.mark.parametrize("element", ["dataPeriod", "code"])
    def test_unsupported_conditions_are_refused(self, element: str) -> None:
        data = consent()
        data["provision"][element] = (
            {"start": "2020"} if element == "dataPeriod" else [{"text": "x"}]
        )
        err = parse_error(data)
        assert err.element == f"provision.{element}"
        assert "not supported" in err.message

    def test_a_bad_period_date_is_named(self) -> None:
        data = consent()
        data["provision"]["period"] = {"start": "2026-13-45"}
        assert parse_error(data).element.startswith("provision.period")

    def test_dates_are_checked_even_if_validation_lets_them_through(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # fhir.resources catches these first today; the reader must not depend on it.
        monkeypatch.setattr(_Reader, "validate", lambda self: None)
        data = consent()
        data["provision"]["period"] = {"end": "2026-02-30"}
        err = parse_error(data)
        assert err.element == "provision.period.end"
        assert "not a FHIR date" not in err.message

    def test_a_literal_actor_reference_cannot_be_resolved(self) -> None:
        data = consent()
        data["provision"]["actor"] = [
            {"role": {"text": "recipient"}, "reference": {"reference": "Organization/x"}}
        ]
        err = parse_error(data)
        assert err.element == "provision.actor[0].reference"
        assert "ODS" in err.message

    def test_an_identifier_from_another_system_cannot_be_resolved(self) -> None:
        data = consent()
        data["provision"]["actor"][0]["reference"]["identifier"]["system"] = "urn:x"
        assert parse_error(data).element == "provision.actor[0].reference"

    def test_a_custodian_is_an_organisation(self) -> None:
        team = consent("c1", provision(actors=[actor(team="T1", custodian=True)]))
        assert parse_error(team).element == "provision.actor[0]"
        role = consent("c1", provision(actors=[actor(TRUST, roles=["x"], custodian=True)]))
        assert parse_error(role).element == "provision.actor[0]"

    @pytest.mark.parametrize(
        ("element", "value", "where"),
        [
            ("purpose", [{"system": "urn:x", "code": "CARE"}], "provision.purpose[0]"),
            (
                "purpose",
                [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason"}],
                "provision.purpose[0]",
            ),
            ("class", [{"system": "urn:x", "code": "Condition"}], "provision.class[0]"),
            (
                "action",
                [{"coding": [{"system": "urn:x", "code": "access"}]}],
                "provision.action[0].coding[0]",
            ),
            ("securityLabel", [{"system": ACT_CODE}], "provision.securityLabel[0]"),
            (
                "data",
                [{"meaning": "related", "reference": {"reference": "Condition/1"}}],
                "provision.data[0]",
            ),
            (
                "data",
                [{"meaning": "instance", "reference": {"reference": "urn:uuid:1"}}],
                "provision.data[0]",
            ),
        ],
    )
    def test_codes_from_unexpected_systems_are_refused(
        self, element: str, value: list[dict[str, Any]], where: str
    ) -> None:
        data = consent()
        data["provision"][element] = value
        assert parse_error(data).element == where


class TestReadConsents:
    def test_keeps_readable_ones_and_active_unreadable_ones(self) -> None:
        broken = consent("c2", recorded=None)
        draft_broken = copy.deepcopy(broken) | {"id": "c3", "status": "draft", "dateTime": "x"}
        out = read_consents([consent("c1"), broken, draft_broken, ["junk"]])  # type: ignore[list-item]
        assert isinstance(out[0], ConsentRecord)
        assert isinstance(out[1], UnreadableConsent)
        assert out[1].reference == "Consent/c2"
        assert out[1].error.element == "dateTime"
        assert isinstance(out[2], UnreadableConsent)
        assert out[2].id is None
        assert out[2].reference == "Consent"
        assert len(out) == 3

    def test_reads_dates_in_the_given_time_zone(self) -> None:
        [rec] = read_consents([consent(recorded="2026-03-01")], tz=UTC)
        assert isinstance(rec, ConsentRecord)
        assert rec.recorded == datetime(2026, 3, 1, tzinfo=UTC)

    def test_labels_keep_their_system(self) -> None:
        rec = read(consent("c1", provision(labels=[Label("urn:local", "X")])))
        assert rec.provision is not None
        assert rec.provision.labels == {Label("urn:local", "X")}
