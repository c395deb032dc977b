"""Fixtures for mapping tests: the shipped specs and hand-made spec directories."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.mapping import Mappings
from tests.mapping.helpers import SHIPPED, TEST_CONFIG

SpecDir = Callable[..., Path]


@pytest.fixture(scope="session")
def shipped() -> Mappings:
    """The shipped mapping directory, loaded strictly (so it must be valid)."""
    return Mappings.load()


@pytest.fixture
def spec_dir(tmp_path: Path) -> SpecDir:
    """Write a mapping directory: specs by ``system/kind``, concept maps by id, a config."""

    def write(
        specs: dict[str, str],
        maps: dict[str, str] | None = None,
        *,
        config: str = TEST_CONFIG,
        files: dict[str, str] | None = None,
    ) -> Path:
        root = tmp_path / "mappings"
        root.mkdir(exist_ok=True)
        (root / "config.yaml").write_text(config)
        for name, text in specs.items():
            path = root / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        for map_id, text in (maps or {}).items():
            (root / "codes").mkdir(exist_ok=True)
            (root / "codes" / f"{map_id}.yaml").write_text(textwrap.dedent(text))
        for rel, text in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return root

    return write


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped directory that a test may break."""
    target = tmp_path / "mappings-copy"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target
