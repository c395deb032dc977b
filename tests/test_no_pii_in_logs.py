"""No personal data in diagnostic logs: load the sample, read it back, grep every log line."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from bridge.api.app import create_app
from bridge.api.logging import configure_logging
from bridge.auth.tokens import mint_dev_token
from bridge.cli import app
from bridge.core.settings import Settings
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "examples" / "sample"


def identifiers_in_sample() -> set[str]:
    """NHS numbers and family names of the sample's people (at least 5 characters long)."""
    found: set[str] = set()
    for line in (SAMPLE / "asc" / "persons.jsonl").read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        for key in ("nhs_number", "family_name", "date_of_birth"):
            value = row.get(key)
            if isinstance(value, str) and len(value) >= 5:
                found.add(value)
    return found


def test_ingest_and_reads_log_no_identifiers(
    settings: Settings, db: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAREBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CAREBRIDGE_DATABASE_URL", settings.effective_database_url)
    monkeypatch.chdir(tmp_path)
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream=stream)
    try:
        loaded = CliRunner().invoke(app, ["demo", "--no-serve", "--sample", str(SAMPLE)])
        assert loaded.exit_code == 0, loaded.output
        pid = loaded.output.split("/fhir/Patient/")[1].split()[0]
        token = mint_dev_token(settings, user="nurse", roles=["health_professional"])
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(settings)) as client:
            read = client.get(f"/fhir/Patient/{pid}", headers=headers)
            assert read.status_code == 200
            body = read.text
            assert client.get(f"/fhir/Patient/{pid}/_history", headers=headers).status_code == 200
            assert client.get("/fhir/Patient/missing", headers=headers).status_code == 404
            bad = client.put("/fhir/Patient/x", content=b"{nope", headers=headers)
            assert bad.status_code in (400, 403)
            # The person view flows: a search by name (the name is in the query string)
            # and the view of a person, as the demo prints them.
            sw = loaded.output.split("export SW_CONSENTED='")[1].split("'")[0]
            sw_headers = {"Authorization": f"Bearer {sw}"}
            search_url = loaded.output.split('$SW_CONSENTED" "')[1].split('"')[0]
            found = client.get(search_url.split("8000", 1)[1], headers=sw_headers)
            assert found.status_code == 200
            assert found.json()["count"] == 1
            view = client.get(found.json()["persons"][0]["view"], headers=sw_headers)
            assert view.status_code == 200
            body += view.text
            no_relationship = mint_dev_token(
                settings, user="W0", roles=["social_worker"], team="T99", org="E08000999"
            )
            refused = client.get(
                found.json()["persons"][0]["view"],
                headers={"Authorization": f"Bearer {no_relationship}"},
            )
            assert refused.status_code == 403
    finally:
        logging.getLogger().removeHandler(handler)
    # The test client's own request log (httpx) is the caller's, not the bridge's.
    logs = "\n".join(
        line
        for line in stream.getvalue().splitlines()
        if json.loads(line).get("logger") not in ("httpx", "httpx2")
    )
    assert logs.count("\n") > 5, "expected log lines to check"
    needles = identifiers_in_sample()
    # The check is real: the data did pass through (the read returned identifying content).
    assert any(n in body for n in needles)
    leaked = sorted(n for n in needles if n in logs)
    lines = [line for line in logs.splitlines() if any(n in line for n in leaked)]
    assert leaked == [], f"identifiers in logs: {leaked[:5]}: {lines[:3]}"
