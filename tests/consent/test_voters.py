"""Each voter on its own: one class per voter, one test per scenario."""

from __future__ import annotations

from datetime import timedelta

from consent import BreakGlass, Candidate, Effect, Label, PersonContext, Policy
from consent.context import RequestContext, ResourceContext
from consent.model import AccessRequest
from consent.policies import (
    ABSTAIN,
    REDACTORS,
    VOTERS,
    BaseVoter,
    Stage,
)
from consent.policies.break_glass import BreakGlassVoter
from consent.policies.break_glass_scope import BreakGlassScopeVoter
from consent.policies.explicit_consent import ExplicitConsentVoter
from consent.policies.implied_direct_care import ImpliedDirectCareVoter
from consent.policies.never_shared import NeverSharedVoter
from consent.policies.objection import ObjectionVoter
from consent.policies.own_records import OwnRecordsVoter
from consent.policies.purpose import PurposeVoter
from consent.policies.relationship import RelationshipVoter
from consent.policies.restricted_categories import RestrictedCategoriesVoter
from consent.policies.restricted_demographics import RestrictedDemographicsRedactor
from consent.policies.role import RoleVoter
from consent.policies.unreadable_consent import UnreadableConsentVoter
from tests.consent.builders import (
    AT,
    EXPLICIT,
    GENDER,
    IMPLIED,
    PSY,
    SAFEGUARDING,
    SEX,
    consent,
    person,
    provision,
    record,
    request,
)

LONG_REASON = "Found collapsed at home, need medicines"


def ctx(
    req: AccessRequest | None = None, who: PersonContext | None = None, policy: Policy = EXPLICIT
) -> RequestContext:
    return RequestContext(policy, req or request(), who or person(policy=policy))


def res(req: RequestContext, cand: Candidate) -> ResourceContext:
    return req.resource(cand, req.policy.sources[cand.source_system])


def codes(vote_reasons: tuple[object, ...]) -> list[str]:
    return [r.code for r in vote_reasons]  # type: ignore[attr-defined]


class TestRegistry:
    def test_voters_have_unique_rules_and_stages(self) -> None:
        rules = [v.rule for v in VOTERS]
        assert len(rules) == len(set(rules))
        assert all(v.stages for v in VOTERS)
        assert [r(EXPLICIT).rule for r in REDACTORS] == ["restricted-demographics"]

    def test_base_voter_abstains_everywhere(self) -> None:
        voter = BaseVoter(EXPLICIT)
        req = ctx()
        assert BaseVoter.enabled(EXPLICIT)
        assert voter.screen(req) is ABSTAIN
        assert voter.vote(req, res(req, record())) is ABSTAIN
        assert Stage.SCREEN.value == "screen"


class TestRoleVoter:
    def test_abstains_for_a_known_role(self) -> None:
        assert RoleVoter(EXPLICIT).screen(ctx()) is ABSTAIN

    def test_denies_a_user_with_no_policy_role(self) -> None:
        vote = RoleVoter(EXPLICIT).screen(ctx(request(roles=["ig_officer"])))
        assert vote.effect is Effect.DENY
        assert codes(vote.reasons) == ["role-not-permitted"]

    def test_denies_a_source_the_role_does_not_cover(self) -> None:
        spec = EXPLICIT.spec.model_dump()
        spec["roles"]["reablement_officer"]["sources"] = ["asc"]
        policy = Policy.from_mapping(spec)
        req = ctx(request(roles=["reablement_officer"]), policy=policy)
        vote = RoleVoter(policy).vote(req, res(req, record()))
        assert codes(vote.reasons) == ["role-source-not-permitted"]
        assert "community health" in vote.reasons[0].text
        assert RoleVoter(policy).vote(req, res(req, record(source="asc"))) is ABSTAIN


class TestPurposeVoter:
    def test_abstains_for_direct_care(self) -> None:
        assert PurposeVoter(EXPLICIT).screen(ctx()) is ABSTAIN

    def test_denies_another_purpose(self) -> None:
        vote = PurposeVoter(EXPLICIT).screen(ctx(request(purpose="HRESCH")))
        assert codes(vote.reasons) == ["purpose-not-permitted"]
        assert "direct care" in vote.reasons[0].text


class TestRelationshipVoter:
    def test_permits_an_allocated_worker(self) -> None:
        vote = RelationshipVoter(EXPLICIT).screen(ctx())
        assert vote.effect is Effect.PERMIT
        assert vote.reasons[0].text == (
            "Shown: you are this person's allocated worker (since 2 May 2026)."
        )

    def test_says_nothing_of_an_open_start(self) -> None:
        from consent import Period, Relationship, RelationshipKind

        rel = Relationship(RelationshipKind.OPEN_REFERRAL, Period(), team="T02")
        vote = RelationshipVoter(EXPLICIT).screen(ctx(who=person(relationships=[rel])))
        assert vote.reasons[0].text == "Shown: your team holds an open referral for this person."

    def test_denies_without_a_relationship(self) -> None:
        vote = RelationshipVoter(EXPLICIT).screen(ctx(who=person(relationships=[])))
        assert vote.effect is Effect.DENY
        assert codes(vote.reasons) == ["no-care-relationship"]

    def test_abstains_when_break_glass_stands_in(self) -> None:
        req = request(break_glass=BreakGlass(LONG_REASON))
        assert RelationshipVoter(EXPLICIT).screen(ctx(req, person(relationships=[]))) is ABSTAIN


class TestBreakGlassVoter:
    def test_abstains_without_break_glass(self) -> None:
        req = ctx()
        assert BreakGlassVoter(EXPLICIT).screen(req) is ABSTAIN
        assert BreakGlassVoter(EXPLICIT).vote(req, res(req, record())) is ABSTAIN

    def test_permits_a_valid_request_until_it_expires(self) -> None:
        req = ctx(request(break_glass=BreakGlass(LONG_REASON)))
        vote = BreakGlassVoter(EXPLICIT).screen(req)
        assert vote.effect is Effect.PERMIT
        assert "until 15:00 on 1 June 2026" in vote.reasons[0].text
        assert BreakGlassVoter(EXPLICIT).vote(req, res(req, record())).effect is Effect.PERMIT

    def test_abstains_for_records_that_need_no_consent(self) -> None:
        req = ctx(request(break_glass=BreakGlass(LONG_REASON)))
        assert BreakGlassVoter(EXPLICIT).vote(req, res(req, record(source="asc"))) is ABSTAIN

    def test_denies_once_per_problem(self) -> None:
        req = request(
            roles=["reablement_officer"],
            break_glass=BreakGlass("help", AT - timedelta(hours=5)),
        )
        vote = BreakGlassVoter(EXPLICIT).screen(ctx(req))
        assert codes(vote.reasons) == [
            "break-glass-role",
            "break-glass-reason",
            "break-glass-expired",
        ]
        assert "at least 20 characters" in vote.reasons[1].text
        assert "from 06:00 on 1 June 2026 to 10:00 on 1 June 2026" in vote.reasons[2].text

    def test_a_start_in_the_future_is_not_in_effect(self) -> None:
        req = request(break_glass=BreakGlass(LONG_REASON, AT + timedelta(minutes=5)))
        assert codes(BreakGlassVoter(EXPLICIT).screen(ctx(req)).reasons) == ["break-glass-expired"]


class TestBreakGlassScopeVoter:
    def test_denies_an_excluded_category_under_break_glass(self) -> None:
        req = ctx(request(break_glass=BreakGlass(LONG_REASON)))
        vote = BreakGlassScopeVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY)))
        assert codes(vote.reasons) == ["break-glass-excluded"]
        assert vote.reasons[0].text.startswith("Withheld: mental health records")

    def test_abstains_otherwise(self) -> None:
        plain = ctx()
        assert (
            BreakGlassScopeVoter(EXPLICIT).vote(plain, res(plain, record("Condition", PSY)))
            is ABSTAIN
        )
        req = ctx(request(break_glass=BreakGlass(LONG_REASON)))
        assert BreakGlassScopeVoter(EXPLICIT).vote(req, res(req, record())) is ABSTAIN


class TestNeverSharedVoter:
    def test_denies_sexual_health_and_gender_recognition(self) -> None:
        req = ctx()
        vote = NeverSharedVoter(EXPLICIT).vote(req, res(req, record("Condition", SEX, GENDER)))
        assert vote.reasons[0].text == (
            "Withheld: sexual health and gender recognition records are never shared with "
            "adult social care."
        )

    def test_abstains_for_other_records(self) -> None:
        req = ctx()
        assert NeverSharedVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY))) is ABSTAIN


class TestUnreadableConsentVoter:
    def test_denies_shared_records_while_a_consent_is_unreadable(self) -> None:
        req = ctx(who=person(consent("bad", recorded=None)))
        vote = UnreadableConsentVoter(EXPLICIT).vote(req, res(req, record()))
        assert codes(vote.reasons) == ["unreadable-consent"]
        assert vote.consent == "Consent/bad"
        assert UnreadableConsentVoter(EXPLICIT).vote(req, res(req, record(source="asc"))) is ABSTAIN

    def test_abstains_when_every_consent_is_readable(self) -> None:
        req = ctx(who=person(consent()))
        assert UnreadableConsentVoter(EXPLICIT).vote(req, res(req, record())) is ABSTAIN


class TestObjectionVoter:
    def test_a_blanket_deny_is_a_refusal(self) -> None:
        req = ctx(who=person(consent("c1", provision("deny"), recorded_by=None)))
        vote = ObjectionVoter(EXPLICIT).vote(req, res(req, record()))
        assert codes(vote.reasons) == ["consent-refused"]
        assert vote.reasons[0].text == (
            "Withheld: the person's decision recorded 1 March 2026 does not allow sharing "
            "community health records with adult social care."
        )
        assert (vote.consent, vote.provision) == ("Consent/c1/_history/1", "provision")

    def test_a_limited_deny_is_an_exclusion_naming_the_category(self) -> None:
        root = provision("permit", children=[provision("deny", labels=[PSY])])
        req = ctx(who=person(consent("c1", root)))
        vote = ObjectionVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY)))
        assert codes(vote.reasons) == ["excluded-by-consent"]
        assert vote.reasons[0].text.startswith("Withheld: mental health records are excluded")
        assert vote.provision == "provision.provision[0]"
        # The same vote is reused for the same provision, source, type and categories.
        assert ObjectionVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY))) is vote

    def test_an_exclusion_by_type_names_the_records_in_plain_words(self) -> None:
        root = provision("permit", children=[provision("deny", classes=["MedicationStatement"])])
        req = ctx(who=person(consent("c1", root)))
        vote = ObjectionVoter(EXPLICIT).vote(req, res(req, record("MedicationStatement")))
        assert vote.reasons[0].text.startswith("Withheld: medicine records are excluded")
        other = ObjectionVoter(EXPLICIT).vote(req, res(req, record("Condition")))
        assert other is ABSTAIN

    def test_abstains_without_a_consent(self) -> None:
        req = ctx()
        assert ObjectionVoter(EXPLICIT).vote(req, res(req, record())) is ABSTAIN


class TestRestrictedCategoriesVoter:
    def test_denies_an_uncovered_restricted_category(self) -> None:
        req = ctx(who=person(consent()))
        vote = RestrictedCategoriesVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY)))
        assert codes(vote.reasons) == ["restricted-category"]

    def test_a_role_grant_covers_it(self) -> None:
        req = ctx(request(roles=["safeguarding_lead"]))
        cand = record("Flag", SAFEGUARDING, source="asc")
        assert RestrictedCategoriesVoter(EXPLICIT).vote(req, res(req, cand)) is ABSTAIN

    def test_a_permitting_consent_naming_it_covers_it(self) -> None:
        root = provision("permit", children=[provision("permit", labels=[PSY])])
        req = ctx(who=person(consent("c1", root)))
        assert (
            RestrictedCategoriesVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY)))
            is ABSTAIN
        )

    def test_abstains_for_unrestricted_records(self) -> None:
        req = ctx()
        assert RestrictedCategoriesVoter(EXPLICIT).vote(req, res(req, record())) is ABSTAIN


class TestExplicitConsentVoter:
    def test_permits_what_the_consent_permits(self) -> None:
        root = provision("permit", end="2027-02-28", labels=[PSY])
        req = ctx(who=person(consent("c1", root)))
        vote = ExplicitConsentVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY)))
        assert vote.effect is Effect.PERMIT
        assert vote.reasons[0].text == (
            "Shown: the consent recorded 1 March 2026 by Sam Patel allows sharing community "
            "health records, explicitly including mental health records with adult social "
            "care for direct care until 28 February 2027."
        )
        assert ExplicitConsentVoter(EXPLICIT).vote(req, res(req, record("Condition", PSY))) is vote

    def test_abstains_with_a_reason_when_no_consent_applies(self) -> None:
        req = ctx()
        vote = ExplicitConsentVoter(EXPLICIT).vote(req, res(req, record()))
        assert vote.effect is Effect.ABSTAIN
        assert codes(vote.reasons) == ["no-consent"]

    def test_abstains_on_a_deny_and_for_records_needing_no_consent(self) -> None:
        req = ctx(who=person(consent("c1", provision("deny"))))
        assert ExplicitConsentVoter(EXPLICIT).vote(req, res(req, record())) is ABSTAIN
        assert ExplicitConsentVoter(EXPLICIT).vote(req, res(req, record(source="asc"))) is ABSTAIN


class TestImpliedDirectCareVoter:
    def test_takes_part_only_under_the_implied_preset(self) -> None:
        assert ImpliedDirectCareVoter.enabled(IMPLIED)
        assert not ImpliedDirectCareVoter.enabled(EXPLICIT)

    def test_permits_within_a_care_relationship(self) -> None:
        req = ctx(policy=IMPLIED)
        vote = ImpliedDirectCareVoter(IMPLIED).vote(req, res(req, record()))
        assert codes(vote.reasons) == ["implied-direct-care"]

    def test_abstains_without_a_relationship_or_for_own_records(self) -> None:
        no_rel = ctx(
            request(break_glass=BreakGlass(LONG_REASON)),
            person(relationships=[], policy=IMPLIED),
            IMPLIED,
        )
        assert ImpliedDirectCareVoter(IMPLIED).vote(no_rel, res(no_rel, record())) is ABSTAIN
        req = ctx(policy=IMPLIED)
        assert ImpliedDirectCareVoter(IMPLIED).vote(req, res(req, record(source="asc"))) is ABSTAIN


class TestOwnRecordsVoter:
    def test_permits_records_needing_no_consent(self) -> None:
        req = ctx()
        vote = OwnRecordsVoter(EXPLICIT).vote(req, res(req, record(source="asc")))
        assert vote.reasons[0].text == (
            "Shown: this adult social care record is available to your role for this person's care."
        )
        assert OwnRecordsVoter(EXPLICIT).vote(req, res(req, record())) is ABSTAIN


class TestRestrictedDemographicsRedactor:
    def test_strips_address_and_contact_details(self) -> None:
        req = ctx(who=person(restricted_demographics=True))
        paths, note = RestrictedDemographicsRedactor(EXPLICIT).redact(
            req, res(req, record("Patient", source="asc"))
        )
        assert paths == (
            "Patient.address",
            "Patient.telecom",
            "Patient.contact.address",
            "Patient.contact.telecom",
        )
        assert note is not None
        assert note.code == "restricted-demographics"

    def test_leaves_other_types_and_other_people_alone(self) -> None:
        req = ctx(who=person(restricted_demographics=True))
        assert RestrictedDemographicsRedactor(EXPLICIT).redact(req, res(req, record())) == (
            (),
            None,
        )
        plain = ctx()
        assert RestrictedDemographicsRedactor(EXPLICIT).redact(
            plain, res(plain, record("Patient"))
        ) == ((), None)


class TestResourceContext:
    def test_categories_come_from_labels_and_resource_category(self) -> None:
        spec = EXPLICIT.spec.model_dump()
        spec["categories"]["safeguarding"]["resource_categories"] = ["safeguarding-concern"]
        policy = Policy.from_mapping(spec)
        req = ctx(policy=policy)
        facts = res(
            req, record("Flag", PSY, SEX, Label("urn:x", "Y"), category="safeguarding-concern")
        )
        assert facts.categories == {"mental_health", "sexual_health", "safeguarding"}
        assert facts.restricted == {"mental_health", "safeguarding"}
        assert facts.never_shared == {"sexual_health"}
        assert res(req, record("Flag", category="problem-list-item")).categories == frozenset()
