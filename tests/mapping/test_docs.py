"""docs/mappings.md agrees with the code, and its worked example really works."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from bridge.mapping import Mappings
from bridge.mapping.labels import LABELS
from bridge.mapping.transforms import REGISTRY
from tests.mapping.helpers import NOW, SHIPPED, record

DOC = Path(__file__).resolve().parents[2] / "docs" / "mappings.md"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


class TestReference:
    def test_every_transform_is_documented_with_its_args(self) -> None:
        table = section("Transforms")
        for name, transform in REGISTRY.items():
            row = next(
                (line for line in table.splitlines() if line.startswith(f"| `{name}` |")), None
            )
            assert row is not None, f"transform {name} is not in docs/mappings.md"
            for arg in transform.args:
                assert f"`{arg}`" in row, f"argument {arg} of {name} is not documented"

    def test_every_label_is_documented(self) -> None:
        table = section("Security labels")
        for name in LABELS:
            assert f"| `{name}` |" in table

    def test_every_shipped_spec_and_map_is_listed(self, shipped: Mappings) -> None:
        text = DOC.read_text()
        for name in shipped.by_name:
            assert f"| `{name}` |" in text
        for map_id in shipped.concept_maps:
            assert f"`{map_id}`" in section("Concept maps")


class TestWorkedExample:
    def test_the_example_spec_makes_the_documented_output(self, tmp_path: Path) -> None:
        blocks = re.findall(r"```(json|yaml)\n(.*?)```", section("A worked example"), re.S)
        (source, spec, output) = [body for _, body in blocks]
        root = tmp_path / "mappings"
        shutil.copytree(SHIPPED / "codes", root / "codes")
        shutil.copy(SHIPPED / "config.yaml", root / "config.yaml")
        (root / "asc").mkdir()
        (root / "asc" / "person.yaml").write_text(spec)
        mappings = Mappings.load(root)
        result = mappings.map(record(json.loads(source), system="asc", kind="person"), now=NOW)
        assert [m.resource for m in result.resources] == json.loads(output)
        assert result.warnings == ()
