"""create_app: refuses unsafe production settings, wires its dependencies, publishes OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from bridge import __version__
from bridge.api.app import create_app
from bridge.auth.roles import Role
from bridge.auth.tokens import TokenVerifier, dev_jwks, mint_dev_token
from bridge.core.clock import SystemClock
from bridge.core.crypto import Hasher, KeyRing
from bridge.core.errors import ConfigurationError
from bridge.core.settings import Settings
from bridge.store.crypto import StoreCrypto

AppFactory = Callable[..., FastAPI]
ClientFactory = Callable[..., Any]

IDP = "https://idp.example.test/realms/care"


def _production(settings: Settings, tmp_path: Path, **overrides: object) -> Settings:
    """Production settings that pass every safety check unless overridden."""
    keys = tmp_path / "secrets"
    KeyRing.generate(development=False).save(keys / "data-keys.json")
    Hasher.write_new(keys / "index.key", development=False)
    Hasher.write_new(keys / "audit.key", development=False)
    values: dict[str, object] = {
        "_env_file": None,
        "mode": "production",
        "data_dir": tmp_path / "var",
        "database_url": settings.database_url,
        "dev_issuer_enabled": False,
        "jwt_issuer": IDP,
        "jwks_file": tmp_path / "jwks.json",
        "data_key_file": keys / "data-keys.json",
        "index_key_file": keys / "index.key",
        "audit_key_file": keys / "audit.key",
        "audit_signing_key_file": keys / "audit-signing.pem",
        "audit_checkpoint_dir": keys / "checkpoints",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class TestProductionSafety:
    def test_dev_issuer_in_production_refuses_to_start(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        unsafe = Settings(  # type: ignore[call-arg]
            _env_file=None, mode="production", data_dir=tmp_path, database_url="sqlite://"
        )
        with pytest.raises(ConfigurationError) as caught:
            create_app(unsafe)
        message = caught.value.detail
        for setting in (
            "CAREBRIDGE_DEV_ISSUER_ENABLED=false",
            "CAREBRIDGE_JWT_ISSUER",
            "CAREBRIDGE_JWKS_FILE or CAREBRIDGE_JWKS_URL",
            "CAREBRIDGE_DATA_KEY_FILE",
            "CAREBRIDGE_INDEX_KEY_FILE",
        ):
            assert setting in message
        # Nothing was created on the way to refusing.
        assert not (tmp_path / "keys").exists()

    def test_only_the_dev_issuer_left_on_is_still_refused(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        unsafe = _production(settings, tmp_path, dev_issuer_enabled=True)
        with pytest.raises(ConfigurationError, match="CAREBRIDGE_DEV_ISSUER_ENABLED=false"):
            create_app(unsafe)

    def test_safe_production_settings_serve_tokens_from_the_jwks_file(
        self,
        settings: Settings,
        tmp_path: Path,
        make_app: AppFactory,
        make_client: ClientFactory,
    ) -> None:
        # An "identity provider" whose key is the dev key of another data dir.
        idp = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp_path / "idp", jwt_issuer=IDP
        )
        (tmp_path / "jwks.json").write_text(json.dumps(dev_jwks(idp)))
        prod = _production(settings, tmp_path)
        client = make_client(make_app(prod))
        token = mint_dev_token(idp, user="hp1", roles=[Role.HEALTH_PROFESSIONAL])
        response = client.get("/fhir/metadata", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        # The production app made no development key of its own.
        assert not prod.dev_signing_key_file.exists()
        with pytest.raises(ConfigurationError, match="never available in production"):
            mint_dev_token(prod, user="x", roles=[Role.ADMIN])


class TestWiring:
    def test_state_holds_the_dependencies(self, app: FastAPI, settings: Settings) -> None:
        assert app.state.settings is settings
        assert isinstance(app.state.engine, Engine)
        assert str(app.state.engine.url) == str(app.state.session_factory.kw["bind"].url)
        assert isinstance(app.state.crypto, StoreCrypto)
        assert isinstance(app.state.verifier, TokenVerifier)

    def test_default_clock_is_the_system_clock(self, settings: Settings, db: Engine) -> None:
        app = create_app(settings)
        try:
            assert isinstance(app.state.clock, SystemClock)
        finally:
            app.state.engine.dispose()

    def test_two_apps_share_nothing(self, make_app: AppFactory) -> None:
        a, b = make_app(), make_app()
        assert a.state.engine is not b.state.engine
        assert a.state.verifier is not b.state.verifier

    def test_dev_mode_creates_dev_keys_on_first_start(
        self, settings: Settings, make_app: AppFactory
    ) -> None:
        make_app()
        assert settings.dev_signing_key_file.exists()
        assert settings.effective_data_key_file.exists()


class TestOpenApi:
    def test_title_version_and_paths(self, make_client: ClientFactory) -> None:
        doc = make_client().get("/openapi.json").json()
        assert doc["info"]["title"] == "carebridge"
        assert doc["info"]["version"] == __version__
        assert {"/health", "/fhir/metadata", "/fhir/{resource_type}/{resource_id}"} <= set(
            doc["paths"]
        )
        assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"

    def test_docs_page(self, make_client: ClientFactory) -> None:
        response = make_client().get("/docs")
        assert response.status_code == 200
        assert "swagger" in response.text.lower()


class TestConsentPolicy:
    def test_default_policy_is_loaded_at_start(self, app: FastAPI) -> None:
        assert app.state.consent.policy.name == "explicit-consent"

    def test_other_preset(self, settings: Settings, make_app: AppFactory) -> None:
        app = make_app(settings.model_copy(update={"consent_policy": "direct-care-implied"}))
        assert app.state.consent.policy.name == "direct-care-implied"

    def test_unknown_policy_stops_the_app_with_the_setting_named(
        self, settings: Settings, make_app: AppFactory
    ) -> None:
        with pytest.raises(ConfigurationError, match="CAREBRIDGE_CONSENT_POLICY='nobody'"):
            make_app(settings.model_copy(update={"consent_policy": "nobody"}))
