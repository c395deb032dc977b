"""The `carebridge` command line.

Each command is an edge: it owns its transaction(s) and prints a short, readable result.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import Engine

from bridge.core.errors import BridgeError
from bridge.core.settings import Settings, load_settings

if TYPE_CHECKING:
    from bridge.ingest.service import Ingestor

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
mllp_app = typer.Typer(help="HL7 v2 over MLLP.", no_args_is_help=True)
dead_app = typer.Typer(help="Input that could not be applied, kept whole.", no_args_is_help=True)
app.add_typer(dead_app, name="dead-letters")
app.add_typer(mllp_app, name="mllp")

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
    care_role: Annotated[
        list[str] | None,
        typer.Option(help="job role the sharing policy knows, repeatable: safeguarding_lead…"),
    ] = None,
) -> None:
    """Mint a development bearer token (refused in production mode)."""
    from bridge.auth.tokens import mint_dev_token

    settings = _settings()
    try:
        tok = mint_dev_token(
            settings,
            user=user,
            roles=role,
            team=team,
            org=org,
            name=name,
            ttl_minutes=ttl,
            care_roles=care_role or (),
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


# -- mappings ---------------------------------------------------------------------------
mappings_app = typer.Typer(
    help="Mapping specs: check them and preview the FHIR they make.", no_args_is_help=True
)
app.add_typer(mappings_app, name="mappings")


def _mappings_dir(directory: Path | None) -> Path:
    from bridge.mapping import default_directory

    return directory or _settings().mappings_dir or default_directory()


@mappings_app.command("check")
def mappings_check(
    directory: Annotated[
        Path | None,
        typer.Argument(help="mappings directory (default: CAREBRIDGE_MAPPINGS_DIR or shipped)"),
    ] = None,
) -> None:
    """Validate every spec and concept map, then run the golden cases (exit 1 on failure)."""
    from bridge.mapping.cases import check_directory

    report = check_directory(_mappings_dir(directory))
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


@mappings_app.command("preview")
def mappings_preview(
    spec: Annotated[str, typer.Argument(help="system/kind (e.g. asc/person) or a spec file")],
    record_file: Annotated[
        Path, typer.Argument(help="one JSON record, or JSON lines of many (a source export)")
    ],
    now: Annotated[
        str | None, typer.Option(help="the time mapping runs at, ISO 8601 with offset")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="mappings directory for concept maps and config"),
    ] = None,
) -> None:
    """Print the FHIR JSON a record maps to; for many records, one result per line."""
    from datetime import datetime

    import orjson

    from bridge.core.clock import SystemClock
    from bridge.core.errors import MappingError
    from bridge.mapping import Mappings
    from bridge.mapping.cases import RecordFormatError, record_from_json

    at = SystemClock().now()
    if now is not None:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            _fail(f"--now {now!r} is not an ISO 8601 date-time")
        if at.tzinfo is None:
            _fail("--now needs a UTC offset, e.g. 2026-11-01T09:00:00+00:00")
    spec_path = Path(spec)
    try:
        if spec.endswith((".yaml", ".yml")) or spec_path.is_file():
            # An edited copy of a spec uses the concept maps and config of the directory
            # it sits in, when it sits in one.
            home = next(
                (d for d in spec_path.resolve().parents if (d / "config.yaml").is_file()), None
            )
            mappings = Mappings.load(directory or home or _mappings_dir(None), strict=False)
            compiled = mappings.compile_file(spec_path)
        else:
            mappings = Mappings.load(_mappings_dir(directory), strict=False)
            compiled = mappings.spec(spec)
        text = record_file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except BridgeError as exc:
        _fail(f"[{exc.code}] {exc.detail}")
    records = _preview_records(text)
    if not records:
        _fail(f"{record_file} holds no records")
    single = len(records) == 1 and records[0][0] == 0
    failed = mapped = made = 0
    for n, data in records:
        where = "" if single else f"line {n}: "
        try:
            if isinstance(data, Exception):
                raise RecordFormatError(f"not valid JSON: {data}")
            record = record_from_json(
                data, system=compiled.system, kind=compiled.kind, default_id=f"line-{n}"
            )
            result = compiled.map(record, now=at)
        except RecordFormatError as exc:
            failed += 1
            typer.secho(f"{where}error: {exc}", fg=typer.colors.RED, err=True)
            continue
        except MappingError as exc:
            failed += 1
            typer.secho(f"{where}error [{exc.code}]: {exc.detail}", fg=typer.colors.RED, err=True)
            continue
        mapped += 1
        made += len(result.resources)
        for warning in result.warnings:
            typer.secho(f"{where}warning: {warning}", fg=typer.colors.YELLOW, err=True)
        resources = [m.resource for m in result.resources]
        if single:
            typer.echo(orjson.dumps(resources, option=orjson.OPT_INDENT_2).decode())
        else:
            typer.echo(orjson.dumps({"line": n, "resources": resources}).decode())
    if not single:
        summary = f"{len(records)} records: {mapped} mapped ({made} resources), {failed} failed"
        typer.echo(summary, err=True)
    if failed:
        raise typer.Exit(1)


def _preview_records(text: str) -> list[tuple[int, object]]:
    """Read one JSON record (numbered 0) or JSON lines (numbered from 1, bad lines kept)."""
    import orjson

    try:
        whole = orjson.loads(text)
    except orjson.JSONDecodeError:
        whole = None
    else:
        if isinstance(whole, dict):
            return [(0, whole)]
    records: list[tuple[int, object]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append((n, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                records.append((n, exc))
    return records


# -- ingest -----------------------------------------------------------------------------
SYSTEMS = ("chs", "asc")


def _adapter(system: str, paths: list[Path]):  # type: ignore[no-untyped-def]
    if system == "chs":
        from adapters.chs import ChsAdapter

        return ChsAdapter(paths)
    from adapters.asc import AscAdapter

    return AscAdapter(paths)


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or directories to read")],
    system: Annotated[str, typer.Option(help="source system: chs or asc")],
    batch: Annotated[int, typer.Option(min=1, help="records per transaction")] = 200,
) -> None:
    """Read source files, map them through the specs and store them; bad input is kept."""
    from adapters.base import AdapterError
    from bridge.core.clock import SystemClock
    from bridge.ingest.service import Ingestor, IngestOutcome, ingest_stream
    from bridge.store.db import make_session_factory

    if system not in SYSTEMS:
        _fail(f"--system must be one of {', '.join(SYSTEMS)}, not {system!r}")
    settings = _settings()
    try:
        adapter = _adapter(system, paths)
    except AdapterError as exc:
        _fail(exc.reason)
    ingestor = _with_alerts(settings, Ingestor.from_settings(settings, SystemClock()))
    _audit_mappings(settings, "ingest")
    seen = 0

    def progress(_outcome: IngestOutcome) -> None:
        nonlocal seen
        seen += 1
        if seen % 1000 == 0:
            typer.echo(f"\r  {seen:,} records…", nl=False, err=True)

    with _engine(settings) as engine:
        summary = ingest_stream(
            make_session_factory(engine),
            adapter.read(),
            ingestor=ingestor,
            system=system,
            channel="file",
            batch_size=batch,
            on_item=progress,
        )
    if seen >= 1000:
        typer.echo("", err=True)
    typer.echo(summary.as_text())


@mllp_app.command("serve")
def mllp_serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (2575 is MLLP's usual)")] = 2575,
    strict: Annotated[bool, typer.Option(help="also check message structure (slower)")] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="listener processes sharing the port (SO_REUSEPORT)")
    ] = 1,
) -> None:
    """Receive HL7 v2 over MLLP; ACK each message only after it is durably stored."""
    if workers == 1:
        _mllp_worker(host, port, strict, False, None)
        return
    from bridge.ingest.mllp import run_workers

    if port == 0:
        _fail("--workers needs a fixed --port: every worker listens on it")
    _settings()  # a bad configuration fails here, not once per worker
    if run_workers(workers, _mllp_worker, host, port, strict, True):
        raise typer.Exit(1)


def _audit_mappings(settings: Settings, process: str) -> None:
    """Record a ``mapping.change`` audit entry if the mapping files changed since the last."""
    from bridge.audit.service import audit_log_from_settings
    from bridge.core.clock import SystemClock
    from bridge.ingest.mapping_audit import audit_mapping_changes
    from bridge.mapping import Mappings
    from bridge.store.db import make_session_factory

    mappings = Mappings.load(settings.mappings_dir, strict=False)
    audit = audit_log_from_settings(settings, SystemClock())
    with _engine(settings) as engine, make_session_factory(engine).begin() as session:
        seq = audit_mapping_changes(session, mappings, audit, process=process)
    if seq is not None:
        typer.echo(f"mapping files changed since last recorded: audit entry #{seq}", err=True)


def _with_alerts(settings: Settings, ingestor: Ingestor) -> Ingestor:
    """Queue alerts for the other system (bridge.sync.outbox) as records are applied."""
    from bridge.sync.outbox import alert_hook_from_settings

    ingestor.after_apply = alert_hook_from_settings(settings, ingestor, ingestor.clock)
    return ingestor


def _mllp_worker(host: str, port: int, strict: bool, reuse_port: bool, worker: int | None) -> None:
    """Serve MLLP in this process until SIGINT/SIGTERM (one of `mllp serve --workers`)."""
    import asyncio
    import os

    from bridge.api.logging import configure_logging
    from bridge.core.clock import SystemClock
    from bridge.ingest.mllp import MllpIngest
    from bridge.ingest.mllp import serve as serve_mllp
    from bridge.ingest.service import Ingestor
    from bridge.store.db import make_session_factory

    settings = _settings()
    configure_logging(settings.log_level)
    who = f"worker {worker}, pid {os.getpid()}; " if worker is not None else ""
    clock = SystemClock()
    ingestor = _with_alerts(settings, Ingestor.from_settings(settings, clock))
    _audit_mappings(settings, "mllp serve")
    with _engine(settings) as engine:
        service = MllpIngest(
            factory=make_session_factory(engine), ingestor=ingestor, clock=clock, strict=strict
        )
        stats = asyncio.run(
            serve_mllp(
                service,
                host=host,
                port=port,
                on_ready=lambda p: typer.echo(f"MLLP listening on {host}:{p} ({who}Ctrl-C stops)"),
                reuse_port=reuse_port,
            )
        )
    typer.echo(f"stopped: {who}{stats}")


# -- dead letters -----------------------------------------------------------------------
@dead_app.command("list")
def dead_letters_list(
    status: Annotated[str, typer.Option(help="open, reprocessed, discarded or all")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List dead letters, most recently seen first (reasons only, never the content)."""
    from bridge.core.clock import SystemClock
    from bridge.store.crypto import StoreCrypto
    from bridge.store.db import make_session_factory
    from bridge.store.inbound import DeadLetterRepository

    settings = _settings()
    crypto = StoreCrypto.from_settings(settings)
    with _engine(settings) as engine, make_session_factory(engine)() as s:
        letters = DeadLetterRepository(s, crypto=crypto, clock=SystemClock()).list(
            status=None if status == "all" else status, limit=limit
        )
    typer.echo(f"{'id':>6}  {'source':<6} {'where':<28} {'tries':>5}  {'code':<11} reason")
    for d in letters:
        where = (d.origin or d.channel)[:28]
        reason = f"{d.error_field}: {d.error_message}" if d.error_field else d.error_message
        typer.echo(
            f"{d.id:>6}  {d.source_system:<6} {where:<28} {d.attempts:>5}  {d.error_code:<11}"
            f" {reason[:90]}"
        )
    typer.echo(f"{len(letters)} {status} dead letter(s)")


@dead_app.command("show")
def dead_letters_show(
    dead_letter_id: Annotated[int, typer.Argument(help="dead letter id")],
) -> None:
    """Show one dead letter with its raw input (for integration engineers)."""
    from bridge.core.clock import SystemClock
    from bridge.store.crypto import StoreCrypto
    from bridge.store.db import make_session_factory
    from bridge.store.inbound import DeadLetterRepository

    settings = _settings()
    crypto = StoreCrypto.from_settings(settings)
    with _engine(settings) as engine, make_session_factory(engine)() as s:
        d = DeadLetterRepository(s, crypto=crypto, clock=SystemClock()).get(dead_letter_id)
    typer.echo(f"dead letter {d.id}: {d.status}, {d.attempts} attempt(s)")
    typer.echo(f"source:   {d.source_system} via {d.channel}, kind {d.source_kind or '-'}")
    typer.echo(f"origin:   {d.origin or '-'}")
    typer.echo(f"seen:     {d.first_seen.isoformat()} .. {d.last_seen.isoformat()}")
    typer.echo(f"error:    {d.error_code} {d.error_field or ''} {d.error_message}")
    typer.echo("raw input:")
    typer.echo(d.raw.decode("utf-8", "replace").replace("\r", "\n"))


@dead_app.command("reprocess")
def dead_letters_reprocess(
    ids: Annotated[
        list[int] | None, typer.Argument(help="dead letter ids (default: all open)")
    ] = None,
) -> None:
    """Re-read and apply dead letters again, e.g. after fixing a mapping; audited."""
    import getpass

    from bridge.audit.service import Actor, AuditRecord, audit_log_from_settings
    from bridge.core.clock import SystemClock
    from bridge.ingest.reprocess import reprocess
    from bridge.ingest.service import Ingestor, IngestSummary
    from bridge.store.db import make_session_factory, transaction
    from bridge.store.inbound import DeadLetterRepository

    settings = _settings()
    clock = SystemClock()
    ingestor = Ingestor.from_settings(settings, clock)
    crypto = ingestor.crypto
    audit = audit_log_from_settings(settings, clock)
    actor = Actor(f"cli:{getpass.getuser()}", ("integration_engineer",))
    summary = IngestSummary()
    with _engine(settings) as engine:
        factory = make_session_factory(engine)
        if not ids:
            with factory() as s:
                repo = DeadLetterRepository(s, crypto=crypto, clock=clock)
                ids = [d.id for d in repo.list(status="open", limit=100_000)]
        for dl_id in ids:
            with transaction(factory) as s:
                outcome = reprocess(s, ingestor, dl_id)
                audit.record(
                    s,
                    AuditRecord(
                        actor=actor,
                        action="dead-letter.reprocess",
                        outcome="success" if outcome.status != "dead_lettered" else "failure",
                        detail={
                            "dead_letter": dl_id,
                            "status": outcome.status,
                            "resources": list(outcome.resources),
                        },
                    ),
                )
            summary.add(outcome)
            typer.echo(f"{dl_id:>6}  {outcome.status}  {outcome.error or ''}")
    typer.echo(summary.as_text())


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
    _audit_mappings(settings, "serve")
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
    _audit_mappings(settings, "demo")
    with _engine(settings) as engine:
        try:
            result = load_sample(settings, engine, sample or _default_sample())
        except BridgeError as exc:
            _fail(f"[{exc.code}] {exc.detail}")
    typer.echo(result.as_text())
    typer.echo(try_these(settings, result, host=host, port=port))
    if not no_serve:
        with _demo_worker(settings):
            serve(host=host, port=port)


DEMO_JOBS = """\
# Written by `carebridge demo`: the sync worker it starts beside the API watches these.
jobs:
  - name: demo-chs-inbox
    source: chs-extracts
    path: inbox/chs
    schedule: 10s
  - name: demo-asc-inbox
    source: asc-export
    path: inbox/asc
    schedule: 10s
"""


@contextmanager
def _demo_worker(settings: Settings) -> Iterator[None]:
    """Run `carebridge worker` on a demo inbox beside the API; alerts go to var/alerts."""
    import os
    import subprocess

    data = settings.data_dir
    for sub in ("inbox/chs", "inbox/asc", "alerts"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    jobs = data / "demo-jobs.yaml"
    jobs.write_text(DEMO_JOBS, encoding="utf-8")
    env = dict(os.environ)
    env.setdefault("CAREBRIDGE_ALERT_DROP_DIR", str(data / "alerts"))
    env.setdefault("CAREBRIDGE_DATA_DIR", str(data))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bridge.cli import main; main()",
            "worker",
            "--jobs",
            str(jobs),
        ],
        env=env,
    )
    typer.echo(
        f"sync worker started (pid {proc.pid}): drop files into {data / 'inbox/chs'} or"
        f" {data / 'inbox/asc'}; alerts for social care arrive in {data / 'alerts'}."
        " Try: cp examples/demo/admission-a01.hl7 " + str(data / "inbox/chs") + "/"
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- sync / worker ----------------------------------------------------------------------
sync_app = typer.Typer(help="Scheduled sync jobs: run, status, reset.", no_args_is_help=True)
app.add_typer(sync_app, name="sync")
JobsOption = Annotated[
    Path | None, typer.Option("--jobs", help="job file (default CAREBRIDGE_SYNC_JOBS_FILE)")
]


def _jobs(settings: Settings, jobs_file: Path | None):  # type: ignore[no-untyped-def]
    from bridge.sync.jobs import load_jobs

    path = jobs_file or settings.sync_jobs_file
    if path is None:
        _fail("name a job file with --jobs or CAREBRIDGE_SYNC_JOBS_FILE")
    return load_jobs(path)


def _job_runner(settings: Settings, engine: Engine, **kwargs):  # type: ignore[no-untyped-def]
    from bridge.audit.service import audit_log_from_settings
    from bridge.core.clock import SystemClock
    from bridge.ingest.service import Ingestor
    from bridge.store.db import make_session_factory
    from bridge.sync.outbox import alert_hook_from_settings
    from bridge.sync.runner import JobRunner

    clock = SystemClock()
    ingestor = Ingestor.from_settings(settings, clock)
    return JobRunner(
        make_session_factory(engine),
        ingestor=ingestor,
        audit=audit_log_from_settings(settings, clock),
        clock=clock,
        lease_seconds=settings.sync_lease_seconds,
        alert_hook=alert_hook_from_settings(settings, ingestor, clock),
        **kwargs,
    )


@sync_app.command("run")
def sync_run(
    job: Annotated[str, typer.Argument(help="the job's name in the job file")],
    jobs_file: JobsOption = None,
    wait_lease: Annotated[
        float, typer.Option(help="seconds to wait for another worker's lease to end")
    ] = 0.0,
) -> None:
    """Run one job now (resuming from its checkpoint); exit 3 if another worker holds it."""
    import time

    settings = _settings()
    definitions = {j.name: j for j in _jobs(settings, jobs_file)}
    if job not in definitions:
        _fail(f"no job {job!r} in the job file; jobs: {', '.join(definitions) or 'none'}")
    with _engine(settings) as engine:
        runner = _job_runner(settings, engine)
        deadline = time.monotonic() + wait_lease
        while True:
            result = runner.run(definitions[job])
            if result.status != "busy" or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, settings.sync_lease_seconds / 4))
    typer.echo(result.as_text())
    if result.status == "busy":
        raise typer.Exit(3)
    if result.status in ("failed", "lost"):
        raise typer.Exit(1)


@sync_app.command("status")
def sync_status(
    limit: Annotated[int, typer.Option(min=1, help="runs to show")] = 20,
) -> None:
    """Show each job's state and the last runs."""
    from bridge.core.clock import SystemClock
    from bridge.store.db import make_session_factory
    from bridge.store.sync import SyncRepository

    settings = _settings()
    with _engine(settings) as engine, make_session_factory(engine)() as session:
        repo = SyncRepository(session, clock=SystemClock())
        typer.echo("jobs:")
        for row in repo.jobs():
            state = "FAILING" if row.failing else "ok"
            lease = f"leased by {row.lease_owner}" if row.lease_owner else "free"
            typer.echo(
                f"  {row.name:<24} {state:<8} failures {row.consecutive_failures}"
                f"  next due {row.next_due_at:%Y-%m-%d %H:%M:%S}  {lease}"
                if row.next_due_at
                else f"  {row.name:<24} {state:<8} {lease}"
            )
            if row.last_error:
                typer.echo(f"    last error: {row.last_error}")
        typer.echo("runs (newest first):")
        for run in repo.runs(limit=limit):
            ended = f"{run.finished_at:%H:%M:%S}" if run.finished_at else "-"
            typer.echo(
                f"  #{run.id:<5} {run.job:<24} {run.status:<11} {run.started_at:%Y-%m-%d %H:%M:%S}"
                f"→{ended}  read {run.records_read} applied {run.applied}"
                f" duplicate {run.duplicate} dead-lettered {run.dead_lettered}"
                + (f"  watermark {run.watermark}" if run.watermark else "")
                + (f"  error: {run.error}" if run.error else "")
            )


@sync_app.command("reset")
def sync_reset(job: Annotated[str, typer.Argument(help="the job's name")]) -> None:
    """Clear a job's failing state so the worker runs it again."""
    from bridge.core.clock import SystemClock
    from bridge.store.db import make_session_factory, transaction
    from bridge.store.sync import SyncRepository

    settings = _settings()
    with _engine(settings) as engine, transaction(make_session_factory(engine)) as session:
        if not SyncRepository(session, clock=SystemClock()).reset(job):
            _fail(f"no job {job!r} has run yet")
    typer.echo(f"{job}: reset; due now")


@app.command("worker")
def worker(jobs_file: JobsOption = None) -> None:
    """Run due sync jobs and deliver alerts until SIGTERM or Ctrl-C (finishing the batch)."""
    import signal
    import threading

    from bridge.audit.checkpoint import CheckpointSchedule, load_signing_key
    from bridge.core.clock import SystemClock
    from bridge.store.db import make_session_factory
    from bridge.sync.outbox import deliverer_from_settings
    from bridge.sync.worker import Worker

    settings = _settings()
    definitions = _jobs(settings, jobs_file)
    stop = threading.Event()
    _audit_mappings(settings, "worker")

    def _stop(signum: int, _frame: object) -> None:
        typer.echo(f"signal {signum}: stopping after the current batch", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with _engine(settings) as engine:
        clock = SystemClock()
        factory = make_session_factory(engine)
        runner = _job_runner(settings, engine)
        deliverer = deliverer_from_settings(settings, factory, clock)
        checkpoints = CheckpointSchedule(
            factory,
            load_signing_key(
                settings.effective_audit_signing_key_file,
                allow_create=not settings.is_production,
            ),
            settings.effective_audit_checkpoint_dir,
            clock,
            every_entries=settings.audit_checkpoint_every_entries,
            every_minutes=settings.audit_checkpoint_every_minutes,
        )

        def after_tick() -> None:
            if deliverer is not None:
                deliverer.deliver_due()
            cp = checkpoints.tick()
            if cp is not None:
                typer.echo(f"audit checkpoint: entry #{cp.seq} signed at {cp.at}", err=True)

        loop = Worker(
            factory,
            definitions,
            runner=runner,
            clock=clock,
            poll_seconds=settings.sync_poll_seconds,
            stop=stop,
            after_tick=after_tick,
        )
        typer.echo(
            f"worker {runner.owner}: {len(definitions)} jobs; polling every"
            f" {settings.sync_poll_seconds:g} s",
            err=True,
        )
        loop.run_forever(on_result=lambda r: typer.echo(r.as_text()))
    typer.echo("worker stopped", err=True)


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
