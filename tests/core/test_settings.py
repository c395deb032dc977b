"""Settings: defaults, environment prefix, production refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core.errors import ConfigurationError
from bridge.core.settings import Settings


def make(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


class TestDefaults:
    def test_sqlite_file_under_data_dir(self, tmp_path: Path) -> None:
        s = make(data_dir=tmp_path)
        assert s.effective_database_url == f"sqlite:///{tmp_path.as_posix()}/carebridge.db"
        assert s.effective_data_key_file == tmp_path / "keys" / "data-keys.json"

    def test_environment_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CAREBRIDGE_MAX_REQUEST_BYTES", "4096")
        monkeypatch.setenv("CAREBRIDGE_DATABASE_URL", "postgresql://x@h/db")
        s = make()
        assert s.max_request_bytes == 4096
        assert s.effective_database_url == "postgresql://x@h/db"

    def test_bad_values_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="mode"):
            make(mode="staging")
        with pytest.raises(ValueError, match="max_request_bytes"):
            make(max_request_bytes=10)


class TestProductionSafety:
    def test_development_mode_allows_dev_issuer(self) -> None:
        make().check_production_safety()

    def test_production_with_defaults_refuses_and_says_what_to_set(self) -> None:
        with pytest.raises(ConfigurationError) as err:
            make(mode="production").check_production_safety()
        msg = str(err.value)
        for setting in (
            "CAREBRIDGE_DEV_ISSUER_ENABLED",
            "CAREBRIDGE_JWT_ISSUER",
            "CAREBRIDGE_JWKS_FILE",
            "CAREBRIDGE_DATA_KEY_FILE",
            "CAREBRIDGE_INDEX_KEY_FILE",
            "CAREBRIDGE_AUDIT_KEY_FILE",
            "CAREBRIDGE_AUDIT_SIGNING_KEY_FILE",
            "CAREBRIDGE_AUDIT_CHECKPOINT_DIR",
        ):
            assert setting in msg

    def test_production_fully_configured_starts(self, tmp_path: Path) -> None:
        make(
            mode="production",
            dev_issuer_enabled=False,
            jwt_issuer="https://login.example.nhs.uk",
            jwks_url="https://login.example.nhs.uk/jwks",
            data_key_file=tmp_path / "ring.json",
            index_key_file=tmp_path / "index.key",
            audit_key_file=tmp_path / "audit.key",
            audit_signing_key_file=tmp_path / "audit-signing.pem",
            audit_checkpoint_dir=tmp_path / "checkpoints",
        ).check_production_safety()
