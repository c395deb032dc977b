"""docs/adapters-chs.md: its worked example is what the parser really produces."""

from __future__ import annotations

import json
import re

from adapters.chs import EXTRACTS, SUPPORTED_EVENTS, SUPPORTED_VERSIONS, parse_message
from tests.adapters.chs.builders import REPO

DOC = (REPO / "docs" / "adapters-chs.md").read_text()


class TestAdaptersChsDoc:
    def test_the_fields_example_matches_the_parser(self) -> None:
        section = DOC[DOC.index("The A28 of the sample") :]
        hl7_text, json_text = re.findall(r"```(?:json)?\n(.*?)```", section, flags=re.S)[:2]
        parsed = parse_message(hl7_text.strip().replace("\n", "\r").encode()).fields
        documented = json.loads(json_text)
        msh = documented.pop("MSH")
        msh.pop("…")
        assert {k: parsed["MSH"][k] for k in msh} == msh
        assert {k: parsed[k] for k in documented} == documented
        assert set(parsed) == {"MSH", *documented}

    def test_every_event_version_and_extract_is_documented(self) -> None:
        for event in SUPPORTED_EVENTS:
            assert f"| `adt_{event.lower()}` |" in DOC
        for version in SUPPORTED_VERSIONS:
            assert f"`{version}`" in DOC
        for stem, (kind, id_field) in EXTRACTS.items():
            assert f"| `{stem}.jsonl` | `{kind}` | `{id_field}` |" in DOC
