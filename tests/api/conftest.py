"""Fixtures for HTTP tests: an app on the migrated test database, clients and tokens."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.exceptions import StarletteDeprecationWarning

from bridge.api.app import create_app
from bridge.auth.roles import Role
from bridge.auth.tokens import mint_dev_token
from bridge.core.clock import Clock, FixedClock
from bridge.core.settings import Settings

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient and warns when it falls
    # back to httpx; the client works the same either way.
    warnings.filterwarnings("ignore", category=StarletteDeprecationWarning, message=".*httpx2")
    from starlette.testclient import TestClient

AppFactory = Callable[..., FastAPI]
ClientFactory = Callable[..., TestClient]
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def make_app(db: Engine, settings: Settings, clock: FixedClock) -> Iterator[AppFactory]:
    """Build apps on the clean test database; their engines are disposed afterwards."""
    apps: list[FastAPI] = []

    def build(app_settings: Settings | None = None, *, app_clock: Clock | None = None) -> FastAPI:
        app = create_app(app_settings or settings, clock=app_clock or clock)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.state.engine.dispose()


@pytest.fixture
def make_client(make_app: AppFactory) -> Iterator[ClientFactory]:
    """Open TestClients (lifespan included) that are closed after the test."""
    with ExitStack() as stack:

        def open_client(app: FastAPI | None = None, **kwargs: Any) -> TestClient:
            return stack.enter_context(TestClient(app or make_app(), **kwargs))

        yield open_client


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    """The app with development settings and the fixed clock."""
    return make_app()


@pytest.fixture
def client(make_client: ClientFactory, app: FastAPI) -> TestClient:
    """A client for ``app``."""
    return make_client(app)


@pytest.fixture
def auth(settings: Settings) -> Headers:
    """Return Authorization headers with a development token for the given roles."""

    def headers(*roles: Role, user: str = "test-user", **claims: Any) -> dict[str, str]:
        token = mint_dev_token(settings, user=user, roles=roles or (Role.ADMIN,), **claims)
        return {"Authorization": f"Bearer {token}"}

    return headers
