"""The start page, and sign-in and sign-out for the development issuer.

Signing in picks one of the demo users; the server mints a development token for them
(``mint_dev_token``, which refuses in production mode) and keeps it in the session cookie.
With a configured identity provider there is no sign-in form here: the provider's token is
used through the API (a sign-in redirect for configured issuers is still to come).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from bridge.auth.roles import Role
from bridge.auth.tokens import mint_dev_token
from bridge.core.errors import PermissionDeniedError, ValidationError
from bridge.core.settings import Settings
from bridge.web.core import (
    PREFIX,
    SIGNIN_COOKIE,
    PageRoute,
    check_csrf,
    clear_session,
    csrf_for_signin,
    is_https,
    render,
    session_principal,
    set_session,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@dataclass(frozen=True)
class DemoUser:
    """A user of the synthetic sample that the development sign-in offers."""

    user: str
    name: str
    role: Role
    description: str
    team: str | None = None
    org: str | None = None


# Users of the synthetic sample (examples/sample): W81442 is allocated to several people.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(
        "W81442",
        "Sarah Hill",
        Role.SOCIAL_WORKER,
        "Social worker, North Locality Team (T02), Aire Valley Borough Council",
        team="T02",
        org="E08000999",
    ),
    DemoUser(
        "IG0001",
        "Imran Gill",
        Role.IG_OFFICER,
        "Information governance officer, Aire Valley Borough Council",
        org="E08000999",
    ),
    DemoUser(
        "ENG0001",
        "Erin Ng",
        Role.INTEGRATION_ENGINEER,
        "Integration engineer, carebridge support",
        org="E08000999",
    ),
)
_BY_ID = {u.user: u for u in DEMO_USERS}


def _dev_sign_in_available(settings: Settings) -> bool:
    return not settings.is_production and settings.dev_issuer_enabled


def _safe_next(value: str | None) -> str:
    """Return a local page to go to after sign-in (never another site)."""
    if not value:
        return PREFIX
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(PREFIX) or "\\" in value:
        return PREFIX
    return value


@router.get("/sign-in", summary="Sign in (development issuer)")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    """Offer the demo users; set the pre-session cookie the form's CSRF token is bound to."""
    settings: Settings = request.app.state.settings
    nonce = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        users=DEMO_USERS,
        available=_dev_sign_in_available(settings),
        next=_safe_next(next),
        signin_csrf=csrf_for_signin(nonce),
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path=f"{PREFIX}/sign-in",
    )
    return response


@router.post("/sign-in", summary="Sign in as a demo user")
def sign_in(
    request: Request,
    user: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = PREFIX,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Mint a development token for the chosen demo user and keep it in the session cookie."""
    nonce = request.cookies.get(SIGNIN_COOKIE)
    if not nonce or not secrets.compare_digest(csrf_for_signin(nonce), csrf_token):
        raise PermissionDeniedError(
            "This sign-in form did not come from carebridge, or it has expired: open the"
            " sign-in page again.",
            field="csrf_token",
        )
    chosen = _BY_ID.get(user)
    if chosen is None:
        raise ValidationError("Choose one of the demo users to sign in as.", field="user")
    settings: Settings = request.app.state.settings
    # Refuses in production mode, or when the development issuer is disabled.
    token = mint_dev_token(
        settings,
        user=chosen.user,
        roles=[chosen.role],
        team=chosen.team,
        org=chosen.org,
        name=chosen.name,
    )
    response = RedirectResponse(_safe_next(next), 303)
    set_session(response, request, token)
    response.delete_cookie(
        SIGNIN_COOKIE,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path=f"{PREFIX}/sign-in",
    )
    return response


@router.post("/sign-out", summary="Sign out")
def sign_out(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    """Forget the session (the form's CSRF token must match it, so no site can sign you out)."""
    if session_principal(request) is not None:
        check_csrf(request, csrf_token)
    response = RedirectResponse(f"{PREFIX}/sign-in", 303)
    clear_session(response, request)
    return response
