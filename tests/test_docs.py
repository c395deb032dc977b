"""Docs are tested: every setting and every error code is documented."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.core.errors import all_error_types
from bridge.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(CAREBRIDGE_[A-Z_]+)`", doc))
    expected = {f"CAREBRIDGE_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "undocumented settings"
    assert documented - expected == set(), "documented settings that do not exist"


def test_every_error_code_is_documented_once_and_unique() -> None:
    doc = (ROOT / "docs" / "errors.md").read_text()
    rows = dict(re.findall(r"^\| `(BRIDGE-\d{4})` \| (\w+) \|", doc, flags=re.M))
    codes = [cls.code for cls in all_error_types()]
    assert len(codes) == len(set(codes)), "an error code is used twice"
    for cls in all_error_types():
        assert rows.get(cls.code) == cls.__name__, f"{cls.code} {cls.__name__} not in errors.md"
        assert cls.__doc__, f"{cls.__name__} needs a one-sentence docstring"


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme


def test_every_audit_action_is_documented() -> None:
    from bridge.audit.service import ACTIONS

    doc = (ROOT / "docs" / "audit.md").read_text()
    documented = set(re.findall(r"^\| `([a-z.-]+)` \| ", doc, flags=re.M))
    assert ACTIONS <= documented, ACTIONS - documented
