"""Linking on ingest: NHS number first, then scored demographics with thresholds."""

from __future__ import annotations

import pytest

from bridge.core.settings import Settings
from bridge.identity import service as identity_service
from bridge.identity.scoring import Thresholds
from tests.identity.builders import CHS_SYSTEM, INVALID_NHS, NHS, person
from tests.identity.conftest import World


def chs(rid: str, **kw: object) -> dict[str, object]:
    return person(rid, local_system=CHS_SYSTEM, **kw)  # type: ignore[arg-type]


class TestNhsNumber:
    def test_same_valid_number_links_one_person(self, world: World) -> None:
        first = world.add(person("ASC1", nhs_number=NHS[0]))
        second = world.add(chs("CHS1", nhs_number=NHS[0], family="Entirely-Different"), "chs")
        assert first.action == "created"
        assert (second.action, second.rule) == ("linked", "nhs-number")
        assert second.person_id == first.person_id
        assert second.evidence["decision"] == "nhs-number"

        person_res = world.resources.read("Person", first.person_id or "")
        assert person_res.content is not None
        refs = [link["target"]["reference"] for link in person_res.content["link"]]
        assert refs == [f"Patient/{first.patient_id}", f"Patient/{second.patient_id}"]
        assert {link["assurance"] for link in person_res.content["link"]} == {"level3"}
        # The Patient rows point at the Person (what the person view reads).
        for pid in (first.patient_id, second.patient_id):
            assert world.resources.read("Patient", pid).person_id == first.person_id

    def test_a_number_failing_its_check_digit_is_not_used(self, world: World) -> None:
        first = world.add(person("ASC1", invalid_nhs_number=INVALID_NHS, family="Abernethy"))
        second = world.add(chs("CHS1", invalid_nhs_number=INVALID_NHS, family="Okafor"), "chs")
        assert second.person_id != first.person_id

    def test_different_valid_numbers_are_never_linked(self, world: World) -> None:
        first = world.add(person("ASC1", nhs_number=NHS[0]))
        second = world.add(chs("CHS1", nhs_number=NHS[1]), "chs")
        assert second.person_id != first.person_id
        assert second.queued == ()

    def test_relinking_an_unchanged_patient_changes_nothing(self, world: World) -> None:
        first = world.add(person("ASC1", nhs_number=NHS[0]))
        world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        again = world.link(world.resources.read("Patient", first.patient_id))
        assert (again.action, again.person_id) == ("unchanged", first.person_id)
        assert len(world.ids.link_history(first.patient_id)) == 1


class TestScore:
    def test_auto_link_at_or_above_the_threshold(self, world: World) -> None:
        first = world.add(chs("CHS1", given="Margaret", nhs_number=NHS[0]), "chs")
        second = world.add(person("ASC1", given="Peggy"))
        assert (second.action, second.rule) == ("linked", "score")
        assert second.person_id == first.person_id
        assert second.score is not None
        assert second.score >= world.thresholds.auto
        fields = {f["field"]: f for f in second.evidence["fields"]}
        assert fields["given_name"]["agreement"] == "nickname"
        assert fields["birth_date"]["agreement"] == "exact"
        link = world.ids.active_link(second.patient_id)
        assert link is not None
        assert (link.rule, link.score) == ("score", second.score)
        person_res = world.resources.read("Person", first.person_id or "").content
        assert person_res is not None
        assert person_res["link"][1]["assurance"] == "level2"

    def test_between_the_thresholds_the_pair_is_queued(self, world: World) -> None:
        first = world.add(person("ASC1", given="Philippa"))
        second = world.add(chs("CHS1", given="Margaret"), "chs")
        assert second.action == "created"
        assert second.person_id != first.person_id
        assert len(second.queued) == 1
        cand = world.ids.get_candidate(second.queued[0])
        assert cand is not None
        assert cand.status == "open"
        assert {cand.patient_a, cand.patient_b} == {first.patient_id, second.patient_id}
        assert world.thresholds.review <= cand.score < world.thresholds.auto
        assert cand.evidence["summary"].startswith("needs review")
        # Linking again refreshes the pair rather than queueing it twice.
        again = world.link(world.resources.read("Patient", second.patient_id))
        assert again.queued == ()
        assert world.ids.count_candidates("open") == 1

    def test_below_the_review_threshold_nothing_happens(self, world: World) -> None:
        first = world.add(person("ASC1"))
        second = world.add(
            chs("CHS1", given="Chidi", family="Okafor", gender="male", postcode="BD3 9QQ"), "chs"
        )
        assert second.person_id != first.person_id
        assert second.queued == ()

    def test_thresholds_come_from_settings(self) -> None:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, match_auto_threshold=20, match_review_threshold=3
        )
        assert identity_service.thresholds_from_settings(settings) == Thresholds(20, 3)

    def test_settings_refuse_a_review_threshold_above_auto(self) -> None:
        with pytest.raises(ValueError, match="match_review_threshold"):
            Settings(  # type: ignore[call-arg]
                _env_file=None, match_auto_threshold=5, match_review_threshold=6
            )

    def test_a_lower_auto_threshold_links_what_was_queued(self, world: World) -> None:
        world.thresholds = Thresholds(auto=9.0, review=5.0)
        first = world.add(person("ASC1", given="Philippa"))
        second = world.add(chs("CHS1", given="Margaret"), "chs")
        assert second.person_id == first.person_id

    def test_two_persons_above_the_threshold_go_to_review(self, world: World) -> None:
        world.add(person("ASC1", nhs_number=NHS[0]))
        world.add(chs("CHS1", nhs_number=NHS[1]), "chs")
        third = world.add(person("ASC2"))
        assert third.action == "created"
        assert len(third.queued) == 2


class TestMoves:
    def test_a_corrected_record_moves_from_its_own_person(self, world: World) -> None:
        first = world.add(person("ASC1", birth_date="1950-01-01", postcode="BD3 9QQ"))
        other = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        assert other.person_id != first.person_id
        moved = world.add(person("ASC1"))  # the social care record is corrected
        assert (moved.action, moved.person_id) == ("moved", other.person_id)
        history = world.ids.link_history(first.patient_id)
        assert [(h.rule, h.ended_reason) for h in history] == [("new", "relinked"), ("score", None)]
        old = world.resources.read("Person", first.person_id or "").content
        assert old is not None
        assert old["active"] is False
        assert old["link"] == [
            {"target": {"reference": f"Person/{other.person_id}"}, "assurance": "level3"}
        ]

    def test_a_rejected_pair_is_never_linked_automatically(self, world: World) -> None:
        first = world.add(person("ASC1", given="Philippa"))
        second = world.add(chs("CHS1", given="Margaret"), "chs")
        identity_service.decide_match(
            world.session,
            candidate_id=second.queued[0],
            accept=False,
            note=None,
            actor=identity_service.SYSTEM_ACTOR,
            crypto=world.crypto,
            clock=world.clock,
            audit=world.audit,
        )
        world.thresholds = Thresholds(auto=5.0, review=1.0)
        again = world.link(world.resources.read("Patient", second.patient_id))
        assert again.person_id != first.person_id
        assert again.queued == ()


class TestResourcesOfPerson:
    def test_resources_follow_their_patient_into_the_person(self, world: World) -> None:
        asc = world.put(person("ASC1", nhs_number=NHS[0]))
        condition = world.put(
            {
                "resourceType": "Condition",
                "id": "C1",
                "subject": {"reference": f"Patient/{asc.id}"},
                "code": {"text": "falls"},
            },
            "chs",
        )
        # Stored before its Patient was linked: no Person yet, remembered for later.
        assert (
            identity_service.attach_resource(
                world.session, resource=condition, crypto=world.crypto, clock=world.clock
            )
            is None
        )
        linked = world.link(asc)
        chs_patient = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        assert chs_patient.person_id == linked.person_id
        got = identity_service.resources_of_person(
            world.session, person_id=linked.person_id or "", crypto=world.crypto
        )
        assert got == [
            ("Patient", asc.id),
            ("Patient", chs_patient.patient_id),
            ("Condition", condition.id),
        ]
        assert world.resources.read("Condition", condition.id).person_id == linked.person_id

    def test_a_resource_stored_after_linking_is_pointed_at_once(self, world: World) -> None:
        linked = world.add(person("ASC1"))
        flag = world.put(
            {
                "resourceType": "Flag",
                "id": "F1",
                "status": "active",
                "code": {"text": "key safe"},
                "subject": {"reference": f"Patient/{linked.patient_id}"},
            }
        )
        got = identity_service.attach_resource(
            world.session, resource=flag, crypto=world.crypto, clock=world.clock
        )
        assert got == linked.person_id
        assert world.resources.read("Flag", flag.id).person_id == linked.person_id


class TestAudit:
    def test_links_and_queued_pairs_are_audited(self, world: World) -> None:
        world.add(person("ASC1", nhs_number=NHS[0]))
        world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        world.add(chs("CHS2", given="Margaret"), "chs")
        entries = world.audit_actions()
        assert [(a, o, d.get("rule")) for a, o, d in entries] == [
            ("identity.link", "success", "new"),
            ("identity.link", "success", "nhs-number"),
            ("identity.link", "success", "new"),
            ("identity.link", "partial", None),
        ]
        assert entries[-1][2]["queued_for_review"]
