"""Job files: valid ones load; every problem names file, line and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.core.errors import ConfigurationError
from bridge.sync.jobs import load_jobs, parse_jobs, parse_schedule
from tests.conftest import REPO_ROOT

GOOD = """\
jobs:
  - name: asc-inbox
    source: asc-export
    path: inbox/asc
    schedule: 15m
    options: {batch_size: 50, max_failures: 3}
  - name: asc-pull
    source: asc-http
    url: https://asc.example/api
    kinds: [person, allocation]
    schedule: "*/5 * * * *"
"""


class TestLoad:
    def test_a_valid_file_gives_its_jobs(self, tmp_path: Path) -> None:
        (tmp_path / "jobs.yaml").write_text(GOOD)
        inbox, pull = load_jobs(tmp_path / "jobs.yaml")
        assert inbox.source == "asc-export"
        assert inbox.path == tmp_path / "inbox" / "asc"
        assert inbox.options.batch_size == 50
        assert inbox.options.max_failures == 3
        assert inbox.schedule.interval == 900
        assert pull.kinds == ("person", "allocation")
        assert pull.schedule.cron == "*/5 * * * *"
        assert inbox.definition_hash != pull.definition_hash

    def test_the_shipped_sample_job_file_loads(self) -> None:
        jobs = load_jobs(REPO_ROOT / "examples" / "sync-jobs.yaml")
        assert {j.source for j in jobs} >= {"asc-export", "chs-extracts"}

    @pytest.mark.parametrize(
        ("text", "where", "words"),
        [
            ("jobs: [", "jobs.yaml:2: ", "expected node content"),
            ("jobz: []", "jobs.yaml:1: jobs:", "'jobs' list"),
            (
                "jobs:\n  - name: a\n    source: ftp\n    schedule: 1m\n",
                "jobs.yaml:3: jobs[0].source:",
                "'ftp' is not a source",
            ),
            (
                "jobs:\n  - name: a\n    source: asc-export\n    path: x\n    schedule: soon\n",
                "jobs.yaml:5: jobs[0].schedule:",
                "neither an interval",
            ),
            (
                "jobs:\n  - name: a\n    source: asc-export\n    schedule: 1m\n",
                "jobs.yaml:2: jobs[0]:",
                "'path'",
            ),
            (
                "jobs:\n  - name: a\n    source: asc-export\n    path: x\n    schedule: 1m\n"
                "    colour: red\n",
                "jobs.yaml:6: jobs[0].colour:",
                "unknown field",
            ),
            (
                "jobs:\n  - name: a\n    source: asc-export\n    path: x\n    schedule: 1m\n"
                "  - name: a\n    source: asc-export\n    path: y\n    schedule: 1m\n",
                "jobs.yaml:6: jobs[1].name:",
                "used twice (first on line 2)",
            ),
            (
                "jobs:\n  - name: a\n    source: asc-http\n    url: ftp://x\n    schedule: 1m\n",
                "jobs.yaml:4: jobs[0].url:",
                "http",
            ),
            (
                "jobs:\n  - name: a\n    source: asc-export\n    path: x\n    schedule: 1m\n"
                "    options: {batch_size: 0}\n",
                "jobs.yaml:6: jobs[0].options:",
                "batch_size must be a positive int",
            ),
            (
                "jobs:\n  - name: A b\n    source: asc-export\n    path: x\n    schedule: 1m\n",
                "jobs.yaml:2: jobs[0].name:",
                "lower-case",
            ),
        ],
    )
    def test_a_problem_names_file_line_and_field(
        self, tmp_path: Path, text: str, where: str, words: str
    ) -> None:
        with pytest.raises(ConfigurationError) as caught:
            parse_jobs(text, file="jobs.yaml", base=tmp_path)
        assert caught.value.detail.startswith(where), caught.value.detail
        assert words in caught.value.detail

    def test_a_missing_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match=r"nope\.yaml: cannot read"):
            load_jobs(tmp_path / "nope.yaml")


class TestSchedule:
    def test_intervals_add_their_length(self) -> None:
        at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
        assert parse_schedule("30s").next_after(at) == datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
        assert parse_schedule("2h").next_after(at) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def test_cron_gives_the_next_matching_minute(self) -> None:
        at = datetime(2026, 11, 23, 10, 7, 12, tzinfo=UTC)
        assert parse_schedule("*/15 * * * *").next_after(at) == datetime(
            2026, 11, 23, 10, 15, tzinfo=UTC
        )

    @pytest.mark.parametrize("text", ["0m", "15", "m", "61 * * * *", "* * * *"])
    def test_nonsense_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="neither an interval"):
            parse_schedule(text)
