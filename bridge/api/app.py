"""Build the FastAPI application (``create_app``); every dependency hangs off ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from bridge import __version__
from bridge.access import AccessConfig, AccessGate
from bridge.api.deps import AuthFailureLog
from bridge.api.errors import install_error_handlers
from bridge.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from bridge.api.routers import (
    admin,
    audit,
    break_glass,
    fhir,
    fhir_search,
    health,
    matches,
    persons,
    sync_admin,
)
from bridge.api.routers import consent as consent_routes
from bridge.audit.service import audit_log_from_settings
from bridge.auth.tokens import TokenVerifier
from bridge.core.clock import Clock, SystemClock
from bridge.core.errors import ConfigurationError
from bridge.core.settings import Settings, load_settings
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_engine, make_session_factory
from bridge.web import router as web_router
from consent import ConsentEngine, PolicyError, load_policy

DESCRIPTION = """\
carebridge joins a community health record and an adult social care case system through
FHIR R4. Authenticate with an OAuth2 bearer JWT (`Authorization: Bearer <token>`); what
you may do depends on your roles. Errors are `application/problem+json`, or a FHIR
OperationOutcome under `/fhir`.
"""


def _consent_engine(settings: Settings) -> ConsentEngine:
    """Load the configured consent policy; a bad policy stops the app at start."""
    try:
        return ConsentEngine(load_policy(settings.consent_policy))
    except PolicyError as exc:
        raise ConfigurationError(
            f"CAREBRIDGE_CONSENT_POLICY={settings.consent_policy!r} cannot be used: {exc}"
        ) from exc


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build the API; refuse to start when the settings are unsafe for their mode."""
    settings = settings or load_settings()
    settings.check_production_safety()
    # Keys before the engine: a configuration error then leaves nothing open behind it.
    verifier = TokenVerifier.from_settings(settings)
    consent_engine = _consent_engine(settings)
    crypto = StoreCrypto.from_settings(settings)
    engine = make_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="carebridge",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        lifespan=lifespan,
        middleware=[
            # Outermost first: every response, even a 413 or a crash, gets a request id
            # and an access log line.
            Middleware(RequestContextMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes),
        ],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.crypto = crypto
    app.state.verifier = verifier
    app.state.consent = consent_engine
    app.state.clock = clock or SystemClock()
    app.state.audit = audit_log_from_settings(settings, app.state.clock)
    app.state.auth_failures = AuthFailureLog()
    # Specs are compiled once per app; problems are reported by GET /admin/mappings.
    app.state.mappings = Mappings.load(settings.mappings_dir, strict=False)
    app.state.gate = AccessGate(
        consent_engine,
        app.state.audit,
        AccessConfig.from_mapping_config(app.state.mappings.config),
        crypto=crypto,
        clock=app.state.clock,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    # Before the generic FHIR routes: /fhir/Consent/{id} must reach the consent handlers.
    app.include_router(consent_routes.router)
    app.include_router(fhir.router)
    # After the generic FHIR routes: GET /fhir/{type} would otherwise shadow /fhir/metadata.
    app.include_router(fhir_search.router)
    app.include_router(persons.router)
    app.include_router(break_glass.router)
    app.include_router(audit.router)
    app.include_router(admin.router)
    app.include_router(matches.router)
    app.include_router(sync_admin.router)
    # The web pages (bridge.web): same services, signed in by a session cookie.
    app.include_router(web_router)
    return app
