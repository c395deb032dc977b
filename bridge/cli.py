"""The `carebridge` command line.

Each command is an edge: it owns its transaction(s) and prints a short, readable result.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from bridge.core.errors import BridgeError
from bridge.core.settings import Settings, load_settings

app = typer.Typer(
    name="carebridge",
    help="Health and social care record bridge: ingest, map, consent-gate, audit, serve.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
examples_app = typer.Typer(help="Synthetic example data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="Tamper-evident audit log.", no_args_is_help=True)
app.add_typer(examples_app, name="examples")
app.add_typer(audit_app, name="audit")

ROLES_HELP = (
    "social_worker, health_professional, integration_engineer, ig_officer, sync_service, admin"
)


def _settings() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:
        _fail(f"configuration is not valid: {exc}")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    """Open the configured database for one command and close its connections after."""
    from bridge.store.db import make_engine

    engine = make_engine(settings.effective_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


# -- db ---------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Migrate the database schema to the latest (or a given) revision."""
    from bridge.store.migrate import current_revision, upgrade

    settings = _settings()
    with _engine(settings) as engine:
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
        url = engine.url.render_as_string(hide_password=True)
    typer.echo(f"database {url}")
    typer.echo(f"schema revision {before or '(empty)'} -> {after}")


# -- token ------------------------------------------------------------------------------
@app.command("token")
def token(
    user: Annotated[str, typer.Option(help="user id (token subject)")],
    role: Annotated[list[str], typer.Option(help=f"role, repeatable: {ROLES_HELP}")],
    team: Annotated[str | None, typer.Option(help="team id, e.g. north-locality")] = None,
    org: Annotated[str | None, typer.Option(help="ODS code of the user's organisation")] = None,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    ttl: Annotated[int | None, typer.Option(help="lifetime in minutes")] = None,
) -> None:
    """Mint a development bearer token (refused in production mode)."""
    from bridge.auth.tokens import mint_dev_token

    settings = _settings()
    try:
        tok = mint_dev_token(
            settings, user=user, roles=role, team=team, org=org, name=name, ttl_minutes=ttl
        )
    except (BridgeError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(tok)


# -- keys -------------------------------------------------------------------------------
@keys_app.command("init")
def keys_init(
    out_dir: Annotated[Path, typer.Option(help="directory for the new key files")],
) -> None:
    """Create production keys: data key ring, blind index key, audit chain and signing keys."""
    from bridge.audit.checkpoint import load_signing_key
    from bridge.core.crypto import Hasher, KeyRing

    paths = {
        "CAREBRIDGE_DATA_KEY_FILE": out_dir / "data-keys.json",
        "CAREBRIDGE_INDEX_KEY_FILE": out_dir / "index.key",
        "CAREBRIDGE_AUDIT_KEY_FILE": out_dir / "audit.key",
        "CAREBRIDGE_AUDIT_SIGNING_KEY_FILE": out_dir / "audit-signing.pem",
    }
    for p in paths.values():
        if p.exists():
            _fail(f"{p} already exists; refusing to overwrite a key")
    KeyRing.generate(development=False).save(paths["CAREBRIDGE_DATA_KEY_FILE"])
    Hasher.write_new(paths["CAREBRIDGE_INDEX_KEY_FILE"], development=False)
    Hasher.write_new(paths["CAREBRIDGE_AUDIT_KEY_FILE"], development=False)
    load_signing_key(paths["CAREBRIDGE_AUDIT_SIGNING_KEY_FILE"], allow_create=True)
    typer.echo(f"wrote {len(paths)} key files to {out_dir} (owner-only permissions); set:")
    for env, p in paths.items():
        typer.echo(f"  {env}={p}")
    typer.echo(
        "Back them up apart from the database: without the first two the data cannot be"
        " read, without the audit keys the audit log cannot be verified."
    )


@keys_app.command("status")
def keys_status() -> None:
    """Show the active key and how many stored values each key protects."""
    from bridge.store.crypto import StoreCrypto
    from bridge.store.db import make_session_factory
    from bridge.store.keys import key_usage

    settings = _settings()
    crypto = StoreCrypto.from_settings(settings)
    with _engine(settings) as engine, make_session_factory(engine)() as s:
        usage = key_usage(s)
    typer.echo(f"active key: {crypto.keyring.active}")
    typer.echo(f"{'table':<20} {'key id':<28} {'values':>8}")
    for table, per_key in usage.items():
        for kid, n in per_key.items():
            mark = "  (active)" if kid == crypto.keyring.active else ""
            typer.echo(f"{table:<20} {kid:<28} {n:>8}{mark}")


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int | None, typer.Option(help="rows per transaction")] = None,
    reencrypt_only: Annotated[
        bool, typer.Option(help="do not add a key; finish re-encrypting under the active one")
    ] = False,
) -> None:
    """Add a new active data key and re-encrypt stored values in batches (service may run)."""
    from bridge.store.crypto import StoreCrypto
    from bridge.store.db import make_session_factory, transaction
    from bridge.store.keys import ENCRYPTED_TABLES, reencrypt_batch

    settings = _settings()
    crypto = StoreCrypto.from_settings(settings)
    path = settings.effective_data_key_file
    if not reencrypt_only:
        ring = crypto.keyring.with_new_active_key()
        ring.save(path)
        crypto.reload(force=True)
        typer.echo(f"new active key {ring.active} written to {path}")
    size = batch or settings.key_rotation_batch
    with _engine(settings) as engine:
        factory = make_session_factory(engine)
        for spec in ENCRYPTED_TABLES:
            total = 0
            while True:
                with transaction(factory) as s:
                    n = reencrypt_batch(s, crypto, spec, size)
                total += n
                if n:
                    typer.echo(f"  {spec.name}: {total} re-encrypted", err=True)
                if n < size:
                    break
            typer.echo(f"{spec.name:<20} {total:>8} values re-encrypted")
    typer.echo("done: every stored value is under the active key")


# -- audit ------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit chain and the signed checkpoints; name the first broken entry."""
    from bridge.audit.checkpoint import load_checkpoints
    from bridge.audit.service import audit_log_from_settings
    from bridge.core.clock import SystemClock
    from bridge.store.db import make_session_factory

    settings = _settings()
    log = audit_log_from_settings(settings, SystemClock())
    checkpoints, problems = load_checkpoints(settings.effective_audit_checkpoint_dir)
    with _engine(settings) as engine, make_session_factory(engine)() as s:
        report = log.verify(s, checkpoints)
    for p in problems:
        typer.secho(f"warning: {p}", fg=typer.colors.YELLOW, err=True)
    typer.echo(report.as_text())
    if not report.ok or problems:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the current chain head and append it to the checkpoint directory."""
    from bridge.audit.checkpoint import load_signing_key, write_checkpoint
    from bridge.core.clock import SystemClock
    from bridge.store.audit import AuditRepository
    from bridge.store.db import make_session_factory

    settings = _settings()
    key = load_signing_key(
        settings.effective_audit_signing_key_file, allow_create=not settings.is_production
    )
    with _engine(settings) as engine, make_session_factory(engine)() as s:
        seq, head = AuditRepository(s).head()
    cp = write_checkpoint(
        settings.effective_audit_checkpoint_dir, key, seq=seq, hash_=head, at=SystemClock().now()
    )
    typer.echo(f"checkpoint: entry #{cp.seq} hash {cp.hash[:16]}… signed at {cp.at}")


# -- examples ---------------------------------------------------------------------------
@examples_app.command("generate")
def examples_generate(
    out: Annotated[Path, typer.Option(help="output directory")],
    persons: Annotated[int, typer.Option(min=1, help="number of persons")] = 50,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same files)")] = 2026,
    as_of: Annotated[
        str | None, typer.Option(help="reference date YYYY-MM-DD (default 2026-11-01)")
    ] = None,
) -> None:
    """Write synthetic data in both source systems' native formats."""
    from bridge.synth import generate

    kwargs = {}
    if as_of:
        try:
            kwargs["as_of"] = date.fromisoformat(as_of)
        except ValueError:
            _fail(f"--as-of {as_of!r} is not a YYYY-MM-DD date")
    summary = generate(out, persons=persons, seed=seed, **kwargs)
    typer.echo(summary.as_table())


# -- serve / demo -----------------------------------------------------------------------
@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the HTTP API and pages."""
    import uvicorn

    from bridge.api.app import create_app
    from bridge.api.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        application = create_app(settings)
    except BridgeError as exc:
        _fail(exc.detail)
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=False)


@app.command("demo")
def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    sample: Annotated[
        Path | None, typer.Option(help="sample directory (default: examples/sample)")
    ] = None,
    no_serve: Annotated[bool, typer.Option(help="load only, do not start the server")] = False,
) -> None:
    """Migrate, load the synthetic sample, then serve and print what to try."""
    from bridge.demo import load_sample, try_these
    from bridge.store.migrate import upgrade

    settings = _settings()
    if settings.is_production:
        _fail("the demo runs in development mode only")
    with _engine(settings) as engine:
        upgrade(engine)
        typer.echo(f"database ready: {engine.url.render_as_string(hide_password=True)}")
        result = load_sample(settings, engine, sample or _default_sample())
    typer.echo(result.as_text())
    typer.echo(try_these(settings, result, host=host, port=port))
    if not no_serve:
        serve(host=host, port=port)


def _default_sample() -> Path:
    here = Path.cwd() / "examples" / "sample"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "examples" / "sample"


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except BridgeError as exc:
        typer.secho(f"error [{exc.code}]: {exc.detail}", fg=typer.colors.RED, err=True)
        sys.exit(1)
