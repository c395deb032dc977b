"""GET /admin/mappings and POST /admin/mappings/preview (integration engineers)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from bridge.auth.roles import Role
from bridge.core.settings import Settings
from bridge.mapping import default_directory
from bridge.store.db import make_session_factory
from bridge.store.resources import ResourceRepository
from tests.conftest import REPO_ROOT
from tests.fixtures.schema import assert_fhir_r4

Headers = Callable[..., dict[str, str]]
CASES = default_directory() / "cases"
NOW = "2026-11-01T00:00:00+00:00"


def case(name: str) -> Any:
    return json.loads((CASES / name).read_text())


def preview(client: Any, auth: Headers, body: Any, role: Role = Role.INTEGRATION_ENGINEER) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/admin/mappings/preview",
        content=content,
        headers={**auth(role), "Content-Type": "application/json"},
    )


class TestList:
    def test_lists_specs_versions_and_validity(self, client: Any, auth: Headers) -> None:
        response = client.get("/admin/mappings", headers=auth(Role.INTEGRATION_ENGINEER))
        assert response.status_code == 200
        body = response.json()
        assert body["valid"] is True
        specs = {s["spec"]: s for s in body["specs"]}
        # Every shipped spec file is listed (and nothing else).
        shipped = {
            f"{p.parent.name}/{p.stem}"
            for p in (REPO_ROOT / "mappings").glob("*/*.yaml")
            if p.parent.name in ("asc", "chs")
        }
        assert set(specs) == shipped
        assert {"asc/person", "asc/assessment", "chs/problem"} <= shipped
        assert specs["asc/assessment"]["version"] == "1.0.0"
        assert specs["asc/assessment"]["targets"] == ["Encounter", "Observation"]
        assert specs["asc/person"]["valid"] is True
        assert specs["asc/person"]["file"] == "asc/person.yaml"
        assert {m["id"] for m in body["concept_maps"]} >= {"asc-gender", "nhs-ethnic-category"}
        assert body["problems"] == []

    @pytest.mark.parametrize("role", [Role.SOCIAL_WORKER, Role.IG_OFFICER, Role.SYNC_SERVICE])
    def test_other_roles_are_refused(self, client: Any, auth: Headers, role: Role) -> None:
        assert client.get("/admin/mappings", headers=auth(role)).status_code == 403
        body = {"spec": "asc/person", "record": case("1.input.json")}
        assert preview(client, auth, body, role).status_code == 403

    def test_admin_may_use_them(self, client: Any, auth: Headers) -> None:
        assert client.get("/admin/mappings", headers=auth(Role.ADMIN)).status_code == 200


class TestPreview:
    def test_returns_the_resources_keys_and_warnings(
        self, client: Any, auth: Headers, app: FastAPI
    ) -> None:
        body = {"spec": "asc/assessment", "record": case("4.input.json"), "now": NOW}
        response = preview(client, auth, body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["spec"] == "asc/assessment"
        assert result["version"] == "1.0.0"
        assert result["resources"] == case("4.output.json")
        assert result["keys"][0] == ["asc", "assessment", "ASM00000005"]
        assert result["warnings"] == []
        for resource in result["resources"]:
            assert_fhir_r4(resource)
        # A preview stores nothing.
        with make_session_factory(app.state.engine)() as session:
            repository = ResourceRepository(session, crypto=app.state.crypto, clock=app.state.clock)
            assert repository.count() == 0

    def test_warnings_are_returned(self, client: Any, auth: Headers) -> None:
        body = {"spec": "asc/assessment", "record": case("5.input.json"), "now": NOW}
        (warning,) = preview(client, auth, body).json()["warnings"]
        assert warning == {
            "spec": "asc/assessment",
            "rule": "assessment-type",
            "field": "assessment_type_code",
            "message": "code 'ZZ57' is not in concept map asc-assessment-type; kept as text",
        }

    def test_bare_fields_are_a_record(self, client: Any, auth: Headers) -> None:
        body = {"spec": "asc/person", "record": case("2.input.json")["fields"], "now": NOW}
        response = preview(client, auth, body)
        assert response.status_code == 200
        assert response.json()["resources"] == case("2.output.json")

    def test_now_defaults_to_the_app_clock(self, client: Any, auth: Headers) -> None:
        # The test clock says 2026-11-23; the spec refuses birth dates in the future.
        fields = {**case("2.input.json")["fields"], "date_of_birth": "2026-11-20"}
        assert preview(client, auth, {"spec": "asc/person", "record": fields}).status_code == 200
        late = preview(client, auth, {"spec": "asc/person", "record": fields, "now": NOW})
        assert late.status_code == 422
        assert late.json()["field"] == "date_of_birth"

    def test_a_record_that_cannot_map_is_problem_json_naming_the_field(
        self, client: Any, auth: Headers
    ) -> None:
        body = {"spec": "asc/assessment", "record": case("6.input.json"), "now": NOW}
        response = preview(client, auth, body)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "BRIDGE-0600"
        assert problem["field"] == "status"
        assert problem["spec"] == "asc/assessment"
        assert problem["rule"] == "status"
        assert problem["location"].startswith("asc/assessment.yaml:")
        assert "'cancelled' is not in concept map asc-assessment-status" in problem["detail"]


class TestBadRequests:
    def test_unknown_spec_is_404(self, client: Any, auth: Headers) -> None:
        response = preview(client, auth, {"spec": "asc/nothing", "record": {}})
        assert response.status_code == 404
        assert response.json()["field"] == "spec"
        assert "asc/person" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            (b"", 400, None),
            (b"{not json", 400, None),
            ({"spec": "asc/person"}, 422, "record"),
            ({"spec": "asc/person", "record": {}, "extra": 1}, 422, "extra"),
            ({"spec": "asc/person", "record": {}, "now": "2026-11-01T00:00:00"}, 422, "now"),
            ({"spec": "asc/person", "record": {"fields": [], "id": "x"}}, 422, "record"),
            ({"spec": "asc/person", "record": case("7.input.json")}, 422, "record"),
        ],
    )
    def test_bad_bodies_name_the_field(
        self, client: Any, auth: Headers, body: Any, status: int, field: str | None
    ) -> None:
        response = preview(client, auth, body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json().get("field") == field


class TestInvalidSpecs:
    @pytest.fixture
    def broken_app(
        self, tmp_path: Path, settings: Settings, make_app: Callable[..., FastAPI]
    ) -> FastAPI:
        copy = tmp_path / "mappings"
        shutil.copytree(
            default_directory(), copy, ignore=shutil.ignore_patterns("*.py", "__pycache__")
        )
        spec = copy / "chs" / "problem.yaml"
        spec.write_text(
            spec.read_text().replace("map: chs-problem-status", "map: chs-problem-stat")
        )
        return make_app(settings.model_copy(update={"mappings_dir": copy}))

    def test_the_app_starts_and_reports_the_problem(
        self, make_client: Callable[..., Any], broken_app: FastAPI, auth: Headers
    ) -> None:
        client = make_client(broken_app)
        body = client.get("/admin/mappings", headers=auth(Role.INTEGRATION_ENGINEER)).json()
        assert body["valid"] is False
        (problem,) = body["problems"]
        assert problem["file"] == "chs/problem.yaml"
        assert problem["line"] > 1
        assert problem["message"] == "no concept map 'chs-problem-stat' in codes/"
        assert problem["hint"].startswith("did you mean chs-problem-status")
        specs = {s["spec"]: s["valid"] for s in body["specs"]}
        assert specs["chs/problem"] is False
        assert specs["asc/assessment"] is True
        assert specs["asc/person"] is True
        assert [name for name, valid in specs.items() if not valid] == ["chs/problem"]

    def test_previewing_the_broken_spec_names_file_and_line(
        self, make_client: Callable[..., Any], broken_app: FastAPI, auth: Headers
    ) -> None:
        client = make_client(broken_app)
        response = preview(client, auth, {"spec": "chs/problem", "record": case("7.input.json")})
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "BRIDGE-0601"
        assert problem["file"] == "chs/problem.yaml"
        assert problem["line"] > 1
        assert problem["hint"].startswith("did you mean chs-problem-status")
        # The valid specs still work.
        ok = preview(
            client, auth, {"spec": "asc/person", "record": case("1.input.json"), "now": NOW}
        )
        assert ok.status_code == 200
