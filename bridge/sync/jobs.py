"""Job definitions: read and check a job file (YAML), compute when a job is next due.

A job file holds ``jobs:``, a list of jobs, each with ``name``, ``source`` (``chs-extracts``,
``asc-export`` or ``asc-http``), ``schedule`` (an interval such as ``15m`` or a five-field
cron expression) and source settings; see docs/sync.md. Every problem is reported as
``file:line: jobs[i].field: reason``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from croniter import croniter

from bridge.core.errors import ConfigurationError
from bridge.mapping.yamlfile import LineDict, LineList, YamlSyntaxError, load_yaml

SourceType = Literal["chs-extracts", "asc-export", "asc-http"]
SOURCES: Final = ("chs-extracts", "asc-export", "asc-http")
_INTERVAL = re.compile(r"^([1-9][0-9]*)(s|m|h|d)$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_COMMON = {"name", "source", "schedule", "options"}
_SOURCE_FIELDS: Final = {
    "chs-extracts": {"path"},
    "asc-export": {"path"},
    "asc-http": {"url", "kinds", "page_size", "token_file"},
}
_OPTIONS: Final = {
    "batch_size": (int, 200),
    "max_failures": (int, 5),
    "retry_base_seconds": (float, 30.0),
    "retry_max_seconds": (float, 3600.0),
    "alerts": (bool, True),
}


def job_file_error(
    reason: str, *, file: str, line: int | None, field: str | None
) -> ConfigurationError:
    """Return the error for a bad job file: ``file:line: field: reason`` (and as extras)."""
    where = f"{file}:{line}" if line else file
    prefix = f"{where}: {field}: " if field else f"{where}: "
    return ConfigurationError(
        prefix + reason,
        field=field,
        extra={k: v for k, v in {"file": file, "line": line}.items() if v},
    )


@dataclass(frozen=True)
class Schedule:
    """When a job runs: every ``interval`` seconds, or at the times a cron expression names."""

    text: str
    interval: float | None = None
    cron: str | None = None

    def next_after(self, moment: datetime) -> datetime:
        """Return the next due time after ``moment`` (timezone-aware UTC)."""
        if self.interval is not None:
            return moment + timedelta(seconds=self.interval)
        assert self.cron is not None
        nxt: datetime = croniter(self.cron, moment).get_next(datetime)
        return nxt


@dataclass(frozen=True)
class JobOptions:
    """How a job runs: batch size, failure limit and retry backoff, alerts on or off."""

    batch_size: int = 200
    max_failures: int = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    alerts: bool = True


@dataclass(frozen=True)
class JobDefinition:
    """One job as configured."""

    name: str
    source: SourceType
    schedule: Schedule
    path: Path | None = None
    url: str | None = None
    kinds: tuple[str, ...] | None = None
    page_size: int = 500
    token_file: Path | None = None
    options: JobOptions = field(default_factory=JobOptions)
    # The definition as written (for the hash).
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def definition_hash(self) -> str:
        """Return the SHA-256 of the definition (what it reads and how), for change notice."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def parse_schedule(text: str) -> Schedule:
    """Return a schedule from ``15m``-style text or a cron expression; ValueError if neither."""
    m = _INTERVAL.match(text.strip())
    if m:
        return Schedule(text, interval=float(int(m.group(1)) * _UNIT_SECONDS[m.group(2)]))
    if len(text.split()) == 5 and croniter.is_valid(text):
        return Schedule(text, cron=text)
    raise ValueError(
        f"{text!r} is neither an interval (a number and s, m, h or d: 30s, 15m, 1h)"
        " nor a five-field cron expression (*/15 * * * *)"
    )


def load_jobs(path: str | Path) -> list[JobDefinition]:
    """Read and check a job file; raise ConfigurationError naming file, line and field."""
    p = Path(path)
    name = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise job_file_error(
            f"cannot read the job file ({exc})", file=name, line=None, field=None
        ) from None
    return parse_jobs(text, file=name, base=p.parent)


def parse_jobs(text: str, *, file: str, base: Path) -> list[JobDefinition]:
    """Check job file text; relative paths are taken from ``base`` (the file's folder)."""
    try:
        tree = load_yaml(text)
    except YamlSyntaxError as exc:
        raise job_file_error(exc.message, file=file, line=exc.line, field=None) from None
    if not isinstance(tree, LineDict) or not isinstance(tree.get("jobs"), LineList):
        line = getattr(tree, "line", None)
        raise job_file_error(
            "expected a mapping with a 'jobs' list", file=file, line=line, field="jobs"
        )
    unknown = set(tree) - {"jobs"}
    if unknown:
        key = sorted(unknown, key=str)[0]
        raise job_file_error(
            "unknown key (only 'jobs' is allowed at the top)",
            file=file,
            line=tree.key_lines.get(key),
            field=str(key),
        )
    jobs: list[JobDefinition] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(tree["jobs"]):
        line = tree["jobs"].item_lines[index]
        job = _job(item, index=index, line=line, file=file, base=base)
        if job.name in seen:
            raise job_file_error(
                f"the job name {job.name!r} is used twice (first on line {seen[job.name]})",
                file=file,
                line=line,
                field=f"jobs[{index}].name",
            )
        seen[job.name] = line
        jobs.append(job)
    return jobs


def _job(item: Any, *, index: int, line: int, file: str, base: Path) -> JobDefinition:
    where = f"jobs[{index}]"

    def fail(reason: str, key: str | None = None) -> ConfigurationError:
        at = item.key_lines.get(key, line) if isinstance(item, LineDict) and key else line
        return job_file_error(reason, file=file, line=at, field=f"{where}.{key}" if key else where)

    if not isinstance(item, LineDict):
        raise fail("each job must be a mapping (name, source, schedule, …)")
    for key in ("name", "source", "schedule"):
        if key not in item:
            raise fail(f"'{key}' is required", None)
        if not isinstance(item[key], str) or not item[key].strip():
            raise fail("must be non-empty text", key)
    name, source = item["name"], item["source"]
    if not _NAME.match(name):
        raise fail("use lower-case letters, digits, '.', '_' or '-' (at most 100)", "name")
    if source not in SOURCES:
        raise fail(f"{source!r} is not a source; use one of {', '.join(SOURCES)}", "source")
    allowed = _COMMON | _SOURCE_FIELDS[source]
    for key in item:
        if key not in allowed:
            raise fail(
                f"unknown field for a {source} job; allowed: {', '.join(sorted(allowed))}",
                str(key),
            )
    try:
        schedule = parse_schedule(item["schedule"])
    except ValueError as exc:
        raise fail(str(exc), "schedule") from None
    options = _options(item.get("options"), fail)
    raw = {str(k): v for k, v in item.items()}
    if source in ("chs-extracts", "asc-export"):
        if not isinstance(item.get("path"), str) or not item["path"]:
            raise fail(
                "'path' (the directory to read) is required", "path" if "path" in item else None
            )
        return JobDefinition(
            name, source, schedule, path=base / item["path"], options=options, raw=raw
        )
    url = item.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise fail("'url' must be an http:// or https:// URL", "url" if "url" in item else None)
    kinds = item.get("kinds")
    if kinds is not None and (
        not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)
    ):
        raise fail("must be a list of record kinds", "kinds")
    page_size = item.get("page_size", 500)
    if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
        raise fail("must be a whole number of at least 1", "page_size")
    token = item.get("token_file")
    if token is not None and not isinstance(token, str):
        raise fail("must be a file path", "token_file")
    return JobDefinition(
        name,
        "asc-http",
        schedule,
        url=url,
        kinds=tuple(kinds) if kinds is not None else None,
        page_size=page_size,
        token_file=base / token if token else None,
        options=options,
        raw=raw,
    )


def _options(value: Any, fail: Any) -> JobOptions:
    if value is None:
        return JobOptions()
    if not isinstance(value, LineDict):
        raise fail("must be a mapping", "options")
    out: dict[str, Any] = {}
    for key, given in value.items():
        if key not in _OPTIONS:
            raise fail(f"unknown option {key!r}; known: {', '.join(_OPTIONS)}", "options")
        kind, _default = _OPTIONS[key]
        ok = (
            isinstance(given, bool)
            if kind is bool
            else isinstance(given, int | float) and not isinstance(given, bool) and given > 0
        )
        if kind is int and not isinstance(given, int):
            ok = False
        if not ok:
            raise fail(f"options.{key} must be a positive {kind.__name__}", "options")
        out[key] = kind(given)
    return JobOptions(**out)
