"""Care relationships read from FHIR resources, and redaction of released records (pure)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bridge.access.candidates import candidate_of, category_of, labels_of, redact
from bridge.access.relationships import AccessConfig, relationships_of
from bridge.store.resources import SourceRef, StoredResource
from consent import Label, Period, Relationship, RelationshipKind

LONDON = ZoneInfo("Europe/London")
WORKERS = "https://council.example/Id/worker"
TEAMS = "https://carebridge.example.org/Id/team"
HEALTH_TEAMS = "https://trust.example/Id/team"
CONFIG = AccessConfig(
    worker_systems=frozenset({WORKERS}), team_systems=frozenset({TEAMS, HEALTH_TEAMS})
)


def ref(system: str, value: str, type_: str = "Practitioner") -> dict[str, Any]:
    return {"type": type_, "identifier": {"system": system, "value": value}}


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=LONDON)


class TestRelationships:
    def test_allocation_gives_worker_and_team_for_the_inclusive_period(self) -> None:
        team = {
            "resourceType": "CareTeam",
            "status": "inactive",
            "period": {"start": "2026-01-05", "end": "2026-02-10"},
            "participant": [
                {"member": ref(WORKERS, "W1"), "onBehalfOf": ref(TEAMS, "T1", "Organization")},
                {"member": ref(TEAMS, "T1", "Organization")},
            ],
        }
        period = Period(at("2026-01-05"), at("2026-02-11"))  # the end day is included
        assert relationships_of([team], CONFIG, LONDON) == [
            Relationship(RelationshipKind.ALLOCATED_WORKER, period, user="W1"),
            Relationship(RelationshipKind.ALLOCATED_TEAM, period, team="T1"),
        ]

    def test_participant_period_wins_over_the_team_period(self) -> None:
        team = {
            "resourceType": "CareTeam",
            "period": {"start": "2026-01-01"},
            "participant": [{"member": ref(WORKERS, "W2"), "period": {"start": "2026-03-01"}}],
        }
        (rel,) = relationships_of([team], CONFIG, LONDON)
        assert rel.period == Period(at("2026-03-01"), None)

    def test_open_referral_and_episode_by_status(self) -> None:
        resources = [
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "performer": [ref(HEALTH_TEAMS, "DN", "HealthcareService")],
            },
            {
                "resourceType": "ServiceRequest",
                "status": "completed",
                "performer": [ref(TEAMS, "T7", "Organization")],
            },
            {
                "resourceType": "EpisodeOfCare",
                "status": "active",
                "period": {"start": "2026-02-01"},
                "team": [ref(TEAMS, "T3", "CareTeam")],
                "careManager": ref(WORKERS, "W3"),
            },
            {
                "resourceType": "EpisodeOfCare",
                "status": "finished",
                "team": [ref(TEAMS, "T4", "CareTeam")],
            },
        ]
        found = {(r.kind, r.user or r.team) for r in relationships_of(resources, CONFIG, LONDON)}
        assert found == {
            (RelationshipKind.OPEN_REFERRAL, "DN"),
            (RelationshipKind.OPEN_EPISODE, "T3"),
            (RelationshipKind.ALLOCATED_WORKER, "W3"),
        }

    def test_unknown_systems_errors_and_unreadable_periods_grant_nothing(self) -> None:
        resources = [
            {"resourceType": "CareTeam", "participant": [{"member": ref("urn:other", "W1")}]},
            {
                "resourceType": "CareTeam",
                "status": "entered-in-error",
                "participant": [{"member": ref(WORKERS, "W1")}],
            },
            {
                "resourceType": "CareTeam",
                "period": {"start": "not a date"},
                "participant": [{"member": ref(WORKERS, "W1")}],
            },
            {"resourceType": "CareTeam", "participant": [{"member": {"display": "no id"}}]},
            {"resourceType": "Condition", "subject": ref(WORKERS, "W1")},
        ]
        assert relationships_of(resources, CONFIG, LONDON) == []

    def test_duplicates_are_listed_once(self) -> None:
        team = {"resourceType": "CareTeam", "participant": [{"member": ref(WORKERS, "W1")}]}
        assert len(relationships_of([team, copy.deepcopy(team)], CONFIG, LONDON)) == 1


class TestCandidates:
    def test_labels_category_and_source(self) -> None:
        content = {
            "resourceType": "Condition",
            "meta": {"security": [{"system": "http://x", "code": "PSY"}, {"code": "no-system"}]},
            "category": [{"coding": [{"system": "s", "code": "problem-list-item"}]}],
        }
        stored = StoredResource(
            "Condition",
            "c1",
            1,
            datetime(2026, 1, 1, tzinfo=UTC),
            False,
            SourceRef("chs", "problem", "P1"),
            "person-1",
            ("PSY",),
            content,
        )
        candidate = candidate_of(stored)
        assert candidate.source_system == "chs"
        assert candidate.security_labels == {Label("http://x", "PSY")}
        assert candidate.category == "problem-list-item"
        assert labels_of({}) == frozenset()
        assert category_of({"category": "odd"}) is None

    def test_a_record_without_a_source_is_not_from_a_known_system(self) -> None:
        stored = StoredResource(
            "Flag", "f1", 1, datetime(2026, 1, 1, tzinfo=UTC), False, None, "p", (), {}
        )
        assert candidate_of(stored).source_system == "carebridge"


class TestRedact:
    def test_strips_nested_elements_in_lists(self) -> None:
        patient = {
            "resourceType": "Patient",
            "address": [{"line": ["1 Elm Row"]}],
            "telecom": [{"value": "0113"}],
            "contact": [{"name": {"text": "Sam"}, "address": {"city": "Leeds"}}, {"x": 1}],
            "name": [{"family": "Ng"}],
        }
        out = redact(patient, ("Patient.address", "Patient.telecom", "Patient.contact.address"))
        assert out == {
            "resourceType": "Patient",
            "contact": [{"name": {"text": "Sam"}}, {"x": 1}],
            "name": [{"family": "Ng"}],
        }
        assert "address" in patient  # the stored content is not changed

    def test_paths_of_other_types_do_nothing(self) -> None:
        related = {"resourceType": "RelatedPerson", "address": [{"city": "Leeds"}]}
        assert redact(related, ("Patient.address",)) == related

    @given(
        st.recursive(
            st.none() | st.integers() | st.text(max_size=3),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["address", "telecom", "a", "b"]), inner, max_size=4
                )
            ),
            max_leaves=12,
        )
    )
    def test_never_leaves_a_named_element_and_never_changes_the_input(self, tree: Any) -> None:
        resource = {"resourceType": "Patient", "address": tree, "a": tree}
        before = copy.deepcopy(resource)
        out = redact(resource, ("Patient.address", "Patient.a.telecom"))
        assert resource == before
        assert "address" not in out

        a = out.get("a")
        top = [a] if isinstance(a, dict) else (a if isinstance(a, list) else [])
        assert all("telecom" not in n for n in top if isinstance(n, dict))
