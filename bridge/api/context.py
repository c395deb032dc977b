"""Per-request facts shared by the middleware, the dependencies and the error renderer.

They live in the ASGI scope's ``state`` dict (what ``request.state`` reads), so the outer
middleware sees what the inner layers learnt: the request id, the user, the error code.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

REQUEST_ID = "request_id"
PRINCIPAL = "principal"
ERROR_CODE = "error_code"


def state_of(scope: Scope) -> dict[str, Any]:
    """Return the request's state dict, creating it when absent."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def request_id_of(scope: Scope) -> str | None:
    """Return the request id the middleware assigned (None outside the middleware)."""
    value = state_of(scope).get(REQUEST_ID)
    return value if isinstance(value, str) else None
