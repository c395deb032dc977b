"""Fixtures for the community health adapter tests: the committed sample."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.adapters.chs.builders import ADT_FILE, SAMPLE


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    """The committed sample's manifest."""
    data: dict[str, Any] = json.loads((SAMPLE / "manifest.json").read_text())
    return data


@pytest.fixture(scope="session")
def sample_messages() -> list[bytes]:
    """The sample ADT file split into messages (one per line, as documented)."""
    return ADT_FILE.read_bytes().split(b"\n")[:-1]
