"""/health, request ids and the JSON request log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from bridge.api.logging import configure_logging
from bridge.auth.roles import Role
from bridge.store.db import make_engine

ClientFactory = Callable[..., Any]
Headers = Callable[..., dict[str, str]]


class TestHealth:
    def test_ok_without_authentication(self, client: Any) -> None:
        response = client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok"}
        assert response.headers["cache-control"] == "no-store"

    def test_503_when_the_database_is_unreachable(
        self, app: FastAPI, make_client: ClientFactory, tmp_path: Path
    ) -> None:
        # A directory is not an openable SQLite file: every connection attempt fails.
        app.state.engine.dispose()
        app.state.engine = make_engine(f"sqlite:///{tmp_path}")
        try:
            response = make_client(app).get("/health")
        finally:
            app.state.engine.dispose()
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "database": "unavailable"}
        assert str(tmp_path) not in response.text


class TestRequestId:
    def test_generated_when_absent(self, client: Any) -> None:
        first = client.get("/health").headers["x-request-id"]
        second = client.get("/health").headers["x-request-id"]
        assert len(first) == 32
        assert first != second

    def test_sane_incoming_id_is_echoed(self, client: Any) -> None:
        response = client.get("/health", headers={"X-Request-ID": "lb-7f3a-0001"})
        assert response.headers["x-request-id"] == "lb-7f3a-0001"

    @pytest.mark.parametrize(
        "bad",
        [
            b"x" * 65,
            b"has space",
            b"semi;colon",
            b"tab\there",
            "\u00fcn\u00efcode".encode("latin-1"),
            b"a/b",
            b"",
        ],
    )
    def test_insane_incoming_id_is_replaced(self, client: Any, bad: bytes) -> None:
        response = client.get("/health", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"].encode("latin-1") != bad
        assert len(response.headers["x-request-id"]) == 32

    def test_error_bodies_carry_the_request_id(self, client: Any) -> None:
        response = client.get("/nowhere", headers={"X-Request-ID": "trace-42"})
        assert response.json()["request_id"] == "trace-42"
        assert response.headers["x-request-id"] == "trace-42"


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Route logging through the JSON formatter into a buffer; restore afterwards."""
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    handler = configure_logging("INFO", stream=buffer)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class TestRequestLog:
    def _requests(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if line["logger"] == "carebridge.request"]

    def test_one_json_line_per_request_without_query_string(
        self, client: Any, auth: Headers, log_lines: Callable[[], list[dict[str, Any]]]
    ) -> None:
        client.get(
            "/fhir/Patient/p1?identifier=9990000018",
            headers=auth(Role.HEALTH_PROFESSIONAL, user="hp7") | {"X-Request-ID": "req-77"},
        )
        [line] = self._requests(log_lines())
        assert line["request_id"] == "req-77"
        assert line["method"] == "GET"
        assert line["path"] == "/fhir/{resource_type}/{resource_id}"
        assert line["status"] == 404
        assert line["user"] == "hp7"
        assert line["error_code"] == "BRIDGE-0200"
        assert line["level"] == "INFO"
        assert isinstance(line["duration_ms"], float)
        # Our own log lines (httpx, the test client, logs the URL it requested).
        raw = json.dumps([x for x in log_lines() if x["logger"].startswith("carebridge")])
        assert "9990000018" not in raw
        assert "identifier=" not in raw

    def test_unauthenticated_request_has_no_user(
        self, client: Any, log_lines: Callable[[], list[dict[str, Any]]]
    ) -> None:
        client.get("/health")
        [line] = self._requests(log_lines())
        assert line["path"] == "/health"
        assert line["status"] == 200
        assert "user" not in line

    def test_unmatched_path_is_logged_without_query(
        self, client: Any, log_lines: Callable[[], list[dict[str, Any]]]
    ) -> None:
        client.get("/nowhere?nhs=9990000018")
        [line] = self._requests(log_lines())
        assert line["path"] == "/nowhere"
        assert line["status"] == 404

    def test_configure_logging_replaces_its_own_handler(self) -> None:
        root = logging.getLogger()
        level = root.level
        first = configure_logging("WARNING", stream=io.StringIO())
        second = configure_logging("INFO", stream=io.StringIO())
        try:
            assert first not in root.handlers
            assert second in root.handlers
            assert root.level == logging.INFO
        finally:
            root.removeHandler(second)
            root.setLevel(level)
