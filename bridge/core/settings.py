"""Configuration from the environment (prefix ``CAREBRIDGE_``) or a ``.env`` file.

Every setting is listed in ``docs/configuration.md`` (a test checks the two agree).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.core.errors import ConfigurationError

DEV_ISSUER = "urn:carebridge:development-issuer"


class Settings(BaseSettings):
    """All of carebridge's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CAREBRIDGE_", env_file=".env", extra="ignore", frozen=True
    )

    mode: Literal["development", "production"] = Field(
        "development", description="development allows the built-in token issuer and keys"
    )
    data_dir: Path = Field(Path("var"), description="where the SQLite file and dev keys live")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite file DATA_DIR/carebridge.db"
    )
    data_key_file: Path | None = Field(
        None, description="AES-GCM key ring (JSON); default DATA_DIR/keys/data-keys.json"
    )
    index_key_file: Path | None = Field(
        None, description="HMAC key for the NHS number blind index; default DATA_DIR/keys/index.key"
    )
    audit_key_file: Path | None = Field(
        None, description="HMAC key chaining the audit log; default DATA_DIR/keys/audit.key"
    )
    audit_signing_key_file: Path | None = Field(
        None,
        description="Ed25519 key signing audit checkpoints;"
        " default DATA_DIR/keys/audit-signing.pem",
    )
    audit_checkpoint_dir: Path | None = Field(
        None,
        description="where signed audit checkpoints go (outside the database); default"
        " DATA_DIR/audit-checkpoints",
    )
    audit_checkpoint_every_entries: int = Field(
        10_000, ge=1, description="the worker signs the audit chain head every N entries"
    )
    audit_checkpoint_every_minutes: float = Field(
        15.0, gt=0, description="... or every T minutes when the chain has moved"
    )
    consent_policy: str = Field(
        "explicit-consent",
        description="consent policy: a shipped preset name or a path to a policy YAML file",
    )
    jwt_issuer: str = Field(DEV_ISSUER, description="expected `iss` of bearer tokens")
    jwt_audience: str = Field("carebridge", description="expected `aud` of bearer tokens")
    jwks_file: Path | None = Field(None, description="JWKS file with the issuer's public keys")
    jwks_url: str | None = Field(None, description="JWKS URL with the issuer's public keys")
    dev_issuer_enabled: bool = Field(
        True, description="allow `carebridge token` and the development signing key"
    )
    dev_token_ttl_minutes: int = Field(480, ge=1, le=7 * 24 * 60, description="dev token lifetime")
    max_request_bytes: int = Field(
        1_048_576, ge=1024, description="largest request body accepted (bytes)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    key_rotation_batch: int = Field(
        500, ge=1, le=100_000, description="rows re-encrypted per transaction by `keys rotate`"
    )
    mappings_dir: Path | None = Field(
        None,
        description="mapping specs, concept maps and cases; default the shipped `mappings` package",
    )
    match_auto_threshold: float = Field(
        14.0, description="identity: link automatically at or above this demographic score"
    )
    match_review_threshold: float = Field(
        8.0, description="identity: queue a pair for review at or above this score"
    )
    sync_jobs_file: Path | None = Field(
        None, description="sync job definitions (YAML) read by `carebridge sync` and `worker`"
    )
    sync_lease_seconds: float = Field(
        60.0, gt=0, le=3600, description="how long a worker's lease on a sync job lasts unrenewed"
    )
    sync_poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="how often the worker looks for due jobs and alerts"
    )
    alert_webhook_url: str | None = Field(
        None, description="where the worker POSTs alerts (JSON); none: no webhook delivery"
    )
    alert_webhook_secret_file: Path | None = Field(
        None, description="file holding the HMAC-SHA-256 secret that signs webhook alerts"
    )
    alert_format: Literal["alert", "communication"] = Field(
        "alert", description="webhook body: the alert document or a FHIR Communication"
    )
    alert_drop_dir: Path | None = Field(
        None, description="directory where the worker appends alerts as JSON lines"
    )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Settings:
        if self.match_review_threshold > self.match_auto_threshold:
            raise ValueError(
                "match_review_threshold must not be above match_auto_threshold"
                f" ({self.match_review_threshold} > {self.match_auto_threshold})"
            )
        return self

    @cached_property
    def effective_database_url(self) -> str:
        """Return the configured database URL or the embedded SQLite default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'carebridge.db').as_posix()}"

    @property
    def effective_data_key_file(self) -> Path:
        """Return the key ring path."""
        return self.data_key_file or self.data_dir / "keys" / "data-keys.json"

    @property
    def effective_index_key_file(self) -> Path:
        """Return the blind index key path."""
        return self.index_key_file or self.data_dir / "keys" / "index.key"

    @property
    def effective_audit_key_file(self) -> Path:
        """Return the audit chain key path."""
        return self.audit_key_file or self.data_dir / "keys" / "audit.key"

    @property
    def effective_audit_signing_key_file(self) -> Path:
        """Return the audit checkpoint signing key path."""
        return self.audit_signing_key_file or self.data_dir / "keys" / "audit-signing.pem"

    @property
    def effective_audit_checkpoint_dir(self) -> Path:
        """Return the audit checkpoint directory."""
        return self.audit_checkpoint_dir or self.data_dir / "audit-checkpoints"

    @property
    def dev_signing_key_file(self) -> Path:
        """Return where the development token signing key is kept."""
        return self.data_dir / "keys" / "dev-jwt-signing.pem"

    @property
    def is_production(self) -> bool:
        """Say whether the app runs in production mode."""
        return self.mode == "production"

    def check_production_safety(self) -> None:
        """Refuse development keys and the development issuer in production mode."""
        if not self.is_production:
            return
        problems: list[str] = []
        if self.dev_issuer_enabled:
            problems.append("set CAREBRIDGE_DEV_ISSUER_ENABLED=false (no development tokens)")
        if self.jwt_issuer == DEV_ISSUER:
            problems.append("set CAREBRIDGE_JWT_ISSUER to your identity provider's issuer")
        if not (self.jwks_file or self.jwks_url):
            problems.append("set CAREBRIDGE_JWKS_FILE or CAREBRIDGE_JWKS_URL to its public keys")
        if self.data_key_file is None:
            problems.append(
                "set CAREBRIDGE_DATA_KEY_FILE to a key ring made by `carebridge keys init`,"
                " kept outside DATA_DIR"
            )
        if self.index_key_file is None:
            problems.append(
                "set CAREBRIDGE_INDEX_KEY_FILE to a key made by `carebridge keys init`,"
                " kept outside DATA_DIR"
            )
        for env, value in (
            ("CAREBRIDGE_AUDIT_KEY_FILE", self.audit_key_file),
            ("CAREBRIDGE_AUDIT_SIGNING_KEY_FILE", self.audit_signing_key_file),
            ("CAREBRIDGE_AUDIT_CHECKPOINT_DIR", self.audit_checkpoint_dir),
        ):
            if value is None:
                problems.append(
                    f"set {env} (outside DATA_DIR; the signing key and checkpoints"
                    " apart from the database)"
                )
        if problems:
            raise ConfigurationError(
                "Refusing to start in production mode: " + "; ".join(problems) + "."
            )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment with explicit overrides (CLI options, tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
