"""FastAPI dependencies: who is calling, what they may do, and the request's transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

import pydantic
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bridge.api.context import PRINCIPAL, request_id_of, state_of
from bridge.audit.service import Actor, AuditLog, AuditRecord
from bridge.auth.principal import Principal
from bridge.auth.roles import roles_allowed
from bridge.auth.tokens import TokenVerifier
from bridge.core.clock import Clock
from bridge.core.errors import (
    AuthenticationError,
    MalformedBodyError,
    PermissionDeniedError,
    StoreError,
)
from bridge.store.crypto import StoreCrypto
from bridge.store.resources import ResourceRepository

log = logging.getLogger("carebridge.auth")

# Declared for OpenAPI (the "Authorize" button); the header itself is parsed below so a
# wrong scheme gets a precise message rather than a generic one.
bearer_scheme = HTTPBearer(auto_error=False, description="JWT from the identity provider")


def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Return the caller named by the request's bearer token (401 when there is none)."""
    header = request.headers.get("authorization")
    if not header or not header.strip():
        raise AuthenticationError(
            "A bearer token is required: send 'Authorization: Bearer <token>'."
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The Authorization header must be 'Bearer <token>'.")
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal = verifier.verify(token.strip())
    except AuthenticationError as exc:
        failures: AuthFailureLog = request.app.state.auth_failures
        failures.note(request, exc)
        raise
    state_of(request.scope)[PRINCIPAL] = principal
    return principal


class AuthFailureLog:
    """Audits refused tokens (``auth.failure``) without letting a flood flood the log.

    Per client address, at most ``per_minute`` entries are written in any clock minute;
    further failures in that minute are counted, and the next entry written for that
    address says how many were left out (``detail.suppressed``). Each entry is written in
    a transaction of its own (the request itself fails with 401 and commits nothing); if
    it cannot be written the failure is logged and the answer is still 401.
    """

    def __init__(self, per_minute: int = 10) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        # address -> (minute, written in that minute, suppressed since the last entry)
        self._seen: dict[str, tuple[int, int, int]] = {}

    def _admit(self, address: str, minute: int) -> int | None:
        """Return how many were suppressed before this one, or None to suppress it."""
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {a: v for a, v in self._seen.items() if v[0] == minute}
            at, written, suppressed = self._seen.get(address, (minute, 0, 0))
            if at != minute:
                written = 0
            if written >= self.per_minute:
                self._seen[address] = (minute, written, suppressed + 1)
                return None
            self._seen[address] = (minute, written + 1, 0)
            return suppressed

    def note(self, request: Request, error: AuthenticationError) -> None:
        """Audit one refused token (or count it, past the per-minute limit)."""
        clock: Clock = request.app.state.clock
        address = request.client.host if request.client else "unknown"
        suppressed = self._admit(address, int(clock.now().timestamp() // 60))
        if suppressed is None:
            return
        detail: dict[str, Any] = {"reason": error.detail, "path": request.url.path}
        if suppressed:
            detail["suppressed"] = suppressed
        record = AuditRecord(
            actor=Actor("unauthenticated"),
            action="auth.failure",
            outcome="failure",
            request_id=request_id_of(request.scope),
            client_address=address,
            detail=detail,
        )
        factory: sessionmaker[Session] = request.app.state.session_factory
        try:
            with factory() as session, session.begin():
                audit: AuditLog = request.app.state.audit
                audit.record(session, record)
        except Exception:
            log.exception("could not audit a refused token")


class RequirePermission:
    """Dependency that lets the request through only when the caller holds a permission."""

    def __init__(self, permission: str) -> None:
        roles_allowed(permission)  # a typo fails at import time, not at request time
        self.permission = permission

    async def __call__(self, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.has(self.permission):
            granted = ", ".join(sorted(r.value for r in roles_allowed(self.permission)))
            raise PermissionDeniedError(
                f"This needs the '{self.permission}' permission, which only these roles"
                f" have: {granted}."
            )
        return principal


def require(permission: str) -> RequirePermission:
    """Return a dependency that refuses (403) callers without ``permission``."""
    return RequirePermission(permission)


def route_permissions(route: APIRoute | RouteContext) -> set[str]:
    """Return the permissions a route's dependencies require (for tests and docs)."""
    found: set[str] = set()
    dependant: Dependant | None = getattr(route, "dependant", None)
    stack: list[Dependant] = [dependant] if dependant is not None else []
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, RequirePermission):
            found.add(dependant.call.permission)
        stack.extend(dependant.dependencies)
    return found


def get_session(request: Request) -> Iterator[Session]:
    """Open the request's transaction: commit when the handler succeeds, roll back otherwise."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    try:
        with factory() as session, session.begin():
            yield session
    except OperationalError as exc:
        # Connection loss, lock timeouts: the client may retry; the detail is only logged.
        raise StoreError("The database is unavailable; try again shortly.") from exc


def get_resources(
    request: Request,
    # scope="function": the transaction ends (and commits) before the response is sent,
    # so a client never sees success for a write that then fails to commit.
    session: Annotated[Session, Depends(get_session, scope="function")],
) -> ResourceRepository:
    """Return the FHIR resource repository bound to the request's transaction."""
    crypto: StoreCrypto = request.app.state.crypto
    clock: Clock = request.app.state.clock
    return ResourceRepository(session, crypto=crypto, clock=clock)


def audit_record(
    request: Request,
    principal: Principal,
    *,
    action: str,
    outcome: str,
    person_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Describe what this request did for the audit log (ids and codes only)."""
    return AuditRecord(
        actor=Actor(
            principal.user,
            tuple(sorted(r.value for r in principal.roles)),
            org=principal.org,
            team=principal.team,
        ),
        action=action,
        outcome=outcome,
        person_id=person_id,
        purpose="direct-care",
        request_id=request_id_of(request.scope),
        client_address=request.client.host if request.client else None,
        detail=detail or {},
    )


def record_audit(request: Request, session: Session, record: AuditRecord) -> None:
    """Append the entry in the request's transaction: if it fails, so does the request."""
    audit: AuditLog = request.app.state.audit
    audit.record(session, record)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
DbSession = Annotated[Session, Depends(get_session, scope="function")]
Resources = Annotated[ResourceRepository, Depends(get_resources)]


M = TypeVar("M", bound=pydantic.BaseModel)


def parse_body(model: type[M], body: bytes) -> M:
    """Read a JSON request body into ``model``; a bad one is a 400 naming the field."""
    try:
        return model.model_validate_json(body or b"{}")
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise MalformedBodyError(f"{where}: {err['msg']}", field=where) from None


def json_body_doc(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """Return the OpenAPI ``requestBody`` of a route that reads ``model`` from raw bytes."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
