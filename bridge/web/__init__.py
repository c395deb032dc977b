"""Web pages for social workers, IG officers and integration engineers (server-rendered).

The pages are part of the API's app (``create_app`` includes ``router``) and use its
services: the access gate, the person view, the audit log and the break-glass records.
Sign-in, cookies and CSRF are in ``core``; see docs/web.md.
"""

from bridge.web.routes import router

__all__ = ["router"]
