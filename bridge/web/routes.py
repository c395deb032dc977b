"""All page routes under ``/web``, and the vendored NHS.UK frontend assets they use."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from bridge.core.errors import NotFoundError
from bridge.web import audit, persons, signin
from bridge.web.core import PREFIX, STATIC_DIR, PageRoute, render, session_principal

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False)
_STATIC_ROOT = STATIC_DIR.resolve()
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@router.get("", summary="Start page (public)")
def home(request: Request) -> Response:
    """Show what the signed-in user can do, or how to sign in."""
    return render(request, "home.html", principal=session_principal(request))


@router.get("/static/{asset:path}", summary="Page assets (public)")
def static(request: Request, asset: str) -> Response:
    """Serve a file of bridge/web/static (styles, scripts, icons); nothing outside it."""
    path = (_STATIC_ROOT / asset).resolve()
    if not path.is_relative_to(_STATIC_ROOT) or not path.is_file() or path.suffix not in _TYPES:
        raise NotFoundError(f"no page asset {asset!r}", field="asset")
    return FileResponse(
        path,
        media_type=_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


router.include_router(signin.router)
router.include_router(persons.router)
router.include_router(audit.router)
