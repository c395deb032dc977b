"""Pure ASGI middleware: request id and access log, and the request body size limit.

Pure ASGI rather than ``BaseHTTPMiddleware`` so that bodies stream through untouched and
exceptions keep their normal path.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.api.context import ERROR_CODE, PRINCIPAL, REQUEST_ID, state_of
from bridge.api.errors import error_response, internal_error_response
from bridge.core.errors import MalformedBodyError, RequestTooLargeError

request_log = logging.getLogger("carebridge.request")
error_log = logging.getLogger("carebridge.errors")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _request_id(scope: Scope) -> str:
    incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if incoming and _SANE_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def _path_for_log(scope: Scope) -> str:
    # The route template ("/fhir/{resource_type}/{resource_id}") groups requests and keeps
    # ids out of the log; the raw path only when no route matched. Never the query string.
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else str(scope.get("path", ""))


class RequestContextMiddleware:
    """Give each request an id, log one JSON line for it, and turn crashes into opaque 500s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        state = state_of(scope)
        request_id = state[REQUEST_ID] = _request_id(scope)
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if response_started:
                error_log.error(
                    "unhandled error after the response started",
                    exc_info=exc,
                    extra={"fields": {"request_id": request_id}},
                )
                raise
            response, error_id = internal_error_response(scope)
            error_log.error(
                "unhandled error",
                exc_info=exc,
                extra={"fields": {"request_id": request_id, "error_id": error_id}},
            )
            await response(scope, receive, send_with_id)
        finally:
            fields: dict[str, Any] = {
                "method": scope.get("method"),
                "path": _path_for_log(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started_at) * 1000, 2),
                "request_id": request_id,
            }
            principal = state.get(PRINCIPAL)
            if principal is not None:
                fields["user"] = getattr(principal, "user", None)
            if state.get(ERROR_CODE):
                fields["error_code"] = state[ERROR_CODE]
            request_log.info("request", extra={"fields": fields})


class BodyLimitMiddleware:
    """Refuse request bodies over the limit before anything reads them into memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> RequestTooLargeError:
        return RequestTooLargeError(
            f"The request body is larger than the {self.max_bytes} bytes allowed.",
            extra={"limit_bytes": self.max_bytes},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                bad = MalformedBodyError(
                    "Content-Length is not a byte count", field="Content-Length"
                )
                await error_response(bad, scope)(scope, receive, send)
                return
            if length > self.max_bytes:
                # Refuse without reading a byte; closing stops the client sending the rest.
                response = error_response(self._too_large(), scope, headers={"Connection": "close"})
                await response(scope, receive, send)
                return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside whoever is reading the body; the error handlers render it.
                    raise self._too_large()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLargeError as exc:
            if response_started:
                raise
            await error_response(exc, scope, headers={"Connection": "close"})(scope, receive, send)
