"""Render every error once: problem+json, or a FHIR OperationOutcome under ``/fhir``.

``BridgeError`` carries its own status, code and FHIR issue type; FastAPI's request
validation errors and Starlette's routing errors (404, 405) are translated into the same
two shapes. Unexpected exceptions become a 500 with an opaque error id; the details go to
the log only (see ``bridge.api.middleware``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from bridge.api.context import ERROR_CODE, request_id_of, state_of
from bridge.core.errors import (
    AuthenticationError,
    BridgeError,
    MalformedBodyError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    RequestTooLargeError,
    ValidationError,
)
from bridge.fhir.outcome import operation_outcome

log = logging.getLogger("carebridge.errors")

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
ERROR_TYPE_PREFIX = "urn:carebridge:error:"
FHIR_PREFIX = "/fhir"
_CORE_KEYS = ("type", "title", "status", "detail", "code", "field", "request_id")
_LOCATION_KINDS = frozenset({"path", "query", "header", "cookie", "body"})


def is_fhir_path(path: str) -> bool:
    """Say whether a request path is under the FHIR API (errors become OperationOutcomes)."""
    return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")


def problem_body(error: BridgeError, *, status: int, request_id: str | None) -> dict[str, Any]:
    """Return an RFC 9457 problem document for an error."""
    # Extra members first, so they can never overwrite the standard ones.
    body: dict[str, Any] = {k: v for k, v in error.extra.items() if k not in _CORE_KEYS}
    body.update(
        {
            "type": ERROR_TYPE_PREFIX + error.code,
            "title": error.title,
            "status": status,
            "detail": error.detail,
            "code": error.code,
        }
    )
    if error.field:
        body["field"] = error.field
    if request_id:
        body["request_id"] = request_id
    return body


def outcome_body(error: BridgeError) -> dict[str, Any]:
    """Return a FHIR OperationOutcome for an error (one issue per reported problem)."""
    outcome = operation_outcome(
        severity="error",
        code=error.fhir_issue,
        diagnostics=error.detail,
        expression=error.field,
        details_code=error.code,
    )
    # FhirValidationError lists up to 20 problems; the first is already the main issue.
    more = error.extra.get("errors")
    if isinstance(more, list):
        for item in more[1:]:
            if isinstance(item, dict) and item.get("path") and item.get("reason"):
                outcome["issue"].append(
                    {
                        "severity": "error",
                        "code": error.fhir_issue,
                        "diagnostics": f"{item['path']}: {item['reason']}",
                        "expression": [str(item["path"])],
                    }
                )
    return outcome


def error_response(
    error: BridgeError,
    scope: Scope,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build the response for an error in the shape the request's path calls for."""
    status = status or error.status
    state_of(scope)[ERROR_CODE] = error.code
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    if is_fhir_path(scope.get("path", "")):
        content = orjson.dumps(outcome_body(error), default=str)
        media_type = FHIR_JSON
    else:
        body = problem_body(error, status=status, request_id=request_id_of(scope))
        content = orjson.dumps(body, default=str)
        media_type = PROBLEM_JSON
    return Response(content, status_code=status, headers=all_headers, media_type=media_type)


def internal_error_response(scope: Scope) -> tuple[Response, str]:
    """Build the opaque 500 response; return it with the error id to log."""
    error_id = uuid.uuid4().hex
    error = BridgeError(
        f"An unexpected error occurred. Quote error id {error_id} when reporting it.",
        extra={"error_id": error_id},
    )
    return error_response(error, scope, status=500), error_id


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = list(loc[1:] if loc and loc[0] in _LOCATION_KINDS else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


async def _bridge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BridgeError)
    if exc.status >= 500:
        log.error(
            "request failed: %s",
            exc.code,
            exc_info=exc,
            extra={"fields": {"request_id": request_id_of(request.scope), "code": exc.code}},
        )
    return error_response(exc, request.scope)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": _field_path(tuple(e.get("loc", ()))), "reason": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ] or [{"field": "body", "reason": "invalid request"}]
    first = problems[0]
    error = ValidationError(
        f"{first['field']}: {first['reason']}",
        field=first["field"],
        extra={"errors": [{"path": p["field"], "reason": p["reason"]} for p in problems[:20]]},
    )
    return error_response(error, request.scope)


def _allowed_methods(request: Request) -> list[str]:
    # Starlette's Allow header names only the first route matching the path; one path
    # (e.g. /fhir/{type}/{id}) is served by several routes, each with its own methods.
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE and route.methods:
            methods.update(route.methods)
    return sorted(methods)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    error: BridgeError
    if status == 404:
        error = NotFoundError("There is no endpoint at this path.")
    elif status == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = ", ".join(allowed)
        error = MethodNotAllowedError(
            f"{request.method} is not supported here"
            + (f"; this path supports {', '.join(allowed)}." if allowed else ".")
        )
    elif status == 413:
        error = RequestTooLargeError("The request body is too large.")
    elif status == 401:
        error = AuthenticationError(str(exc.detail))
    elif status == 403:
        error = PermissionDeniedError(str(exc.detail))
    elif status == 400:
        error = MalformedBodyError(str(exc.detail))
    else:
        # A status Starlette or FastAPI raised that has no error class of its own.
        error = ValidationError(str(exc.detail)) if status < 500 else BridgeError(str(exc.detail))
    return error_response(error, request.scope, status=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the renderers on an app (unexpected errors are handled by the middleware)."""
    app.add_exception_handler(BridgeError, _bridge_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
