"""The review queue over real HTTP: list with evidence, accept, reject; decisions audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from bridge.auth.roles import Role
from bridge.identity import service as identity_service
from bridge.identity.scoring import Thresholds
from bridge.store.db import transaction
from bridge.store.identity import IdentityRepository
from bridge.store.models import AuditEntry
from bridge.store.resources import ResourceRepository, SourceRef
from tests.identity.builders import CHS_SYSTEM, person

Headers = Callable[..., dict[str, str]]


def _queue_pair(app: FastAPI) -> dict[str, Any]:
    """Store two records that score between the thresholds; return their ids."""
    state = app.state
    out: dict[str, Any] = {}
    with transaction(state.session_factory) as session:
        repo = ResourceRepository(session, crypto=state.crypto, clock=state.clock)
        for key, system, body in (
            ("a", "asc", person("ASC1", given="Philippa")),
            ("b", "chs", person("CHS1", given="Margaret", local_system=CHS_SYSTEM)),
        ):
            body.pop("id")
            stored = repo.put(body, source=SourceRef(system, "person", f"{key}1")).stored
            outcome = identity_service.link_patient(
                session,
                patient=stored,
                crypto=state.crypto,
                clock=state.clock,
                audit=state.audit,
                thresholds=Thresholds(),
            )
            out[key] = stored.id
            out[f"person_{key}"] = outcome.person_id
            out["queued"] = outcome.queued
    assert len(out["queued"]) == 1
    out["id"] = out["queued"][0]
    return out


def _audit(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    with app.state.session_factory() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor_user, AuditEntry.detail).order_by(
                AuditEntry.seq
            )
        ).all()
    return [(a, u, json.loads(d)) for a, u, d in rows]


class TestList:
    def test_open_pairs_with_their_evidence(self, app: FastAPI, client: Any, auth: Headers) -> None:
        pair = _queue_pair(app)
        response = client.get("/admin/matches", headers=auth(Role.INTEGRATION_ENGINEER))
        assert response.status_code == 200
        body = response.json()
        assert body["open"] == 1
        (match,) = body["matches"]
        assert match["id"] == pair["id"]
        assert match["status"] == "open"
        assert {p["reference"] for p in match["patients"]} == {
            f"Patient/{pair['a']}",
            f"Patient/{pair['b']}",
        }
        assert {p["person"] for p in match["patients"]} == {
            f"Person/{pair['person_a']}",
            f"Person/{pair['person_b']}",
        }
        given = next(f for f in match["fields"] if f["field"] == "given_name")
        assert given["agreement"] == "different"
        assert given["weight"] < 0
        assert "different" in given["explanation"]
        assert match["summary"].startswith("needs review")
        assert match["thresholds"] == {"auto": 14.0, "review": 8.0}
        text = response.text
        for value in ("Philippa", "Margaret", "Quennell", "1941", "LS14"):
            assert value not in text

    def test_paging(self, app: FastAPI, client: Any, auth: Headers) -> None:
        pair = _queue_pair(app)
        first = client.get("/admin/matches?limit=1", headers=auth(Role.IG_OFFICER)).json()
        assert len(first["matches"]) == 1
        assert first["next"].endswith(f"after={pair['id']}")
        second = client.get(first["next"], headers=auth(Role.IG_OFFICER)).json()
        assert second["matches"] == []
        assert "next" not in second or second["next"] is None

    def test_social_workers_cannot_see_the_queue(self, client: Any, auth: Headers) -> None:
        response = client.get("/admin/matches", headers=auth(Role.SOCIAL_WORKER))
        assert response.status_code == 403
        assert "identity.review" in response.json()["detail"]


class TestDecide:
    def test_accept_links_the_two_persons_and_is_audited(
        self, app: FastAPI, client: Any, auth: Headers
    ) -> None:
        pair = _queue_pair(app)
        response = client.post(
            f"/admin/matches/{pair['id']}",
            json={"decision": "accept", "note": "same GP, same carer: one person"},
            headers=auth(Role.IG_OFFICER, user="ig-1"),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["match"]["status"] == "accepted"
        assert body["match"]["reviewer"] == "ig-1"
        assert body["person"] == f"Person/{pair['person_a']}"
        assert body["merge_id"] is not None
        with app.state.session_factory() as session:
            ids = IdentityRepository(session, crypto=app.state.crypto)
            link = ids.active_link(pair["b"])
            assert link is not None
            assert (link.person_id, link.rule) == (pair["person_a"], "reviewer")
            assert link.evidence["reviewer"] == "ig-1"
            cand = ids.get_candidate(pair["id"])
            assert cand is not None
            assert cand.note == "same GP, same carer: one person"
        action, user, detail = _audit(app)[-1]
        assert (action, user) == ("identity.link", "ig-1")
        assert detail["decision"] == "accept"
        assert detail["match_id"] == pair["id"]
        assert "note" not in detail  # free text stays out of the audit log
        # The queue is empty now.
        listed = client.get("/admin/matches", headers=auth(Role.ADMIN)).json()
        assert listed["open"] == 0

    def test_reject_keeps_them_apart_and_is_audited(
        self, app: FastAPI, client: Any, auth: Headers
    ) -> None:
        pair = _queue_pair(app)
        response = client.post(
            f"/admin/matches/{pair['id']}",
            json={"decision": "reject"},
            headers=auth(Role.INTEGRATION_ENGINEER, user="eng-1"),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["match"]["status"] == "rejected"
        assert body["person"] is None
        with app.state.session_factory() as session:
            ids = IdentityRepository(session, crypto=app.state.crypto)
            link = ids.active_link(pair["b"])
            assert link is not None
            assert link.person_id == pair["person_b"]
        action, user, detail = _audit(app)[-1]
        assert (action, user, detail["decision"]) == ("identity.link", "eng-1", "reject")

    def test_a_decided_pair_cannot_be_decided_again(
        self, app: FastAPI, client: Any, auth: Headers
    ) -> None:
        pair = _queue_pair(app)
        url = f"/admin/matches/{pair['id']}"
        assert client.post(url, json={"decision": "reject"}, headers=auth()).status_code == 200
        again = client.post(url, json={"decision": "accept"}, headers=auth())
        assert again.status_code == 412
        assert "rejected" in again.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            (b"", 400, None),
            (b"{not json", 400, None),
            (b'{"decision": "maybe"}', 422, "decision"),
            (b'{"decision": "accept", "extra": 1}', 422, "extra"),
        ],
    )
    def test_bad_bodies_name_the_problem(
        self,
        app: FastAPI,
        client: Any,
        auth: Headers,
        body: bytes,
        status: int,
        field: str | None,
    ) -> None:
        pair = _queue_pair(app)
        response = client.post(
            f"/admin/matches/{pair['id']}",
            content=body,
            headers={**auth(), "Content-Type": "application/json"},
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        if field:
            assert response.json()["field"] == field

    @pytest.mark.parametrize("match_id", ["999999", "abc"])
    def test_unknown_pairs_are_not_found(self, client: Any, auth: Headers, match_id: str) -> None:
        response = client.post(
            f"/admin/matches/{match_id}", json={"decision": "accept"}, headers=auth()
        )
        assert response.status_code == 404
