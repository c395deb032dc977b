"""Dependencies: the request's transaction and the permission check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from sqlalchemy.exc import OperationalError

from bridge.api.deps import DbSession, Resources, require, route_permissions
from bridge.auth.roles import Role
from bridge.core.errors import ValidationError
from tests.fixtures.fhir import patient

ClientFactory = Callable[..., Any]
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def tx_client(app: FastAPI, make_client: ClientFactory) -> Any:
    """A client for an app with routes that write and then succeed, fail or crash."""

    def write_ok(resources: Resources) -> dict[str, str]:
        resources.put(patient(rid="tx-ok"))
        return {"stored": "tx-ok"}

    def write_then_fail(resources: Resources) -> None:
        resources.put(patient(rid="tx-fail"))
        raise ValidationError("changed my mind", field="x")

    def write_then_crash(resources: Resources) -> None:
        resources.put(patient(rid="tx-crash"))
        raise RuntimeError("boom")

    def database_gone(session: DbSession) -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    app.add_api_route("/_test/t/write-ok", write_ok, methods=["POST"])
    app.add_api_route("/_test/t/write-fail", write_then_fail, methods=["POST"])
    app.add_api_route("/_test/t/write-crash", write_then_crash, methods=["POST"])
    app.add_api_route("/_test/t/db-gone", database_gone)
    return make_client(app)


class TestRequestTransaction:
    def test_committed_when_the_handler_succeeds(self, tx_client: Any, auth: Headers) -> None:
        assert tx_client.post("/_test/t/write-ok").status_code == 200
        assert tx_client.get("/fhir/Patient/tx-ok", headers=auth(Role.ADMIN)).status_code == 200

    def test_rolled_back_when_the_handler_raises(self, tx_client: Any, auth: Headers) -> None:
        assert tx_client.post("/_test/t/write-fail").status_code == 422
        assert tx_client.get("/fhir/Patient/tx-fail", headers=auth(Role.ADMIN)).status_code == 404

    def test_rolled_back_when_the_handler_crashes(self, tx_client: Any, auth: Headers) -> None:
        assert tx_client.post("/_test/t/write-crash").status_code == 500
        response = tx_client.get("/fhir/Patient/tx-crash", headers=auth(Role.ADMIN))
        assert response.status_code == 404

    def test_lost_database_is_a_503_store_error(self, tx_client: Any) -> None:
        response = tx_client.get("/_test/t/db-gone")
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "BRIDGE-0500"
        assert "server closed" not in response.text


class TestRequire:
    def test_unknown_permission_fails_when_the_route_is_declared(self) -> None:
        with pytest.raises(ValueError, match="unknown permission"):
            require("fhir.reed")

    def test_permission_is_discoverable_on_the_route(self, app: FastAPI) -> None:
        @app.get("/_test/t/perm", dependencies=[Depends(require("fhir.write"))])
        def perm() -> None:
            return None

        route = next(r for r in app.routes if getattr(r, "path", None) == "/_test/t/perm")
        assert route_permissions(route) == {"fhir.write"}  # type: ignore[arg-type]

    def test_403_names_the_permission_and_the_roles_that_have_it(
        self, client: Any, auth: Headers
    ) -> None:
        response = client.put("/fhir/Patient/p1", headers=auth(Role.IG_OFFICER))
        assert response.status_code == 403
        diagnostics = response.json()["issue"][0]["diagnostics"]
        assert diagnostics == (
            "This needs the 'fhir.write' permission, which only these roles have:"
            " admin, sync_service."
        )
