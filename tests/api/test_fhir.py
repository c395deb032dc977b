"""The /fhir API over HTTP against the real (migrated) database."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import orjson
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from bridge import __version__
from bridge.api.routers.fhir import SEARCH_PARAMS
from bridge.auth.roles import Role
from bridge.core.clock import FixedClock
from bridge.core.settings import Settings
from bridge.fhir.validate import SUPPORTED_TYPES
from tests.fixtures.fhir import patient
from tests.fixtures.schema import assert_fhir_r4

Headers = Callable[..., dict[str, str]]
ClientFactory = Callable[..., Any]
AppFactory = Callable[..., FastAPI]

FHIR_JSON = "application/fhir+json"
CREATED_AT = "Mon, 23 Nov 2026 10:00:00 GMT"  # the fixed clock


def _issue(response: Any, status: int) -> dict[str, Any]:
    """Assert an OperationOutcome response with ``status``; return its first issue."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    OperationOutcome.model_validate(body)
    assert_fhir_r4(body)
    issue: dict[str, Any] = body["issue"][0]
    return issue


@pytest.fixture
def writer(auth: Headers) -> dict[str, str]:
    """Headers for the sync service (may write)."""
    return auth(Role.SYNC_SERVICE, user="sync")


@pytest.fixture
def reader(auth: Headers) -> dict[str, str]:
    """Headers for a health professional (may read raw FHIR)."""
    return auth(Role.HEALTH_PROFESSIONAL, user="hp1")


@pytest.fixture
def stored(client: Any, writer: dict[str, str]) -> dict[str, Any]:
    """Patient/p1, version 1."""
    response = client.put("/fhir/Patient/p1", json=patient(), headers=writer)
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


class TestMetadata:
    def test_capability_statement_is_valid_and_honest(self, client: Any, auth: Headers) -> None:
        response = client.get("/fhir/metadata", headers=auth(Role.SOCIAL_WORKER))
        assert response.status_code == 200
        assert response.headers["content-type"] == FHIR_JSON
        body = response.json()
        CapabilityStatement.model_validate(body)
        # HL7's R4 schema predates 4.0.1 in its fhirVersion enum; everything else must pass.
        assert_fhir_r4(body | {"fhirVersion": "4.0.0"})
        assert body["fhirVersion"] == "4.0.1"
        assert (body["status"], body["kind"], body["format"]) == ("active", "instance", ["json"])
        assert body["software"] == {"name": "carebridge", "version": __version__}
        rest = body["rest"][0]
        assert rest["mode"] == "server"
        assert rest["security"]["service"][0]["coding"][0]["code"] == "OAuth"
        assert [r["type"] for r in rest["resource"]] == list(SUPPORTED_TYPES)
        for resource in rest["resource"]:
            # Search only where fhir_search implements it (tests/api/test_fhir_search.py).
            searchable = ["search-type"] if resource["type"] in SEARCH_PARAMS else []
            assert [i["code"] for i in resource["interaction"]] == [
                "read",
                "vread",
                "history-instance",
                "update",
                "delete",
                *searchable,
            ]
            assert resource["versioning"] == "versioned-update"
            assert resource["readHistory"] is True
            assert resource["conditionalUpdate"] is False

    def test_every_advertised_interaction_has_a_route(self, app: FastAPI) -> None:
        paths = app.openapi()["paths"]
        instance = "/fhir/{resource_type}/{resource_id}"
        assert set(paths[instance]) == {"get", "put", "delete"}  # read, update, delete
        assert set(paths[instance + "/_history"]) == {"get"}  # history-instance
        assert set(paths[instance + "/_history/{version_id}"]) == {"get"}  # vread
        fhir_paths = {p for p in paths if p.startswith("/fhir")}
        assert fhir_paths == {
            "/fhir/metadata",
            instance,
            instance + "/_history",
            instance + "/_history/{version_id}",
            # Consent's own create, update and search (recording decisions).
            "/fhir/Consent",
            "/fhir/Consent/{resource_id}",
            # search-type and Patient $everything (fhir_search).
            "/fhir/{resource_type}",
            "/fhir/Patient/{resource_id}/$everything",
        }


class TestRead:
    def test_current_version_with_headers(
        self, client: Any, stored: dict[str, Any], reader: dict[str, str]
    ) -> None:
        response = client.get("/fhir/Patient/p1", headers=reader)
        assert response.status_code == 200
        assert response.headers["content-type"] == FHIR_JSON
        assert response.headers["etag"] == 'W/"1"'
        assert response.headers["last-modified"] == CREATED_AT
        assert response.headers["content-location"] == (
            "http://testserver/fhir/Patient/p1/_history/1"
        )
        body = response.json()
        assert body == stored
        assert body["meta"] == {"versionId": "1", "lastUpdated": "2026-11-23T10:00:00.000Z"}
        assert body["name"][0]["family"] == patient()["name"][0]["family"]
        assert_fhir_r4(body)

    def test_not_found(self, client: Any, reader: dict[str, str]) -> None:
        issue = _issue(client.get("/fhir/Patient/nobody", headers=reader), 404)
        assert issue["code"] == "not-found"
        assert issue["details"]["coding"][0]["code"] == "BRIDGE-0200"

    def test_unknown_type(self, client: Any, reader: dict[str, str]) -> None:
        issue = _issue(client.get("/fhir/Spaceship/p1", headers=reader), 404)
        assert issue["code"] == "not-supported"
        assert issue["expression"] == ["resourceType"]
        assert "'Spaceship' is not a resource type" in issue["diagnostics"]

    def test_malformed_id(self, client: Any, reader: dict[str, str]) -> None:
        issue = _issue(client.get("/fhir/Patient/bad_id!", headers=reader), 422)
        assert issue["expression"] == ["id"]

    def test_deleted_is_gone(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        assert client.delete("/fhir/Patient/p1", headers=writer).status_code == 204
        issue = _issue(client.get("/fhir/Patient/p1", headers=reader), 410)
        assert issue["code"] == "deleted"

    def test_social_worker_is_refused_raw_reads(
        self, client: Any, stored: dict[str, Any], auth: Headers
    ) -> None:
        # Social workers read through the consent gate: a record of nobody they may see
        # (this one is linked to no person) reads as not found, like a missing one.
        issue = _issue(client.get("/fhir/Patient/p1", headers=auth(Role.SOCIAL_WORKER)), 404)
        assert issue["code"] == "not-found"
        assert "Adaeze" not in issue["diagnostics"]

    def test_reads_are_logged_without_content(
        self,
        client: Any,
        stored: dict[str, Any],
        reader: dict[str, str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.INFO, logger="carebridge.access")
        client.get("/fhir/Patient/p1", headers=reader)
        client.get("/fhir/Patient/nobody", headers=reader)
        client.get("/fhir/Patient/p1/_history/1", headers=reader)
        events = [r.fields for r in caplog.records if r.name == "carebridge.access"]  # type: ignore[attr-defined]
        assert events == [
            {
                "user": "hp1",
                "action": "read",
                "resource_type": "Patient",
                "resource_id": "p1",
                "outcome": "ok",
            },
            {
                "user": "hp1",
                "action": "read",
                "resource_type": "Patient",
                "resource_id": "nobody",
                "outcome": "BRIDGE-0200",
            },
            {
                "user": "hp1",
                "action": "vread",
                "resource_type": "Patient",
                "resource_id": "p1",
                "outcome": "ok",
            },
        ]
        text = caplog.text + repr([r.__dict__ for r in caplog.records])
        assert "Okonkwo" not in text
        assert "9990000018" not in text


class TestVread:
    def test_old_version_after_update(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        changed = patient(family="Changed")
        assert client.put("/fhir/Patient/p1", json=changed, headers=writer).status_code == 200
        old = client.get("/fhir/Patient/p1/_history/1", headers=reader)
        assert old.status_code == 200
        assert old.headers["etag"] == 'W/"1"'
        assert old.headers["last-modified"] == CREATED_AT
        assert old.json()["name"][0]["family"] == "Okonkwo-Testperson"
        new = client.get("/fhir/Patient/p1/_history/2", headers=reader)
        assert new.json()["name"][0]["family"] == "Changed"
        assert new.headers["content-location"].endswith("/fhir/Patient/p1/_history/2")

    @pytest.mark.parametrize("vid", ["0", "-1", "abc", "1.5", "99999999999"])
    def test_version_must_be_a_positive_integer(
        self, client: Any, stored: dict[str, Any], reader: dict[str, str], vid: str
    ) -> None:
        issue = _issue(client.get(f"/fhir/Patient/p1/_history/{vid}", headers=reader), 422)
        assert issue["expression"] == ["versionId"]
        assert "positive whole number" in issue["diagnostics"]

    def test_missing_version(
        self, client: Any, stored: dict[str, Any], reader: dict[str, str]
    ) -> None:
        issue = _issue(client.get("/fhir/Patient/p1/_history/7", headers=reader), 404)
        assert issue["expression"] == ["versionId"]

    def test_deletion_version_is_gone(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        client.delete("/fhir/Patient/p1", headers=writer)
        _issue(client.get("/fhir/Patient/p1/_history/2", headers=reader), 410)
        assert client.get("/fhir/Patient/p1/_history/1", headers=reader).status_code == 200


class TestHistory:
    def test_bundle_newest_first_with_deletion_and_recreation(
        self,
        make_app: AppFactory,
        make_client: ClientFactory,
        clock: FixedClock,
        writer: dict[str, str],
        reader: dict[str, str],
    ) -> None:
        client = make_client(make_app(app_clock=clock))
        client.put("/fhir/Patient/p1", json=patient(), headers=writer)
        clock.advance(minutes=1)
        client.put("/fhir/Patient/p1", json=patient(family="Two"), headers=writer)
        clock.advance(minutes=1)
        client.delete("/fhir/Patient/p1", headers=writer)
        clock.advance(minutes=1)
        client.put("/fhir/Patient/p1", json=patient(family="Four"), headers=writer)

        response = client.get("/fhir/Patient/p1/_history", headers=reader)
        assert response.status_code == 200
        assert response.headers["content-type"] == FHIR_JSON
        bundle = response.json()
        Bundle.model_validate(bundle)
        assert_fhir_r4(bundle)
        assert (bundle["type"], bundle["total"]) == ("history", 4)
        entries = bundle["entry"]
        assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
        assert [e["request"]["method"] for e in entries] == ["PUT", "DELETE", "PUT", "PUT"]
        assert [e["response"]["status"] for e in entries] == [
            "201 Created",
            "204 No Content",
            "200 OK",
            "201 Created",
        ]
        assert [e["response"]["lastModified"] for e in entries] == [
            "2026-11-23T10:03:00.000Z",
            "2026-11-23T10:02:00.000Z",
            "2026-11-23T10:01:00.000Z",
            "2026-11-23T10:00:00.000Z",
        ]
        assert "resource" not in entries[1]
        assert entries[0]["resource"]["name"][0]["family"] == "Four"
        assert entries[3]["resource"]["meta"]["versionId"] == "1"
        for entry in entries:
            assert entry["fullUrl"] == "http://testserver/fhir/Patient/p1"
            assert entry["request"]["url"] == "Patient/p1"

    def test_never_existed(self, client: Any, reader: dict[str, str]) -> None:
        issue = _issue(client.get("/fhir/Patient/ghost/_history", headers=reader), 404)
        assert issue["code"] == "not-found"

    def test_unknown_type(self, client: Any, reader: dict[str, str]) -> None:
        _issue(client.get("/fhir/Spaceship/x/_history", headers=reader), 404)


class TestUpdate:
    def test_create_then_update_then_unchanged(
        self, client: Any, writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        created = client.put("/fhir/Patient/p1", json=patient(), headers=writer)
        assert created.status_code == 201
        assert created.headers["content-type"] == FHIR_JSON
        assert created.headers["etag"] == 'W/"1"'
        assert created.headers["last-modified"] == CREATED_AT
        assert created.headers["location"] == "http://testserver/fhir/Patient/p1/_history/1"
        assert created.json()["meta"]["versionId"] == "1"

        updated = client.put("/fhir/Patient/p1", json=patient(family="New"), headers=writer)
        assert updated.status_code == 200
        assert updated.headers["etag"] == 'W/"2"'
        assert updated.headers["location"].endswith("/_history/2")

        same = client.put("/fhir/Patient/p1", json=patient(family="New"), headers=writer)
        assert same.status_code == 200
        assert same.headers["etag"] == 'W/"2"'
        history = client.get("/fhir/Patient/p1/_history", headers=reader).json()
        assert history["total"] == 2

    def test_if_match_current_version_succeeds(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str]
    ) -> None:
        response = client.put(
            "/fhir/Patient/p1",
            json=patient(family="X"),
            headers=writer | {"If-Match": 'W/"1"'},
        )
        assert response.status_code == 200
        assert response.headers["etag"] == 'W/"2"'

    def test_stale_if_match_is_412_and_changes_nothing(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        client.put("/fhir/Patient/p1", json=patient(family="Second"), headers=writer)
        response = client.put(
            "/fhir/Patient/p1",
            json=patient(family="Lost update"),
            headers=writer | {"If-Match": 'W/"1"'},
        )
        issue = _issue(response, 412)
        assert issue["code"] == "conflict"
        assert issue["expression"] == ["If-Match"]
        current = client.get("/fhir/Patient/p1", headers=reader).json()
        assert current["name"][0]["family"] == "Second"

    def test_if_match_on_a_missing_resource_is_412(
        self, client: Any, writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        response = client.put(
            "/fhir/Patient/p9", json=patient(rid="p9"), headers=writer | {"If-Match": 'W/"1"'}
        )
        _issue(response, 412)
        assert client.get("/fhir/Patient/p9", headers=reader).status_code == 404

    @pytest.mark.parametrize("value", ["1", 'W/"x"', "*", 'W/"0"'])
    def test_malformed_if_match(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], value: str
    ) -> None:
        response = client.put(
            "/fhir/Patient/p1", json=patient(), headers=writer | {"If-Match": value}
        )
        assert _issue(response, 422)["expression"] == ["If-Match"]

    def test_invalid_fhir_is_422_naming_the_element_and_stores_nothing(
        self, client: Any, writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        response = client.put(
            "/fhir/Patient/p2", json=patient(rid="p2", birthDate="07/03/1941"), headers=writer
        )
        issue = _issue(response, 422)
        assert issue["code"] == "invalid"
        assert issue["expression"] == ["Patient.birthDate"]
        assert issue["details"]["coding"][0]["code"] == "BRIDGE-0101"
        assert client.get("/fhir/Patient/p2", headers=reader).status_code == 404
        assert client.get("/fhir/Patient/p2/_history", headers=reader).status_code == 404

    def test_every_invalid_element_is_an_issue(self, client: Any, writer: dict[str, str]) -> None:
        bad = patient(birthDate="yesterday", name=[{"family": 42}], colour="blue")
        response = client.put("/fhir/Patient/p1", json=bad, headers=writer)
        assert response.status_code == 422
        expressions = {i["expression"][0] for i in response.json()["issue"]}
        assert expressions == {"Patient.birthDate", "Patient.name[0].family", "Patient.colour"}

    def test_invalid_update_keeps_the_stored_version(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        bad = patient(birthDate="not a date")
        assert client.put("/fhir/Patient/p1", json=bad, headers=writer).status_code == 422
        assert client.get("/fhir/Patient/p1", headers=reader).json() == stored

    @pytest.mark.parametrize(
        ("body", "expression", "phrase"),
        [
            (patient(rid="p1") | {"resourceType": "Observation"}, "resourceType", "'Patient'"),
            (patient(rid="other"), "Patient.id", "'p1'"),
            (patient(rid=None), "Patient.id", "'p1'"),
        ],
        ids=["wrong-type", "wrong-id", "missing-id"],
    )
    def test_body_must_match_the_url(
        self,
        client: Any,
        writer: dict[str, str],
        reader: dict[str, str],
        body: dict[str, Any],
        expression: str,
        phrase: str,
    ) -> None:
        issue = _issue(client.put("/fhir/Patient/p1", json=body, headers=writer), 400)
        assert issue["expression"] == [expression]
        assert phrase in issue["diagnostics"]
        assert client.get("/fhir/Patient/p1", headers=reader).status_code == 404

    @pytest.mark.parametrize(
        ("content", "phrase"),
        [
            (b'{"resourceType": "Patient", "id": "p1",', "not valid JSON"),
            (b"", "body is empty"),
            (b"[1, 2]", "must be a JSON object"),
            (b"\xff\xfe", "not valid JSON"),
        ],
        ids=["truncated", "empty", "array", "not-utf8"],
    )
    def test_malformed_body_is_400(
        self, client: Any, writer: dict[str, str], content: bytes, phrase: str
    ) -> None:
        headers = writer | {"Content-Type": FHIR_JSON}
        issue = _issue(client.put("/fhir/Patient/p1", content=content, headers=headers), 400)
        assert issue["code"] == "structure"
        assert phrase in issue["diagnostics"]

    def test_put_after_delete_recreates(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str]
    ) -> None:
        client.delete("/fhir/Patient/p1", headers=writer)
        response = client.put("/fhir/Patient/p1", json=patient(), headers=writer)
        assert response.status_code == 201
        assert response.headers["etag"] == 'W/"3"'

    def test_readers_cannot_write(self, client: Any, reader: dict[str, str], auth: Headers) -> None:
        _issue(client.put("/fhir/Patient/p1", json=patient(), headers=reader), 403)
        admin = auth(Role.ADMIN)
        assert client.get("/fhir/Patient/p1", headers=admin).status_code == 404

    def test_unknown_type(self, client: Any, writer: dict[str, str]) -> None:
        body = patient() | {"resourceType": "Spaceship"}
        issue = _issue(client.put("/fhir/Spaceship/p1", json=body, headers=writer), 404)
        assert issue["code"] == "not-supported"


class TestDelete:
    def test_logical_delete(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        response = client.delete("/fhir/Patient/p1", headers=writer)
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers["etag"] == 'W/"2"'
        _issue(client.get("/fhir/Patient/p1", headers=reader), 410)
        assert client.get("/fhir/Patient/p1/_history/1", headers=reader).status_code == 200

    def test_delete_twice_is_harmless(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        client.delete("/fhir/Patient/p1", headers=writer)
        again = client.delete("/fhir/Patient/p1", headers=writer)
        assert again.status_code == 204
        assert again.headers["etag"] == 'W/"2"'
        assert client.get("/fhir/Patient/p1/_history", headers=reader).json()["total"] == 2

    def test_stale_if_match(
        self, client: Any, stored: dict[str, Any], writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        client.put("/fhir/Patient/p1", json=patient(family="Two"), headers=writer)
        response = client.delete("/fhir/Patient/p1", headers=writer | {"If-Match": 'W/"1"'})
        _issue(response, 412)
        assert client.get("/fhir/Patient/p1", headers=reader).status_code == 200

    def test_not_found(self, client: Any, writer: dict[str, str]) -> None:
        _issue(client.delete("/fhir/Patient/ghost", headers=writer), 404)


class TestBodyLimit:
    LIMIT = 2048

    @pytest.fixture
    def small(self, settings: Settings, make_app: AppFactory, make_client: ClientFactory) -> Any:
        limited = settings.model_copy(update={"max_request_bytes": self.LIMIT})
        return make_client(make_app(limited))

    def _big_patient(self) -> bytes:
        body = orjson.dumps(patient(rid="big", text={"status": "generated", "div": "x" * 4000}))
        assert len(body) > self.LIMIT
        return body

    def test_content_length_over_the_limit_is_refused_unread(
        self, small: Any, writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        issue = _issue(
            small.put("/fhir/Patient/big", content=self._big_patient(), headers=writer), 413
        )
        assert issue["code"] == "too-costly"
        assert str(self.LIMIT) in issue["diagnostics"]
        assert small.get("/fhir/Patient/big", headers=reader).status_code == 404

    def test_refused_before_authentication(self, small: Any) -> None:
        # No token: the size check runs before routing, so nothing is parsed or looked up.
        response = small.put("/fhir/Patient/big", content=self._big_patient())
        assert response.status_code == 413

    def test_chunked_body_without_length_is_refused(
        self, small: Any, writer: dict[str, str], reader: dict[str, str]
    ) -> None:
        def chunks() -> Iterator[bytes]:
            body = self._big_patient()
            for start in range(0, len(body), 512):
                yield body[start : start + 512]

        response = small.put("/fhir/Patient/big", content=chunks(), headers=writer)
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert _issue(response, 413)["code"] == "too-costly"
        assert small.get("/fhir/Patient/big", headers=reader).status_code == 404

    def test_streaming_stops_at_the_limit(
        self,
        settings: Settings,
        make_app: AppFactory,
        writer: dict[str, str],
        reader: dict[str, str],
        make_client: ClientFactory,
    ) -> None:
        # The TestClient buffers request bodies, so drive the ASGI app directly to see how
        # much of a long body is pulled in before the 413.
        app = make_app(settings.model_copy(update={"max_request_bytes": self.LIMIT}))
        pulled: list[int] = []
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            # 32 KiB in all: sixteen times the limit, finite so a broken limit fails, not hangs.
            pulled.append(512)
            return {"type": "http.request", "body": b" " * 512, "more_body": len(pulled) < 64}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        headers = [
            (b"host", b"testserver"),
            (b"transfer-encoding", b"chunked"),
            (b"authorization", writer["Authorization"].encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "PUT",
            "scheme": "http",
            "path": "/fhir/Patient/big",
            "raw_path": b"/fhir/Patient/big",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        anyio.run(app, scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        assert start["status"] == 413
        assert sum(pulled) <= self.LIMIT + 512, "read past the limit"
        assert make_client(app).get("/fhir/Patient/big", headers=reader).status_code == 404

    def test_body_within_the_limit_is_accepted(self, small: Any, writer: dict[str, str]) -> None:
        assert small.put("/fhir/Patient/p1", json=patient(), headers=writer).status_code == 201

    def test_outside_fhir_the_413_is_problem_json(self, small: Any) -> None:
        response = small.put("/health", content=b"x" * (self.LIMIT + 1))
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "BRIDGE-0104"
