"""Bearer tokens over HTTP: every failure is a 401 that says what is wrong."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI

from bridge.api.deps import get_principal, require
from bridge.auth.principal import Principal
from bridge.auth.roles import Role
from bridge.auth.tokens import dev_jwks, mint_dev_token
from bridge.core.settings import Settings

Headers = Callable[..., dict[str, str]]
ClientFactory = Callable[..., Any]
AppFactory = Callable[..., FastAPI]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "u1",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return claims


def _signed_by_dev_key(settings: Settings, claims: dict[str, Any]) -> str:
    key = serialization.load_pem_private_key(
        settings.dev_signing_key_file.read_bytes(), password=None
    )
    kid = dev_jwks(settings)["keys"][0]["kid"]
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})  # type: ignore[arg-type]


def _outcome_detail(response: Any) -> str:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["www-authenticate"] == "Bearer"
    issue = response.json()["issue"][0]
    assert issue["code"] == "login"
    assert issue["details"]["coding"][0]["code"] == "BRIDGE-0300"
    return str(issue["diagnostics"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestTokenFailuresOverHttp:
    URL = "/fhir/metadata"

    def test_missing_token(self, client: Any) -> None:
        detail = _outcome_detail(client.get(self.URL))
        assert detail == "A bearer token is required: send 'Authorization: Bearer <token>'."

    def test_wrong_signature(self, client: Any, settings: Settings) -> None:
        kid = dev_jwks(settings)["keys"][0]["kid"]
        other = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(_claims(settings), other, algorithm="ES256", headers={"kid": kid})
        assert _outcome_detail(client.get(self.URL, headers=_bearer(token))) == (
            "token signature is not valid"
        )

    def test_expired(self, client: Any, settings: Settings) -> None:
        token = mint_dev_token(
            settings,
            user="u",
            roles=[Role.ADMIN],
            ttl_minutes=5,
            now=datetime.now(UTC) - timedelta(hours=1),
        )
        assert _outcome_detail(client.get(self.URL, headers=_bearer(token))) == "token expired"

    def test_wrong_issuer(self, client: Any, settings: Settings) -> None:
        token = _signed_by_dev_key(settings, _claims(settings, iss="https://elsewhere.test"))
        assert _outcome_detail(client.get(self.URL, headers=_bearer(token))) == (
            "token issuer is not trusted"
        )

    def test_wrong_audience(self, client: Any, settings: Settings) -> None:
        token = _signed_by_dev_key(settings, _claims(settings, aud="someone-else"))
        assert _outcome_detail(client.get(self.URL, headers=_bearer(token))) == (
            "token audience is not this service"
        )

    def test_alg_none(self, client: Any, settings: Settings) -> None:
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        token = f"{header}.{_b64(json.dumps(_claims(settings)).encode())}."
        detail = _outcome_detail(client.get(self.URL, headers=_bearer(token)))
        assert detail == "token algorithm is not allowed (allowed: RS256, ES256, PS256)"

    def test_garbage(self, client: Any) -> None:
        detail = _outcome_detail(client.get(self.URL, headers=_bearer("not-a-token")))
        assert detail == "token is not a well-formed JWT"

    def test_unknown_role(self, client: Any, settings: Settings) -> None:
        token = _signed_by_dev_key(settings, _claims(settings, roles=["caretaker"]))
        assert _outcome_detail(client.get(self.URL, headers=_bearer(token))) == (
            "token names roles carebridge does not know: caretaker"
        )

    def test_failure_outside_fhir_is_problem_json(
        self, app: FastAPI, make_client: ClientFactory
    ) -> None:
        @app.get("/_test/needs-read", dependencies=[Depends(require("fhir.read"))])
        def needs_read() -> dict[str, str]:
            return {"ok": "yes"}

        response = make_client(app).get("/_test/needs-read", headers={"X-Request-ID": "req-1"})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["code"] == "BRIDGE-0300"
        assert body["status"] == 401
        assert body["request_id"] == "req-1"


class TestPrincipalReachesTheHandler:
    def test_claims_become_the_principal(
        self, app: FastAPI, make_client: ClientFactory, auth: Headers
    ) -> None:
        @app.get("/_test/whoami")
        def whoami(principal: Principal = Depends(get_principal)) -> dict[str, Any]:
            return {
                "user": principal.user,
                "roles": sorted(principal.roles),
                "team": principal.team,
                "org": principal.org,
            }

        response = make_client(app).get(
            "/_test/whoami",
            headers=auth(Role.SOCIAL_WORKER, user="sw1", team="north", org="RYX"),
        )
        assert response.json() == {
            "user": "sw1",
            "roles": ["social_worker"],
            "team": "north",
            "org": "RYX",
        }


class TestJwksFileOverHttp:
    def test_dev_issuer_disabled_jwks_file_configured(
        self,
        settings: Settings,
        tmp_path: Path,
        make_app: AppFactory,
        make_client: ClientFactory,
    ) -> None:
        token = mint_dev_token(settings, user="ig1", roles=[Role.IG_OFFICER])
        jwks_file = tmp_path / "jwks.json"
        jwks_file.write_text(json.dumps(dev_jwks(settings)))
        external = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "api",
            database_url=settings.database_url,
            dev_issuer_enabled=False,
            jwks_file=jwks_file,
        )
        client = make_client(make_app(external))
        assert client.get("/fhir/metadata", headers=_bearer(token)).status_code == 200
        other = ec.generate_private_key(ec.SECP256R1())
        forged = jwt.encode(_claims(settings), other, algorithm="ES256")
        response = client.get("/fhir/metadata", headers=_bearer(forged))
        # No kid, one trusted key: that key is tried, and the signature does not verify.
        assert _outcome_detail(response) == "token signature is not valid"


@pytest.fixture(autouse=True)
def _dev_key_exists(settings: Settings) -> None:
    """Make sure the dev key exists before tests sign with it directly."""
    dev_jwks(settings)
