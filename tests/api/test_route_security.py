"""Every route is authenticated and authorised: walked from app.routes, not listed by hand."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import RouteContext, iter_route_contexts

from bridge.api.deps import route_permissions
from bridge.auth.roles import PERMISSIONS, Role

# Routes anyone may call: the health probe and the OpenAPI documentation.
PUBLIC = {"/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}
# Routes every role may use, so no role can be refused (asserted, not assumed).
OPEN_TO_EVERY_ROLE = {("GET", "/fhir/metadata")}
# A plausible value for each path parameter; a new parameter name must be added here.
PARAM_VALUES = {
    "resource_type": "Patient",
    "resource_id": "p1",
    "version_id": "1",
    "person_id": "person-1",
    "record_id": "bg-1",
}

Headers = Callable[..., dict[str, str]]


def _concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in PARAM_VALUES, f"add a plausible value for path parameter {{{name}}}"
        return PARAM_VALUES[name]

    return re.sub(r"\{([^}]+)\}", value, path)


def _endpoints(app: FastAPI) -> Iterator[tuple[str, str, RouteContext]]:
    # iter_route_contexts sees through included routers (prefixes, router dependencies).
    for route in iter_route_contexts(app.routes):
        assert route.path, f"route without a path: {route!r}"
        assert route.methods, f"{route.path} has no HTTP methods (websocket?)"
        for method in sorted(route.methods):
            if method != "HEAD":
                yield method, route.path, route


def _is_api_route(route: RouteContext) -> bool:
    return getattr(route, "dependant", None) is not None


def _denied_roles(route: RouteContext) -> list[Role]:
    assert _is_api_route(route), f"{route.path} is not public, so it must be an API route"
    permissions = route_permissions(route)
    assert permissions, f"{route.path} requires no permission: every route needs require(...)"
    return [r for r in Role if not all(r in PERMISSIONS[p] for p in permissions)]


def _call(client: Any, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    return client.request(method, path, headers=headers or {})


@pytest.fixture
def endpoints(app: FastAPI) -> list[tuple[str, str, RouteContext]]:
    found = list(_endpoints(app))
    assert len(found) >= 7, "the walk found too few routes to be walking the app"
    return found


class TestEveryRoute:
    def test_public_routes_are_exactly_the_expected_ones(
        self, endpoints: list[tuple[str, str, RouteContext]], client: Any
    ) -> None:
        public = {path for _, path, route in endpoints if not _is_api_route(route)}
        public |= {path for _, path, _ in endpoints if path == "/health"}
        assert public == PUBLIC
        for method, path, _ in endpoints:
            if path in PUBLIC:
                assert _call(client, method, path).status_code == 200, path

    def test_401_without_a_token(
        self, endpoints: list[tuple[str, str, RouteContext]], client: Any
    ) -> None:
        checked = 0
        for method, path, _ in endpoints:
            if path in PUBLIC:
                continue
            response = _call(client, method, _concrete(path))
            assert response.status_code == 401, f"{method} {path}"
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
        assert checked >= 6

    def test_401_with_a_wrong_scheme(
        self, endpoints: list[tuple[str, str, RouteContext]], client: Any
    ) -> None:
        for method, path, _ in endpoints:
            if path not in PUBLIC:
                response = _call(
                    client, method, _concrete(path), {"Authorization": "Basic dXNlcjpwYXNz"}
                )
                assert response.status_code == 401, f"{method} {path}"

    def test_403_for_a_role_without_the_permission(
        self, endpoints: list[tuple[str, str, RouteContext]], client: Any, auth: Headers
    ) -> None:
        open_to_all: set[tuple[str, str]] = set()
        for method, path, route in endpoints:
            if path in PUBLIC:
                continue
            denied = _denied_roles(route)
            if not denied:
                open_to_all.add((method, path))
                continue
            for role in denied:
                response = _call(client, method, _concrete(path), auth(role))
                assert response.status_code == 403, f"{method} {path} as {role}"
                body = response.json()
                # OperationOutcome under /fhir, problem+json elsewhere.
                message = body["issue"][0]["diagnostics"] if "issue" in body else body["detail"]
                assert "permission" in message
            # And a role that is allowed gets past authorisation (whatever comes next).
            allowed = next(r for r in Role if r not in denied)
            response = _call(client, method, _concrete(path), auth(allowed))
            assert response.status_code not in (401, 403), f"{method} {path} as {allowed}"
        assert open_to_all == OPEN_TO_EVERY_ROLE

    def test_routes_open_to_every_role_really_are(self, client: Any, auth: Headers) -> None:
        for method, path in OPEN_TO_EVERY_ROLE:
            for role in Role:
                assert _call(client, method, path, auth(role)).status_code == 200, role
