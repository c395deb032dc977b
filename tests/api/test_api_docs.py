"""docs/api.md agrees with the code: the permissions table and the routes."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from bridge.auth.roles import PERMISSIONS, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _permission_rows() -> dict[str, frozenset[Role]]:
    lines = DOC.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| permission |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows: dict[str, frozenset[Role]] = {}
    for line in lines:
        match = re.match(r"^\| `([a-z_.]+)` \|", line)
        if not match:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[match.group(1)] = frozenset(
            Role(column) for column, cell in zip(columns[2:], cells[2:], strict=True) if cell
        )
    return rows


class TestApiDoc:
    def test_permissions_table_matches_the_code(self) -> None:
        assert _permission_rows() == PERMISSIONS

    def test_every_route_is_documented(self, app: FastAPI) -> None:
        doc = DOC.read_text()
        renamed = {
            "{resource_type}": "{type}",
            "{resource_id}": "{id}",
            "{version_id}": "{versionId}",
            "{person_id}": "{id}",
            "{record_id}": "{id}",
        }
        for route in iter_route_contexts(app.routes):
            if route.path in {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}:
                continue
            path = route.path or ""
            for old, new in renamed.items():
                path = path.replace(old, new)
            for method in route.methods or ():
                assert f"`{method} {path}`" in doc, f"{method} {path} is not in docs/api.md"
