"""Fixtures for the ASC adapter: the committed sample and a small ASC HTTP API serving it."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.asc import KINDS

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sample"
SAMPLE_ASC = SAMPLE / "asc"


def sample_rows(collection: str) -> list[dict[str, Any]]:
    """Return the parseable rows of one sample export file, in file order."""
    rows = []
    for line in (SAMPLE_ASC / f"{collection}.jsonl").read_bytes().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # the manifest's deliberately truncated rows
    return rows


def instant(value: str) -> datetime:
    """Return an ISO date-time with offset as an aware datetime."""
    return datetime.fromisoformat(value)


def api_order(collection: str) -> list[dict[str, Any]]:
    """Return a kind's sample rows in the order the API contract serves them."""
    kind = next(k for k in KINDS.values() if k.collection == collection)
    return sorted(
        sample_rows(collection), key=lambda r: (instant(r["updated_at"]), r[kind.id_field])
    )


@dataclass
class Scripted:
    """A response the API gives instead of the real one (failures, odd bodies)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class AscApi:
    """An ASC HTTP API over the sample, following docs/adapters-asc.md, on 127.0.0.1."""

    base_url: str
    data: dict[str, list[dict[str, Any]]]
    # Per collection, responses to give (in order) before serving real pages.
    script: dict[str, list[Scripted]] = field(default_factory=lambda: defaultdict(list))
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def queue(self, collection: str, status: int, body: Any = b"", **headers: str) -> None:
        """Answer the next request for a collection with this response (JSON unless bytes)."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self.lock:
            self.script[collection].append(Scripted(status, payload, headers))

    def respond(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Scripted:
        """Answer one GET."""
        collection = path.strip("/")
        with self.lock:
            self.requests.append((collection, query, headers))
            if self.script.get(collection):
                return self.script[collection].pop(0)
        if collection not in self.data:
            return Scripted(404, b'{"detail": "not found"}')
        rows = self.data[collection]
        if "since" in query:
            try:
                since = instant(query["since"])
            except ValueError:
                return Scripted(400, b'{"detail": "bad since"}')
            # Inclusive, as the contract says.
            rows = [r for r in rows if instant(r["updated_at"]) >= since]
        size = int(query.get("page_size", "100"))
        offset = int(query.get("cursor", "0"))
        page = rows[offset : offset + size]
        more = offset + size < len(rows)
        body = {"items": page, "next_cursor": str(offset + size) if more else None}
        return Scripted(200, json.dumps(body).encode())


def _handler(api: AscApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            answer = api.respond(parts.path, query, dict(self.headers.items()))
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture(scope="module")
def sample_data() -> dict[str, list[dict[str, Any]]]:
    """The sample's rows per collection, in API order."""
    return {k.collection: api_order(k.collection) for k in KINDS.values()}


@pytest.fixture(scope="module")
def api_server(sample_data: dict[str, list[dict[str, Any]]]) -> Iterator[AscApi]:
    """An ASC HTTP API serving the sample on 127.0.0.1, running for the module's tests."""
    api = AscApi(base_url="", data=sample_data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    host, port = server.server_address[:2]
    api.base_url = f"http://{host!s}:{port}"
    # A short poll interval: shutdown() waits for the serving loop to notice.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def asc_api(api_server: AscApi) -> AscApi:
    """The running ASC HTTP API with no scripted responses and no requests recorded."""
    with api_server.lock:
        api_server.script.clear()
        api_server.requests.clear()
    return api_server


@pytest.fixture(scope="session")
def sample_asc() -> Path:
    """The committed sample's social care export directory."""
    return SAMPLE_ASC


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    """The committed sample's manifest (row counts, deliberately invalid rows)."""
    manifest: dict[str, Any] = json.loads((SAMPLE / "manifest.json").read_text())
    return manifest
