"""Data and server for bench_view.py: a bulk-loaded population in PostgreSQL, served for real.

This is NOT the ingest path and measures nothing about it (bench_mllp.py and bench_asc.py
do; bench_view.py also times real ingest on a small population). Loading 100,000 persons
through ingest (inbound store, dead letters, identity scoring, audit) takes hours, so the
view benchmark's data is set up here instead:

- the synthetic generator (``bridge.synth``) writes N persons' records from both systems;
- the real adapters read them and the real mapping specs (``bridge.mapping.Mappings``, the
  same validated resources ingest stores) map them;
- every resource is stored through ``ResourceRepository.put`` (versioning, AES-GCM
  encryption, blind identifier index), with its ``person_id`` assigned from the
  generator's ``truth.jsonl`` (which source ids are one human) instead of by scoring;
  each human gets a Person resource and identity links (rule ``reviewer``: the truth file
  is a perfect reviewer; the evidence says it was this bulk load);
- records are split between worker processes by human, so one human's records stay in
  order (an ADT update is a new version of the same Patient, as in ingest).

Not written: the inbound store, dead letters (a record that fails to map is counted and
skipped), match keys, resource subjects and ingest's audit entries. The database is for
reading person views, not for further ingest.

The loaded database is kept (``carebridge_bench_view_<persons>_s<seed>``) with its keys
and a manifest under ``var/bench-view/<database>/``, so a second run starts at once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_DIR = ROOT / "var" / "bench-view"
LOADER_VERSION = 1  # bump when what is loaded changes: older databases are then reloaded
BATCH = 500  # source records per transaction
ORG = "E08000999"  # the local authority the benchmark's social workers belong to


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Return the peak resident memory (MB) of this process or of its reaped children."""
    return resource.getrusage(who).ru_maxrss / 1024


# -- where things live -------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """One loaded population: its database, keys and manifest."""

    persons: int
    seed: int
    admin_url: str

    @property
    def database(self) -> str:
        return f"carebridge_bench_view_{self.persons}_s{self.seed}"

    @property
    def url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(database=self.database).render_as_string(False)

    @property
    def data_dir(self) -> Path:
        return BENCH_DIR / self.database

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "loaded.json"

    def settings(self) -> Any:
        """Return the Settings the loader, the server and the token minting share."""
        from bridge.core.settings import Settings

        return Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=self.data_dir, database_url=self.url, log_level="WARNING"
        )

    def env(self) -> dict[str, str]:
        """Return the environment that points a server process at this dataset."""
        return {
            "CAREBRIDGE_DATA_DIR": str(self.data_dir),
            "CAREBRIDGE_DATABASE_URL": self.url,
            "CAREBRIDGE_MODE": "development",
        }


@dataclass
class LoadReport:
    """What a load did and cost (kept in the manifest)."""

    persons: int
    seed: int
    loader_version: int = LOADER_VERSION
    workers: int = 0
    generate_s: float = 0.0
    load_s: float = 0.0
    analyze_s: float = 0.0
    records: int = 0
    resources_stored: int = 0
    versions_written: int = 0
    map_failed: int = 0
    adapter_errors: int = 0
    no_subject: int = 0
    persons_linked: int = 0
    teams: dict[str, int] = field(default_factory=dict)
    peak_rss_loader_mb: float = 0.0
    peak_rss_worker_mb: float = 0.0
    database_mb: float = 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.load_s if self.load_s else 0.0


def _admin(admin_url: str) -> Any:
    from bridge.store.db import make_engine

    return make_engine(admin_url, isolation_level="AUTOCOMMIT")


def _database_exists(admin_url: str, name: str) -> bool:
    from sqlalchemy import text

    engine = _admin(admin_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
        return found is not None
    finally:
        engine.dispose()


def _recreate_database(admin_url: str, name: str) -> None:
    from sqlalchemy import text

    engine = _admin(admin_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def loaded(ds: Dataset) -> LoadReport | None:
    """Return the manifest of a complete, current load of this dataset, or None."""
    if not ds.manifest_path.is_file() or not _database_exists(ds.admin_url, ds.database):
        return None
    data = json.loads(ds.manifest_path.read_text())
    if data.get("loader_version") != LOADER_VERSION:
        return None
    from sqlalchemy import func, select

    from bridge.store.db import make_engine
    from bridge.store.models import ResourceCurrent

    engine = make_engine(ds.url)
    try:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(ResourceCurrent)).scalar_one()
    finally:
        engine.dispose()
    # Persons are resources too (one per human linked).
    if count != data["resources_stored"] + data["persons_linked"]:
        return None
    return LoadReport(**data)


# -- routing records to humans ------------------------------------------------------------
def truth_persons(truth: Path) -> dict[str, str]:
    """Map every source id of a human (CHS MRNs incl. merged ones, ASC ids) to its Person id.

    The Person id is the one ingest gives a human: ``person_id_for`` its first Patient
    (the community health one when there is one).
    """
    from bridge.identity.service import person_id_for
    from bridge.store.resources import SourceRef

    out: dict[str, str] = {}
    with truth.open() as f:
        for line in f:
            t = json.loads(line)
            chs, asc = t["chs_patient_id"], t["asc_person_id"]
            first = SourceRef("chs", "patient", chs) if chs else SourceRef("asc", "person", asc)
            person = person_id_for(first.resource_id())
            for sid in (chs, asc, *t["chs_merged_patient_ids"]):
                if sid:
                    out[sid] = person
    return out


def patient_ids_of(t: dict[str, Any]) -> list[str]:
    """Return the Patient resource ids of one truth line, first Patient first."""
    from bridge.store.resources import SourceRef

    ids = []
    if t["chs_patient_id"]:
        ids.append(SourceRef("chs", "patient", t["chs_patient_id"]).resource_id())
    if t["asc_person_id"]:
        ids.append(SourceRef("asc", "person", t["asc_person_id"]).resource_id())
    ids += [SourceRef("chs", "patient", m).resource_id() for m in t["chs_merged_patient_ids"]]
    return ids


def subject_source_id(record: Any) -> str | None:
    """Return the source id of the person a record is about (before mapping it)."""
    f = record.fields
    if record.system == "asc":
        return f.get("person_id")
    if record.kind.startswith("adt_"):
        for rep in (f.get("PID") or {}).get("3") or ():
            if rep.get("5") == "MR":
                return str(rep.get("1") or "") or None
        return None
    return f.get("patient_id")


def _records(data: Path) -> Iterator[Any]:
    """Yield the generated records in ingest's order: social care, ADT, extracts."""
    from adapters.asc import AscAdapter
    from adapters.chs import ChsAdapter

    yield from AscAdapter([data / "asc"]).read()
    yield from ChsAdapter([data / "chs"]).read()


def _team_identifiers(resource: dict[str, Any], systems: frozenset[str]) -> Iterator[str]:
    if resource.get("resourceType") != "CareTeam":
        return
    for p in resource.get("participant") or ():
        ident = (p.get("member") or {}).get("identifier") or {}
        if ident.get("system") in systems and ident.get("value"):
            yield str(ident["value"])


# -- bulk writes ------------------------------------------------------------------------
class BulkWriter:
    """Store resources as ``ResourceRepository.put`` does, a batch of statements at a time.

    The same rows as ``put``: content copied and stamped the same way (id from the source
    record, ``meta.source``, ``versionId``, ``lastUpdated``), the same change detection
    (``canonical_content`` and its keyed hash: an identical re-put makes no version, an
    older source version is stale), sealed with the same crypto and AAD, history and blind
    index rows from the repository's own statements and helpers. What differs is only the
    batching: one SELECT of the current rows per batch instead of one per resource, and
    each statement executed for many rows at once (psycopg pipelines them).
    """

    def __init__(self, session: Any, *, crypto: Any, clock: Any) -> None:
        self.session = session
        self.crypto = crypto
        self.clock = clock
        self.pending: list[tuple[dict[str, Any], Any, str | None, str | None]] = []
        self.counts: Counter[str] = Counter()

    def add(
        self,
        resource: dict[str, Any],
        *,
        source: Any = None,
        source_version: str | None = None,
        person_id: str | None = None,
    ) -> None:
        """Queue one resource (written by ``flush``)."""
        self.pending.append((resource, source, source_version, person_id))

    def flush(self) -> None:
        """Write the queued resources in the session's transaction."""
        import orjson
        from sqlalchemy import select, tuple_

        from bridge.core.clock import fhir_instant
        from bridge.store import resources as store
        from bridge.store.models import ResourceCurrent

        if not self.pending:
            return
        items = []
        for given, source, sv, person in self.pending:
            content = orjson.loads(orjson.dumps(given))  # put's copy of validated content
            rid = store.ResourceRepository._resolve_id(content, source)
            content["id"] = rid
            if source is not None:
                meta = dict(content.get("meta") or {})
                meta["source"] = store.SOURCE_URI_PREFIX + source.system
                content["meta"] = meta
            items.append((content, source, sv, person))
        self.pending = []
        table = ResourceCurrent.__table__
        keys = sorted({(c["resourceType"], c["id"]) for c, *_ in items})
        rows = self.session.execute(
            select(
                table.c.resource_type,
                table.c.id,
                table.c.version_id,
                table.c.deleted,
                table.c.content_hash,
                table.c.source_version,
                table.c.person_id,
                table.c.source_system,
                table.c.source_kind,
                table.c.source_id,
            ).where(tuple_(table.c.resource_type, table.c.id).in_(keys))
        )
        in_db = {(r.resource_type, r.id): r._asdict() for r in rows}
        state = {k: dict(v) for k, v in in_db.items()}
        history: list[dict[str, Any]] = []
        final: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        now = self.clock.now()
        for content, source, sv, person in items:
            key = (content["resourceType"], content["id"])
            digest = self.crypto.hasher.content_hash(store.canonical_content(content))
            cur = state.get(key)
            if cur is not None and sv and cur["source_version"] and sv < cur["source_version"]:
                self.counts["stale"] += 1
                continue
            if (
                cur is not None
                and not cur["deleted"]
                and cur["content_hash"] == digest
                and (person is None or person == cur["person_id"])
            ):
                self.counts["unchanged"] += 1
                continue
            version = 1 if cur is None else cur["version_id"] + 1
            meta = dict(content.get("meta") or {})
            meta["versionId"] = str(version)
            meta["lastUpdated"] = fhir_instant(now)
            body = {"resourceType": key[0], "id": key[1], "meta": meta} | {
                k: v for k, v in content.items() if k not in ("resourceType", "id", "meta")
            }
            payload, key_id = self.crypto.seal(
                orjson.dumps(body), store._aad(key[0], key[1], version)
            )
            values: dict[str, Any] = {
                "resource_type": key[0],
                "id": key[1],
                "version_id": version,
                "last_updated": now,
                "deleted": False,
                "source_system": source.system if source else (cur and cur["source_system"]),
                "source_kind": source.kind if source else (cur and cur["source_kind"]),
                "source_id": source.id if source else (cur and cur["source_id"]),
                "source_version": sv or (cur and cur["source_version"]),
                "person_id": person if person is not None else (cur and cur["person_id"]),
                "security_labels": " ".join(store.security_labels_of(body)),
                "content_hash": digest,
                "key_id": key_id,
                "payload": payload,
            }
            history.append(values)
            final[key] = (values, body)
            state[key] = values
            self.counts["versions_written"] += 1
            self.counts["resources_stored"] += cur is None
        if not final:
            return
        dialect = self.session.get_bind().dialect.name
        new = [v for k, (v, _) in final.items() if k not in in_db]
        old = [
            {k: x for k, x in v.items() if k not in ("resource_type", "id")}
            | {"b_type": key[0], "b_id": key[1], "b_expected": in_db[key]["version_id"]}
            for key, (v, _) in final.items()
            if key in in_db
        ]
        if new:
            # Each worker owns its humans' resources: a conflict here is a loader bug.
            result = self.session.execute(store._INSERT_CURRENT[dialect], new)
            if result.rowcount not in (len(new), -1):
                raise RuntimeError("a resource was created by another writer")
        if old:
            self.session.execute(store._UPDATE_CURRENT, old)
            self.session.execute(
                store._DELETE_INDEX, [{"b_type": p["b_type"], "b_id": p["b_id"]} for p in old]
            )
        self.session.execute(store._INSERT_HISTORY, history)
        tokens = [
            {"resource_type": key[0], "resource_id": key[1], "token": t}
            for key, (_, body) in final.items()
            for t in sorted(
                {self.crypto.hasher.index_token(s, v) for s, v in store._identifier_pairs(body)}
            )
        ]
        if tokens:
            self.session.execute(store._INSERT_INDEX, tokens)


# -- the worker ---------------------------------------------------------------------------
def _load_share(ds: Dataset, data: str, share: int, shares: int) -> dict[str, Any]:
    """Map and store the records of the humans routed to ``share`` (in a worker process)."""
    from sqlalchemy import insert

    from adapters.base import SourceRecord
    from bridge.access.relationships import AccessConfig
    from bridge.core.clock import SystemClock
    from bridge.core.errors import BridgeError
    from bridge.identity.service import ASSURANCE
    from bridge.ingest.service import utc_version
    from bridge.mapping import Mappings
    from bridge.store.crypto import StoreCrypto
    from bridge.store.db import make_engine, make_session_factory
    from bridge.store.identity import dump_json
    from bridge.store.models import IdentityLink
    from bridge.store.resources import SourceRef

    settings = ds.settings()
    clock = SystemClock()
    crypto = StoreCrypto.from_settings(settings)
    mappings = Mappings.load(settings.mappings_dir)
    team_systems = AccessConfig.from_mapping_config(mappings.config).team_systems
    persons = truth_persons(Path(data) / "truth.jsonl")
    engine = make_engine(ds.url)
    factory = make_session_factory(engine)
    counts: Counter[str] = Counter()
    teams: Counter[str] = Counter()
    stored_patients: set[str] = set()
    pending = 0
    session = factory()
    session.begin()
    writer = BulkWriter(session, crypto=crypto, clock=clock)

    def commit() -> None:
        writer.flush()
        session.commit()
        session.begin()

    try:
        for item in _records(Path(data)):
            if not isinstance(item, SourceRecord):
                counts["adapter_errors"] += share == 0  # every worker sees them: count once
                continue
            sid = subject_source_id(item)
            person = persons.get(sid or "")
            if person is None:
                counts["no_subject"] += share == 0
                continue
            if zlib.crc32(person.encode()) % shares != share:
                continue
            counts["records"] += 1
            try:
                result = mappings.map(item, now=clock.now())
            except BridgeError:
                counts["map_failed"] += 1
                continue
            version = utc_version(item.version)
            for mapped in result.resources:
                source = SourceRef(*mapped.key)
                writer.add(mapped.resource, source=source, source_version=version, person_id=person)
                if mapped.resource.get("resourceType") == "Patient":
                    stored_patients.add(source.resource_id())
                teams.update(_team_identifiers(mapped.resource, team_systems))
            pending += 1
            if pending >= BATCH:
                commit()
                pending = 0
        commit()
        # One Person per human with identity links, as linking would leave them.
        evidence = dump_json(
            {
                "decision": "reviewer",
                "summary": "bulk-loaded by bench/bench_view.py from the generator's truth file",
            }
        )
        links: list[dict[str, Any]] = []
        with (Path(data) / "truth.jsonl").open() as f:
            for line in f:
                t = json.loads(line)
                patients = [p for p in patient_ids_of(t) if p in stored_patients]
                if not patients:
                    continue
                person = persons[t["chs_patient_id"] or t["asc_person_id"]]
                if zlib.crc32(person.encode()) % shares != share:
                    continue
                at = clock.now()
                links += [
                    {
                        "patient_id": pid,
                        "person_id": person,
                        "rule": "reviewer",
                        "score": None,
                        "evidence": evidence,
                        "created_at": at,
                        "created_by": "bench_view",
                        "merge_id": None,
                    }
                    for pid in patients
                ]
                writer.add(
                    {
                        "resourceType": "Person",
                        "id": person,
                        "active": True,
                        "link": [
                            {
                                "target": {"reference": f"Patient/{p}"},
                                "assurance": ASSURANCE["reviewer"],
                            }
                            for p in patients
                        ],
                    }
                )
                counts["persons_linked"] += 1
                if len(links) >= BATCH:
                    session.execute(insert(IdentityLink.__table__), links)
                    links = []
                    commit()
        if links:
            session.execute(insert(IdentityLink.__table__), links)
        writer.flush()
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()
    counts.update(writer.counts)
    counts["resources_stored"] -= counts["persons_linked"]
    return {"counts": dict(counts), "teams": dict(teams), "peak_rss_mb": peak_rss_mb()}


# -- the load -----------------------------------------------------------------------------
def load(ds: Dataset, *, workers: int, log: Any = print) -> LoadReport:
    """Generate, map and store the dataset afresh (drops any earlier database of that name)."""
    from sqlalchemy import text

    from bridge.store.crypto import StoreCrypto
    from bridge.store.db import make_engine
    from bridge.store.migrate import upgrade
    from bridge.synth import generate

    report = LoadReport(persons=ds.persons, seed=ds.seed, workers=workers)
    if ds.data_dir.exists():
        shutil.rmtree(ds.data_dir)
    ds.data_dir.mkdir(parents=True)
    settings = ds.settings()
    StoreCrypto.from_settings(settings)  # make the development keys once, before the workers
    from bridge.auth.tokens import mint_dev_token

    mint_dev_token(settings, user="bench", roles=["social_worker"])  # and the signing key
    _recreate_database(ds.admin_url, ds.database)
    engine = make_engine(ds.url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    with tempfile.TemporaryDirectory(prefix="bench-view-") as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        generate(data, persons=ds.persons, seed=ds.seed)
        report.generate_s = time.perf_counter() - t0
        log(f"generated {ds.persons:,} persons in {report.generate_s:.1f} s; loading...")
        t0 = time.perf_counter()
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
            futures = [pool.submit(_load_share, ds, str(data), k, workers) for k in range(workers)]
            results = [f.result() for f in futures]
        report.load_s = time.perf_counter() - t0
    counts: Counter[str] = Counter()
    teams: Counter[str] = Counter()
    for r in results:
        counts.update(r["counts"])
        teams.update(r["teams"])
    for name in (
        "records",
        "resources_stored",
        "versions_written",
        "map_failed",
        "adapter_errors",
        "no_subject",
        "persons_linked",
    ):
        setattr(report, name, counts[name])
    report.teams = dict(teams.most_common())
    report.peak_rss_worker_mb = max(r["peak_rss_mb"] for r in results)
    report.peak_rss_loader_mb = peak_rss_mb()
    # Fresh tables have no statistics: without them PostgreSQL may plan badly.
    t0 = time.perf_counter()
    engine = make_engine(ds.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        report.database_mb = size / 1e6
    finally:
        engine.dispose()
    report.analyze_s = time.perf_counter() - t0
    ds.manifest_path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def ensure_loaded(ds: Dataset, *, reload: bool, workers: int, log: Any = print) -> LoadReport:
    """Return the dataset's load report, loading it first when absent, stale or asked to."""
    if not reload:
        found = loaded(ds)
        if found is not None:
            log(f"reusing database {ds.database} (loaded earlier; --reload to load afresh)")
            return found
    return load(ds, workers=workers, log=log)


# -- the server ---------------------------------------------------------------------------
def app_factory() -> Any:
    """Build the app as ``carebridge serve`` does (logging configured), for uvicorn workers."""
    from bridge.api.app import create_app
    from bridge.api.logging import configure_logging
    from bridge.core.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A uvicorn process serving the app against a dataset."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(ds: Dataset, *, workers: int, log_level: str = "INFO") -> Server:
    """Start ``uvicorn`` with ``workers`` processes against the dataset; wait for /health."""
    import httpx

    port = free_port()
    log_path = ds.data_dir / "server.log"
    env = {**os.environ, **ds.env(), "CAREBRIDGE_LOG_LEVEL": log_level}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "_view_load:app_factory",
        "--app-dir",
        str(Path(__file__).resolve().parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}); see {log_path}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"the server did not answer /health within 60 s; see {log_path}")
