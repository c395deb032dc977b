"""docs/consent.md documents every reason code, rule, preset and policy key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consent import PRESETS, ReasonCode
from consent.policies import REDACTORS, VOTERS
from consent.policy import PolicyFile
from tests.consent.builders import actor, consent, provision

DOC = Path(__file__).resolve().parents[2] / "docs" / "consent.md"


def section(title: str) -> str:
    """Return the text of a ``## title`` section of docs/consent.md."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def first_column(text: str) -> list[str]:
    """Return the backticked first cell of every table row."""
    return re.findall(r"^\| `([^`]+)` \|", text, flags=re.M)


class TestConsentDocs:
    def test_every_reason_code_is_documented_once(self) -> None:
        documented = first_column(section("Reason codes"))
        assert len(documented) == len(set(documented)), "a reason code is listed twice"
        assert set(documented) == {c.value for c in ReasonCode}

    def test_every_rule_is_documented(self) -> None:
        documented = set(first_column(section("Rules")))
        rules = {v.rule for v in VOTERS} | {r.rule for r in REDACTORS} | {"source", "default"}
        assert documented == rules

    def test_every_preset_is_documented(self) -> None:
        presets = section("The two presets")
        for name in PRESETS:
            assert f"### `{name}`" in presets

    def test_every_policy_key_is_documented(self) -> None:
        table = section("Policy file")
        documented = {
            key
            for cell in re.findall(r"^\| ([^|]+) \|", table, flags=re.M)
            for key in re.findall(r"`([a-z_.]+)`", cell)
        }
        keys = set(PolicyFile.model_fields) - {"restricted_demographics"}
        assert keys - documented == set()
        assert "restricted_demographics.redact" in documented

    def test_the_usage_example_runs(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = re.search(r"## Using it\n\n```python\n(.*?)```", DOC.read_text(), re.S)
        assert code is not None
        resources = [consent("c1", provision("permit", actors=[actor("L1234")]))]
        exec(code.group(1), {"consent_resources": resources})
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("deny explicit-consent#restricted-categories")
        assert out[1].startswith("permit Consent/c1/_history/1")
