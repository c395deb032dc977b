"""The engine end to end: one class per semantic rule, one test per scenario."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consent import (
    BreakGlass,
    ConsentDenied,
    ConsentEngine,
    Decision,
    Effect,
    Period,
    Policy,
    Relationship,
    RelationshipKind,
    decide,
    require,
)
from consent.context import RequestContext
from consent.policies import VOTERS, BaseVoter, Stage, Vote
from consent.policies.explicit_consent import ExplicitConsentVoter
from tests.consent.builders import (
    AT,
    COUNCIL,
    ETH,
    EXPLICIT,
    HIV,
    IMPLIED,
    PSY,
    SAFEGUARDING,
    SDV,
    SEX,
    TRUST,
    actor,
    allocated,
    consent,
    decide_one,
    person,
    provision,
    record,
    request,
)

LONG_REASON = "Found collapsed at home, need medicines"


def permitted(d: Decision) -> bool:
    return d.effect is Effect.PERMIT


def policy_with(**changes: object) -> Policy:
    spec = EXPLICIT.spec.model_dump()
    for path, value in changes.items():
        node = spec
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return Policy.from_mapping(spec)


class TestScreen:
    def test_a_user_with_a_relationship_may_see_the_person(self) -> None:
        access = ConsentEngine(EXPLICIT).evaluate(request(), person())
        assert access.require().rule == "relationship"

    def test_denies_every_record_with_every_problem_and_nothing_more(self) -> None:
        req = request(roles=["ig_officer"], purpose="HRESCH")
        access = ConsentEngine(EXPLICIT).evaluate(req, person(relationships=[]))
        assert access.screen.codes == (
            "role-not-permitted",
            "purpose-not-permitted",
            "no-care-relationship",
        )
        assert access.screen.deny_rules == ("role", "purpose", "relationship")
        # Nothing about any record is said: the same decision for all.
        assert access.decide(record("Condition", SEX)) is access.screen
        with pytest.raises(ConsentDenied) as info:
            access.require()
        assert info.value.decision is access.screen
        assert str(info.value) == (
            "Withheld: none of your roles gives access to this person's records through the bridge."
        )

    def test_require_returns_a_permit_and_raises_for_a_deny(self) -> None:
        access = ConsentEngine(EXPLICIT).evaluate(request(), person(consent()))
        assert access.require(record()).permitted
        with pytest.raises(ConsentDenied):
            access.require(record("Condition", HIV))

    def test_the_one_call_forms(self) -> None:
        who = person(consent())
        [d] = decide(EXPLICIT, request(), who, [record()])
        assert d.permitted
        assert require(EXPLICIT, request(), who).rule == "relationship"
        with pytest.raises(ConsentDenied):
            require(EXPLICIT, request(), person(), record())


class TestConsentDenied:
    def test_a_decision_without_reasons_still_explains(self) -> None:
        bare = Decision(Effect.DENY, (), "default", "explicit-consent")
        assert str(ConsentDenied(bare)) == "access denied"


class TestCareRelationship:
    @pytest.mark.parametrize(
        "rel",
        [
            Relationship(RelationshipKind.ALLOCATED_WORKER, Period(AT), user="W1"),
            Relationship(
                RelationshipKind.ALLOCATED_TEAM, Period(end=AT + timedelta(days=1)), team="T02"
            ),
            Relationship(RelationshipKind.OPEN_REFERRAL, Period(), team="T02"),
            Relationship(RelationshipKind.OPEN_EPISODE, Period(), team="T02"),
        ],
    )
    def test_each_kind_of_relationship_counts(self, rel: Relationship) -> None:
        access = ConsentEngine(EXPLICIT).evaluate(request(), person(relationships=[rel]))
        assert access.screen.permitted

    @pytest.mark.parametrize(
        "rel",
        [
            Relationship(RelationshipKind.ALLOCATED_WORKER, Period(), user="W2"),
            Relationship(RelationshipKind.ALLOCATED_TEAM, Period(), team="T05"),
            Relationship(RelationshipKind.OPEN_REFERRAL, Period(end=AT), team="T02"),
            Relationship(
                RelationshipKind.OPEN_EPISODE, Period(AT + timedelta(seconds=1)), team="T02"
            ),
        ],
    )
    def test_others_do_not(self, rel: Relationship) -> None:
        access = ConsentEngine(EXPLICIT).evaluate(request(), person(relationships=[rel]))
        assert access.screen.codes == ("no-care-relationship",)

    def test_a_user_without_a_team_has_no_team_relationship(self) -> None:
        rel = Relationship(RelationshipKind.ALLOCATED_TEAM, Period(), team="T02")
        access = ConsentEngine(EXPLICIT).evaluate(request(team=None), person(relationships=[rel]))
        assert not access.screen.permitted


class TestPresets:
    def test_explicit_consent_shares_nothing_without_a_consent(self) -> None:
        d = decide_one(record())
        assert (d.effect, d.rule, d.codes) == (Effect.DENY, "default", ("no-consent",))
        assert d.reasons[0].text == (
            "Withheld: no recorded consent allows sharing community health records with "
            "adult social care."
        )

    def test_direct_care_implied_shares_within_a_relationship(self) -> None:
        d = decide_one(record(), policy=IMPLIED)
        assert (d.effect, d.rule) == (Effect.PERMIT, "implied-direct-care")
        assert d.reasons[0].text == (
            "Shown: community health records are shared with adult social care for direct "
            "care because you have a care relationship with this person and they have not "
            "recorded an objection."
        )

    @pytest.mark.parametrize("policy", [EXPLICIT, IMPLIED])
    def test_a_recorded_objection_wins_under_both(self, policy: Policy) -> None:
        who = person(consent("c1", provision("deny")), policy=policy)
        d = decide_one(record(), who, policy=policy)
        assert (d.effect, d.rule, d.codes) == (Effect.DENY, "objection", ("consent-refused",))

    def test_own_records_need_no_consent(self) -> None:
        d = decide_one(record("Encounter", source="asc"))
        assert (d.effect, d.rule) == (Effect.PERMIT, "own-records")

    def test_a_consent_is_still_named_under_the_implied_preset(self) -> None:
        who = person(consent(), policy=IMPLIED)
        assert decide_one(record(), who, policy=IMPLIED).rule == "consent"


class TestLatestDecisionWins:
    def test_a_withdrawal_overrides_the_agreement(self) -> None:
        who = person(consent("c1"), consent("c2", provision("deny"), recorded="2026-04-01"))
        d = decide_one(record(), who)
        assert d.codes == ("consent-refused",)
        assert d.consent == "Consent/c2/_history/1"

    def test_a_later_agreement_overrides_a_refusal(self) -> None:
        who = person(consent("c1", provision("deny")), consent("c2", recorded="2026-04-01"))
        assert decide_one(record(), who).consent == "Consent/c2/_history/1"

    def test_a_later_partial_objection_leaves_the_rest_shared(self) -> None:
        later = consent("c2", provision("deny", labels=[PSY]), recorded="2026-04-01")
        who = person(consent("c1"), later)
        assert decide_one(record(), who).consent == "Consent/c1/_history/1"
        d = decide_one(record("Condition", PSY), who)
        assert (d.codes, d.consent) == (("excluded-by-consent",), "Consent/c2/_history/1")

    def test_at_the_same_moment_a_deny_wins(self) -> None:
        who = person(consent("a-permit"), consent("b-deny", provision("deny")))
        assert decide_one(record(), who).consent == "Consent/b-deny/_history/1"

    def test_at_the_same_moment_the_first_permit_by_id_is_named(self) -> None:
        who = person(consent("b"), consent("a", version=None))
        assert decide_one(record(), who).consent == "Consent/a"

    def test_a_consent_recorded_after_the_request_does_not_count(self) -> None:
        who = person(consent("c1", recorded="2026-06-01T10:00:01+00:00"))
        assert decide_one(record(), who).codes == ("no-consent",)
        who = person(consent("c1", recorded="2026-06-01T10:00:00+00:00"))
        assert decide_one(record(), who).permitted

    @pytest.mark.parametrize("status", ["inactive", "entered-in-error", "draft"])
    def test_only_active_consents_count(self, status: str) -> None:
        assert decide_one(record(), person(consent(status=status))).codes == ("no-consent",)

    def test_only_privacy_consents_count(self) -> None:
        assert decide_one(record(), person(consent(scope="research"))).codes == ("no-consent",)


class TestProvisionConditions:
    def test_the_period_bounds_the_consent(self) -> None:
        assert not decide_one(
            record(), person(consent("c1", provision(start="2026-07-01")))
        ).permitted
        assert not decide_one(
            record(), person(consent("c1", provision(end="2026-05-31")))
        ).permitted
        assert decide_one(record(), person(consent("c1", provision(end="2026-06-01")))).permitted

    def test_a_date_only_end_covers_the_whole_local_day(self) -> None:
        who = person(consent("c1", provision(end="2026-06-01")))
        late = request(at=datetime(2026, 6, 1, 22, 59, tzinfo=UTC))  # 23:59 BST
        assert decide_one(record(), who, late).permitted
        after = request(at=datetime(2026, 6, 1, 23, 0, tzinfo=UTC))  # midnight BST
        assert decide_one(record(), who, after).codes == ("no-consent",)

    def test_the_recipient_organisation_must_match(self) -> None:
        who = person(consent("c1", provision(actors=[actor("L9999")])))
        assert decide_one(record(), who).codes == ("no-consent",)

    def test_a_recipient_may_be_a_team_or_limited_to_roles(self) -> None:
        team = person(consent("c1", provision(actors=[actor(team="T02")])))
        assert decide_one(record(), team).permitted
        assert not decide_one(record(), team, request(team="T05")).permitted
        role = person(
            consent("c1", provision(actors=[actor(COUNCIL, roles=["safeguarding_lead"])]))
        )
        assert not decide_one(record(), role).permitted
        assert decide_one(record(), role, request(roles=["safeguarding_lead"])).permitted

    def test_any_recipient_actor_may_match(self) -> None:
        who = person(consent("c1", provision(actors=[actor("L9999"), actor(COUNCIL)])))
        assert decide_one(record(), who).permitted

    def test_a_custodian_limits_whose_records_are_covered(self) -> None:
        policy = policy_with(
            sources__gp={"text": "GP", "consent_required": True, "organisation": "Y12345"},
            roles__social_worker__sources=["chs", "asc", "gp"],
        )
        root = provision(actors=[actor(), actor(TRUST, custodian=True)])
        who = person(consent("c1", root), policy=policy)
        assert decide_one(record(), who, policy=policy).permitted
        gp = decide_one(record(source="gp"), who, policy=policy)
        assert gp.codes == ("no-consent",)

    def test_the_purpose_must_match(self) -> None:
        who = person(consent("c1", provision(purposes=["HOPERAT"])))
        assert decide_one(record(), who).codes == ("no-consent",)

    @pytest.mark.parametrize(
        ("actions", "applies"),
        [
            (["access"], True),
            (["disclose", "correct"], True),
            (["correct"], False),
            (["collect"], False),
        ],
    )
    def test_the_action_must_cover_viewing(self, actions: list[str], applies: bool) -> None:
        who = person(consent("c1", provision(actions=actions)))
        assert decide_one(record(), who).permitted is applies

    def test_class_limits_resource_types(self) -> None:
        who = person(consent("c1", provision(classes=["Condition"])))
        assert decide_one(record("Condition"), who).permitted
        assert not decide_one(record("Encounter"), who).permitted

    def test_security_labels_match_any_label(self) -> None:
        who = person(
            consent("c1", provision("deny", labels=[PSY, ETH])),
            consent("c0", recorded="2026-01-01"),
        )
        assert decide_one(record("Condition", ETH), who).consent == "Consent/c1/_history/1"
        assert decide_one(record("Condition"), who).consent == "Consent/c0/_history/1"

    def test_instances_are_matched_by_reference(self) -> None:
        root = provision("permit", children=[provision("deny", data=["Condition/secret"])])
        access = ConsentEngine(EXPLICIT).evaluate(request(), person(consent("c1", root)))
        assert not access.decide(record("Condition", id_="secret")).permitted
        assert access.decide(record("Condition", id_="other")).permitted


class TestNestedProvisions:
    def test_share_everything_except_mental_health(self) -> None:
        root = provision("permit", children=[provision("deny", labels=[PSY])])
        who = person(consent("c1", root))
        assert decide_one(record(), who).permitted
        d = decide_one(record("Condition", PSY), who)
        assert (d.effect, d.provision) == (Effect.DENY, "provision.provision[0]")
        assert d.deny_rules == ("objection", "restricted-categories")

    def test_refuse_everything_except_care_plans(self) -> None:
        root = provision("deny", children=[provision("permit", classes=["CarePlan"])])
        who = person(consent("c1", root))
        assert decide_one(record("CarePlan"), who).provision == "provision.provision[0]"
        assert decide_one(record("Encounter"), who).codes == ("consent-refused",)

    def test_a_deny_sibling_beats_a_permit_sibling(self) -> None:
        root = provision(
            "deny",
            children=[
                provision("permit", classes=["Condition"]),
                provision("deny", classes=["Condition"]),
            ],
        )
        d = decide_one(record("Condition"), person(consent("c1", root)))
        assert (d.effect, d.provision) == (Effect.DENY, "provision.provision[1]")

    def test_of_two_matching_permits_the_first_decides(self) -> None:
        root = provision(
            "deny",
            children=[
                provision("permit", classes=["CarePlan"]),
                provision("permit", actions=["use"]),
            ],
        )
        d = decide_one(record("CarePlan"), person(consent("c1", root)))
        assert d.provision == "provision.provision[0]"

    def test_a_nested_end_after_its_parent_does_not_extend_it(self) -> None:
        root = provision(
            "permit",
            end="2026-12-31",
            children=[provision("permit", classes=["CarePlan"], end="2027-06-30")],
        )
        d = decide_one(record("CarePlan"), person(consent("c1", root)))
        assert d.reasons[0].text.endswith("until 31 December 2026.")

    def test_exceptions_nest(self) -> None:
        root = provision(
            "permit",
            children=[
                provision(
                    "deny", labels=[PSY], children=[provision("permit", classes=["CarePlan"])]
                )
            ],
        )
        who = person(consent("c1", root))
        d = decide_one(record("CarePlan", PSY), who)
        # Allowed, and mental health is named on the path, so the restriction is lifted.
        assert (d.effect, d.provision) == (Effect.PERMIT, "provision.provision[0].provision[0]")
        assert d.alert_ig
        assert not decide_one(record("Condition", PSY), who).permitted

    def test_the_earliest_period_end_on_the_path_is_quoted(self) -> None:
        root = provision(
            "permit",
            end="2027-03-01",
            children=[provision("permit", classes=["CarePlan"], end="2026-12-31")],
        )
        d = decide_one(record("CarePlan"), person(consent("c1", root)))
        assert d.reasons[0].text.endswith("until 31 December 2026.")
        d = decide_one(record("Encounter"), person(consent("c1", root)))
        assert d.reasons[0].text.endswith("until 1 March 2027.")


class TestSensitiveCategories:
    def test_restricted_records_are_withheld_by_a_general_consent(self) -> None:
        for label in (PSY, ETH, SDV):
            d = decide_one(record("Condition", label), person(consent()))
            assert d.codes == ("restricted-category",)
            assert d.categories
        d = decide_one(record("Flag", SAFEGUARDING, source="asc"))
        assert d.codes == ("restricted-category",)

    def test_explicit_inclusion_releases_them_and_alerts_ig(self) -> None:
        who = person(consent("c1", provision(labels=[PSY])))
        d = decide_one(record("Condition", PSY), who)
        assert d.permitted
        assert d.alert_ig
        assert d.codes == ("consent-permits", "ig-alert")
        assert (
            d.reasons[1].text
            == "Mental health records are restricted: IG are told of every access."
        )

    def test_every_restricted_category_must_be_covered(self) -> None:
        who = person(consent("c1", provision(labels=[PSY])))
        assert decide_one(record("Condition", PSY, ETH), who).codes == ("restricted-category",)

    def test_a_role_grant_releases_them(self) -> None:
        d = decide_one(
            record("Flag", SAFEGUARDING, source="asc"), req=request(roles=["safeguarding_lead"])
        )
        assert d.permitted
        assert d.alert_ig
        assert d.rule == "own-records"

    def test_implied_sharing_does_not_cover_them(self) -> None:
        d = decide_one(record("Condition", PSY), policy=IMPLIED)
        assert d.codes == ("restricted-category",)
        amhp = request(roles=["approved_mental_health_professional"])
        assert decide_one(record("Condition", PSY), req=amhp, policy=IMPLIED).permitted

    @pytest.mark.parametrize("label", [SEX, HIV])
    def test_never_shared_records_are_withheld_whatever_permits_them(self, label: object) -> None:
        who = person(consent("c1", provision(labels=[label])))  # type: ignore[list-item]
        d = decide_one(record("Condition", label), who)  # type: ignore[arg-type]
        assert (d.rule, d.codes) == ("never-shared", ("never-shared",))
        bg = request(break_glass=BreakGlass(LONG_REASON))
        assert not decide_one(record("Condition", label), who, bg).permitted  # type: ignore[arg-type]


class TestRestrictedDemographics:
    def test_address_and_contact_details_are_stripped(self) -> None:
        who = person(restricted_demographics=True)
        d = decide_one(record("Patient", source="asc"), who)
        assert d.permitted
        assert "Patient.address" in d.redactions
        assert d.codes == ("own-record", "restricted-demographics")
        carer = decide_one(record("RelatedPerson", source="asc"), who)
        assert carer.redactions == ("RelatedPerson.address", "RelatedPerson.telecom")

    def test_nothing_is_stripped_otherwise(self) -> None:
        assert decide_one(record("Patient", source="asc")).redactions == ()
        who = person(restricted_demographics=True)
        assert decide_one(record("Encounter", source="asc"), who).redactions == ()


class TestBreakGlass:
    def test_stands_in_for_relationship_and_consent_for_a_limited_time(self) -> None:
        req = request(break_glass=BreakGlass(LONG_REASON))
        access = ConsentEngine(EXPLICIT).evaluate(req, person(relationships=[]))
        assert access.screen.rule == "break-glass"
        grant = access.break_glass
        assert grant is not None
        assert (grant.reason, grant.started_at, grant.expires_at) == (
            LONG_REASON,
            AT,
            AT + timedelta(hours=4),
        )
        assert grant.withheld_categories == {
            "mental_health",
            "substance_misuse",
            "domestic_abuse",
            "safeguarding",
            "sexual_health",
            "gender_recognition",
        }
        d = access.decide(record())
        assert (d.effect, d.rule) == (Effect.PERMIT, "break-glass")
        assert d.break_glass
        assert d.expires_at == AT + timedelta(hours=4)

    def test_every_decision_of_the_request_is_flagged(self) -> None:
        req = request(break_glass=BreakGlass(LONG_REASON))
        access = ConsentEngine(EXPLICIT).evaluate(req, person(consent()))
        for d in access.decide_all([record(), record(source="asc"), record("Condition", SEX)]):
            assert d.break_glass
            assert d.expires_at is not None

    def test_excluded_categories_are_withheld_even_with_a_grant(self) -> None:
        req = request(roles=["safeguarding_lead"], break_glass=BreakGlass(LONG_REASON))
        d = decide_one(record("Flag", SAFEGUARDING, source="asc"), req=req)
        assert d.codes == ("break-glass-excluded",)

    def test_a_policy_may_leave_a_category_available(self) -> None:
        policy = policy_with(break_glass__excluded_categories=["mental_health"])
        req = request(roles=["safeguarding_lead"], break_glass=BreakGlass(LONG_REASON))
        assert decide_one(
            record("Flag", SAFEGUARDING, source="asc"), req=req, policy=policy
        ).permitted
        social_worker = request(break_glass=BreakGlass(LONG_REASON))
        d = decide_one(record("Flag", SAFEGUARDING, source="asc"), req=social_worker, policy=policy)
        assert d.codes == ("restricted-category",)

    def test_a_recorded_objection_still_wins(self) -> None:
        req = request(break_glass=BreakGlass(LONG_REASON))
        who = person(consent("c1", provision("deny")), relationships=[])
        assert decide_one(record(), who, req).codes == ("consent-refused",)

    def test_an_emergency_continues_from_its_start(self) -> None:
        started = AT - timedelta(hours=3, minutes=59)
        req = request(break_glass=BreakGlass(LONG_REASON, started))
        d = decide_one(record(), person(relationships=[]), req)
        assert d.permitted
        assert d.expires_at == started + timedelta(hours=4)

    def test_an_invalid_request_is_denied_even_with_a_relationship(self) -> None:
        req = request(break_glass=BreakGlass("quick look"))
        assert ConsentEngine(EXPLICIT).evaluate(req, person()).break_glass is None
        assert ConsentEngine(EXPLICIT).evaluate(request(), person()).break_glass is None
        d = decide_one(record(source="asc"), req=req)
        assert (d.rule, d.codes, d.break_glass, d.expires_at) == (
            "break-glass",
            ("break-glass-reason",),
            True,
            None,
        )


class TestUnknownSource:
    def test_a_record_from_an_unlisted_system_is_withheld(self) -> None:
        d = decide_one(record(source="pharmacy"))
        assert (d.rule, d.codes, d.deny_rules) == ("source", ("unknown-source",), ("source",))


class TestUnreadableConsent:
    def test_withholds_shared_records_but_not_own_ones(self) -> None:
        who = person(consent("c1"), consent("c2", recorded=None))
        assert decide_one(record(), who).codes == ("unreadable-consent",)
        assert decide_one(record(source="asc"), who).permitted


class TestDefaults:
    def test_a_permissive_default_releases_what_nothing_decides(self) -> None:
        policy = policy_with(default="permit")
        who = person(restricted_demographics=True, policy=policy)
        d = decide_one(record("Patient"), who, policy=policy)
        assert (d.effect, d.rule) == (Effect.PERMIT, "default")
        assert d.codes == ("policy-default", "restricted-demographics")

    def test_with_no_voters_the_default_decides_the_screen(self) -> None:
        deny = ConsentEngine(EXPLICIT, voters=()).evaluate(request(), person())
        assert (deny.screen.effect, deny.screen.codes) == (Effect.DENY, ("policy-default",))
        permit = ConsentEngine(policy_with(default="permit"), voters=()).evaluate(
            request(), person()
        )
        assert (permit.screen.effect, permit.screen.rule) == (Effect.PERMIT, "default")

    def test_an_abstention_without_a_reason_gives_the_generic_one(self) -> None:
        class Screen(BaseVoter):
            rule = "allow"
            stages = frozenset({Stage.SCREEN})

            def screen(self, req: RequestContext) -> Vote:
                return Vote(Effect.PERMIT)

        engine = ConsentEngine(EXPLICIT, voters=(Screen,), redactors=())
        d = engine.evaluate(request(), person()).decide(record())
        assert (d.effect, d.rule, d.codes) == (Effect.DENY, "default", ("policy-default",))

    def test_only_enabled_voters_take_part(self) -> None:
        assert "implied-direct-care" not in {
            v.rule for v in ConsentEngine(EXPLICIT).resource_voters
        }
        assert "implied-direct-care" in {v.rule for v in ConsentEngine(IMPLIED).resource_voters}
        assert ExplicitConsentVoter in VOTERS


class TestReuse:
    def test_records_alike_share_one_decision(self) -> None:
        access = ConsentEngine(EXPLICIT).evaluate(request(), person(consent()))
        assert access.decide(record(id_="a")) is access.decide(record(id_="b"))

    def test_texts_never_carry_the_record(self) -> None:
        access = ConsentEngine(EXPLICIT).evaluate(
            request(), person(consent(), restricted_demographics=True)
        )
        for cand in (
            record(id_="zz-1"),
            record("Condition", PSY, id_="zz-2"),
            record("Patient", source="asc", id_="zz-3"),
        ):
            for r in access.decide(cand).reasons:
                assert "zz-" not in r.text
                assert "PSY" not in r.text


class TestDocumentedExamples:
    def test_share_everything_except_mental_health_reads_as_documented(self) -> None:
        root = provision(
            "permit",
            start="2026-03-01",
            end="2027-03-01",
            actors=[actor()],
            purposes=["TREAT"],
            children=[provision("deny", labels=[PSY])],
        )
        who = person(consent("c1", root))
        shown = decide_one(record(), who)
        assert shown.reasons[0].text == (
            "Shown: the consent recorded 1 March 2026 by Sam Patel allows sharing community "
            "health records with adult social care for direct care until 1 March 2027."
        )
        withheld = decide_one(record("Condition", PSY), who)
        assert withheld.reasons[0].text == (
            "Withheld: mental health records are excluded by the person's consent (recorded "
            "1 March 2026 by Sam Patel)."
        )
        assert withheld.decided_by == "Consent/c1/_history/1"

    def test_no_relationship_reads_as_documented(self) -> None:
        access = ConsentEngine(EXPLICIT).evaluate(
            request(), person(relationships=[allocated("W7")])
        )
        assert access.screen.reasons[0].text == (
            "Withheld: you have no care relationship with this person (you are not allocated, "
            "and your team holds no open referral or episode for them)."
        )
