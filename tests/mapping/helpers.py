"""Builders for mapping tests: small specs, records, the sample, a fast schema check."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from adapters.base import SourceRecord
from bridge.mapping import default_directory
from tests.fixtures.schema import SCHEMA_PATH

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
SHIPPED = default_directory()
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"

# A config.yaml for hand-made spec directories.
TEST_CONFIG = """\
description: Values for tests.
values:
  person_system: https://example.org/Id/person
  invalid_nhs_number_system: https://example.org/Id/invalid-nhs-number
  org_code: X1Y2Z
"""


def spec_text(
    rules: str, *, resource_type: str = "Patient", head: str = "", extra: str = ""
) -> str:
    """Return a one-resource test spec (system test, kind thing) with the given rules."""
    body = textwrap.indent(textwrap.dedent(rules).strip("\n"), " " * 6)
    return (
        "description: A test spec.\n"
        "source: {system: test, kind: thing}\n"
        f"target: [{resource_type}]\n"
        "links: [https://example.org/spec]\n"
        'version: "2.1"\n'
        f"{head}"
        "resources:\n"
        "  - name: main\n"
        f"    type: {resource_type}\n"
        '    key: {kind: thing, value: "{id}"}\n'
        f"{extra}"
        "    rules:\n"
        f"{body}\n"
    )


def record(fields: dict[str, Any], *, system: str = "test", kind: str = "thing") -> SourceRecord:
    """Build a source record (id from ``fields['id']`` when there is one)."""
    return SourceRecord(
        system=system, kind=kind, id=str(fields.get("id", "r1")), version=None, fields=fields
    )


def sample_records(rel: str, system: str, kind: str, id_field: str) -> list[tuple[int, Any]]:
    """Return (line, record or None for a line that is not JSON) from the committed sample."""
    out: list[tuple[int, Any]] = []
    for n, line in enumerate((SAMPLE / rel).read_text(encoding="utf-8").splitlines(), 1):
        try:
            fields = json.loads(line)
        except json.JSONDecodeError:
            out.append((n, None))
            continue
        out.append(
            (n, SourceRecord(system, kind, str(fields[id_field]), fields["updated_at"], fields))
        )
    return out


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())  # type: ignore[no-any-return]


@cache
def _validator(resource_type: str) -> jsonschema.Draft6Validator:
    # HL7's official schema, narrowed to the resource's own definition: the same rules as
    # the whole schema's oneOf picks by resourceType, about thirty times faster.
    return jsonschema.Draft6Validator(
        {"definitions": _schema()["definitions"], "$ref": f"#/definitions/{resource_type}"}
    )


def schema_problems(resource: dict[str, Any]) -> list[str]:
    """Return the FHIR R4 schema violations of a resource (per-type, fast)."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in _validator(str(resource.get("resourceType"))).iter_errors(resource)
    ]
