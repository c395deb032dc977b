"""What every page shares: templates, the session cookie, CSRF, sign-in and permission checks.

Pages authenticate with a session cookie that holds the same bearer token the API takes,
verified by the same ``app.state.verifier`` into the same ``Principal``, and check the same
permissions (``bridge.auth.roles``). Without a valid session a page redirects (303) to the
sign-in page instead of answering 401. Every POST form carries a CSRF token, checked before
the handler runs. Errors are rendered as pages (the API renders them as problem+json).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bridge.api.context import ERROR_CODE, PRINCIPAL, request_id_of, state_of
from bridge.api.deps import RequirePermission
from bridge.auth.principal import Principal
from bridge.auth.roles import roles_allowed
from bridge.auth.tokens import TokenVerifier
from bridge.core.errors import (
    AuthenticationError,
    BridgeError,
    PermissionDeniedError,
    ValidationError,
)

log = logging.getLogger("carebridge.web")

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
PREFIX = "/web"
SESSION_COOKIE = "carebridge_session"
SIGNIN_COOKIE = "carebridge_signin"
CSRF_FIELD = "csrf_token"
# Pages name persons and show their records: never cached, never framed, their addresses
# never sent to another site in a Referer, and nothing loaded from anywhere but this app
# (the pages work offline). Not "no-referrer": browsers then send "Origin: null" with
# forms, and the CSRF check needs the real origin.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
        " form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


def nice_date(value: Any) -> str:
    """Return an ISO date or instant as people write it (12 February 1937, 09:30)."""
    text = str(value)
    try:
        if len(text) == 10:
            return date.fromisoformat(text).strftime("%-d %B %Y")
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    return when.strftime("%-d %B %Y, %H:%M")


def dict_items_with(data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Return a copy of ``data`` with ``extra`` set (for query strings in templates)."""
    return {**data, **extra}


templates.filters["nice_date"] = nice_date
templates.filters["dict_items_with"] = dict_items_with


class SignInRequired(Exception):
    """No valid session: the page redirects to the sign-in page."""


# -- the session cookie -----------------------------------------------------------------
def is_https(request: Request) -> bool:
    """Return whether the page was served over https (then cookies are Secure)."""
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, token: str) -> None:
    """Keep the bearer token in an HttpOnly, SameSite=Strict cookie for the whole app."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )


def clear_session(response: Response, request: Request) -> None:
    """Forget the session (sign-out, or a token that no longer verifies)."""
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=is_https(request), path="/"
    )


def session_principal(request: Request) -> Principal | None:
    """Return the signed-in user, or None when there is no session or it does not verify."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal = verifier.verify(token)
    except AuthenticationError:
        return None
    state_of(request.scope)[PRINCIPAL] = principal
    return principal


def page_principal(request: Request) -> Principal:
    """Return the signed-in user (the page redirects to sign-in when there is none)."""
    principal = session_principal(request)
    if principal is None:
        raise SignInRequired
    return principal


class RequirePagePermission(RequirePermission):
    """The API's permission check, for a signed-in page user."""

    async def __call__(  # type: ignore[override]
        self, principal: Annotated[Principal, Depends(page_principal)]
    ) -> Principal:
        if not principal.has(self.permission):
            granted = ", ".join(sorted(r.value for r in roles_allowed(self.permission)))
            raise PermissionDeniedError(
                f"This page needs the '{self.permission}' permission, which only these roles"
                f" have: {granted}."
            )
        return principal


def require_page(permission: str) -> RequirePagePermission:
    """Return a dependency that lets only signed-in users with ``permission`` through."""
    return RequirePagePermission(permission)


# -- CSRF -------------------------------------------------------------------------------
def _mac(key: str, label: bytes) -> str:
    digest = hmac.new(key.encode(), label, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_for_session(token: str) -> str:
    """Return the CSRF token of a session: an HMAC keyed by the session's own secret token.

    The session token lives in an HttpOnly, SameSite=Strict cookie, so another site can
    neither read it nor compute this value; no server-side state is needed.
    """
    return _mac(token, b"carebridge-web-csrf")


def csrf_for_signin(nonce: str) -> str:
    """Return the sign-in form's CSRF token for the pre-session nonce cookie."""
    return _mac(nonce, b"carebridge-web-signin")


def csrf_token(request: Request) -> str:
    """Return the CSRF token to put in this page's forms ('' when not signed in)."""
    token = request.cookies.get(SESSION_COOKIE)
    return csrf_for_session(token) if token else ""


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        # Browsers send Origin with every cross-site POST; its absence is a same-site
        # navigation or a non-browser client (which holds no victim's cookie).
        return origin is None
    own = urlsplit(str(request.base_url))
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (own.scheme, own.netloc)


def check_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    """Refuse a form that did not come from this app's own page (403)."""
    session = request.cookies.get(SESSION_COOKIE)
    expected = csrf_for_session(session) if session else None
    if (
        not _same_origin(request)
        or expected is None
        or not hmac.compare_digest(expected, csrf_token)
    ):
        raise PermissionDeniedError(
            "This form did not come from a carebridge page, or your session changed since it"
            " was shown: go back, reload the page and try again.",
            field=CSRF_FIELD,
        )


CsrfChecked = Depends(check_csrf)


# -- rendering --------------------------------------------------------------------------
def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    principal: Principal | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page with the layout's context (user, CSRF token, navigation)."""
    html = templates.get_template(template).render(
        request=request,
        user=principal,
        csrf_token=csrf_token(request) if principal is not None else "",
        csrf_field=CSRF_FIELD,
        prefix=PREFIX,
        request_id=request_id_of(request.scope),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def sign_in_redirect(request: Request) -> RedirectResponse:
    """Send the browser to the sign-in page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = PREFIX
    response = RedirectResponse(f"{PREFIX}/sign-in?next={quote(target, safe='')}", 303)
    if request.cookies.get(SESSION_COOKIE):
        clear_session(response, request)
    return response


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path")]
    field = ".".join(loc) or "request"
    return field, f"{field}: {err.get('msg', 'is not valid')}"


def error_page(request: Request, exc: BridgeError | RequestValidationError) -> HTMLResponse:
    """Render an error as a page: what went wrong, naming the field, in plain words."""
    if isinstance(exc, RequestValidationError):
        field, detail = _validation_message(exc)
        status, code, reasons = ValidationError.status, ValidationError.code, []
    else:
        field, detail, status, code = exc.field, exc.detail, exc.status, exc.code
        reasons = list((exc.extra or {}).get("reasons") or [])
    state_of(request.scope)[ERROR_CODE] = code  # for the access log line
    return render(
        request,
        "error.html",
        status_code=status,
        principal=state_of(request.scope).get(PRINCIPAL),
        status=status,
        code=code,
        detail=detail,
        field=field,
        reasons=reasons,
    )


class PageRoute(APIRoute):
    """A page: sign-in redirects and errors become pages rather than JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except (BridgeError, RequestValidationError) as exc:
                return error_page(request, exc)

        return page_handler
