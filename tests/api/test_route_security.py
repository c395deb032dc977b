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
from bridge.auth.tokens import mint_dev_token
from bridge.web.core import SESSION_COOKIE, csrf_for_session

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
    "asset": "nhsuk/nhsuk-frontend.min.css",
}
# The web pages (bridge.web) sign in with a session cookie, not a bearer token: without a
# valid session they redirect (303) to the sign-in page instead of answering 401, and a
# role without the permission gets a 403 page. TestEveryPage checks them route by route.
PAGES = "/web"
PUBLIC_PAGES = {
    ("GET", "/web"),
    ("GET", "/web/sign-in"),
    ("POST", "/web/sign-in"),
    ("POST", "/web/sign-out"),
    ("GET", "/web/static/{asset:path}"),
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


def _is_page(path: str) -> bool:
    return path == PAGES or path.startswith(PAGES + "/")


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
            if path in PUBLIC or _is_page(path):
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
            if path not in PUBLIC and not _is_page(path):
                response = _call(
                    client, method, _concrete(path), {"Authorization": "Basic dXNlcjpwYXNz"}
                )
                assert response.status_code == 401, f"{method} {path}"

    def test_403_for_a_role_without_the_permission(
        self, endpoints: list[tuple[str, str, RouteContext]], client: Any, auth: Headers
    ) -> None:
        open_to_all: set[tuple[str, str]] = set()
        for method, path, route in endpoints:
            if path in PUBLIC or _is_page(path):
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


def _session(settings: Any, role: Role) -> dict[str, str]:
    token = mint_dev_token(settings, user="test-user", roles=[role])
    return {"Cookie": f"{SESSION_COOKIE}={token}", "csrf_token": csrf_for_session(token)}


def _page_call(client: Any, method: str, path: str, session: dict[str, str] | None) -> Any:
    headers = {"Cookie": session["Cookie"]} if session else {}
    data = {"csrf_token": session["csrf_token"]} if session and method == "POST" else None
    return client.request(method, path, headers=headers, data=data, follow_redirects=False)


class TestEveryPage:
    @pytest.fixture
    def pages(
        self, endpoints: list[tuple[str, str, RouteContext]]
    ) -> list[tuple[str, str, RouteContext]]:
        found = [(m, p, r) for m, p, r in endpoints if _is_page(p)]
        assert len(found) >= 10, "the walk found too few pages to be walking them"
        return found

    def test_public_pages_are_exactly_the_expected_ones(
        self, pages: list[tuple[str, str, RouteContext]], client: Any
    ) -> None:
        public = {(m, p) for m, p, r in pages if not route_permissions(r)}
        assert public == PUBLIC_PAGES
        for method, path in PUBLIC_PAGES - {("POST", "/web/sign-in"), ("POST", "/web/sign-out")}:
            assert _page_call(client, method, _concrete(path), None).status_code == 200, path
        # Signing in needs the sign-in form's own CSRF token; signing out without a session
        # just goes to the sign-in page.
        assert _page_call(client, "POST", "/web/sign-in", None).status_code == 403
        response = _page_call(client, "POST", "/web/sign-out", None)
        assert response.status_code == 303

    def test_303_to_sign_in_without_a_session(
        self, pages: list[tuple[str, str, RouteContext]], client: Any, auth: Headers
    ) -> None:
        checked = 0
        for method, path, _ in pages:
            if (method, path) in PUBLIC_PAGES:
                continue
            for headers in ({}, auth(Role.ADMIN), {"Cookie": f"{SESSION_COOKIE}=not-a-jwt"}):
                # A bearer token is not a session: pages are signed in by the cookie only.
                response = client.request(
                    method, _concrete(path), headers=headers, follow_redirects=False
                )
                assert response.status_code == 303, f"{method} {path}"
                assert response.headers["location"].startswith("/web/sign-in"), path
            checked += 1
        assert checked >= 8

    def test_403_page_for_a_role_without_the_permission(
        self, pages: list[tuple[str, str, RouteContext]], client: Any, settings: Any
    ) -> None:
        for method, path, route in pages:
            if (method, path) in PUBLIC_PAGES:
                continue
            denied = _denied_roles(route)
            assert denied, f"{method} {path} is open to every role"
            for role in denied:
                response = _page_call(client, method, _concrete(path), _session(settings, role))
                assert response.status_code == 403, f"{method} {path} as {role}"
                assert response.headers["content-type"].startswith("text/html")
                assert "permission" in response.text
            allowed = next(r for r in Role if r not in denied)
            response = _page_call(client, method, _concrete(path), _session(settings, allowed))
            assert response.status_code not in (303, 401, 403), f"{method} {path} as {allowed}"

    def test_a_post_without_the_csrf_token_is_refused(
        self, pages: list[tuple[str, str, RouteContext]], client: Any, settings: Any
    ) -> None:
        posts = [(m, p, r) for m, p, r in pages if m == "POST" and route_permissions(r)]
        assert posts
        for method, path, route in posts:
            allowed = next(r for r in Role if r not in _denied_roles(route))
            session = _session(settings, allowed)
            for token in ("", "forged"):
                response = client.request(
                    method,
                    _concrete(path),
                    headers={"Cookie": session["Cookie"]},
                    data={"csrf_token": token},
                    follow_redirects=False,
                )
                assert response.status_code == 403, f"{method} {path}"
                assert "did not come from a carebridge page" in response.text
