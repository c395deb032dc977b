"""Error rendering: one shape per error type, problem+json or OperationOutcome by path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fhir.resources.R4B.operationoutcome import OperationOutcome

from bridge.api.errors import is_fhir_path
from bridge.auth.roles import Role
from bridge.core.errors import BridgeError, all_error_types
from tests.fixtures.schema import assert_fhir_r4

ClientFactory = Callable[..., Any]
Headers = Callable[..., dict[str, str]]

ERRORS = {cls.code: cls for cls in all_error_types()}


@pytest.fixture
def raising(app: FastAPI, make_client: ClientFactory) -> Any:
    """A client for an app with test routes that raise each error type, in and out of /fhir."""

    def raise_error(code: str) -> None:
        raise ERRORS[code]("Something specific went wrong.", field="Patient.name[0].family")

    def count_items(count: int) -> dict[str, int]:
        return {"count": count}

    def crash() -> None:
        raise RuntimeError("secret detail: NHS number 9990000018")

    # Four or more segments under /fhir, so the FHIR instance routes cannot match first.
    for prefix in ("/fhir/_test/t", "/_test/t"):
        app.add_api_route(prefix + "/raise/{code}", raise_error)
        app.add_api_route(prefix + "/typed", count_items)
        app.add_api_route(prefix + "/crash", crash)
    return make_client(app)


class TestEveryErrorType:
    @pytest.mark.parametrize("cls", all_error_types(), ids=lambda c: c.__name__)
    def test_under_fhir_is_a_valid_operation_outcome(
        self, raising: Any, cls: type[BridgeError]
    ) -> None:
        response = raising.get(f"/fhir/_test/t/raise/{cls.code}")
        assert response.status_code == cls.status
        assert response.headers["content-type"] == "application/fhir+json"
        body = response.json()
        OperationOutcome.model_validate(body)
        assert_fhir_r4(body)
        issue = body["issue"][0]
        assert issue["severity"] == "error"
        assert issue["code"] == cls.fhir_issue
        assert issue["diagnostics"] == "Something specific went wrong."
        assert issue["expression"] == ["Patient.name[0].family"]
        assert issue["details"]["coding"][0]["code"] == cls.code

    @pytest.mark.parametrize("cls", all_error_types(), ids=lambda c: c.__name__)
    def test_elsewhere_is_problem_json(self, raising: Any, cls: type[BridgeError]) -> None:
        response = raising.get(f"/_test/t/raise/{cls.code}", headers={"X-Request-ID": "abc-123"})
        assert response.status_code == cls.status
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {
            "type": f"urn:carebridge:error:{cls.code}",
            "title": cls.title,
            "status": cls.status,
            "detail": "Something specific went wrong.",
            "code": cls.code,
            "field": "Patient.name[0].family",
            "request_id": "abc-123",
        }
        if cls.status == 401:
            assert response.headers["www-authenticate"] == "Bearer"


class TestExtraMembers:
    def test_extra_cannot_overwrite_standard_members(self, app: FastAPI, make_client: Any) -> None:
        def sneaky() -> None:
            raise BridgeError("real detail", extra={"status": 200, "hint": "kept"})

        app.add_api_route("/_test/sneaky", sneaky)
        body = make_client(app).get("/_test/sneaky").json()
        assert body["status"] == 500
        assert body["detail"] == "real detail"
        assert body["hint"] == "kept"


class TestRequestValidation:
    def test_problem_json_names_the_field(self, raising: Any) -> None:
        response = raising.get("/_test/t/typed", params={"count": "many"})
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "BRIDGE-0100"
        assert body["field"] == "count"
        assert body["detail"].startswith("count: ")
        assert "integer" in body["detail"]

    def test_operation_outcome_names_the_field(self, raising: Any) -> None:
        response = raising.get("/fhir/_test/t/typed")
        assert response.status_code == 422
        issue = response.json()["issue"][0]
        assert issue["expression"] == ["count"]
        assert issue["code"] == "invalid"
        assert "required" in issue["diagnostics"].lower()


class TestRouting:
    def test_unknown_path_outside_fhir(self, client: Any) -> None:
        response = client.get("/nowhere")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "BRIDGE-0200"

    def test_unknown_path_under_fhir(self, client: Any, auth: Headers) -> None:
        response = client.get("/fhir/Patient/p1/_history/1/more", headers=auth(Role.ADMIN))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/fhir+json"
        assert response.json()["issue"][0]["code"] == "not-found"

    def test_method_not_allowed_lists_every_method_of_the_path(self, client: Any) -> None:
        response = client.post("/fhir/Patient/p1")
        assert response.status_code == 405
        assert response.headers["allow"] == "DELETE, GET, PUT"
        issue = response.json()["issue"][0]
        assert issue["code"] == "not-supported"
        assert issue["details"]["coding"][0]["code"] == "BRIDGE-0106"
        assert "DELETE, GET, PUT" in issue["diagnostics"]

    def test_method_not_allowed_outside_fhir(self, client: Any) -> None:
        response = client.delete("/health")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET"
        assert response.json()["title"] == "Method not allowed"


class TestUnexpectedErrors:
    def test_opaque_500_logged_with_traceback(
        self, raising: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="carebridge.errors")
        response = raising.get("/_test/t/crash", headers={"X-Request-ID": "crash-1"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-request-id"] == "crash-1"
        body = response.json()
        assert body["code"] == "BRIDGE-0000"
        assert "secret" not in response.text
        assert "9990000018" not in response.text
        assert "RuntimeError" not in response.text
        error_id = body["error_id"]
        assert error_id in body["detail"]
        [record] = [r for r in caplog.records if r.name == "carebridge.errors"]
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], RuntimeError)
        assert record.fields == {"request_id": "crash-1", "error_id": error_id}  # type: ignore[attr-defined]

    def test_opaque_500_under_fhir(self, raising: Any) -> None:
        response = raising.get("/fhir/_test/t/crash")
        assert response.status_code == 500
        body = response.json()
        OperationOutcome.model_validate(body)
        issue = body["issue"][0]
        assert issue["code"] == "exception"
        assert "secret" not in response.text
        assert "error id" in issue["diagnostics"]

    def test_each_crash_gets_its_own_error_id(self, raising: Any) -> None:
        first = raising.get("/_test/t/crash").json()["error_id"]
        second = raising.get("/_test/t/crash").json()["error_id"]
        assert first != second


class TestFhirPath:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [("/fhir", True), ("/fhir/Patient/1", True), ("/fhirish", False), ("/health", False)],
    )
    def test_is_fhir_path(self, path: str, expected: bool) -> None:
        assert is_fhir_path(path) is expected
