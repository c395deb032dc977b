"""The `carebridge` command line, run in-process against real files and the test database."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bridge.api.app import create_app
from bridge.cli import app
from bridge.core.clock import SystemClock
from bridge.core.settings import Settings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_engine, make_session_factory, transaction
from bridge.store.keys import key_usage
from bridge.store.migrate import MIGRATIONS_DIR
from bridge.store.resources import ResourceRepository
from tests.conftest import REPO_ROOT

runner = CliRunner()


def jwt_for(settings: Settings, role: str) -> str:
    """Return a development token for one role."""
    from bridge.auth.tokens import mint_dev_token

    return mint_dev_token(settings, user=f"test-{role}", roles=[role])


@pytest.fixture
def env(settings: Settings, db: Engine, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI (which reads the environment) at the test database and a temp DATA_DIR."""
    monkeypatch.setenv("CAREBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CAREBRIDGE_DATABASE_URL", settings.effective_database_url)
    monkeypatch.chdir(settings.data_dir.parent)
    return settings


class TestDbUpgrade:
    def test_upgrade_reports_revision(self, env: Settings) -> None:
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "schema revision" in result.output
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        assert f"-> {head}" in result.output


class TestToken:
    def test_mints_a_token_the_api_accepts(self, env: Settings) -> None:
        result = runner.invoke(
            app, ["token", "--user", "u1", "--role", "ig_officer", "--team", "ig", "--org", "RXX"]
        )
        assert result.exit_code == 0, result.output
        tok = result.output.strip()
        claims = jwt.decode(tok, options={"verify_signature": False})
        assert claims["sub"] == "u1"
        assert claims["roles"] == ["ig_officer"]
        assert claims["org"] == "RXX"
        with TestClient(create_app(env)) as client:
            r = client.get("/fhir/metadata", headers={"Authorization": f"Bearer {tok}"})
            assert r.status_code == 200

    def test_unknown_role_is_a_clear_error(self, env: Settings) -> None:
        result = runner.invoke(app, ["token", "--user", "u1", "--role", "wizard"])
        assert result.exit_code == 1
        assert "wizard" in result.output

    def test_refused_in_production(self, env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CAREBRIDGE_MODE", "production")
        result = runner.invoke(app, ["token", "--user", "u1", "--role", "admin"])
        assert result.exit_code == 1
        assert "CAREBRIDGE_DEV_ISSUER_ENABLED" in result.output or "production" in result.output


class TestKeys:
    def test_init_writes_production_keys_and_refuses_to_overwrite(self, tmp_path: Path) -> None:
        out = tmp_path / "keys"
        first = runner.invoke(app, ["keys", "init", "--out-dir", str(out)])
        assert first.exit_code == 0, first.output
        ring = json.loads((out / "data-keys.json").read_text())
        assert ring["development"] is False
        assert (out / "index.key").read_text().startswith("production\n")
        assert (out / "audit.key").read_text().startswith("production\n")
        assert (out / "audit-signing.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
        again = runner.invoke(app, ["keys", "init", "--out-dir", str(out)])
        assert again.exit_code == 1
        assert "refusing to overwrite" in again.output

    def test_rotate_reencrypts_loaded_demo(self, env: Settings) -> None:
        loaded = runner.invoke(
            app, ["demo", "--no-serve", "--sample", str(REPO_ROOT / "examples" / "sample")]
        )
        assert loaded.exit_code == 0, loaded.output
        before = StoreCrypto.from_settings(env).keyring.active
        result = runner.invoke(app, ["keys", "rotate", "--batch", "7"])
        assert result.exit_code == 0, result.output
        crypto = StoreCrypto.from_settings(env)
        assert crypto.keyring.active != before
        assert before in crypto.keyring.keys  # old key kept for backups
        engine = make_engine(env.effective_database_url)
        with make_session_factory(engine)() as s:
            usage = key_usage(s)
            for table, per_key in usage.items():
                assert set(per_key) <= {crypto.keyring.active}, (table, per_key)
            assert usage["resource"][crypto.keyring.active] > 0
        engine.dispose()
        status = runner.invoke(app, ["keys", "status"])
        assert status.exit_code == 0
        assert "(active)" in status.output


class TestDemo:
    def test_demo_loads_sample_and_api_serves_it(self, env: Settings) -> None:
        result = runner.invoke(
            app, ["demo", "--no-serve", "--sample", str(REPO_ROOT / "examples" / "sample")]
        )
        assert result.exit_code == 0, result.output
        assert "adult social care exports:" in result.output
        assert "HL7 acknowledgements sent" in result.output
        nurse = result.output.split("export NURSE='")[1].split("'")[0]
        pid = result.output.split("/fhir/Patient/")[1].split()[0]
        with TestClient(create_app(env)) as client:
            assert client.get(f"/fhir/Patient/{pid}").status_code == 401
            r = client.get(f"/fhir/Patient/{pid}", headers={"Authorization": f"Bearer {nurse}"})
            assert r.status_code == 200
            assert r.json()["meta"]["source"] == "urn:carebridge:source:asc"
            # The printed person-view examples work as the README says.
            out = result.output
            consented = out.split("export SW_CONSENTED='")[1].split("'")[0]
            withheld = out.split("export SW_WITHHELD='")[1].split("'")[0]
            shown_url = out.split('$SW_CONSENTED" ')[2].split()[0]
            hidden_url = out.split('$SW_WITHHELD" ')[2].split()[0]
            shown = client.get(
                shown_url.removeprefix("http://127.0.0.1:8000"),
                headers={"Authorization": f"Bearer {consented}"},
            ).json()
            assert shown["access"]["decision"] == "permit"
            chs_items = [
                i for section in ("alerts", "hospital_activity") for i in shown[section]
            ] + [i for items in shown["health"].values() for i in items]
            assert chs_items, "the consented example shows community health items"
            assert all(
                "consent" in i["why"][0] for i in chs_items if i["source"]["system"] == "chs"
            )
            hidden = client.get(
                hidden_url.removeprefix("http://127.0.0.1:8000"),
                headers={"Authorization": f"Bearer {withheld}"},
            ).json()
            assert {w["reason"] for w in hidden["withheld"]} == {"no-consent"}
            assert all(not items for items in hidden["health"].values())
            # The sample's HL7 admissions went through the MLLP handler, which queued
            # alerts for the allocated teams in the same transactions.
            engineer = jwt_for(env, "integration_engineer")
            outbox = client.get(
                "/admin/outbox", headers={"Authorization": f"Bearer {engineer}"}
            ).json()
            rules = {a["rule"] for a in outbox["alerts"]}
            assert "inpatient-admitted" in rules, rules
        # Loading again changes nothing: same ids, no new versions.
        again = runner.invoke(
            app, ["demo", "--no-serve", "--sample", str(REPO_ROOT / "examples" / "sample")]
        )
        assert again.exit_code == 0
        assert " 0 applied" in again.output
        engine = make_engine(env.effective_database_url)
        with make_session_factory(engine)() as s:
            repo = ResourceRepository(s, crypto=StoreCrypto.from_settings(env), clock=SystemClock())
            assert repo.read("Patient", pid).version_id == 1
        engine.dispose()

    def test_demo_bad_rows_become_dead_letters(self, env: Settings, tmp_path: Path) -> None:
        sample = tmp_path / "sample"
        (sample / "asc").mkdir(parents=True)
        (sample / "chs" / "adt").mkdir(parents=True)
        good = (REPO_ROOT / "examples" / "sample" / "asc" / "persons.jsonl").read_text()
        first = next(line for line in good.splitlines() if '"nhs_number":"999' in line)
        (sample / "asc" / "persons.jsonl").write_text(
            first + "\n" + '{"person_id": "ASC1", "date_of_birth": "31/02/1941",'
            ' "updated_at": "2026-10-01T09:00:00+01:00"}\n{"broken\n'
        )
        result = runner.invoke(app, ["demo", "--no-serve", "--sample", str(sample)])
        assert result.exit_code == 0, result.output
        assert "3 records: 1 applied" in result.output
        assert "2 dead-lettered" in result.output
        assert "date_of_birth" in result.output
        assert "persons.jsonl:3: broken JSON" in result.output
        listed = runner.invoke(app, ["dead-letters", "list"])
        assert listed.exit_code == 0, listed.output
        assert "persons.jsonl:3" in listed.output
        assert "2 open dead letter(s)" in listed.output

    def test_demo_refuses_a_directory_that_is_not_a_sample(
        self, env: Settings, tmp_path: Path
    ) -> None:
        result = runner.invoke(app, ["demo", "--no-serve", "--sample", str(tmp_path)])
        assert result.exit_code == 1
        assert "not a generated sample" in result.output


class TestExamples:
    def test_generate_small_set(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["examples", "generate", "--persons", "5", "--seed", "1", "--out", str(tmp_path)]
        )
        assert result.exit_code == 0, result.output
        assert (tmp_path / "manifest.json").is_file()
        assert (tmp_path / "asc" / "persons.jsonl").is_file()

    def test_bad_date_is_a_clear_error(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["examples", "generate", "--out", str(tmp_path), "--as-of", "01/11/2026"]
        )
        assert result.exit_code == 1
        assert "YYYY-MM-DD" in result.output


class TestAudit:
    def _record(self, env: Settings, n: int) -> None:
        from bridge.audit.service import Actor, AuditRecord, audit_log_from_settings

        log = audit_log_from_settings(env, SystemClock())
        engine = make_engine(env.effective_database_url)
        with transaction(make_session_factory(engine)) as s:
            for i in range(n):
                log.record(
                    s,
                    AuditRecord(
                        actor=Actor("u1", ("ig_officer",)),
                        action="fhir.read",
                        outcome="permit",
                        detail={"i": i},
                    ),
                )
        engine.dispose()

    def test_verify_checkpoint_and_tamper(self, env: Settings) -> None:
        self._record(env, 3)
        cp = runner.invoke(app, ["audit", "checkpoint"])
        assert cp.exit_code == 0, cp.output
        assert "entry #3" in cp.output
        ok = runner.invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "intact: 3 entries" in ok.output
        assert "1 checkpoints matched" in ok.output
        engine = make_engine(env.effective_database_url)
        with transaction(make_session_factory(engine)) as s:
            s.execute(text("UPDATE audit_entry SET outcome = 'deny' WHERE seq = 2"))
        engine.dispose()
        bad = runner.invoke(app, ["audit", "verify"])
        assert bad.exit_code == 1
        assert "NOT intact at entry #2" in bad.output


class TestDemoWorker:
    def test_an_admission_dropped_in_the_inbox_alerts_the_allocated_team(
        self, env: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import time

        from bridge.cli import _demo_worker

        loaded = runner.invoke(
            app, ["demo", "--no-serve", "--sample", str(REPO_ROOT / "examples" / "sample")]
        )
        assert loaded.exit_code == 0, loaded.output
        monkeypatch.setenv("CAREBRIDGE_SYNC_POLL_SECONDS", "0.5")
        alerts = env.data_dir / "alerts"
        with _demo_worker(env):
            inbox = env.data_dir / "inbox" / "chs"
            (inbox / "admission-a01.hl7").write_bytes(
                (REPO_ROOT / "examples" / "demo" / "admission-a01.hl7").read_bytes()
            )
            deadline = time.monotonic() + 60
            lines: list[dict[str, object]] = []
            while time.monotonic() < deadline and len(lines) < 2:
                time.sleep(0.5)
                lines = [
                    json.loads(line)
                    for f in sorted(alerts.glob("*"))
                    for line in f.read_text().splitlines()
                    if line.strip()
                ]
        texts = json.dumps(lines)
        assert len(lines) >= 2, texts
        assert "inpatient-admitted" in texts
        assert "expected-discharge" in texts
        assert "T02" in texts
