"""Browser tests: a real uvicorn server on the synthetic sample, driven by Debian's chromium.

The server runs the real app (``create_app``) on its own SQLite database, loaded once per
session with examples/sample through the real adapters (``bridge.demo.load_sample``), plus
one mental health (PSY-labelled) problem for Edna Baker, which her consent excludes.
Every page visited is checked with axe-core (no serious or critical violations), and no
page may ask for anything outside the app. A failing test leaves a screenshot under
``var/test-artefacts/web`` (or ``$CAREBRIDGE_TEST_ARTEFACTS``).

The tests need ``/usr/bin/chromium``: without it they are skipped locally and fail in CI
(``CI=true``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bridge.access.gate import AccessGate
from bridge.api.app import create_app
from bridge.auth.principal import Principal
from bridge.auth.roles import Role
from bridge.core.clock import FixedClock
from bridge.core.nhs_number import NHS_NUMBER_SYSTEM
from bridge.core.settings import Settings
from bridge.demo import load_sample
from bridge.store.db import make_engine, make_session_factory
from bridge.store.migrate import upgrade
from bridge.store.resources import ResourceRepository, SourceRef

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "examples" / "sample"
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = REPO_ROOT / "tests" / "data" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The sample's consent for Edna Baker (valid 8 January 2026 to 8 January 2027) is in force.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
EDNA_NHS = "9991656952"
SOCIAL_WORKER = Principal(user="W81442", roles=frozenset({Role.SOCIAL_WORKER}), team="T02")
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SERIOUS = ("serious", "critical")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must run the browser tests, not skip them)")
    pytest.skip(message)


@dataclass
class World:
    """The running server and the sample facts the tests use."""

    base_url: str
    edna: str
    unrelated: str
    unrelated_name: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _add_mental_health_problem(settings: Settings, engine: Any, app: Any) -> str:
    """Record a PSY-labelled problem for Edna Baker (her consent excludes mental health)."""
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        repo = ResourceRepository(session, crypto=app.state.crypto, clock=app.state.clock)
        patients = repo.find_by_identifier(NHS_NUMBER_SYSTEM, EDNA_NHS, resource_type="Patient")
        chs = next(p for p in patients if p.source and p.source.system == "chs")
        assert chs.person_id
        repo.put(
            {
                "resourceType": "Condition",
                "meta": {"security": [{"system": V3_ACT_CODE, "code": "PSY"}]},
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"text": "Generalised anxiety disorder"},
                "subject": {"reference": f"Patient/{chs.id}"},
                "recordedDate": "2026-03-02",
            },
            source=SourceRef("chs", "problem", "PRB-WEBTEST-PSY"),
            person_id=chs.person_id,
        )
        return chs.person_id


def _unrelated_person(engine: Any, app: Any) -> tuple[str, str]:
    """Return a person W81442 has no care relationship with, and their name."""
    gate: AccessGate = app.state.gate
    factory = make_session_factory(engine)
    with factory() as session:
        repo = ResourceRepository(session, crypto=app.state.crypto, clock=app.state.clock)
        ids = sorted(repo.list_ids("Patient", limit=1000))
        for p in repo.read_many("Patient", ids).values():
            if not p.person_id or not p.content:
                continue
            if not gate.screen(session, SOCIAL_WORKER, p.person_id, at=NOW).permitted:
                name = p.content["name"][0]
                return p.person_id, f"{' '.join(name.get('given', []))} {name['family']}"
    raise AssertionError("every person in the sample is in W81442's caseload")


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Serve the app on the loaded sample for the whole session."""
    _require_chromium()
    root = tmp_path_factory.mktemp("web")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=root / "var", database_url=f"sqlite:///{root / 'web.db'}"
    )
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    load_sample(settings, engine, SAMPLE)
    app = create_app(settings, clock=FixedClock(NOW))
    edna = _add_mental_health_problem(settings, engine, app)
    unrelated, unrelated_name = _unrelated_person(engine, app)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 20 s"
        time.sleep(0.05)
    try:
        yield World(f"http://127.0.0.1:{port}", edna, unrelated, unrelated_name)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.engine.dispose()
        engine.dispose()


@pytest.fixture(scope="session")
def browser(world: World) -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Pages:
    """A browser tab that checks accessibility on every page it lands on."""

    page: Any
    base_url: str
    outside: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base_url + path)
        self.check()
        return response

    def submit(self, button: Any) -> None:
        """Click a submit button and wait for the page it leads to."""
        with self.page.expect_navigation():
            button.click()
        self.check()

    def check(self) -> None:
        """Assert the page has no serious or critical axe-core violations."""
        self.page.wait_for_load_state("load")
        violations = self.page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ['violations']});
                return result.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
                }));
            }"""
        )
        bad = [v for v in violations if v["impact"] in SERIOUS]
        assert not bad, f"{self.page.url}: {json.dumps(bad, indent=1)}"
        self.checked.append(self.page.url)

    def sign_in(self, user: str) -> None:
        self.goto("/web/sign-in")
        self.page.get_by_label(re.compile(rf"\({user}\)")).check()
        self.submit(self.page.get_by_role("button", name="Sign in"))


@pytest.fixture
def pages(browser: Any, world: World, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """A fresh browser context (no cookies) with axe-core loaded into every page."""
    context = browser.new_context(base_url=world.base_url)
    context.add_init_script(path=str(AXE_JS))
    tab = Pages(context.new_page(), world.base_url)

    def route(r: Any) -> None:
        if r.request.url.startswith(world.base_url):
            r.continue_()
        else:
            tab.outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    try:
        yield tab
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            out = Path(
                os.environ.get("CAREBRIDGE_TEST_ARTEFACTS", REPO_ROOT / "var" / "test-artefacts")
            )
            out = out / "web"
            out.mkdir(parents=True, exist_ok=True)
            tab.page.screenshot(path=str(out / f"{request.node.name}.png"), full_page=True)
            (out / f"{request.node.name}.html").write_text(tab.page.content())
        context.close()
    assert not tab.outside, f"pages asked for things outside the app: {tab.outside}"
