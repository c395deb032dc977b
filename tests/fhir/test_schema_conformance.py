"""What the store emits is valid FHIR R4 by HL7's own JSON Schema, not only by our models."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from bridge.core.clock import FixedClock
from bridge.store.crypto import StoreCrypto
from bridge.store.resources import ResourceRepository, SourceRef
from tests.fixtures.fhir import patient
from tests.fixtures.schema import assert_fhir_r4, schema_errors


class TestSchemaItself:
    def test_schema_catches_what_it_should(self) -> None:
        assert schema_errors({"resourceType": "Patient", "gender": "bogus"})
        assert schema_errors({"resourceType": "Patient", "birthDate": "07/03/1941"})
        assert not schema_errors({"resourceType": "Patient", "gender": "female"})


@pytest.mark.parametrize(
    "resource",
    [
        patient(),
        patient(rid=None),
        {
            "resourceType": "Condition",
            "meta": {
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
                ]
            },
            "subject": {"reference": "Patient/p1"},
            "code": {"text": "synthetic condition"},
        },
    ],
    ids=["patient", "patient-from-source", "condition-labelled"],
)
def test_stored_and_versioned_output_is_schema_valid(
    resource: dict[str, Any], session: Session, crypto: StoreCrypto, clock: FixedClock
) -> None:
    repo = ResourceRepository(session, crypto=crypto, clock=clock)
    source = SourceRef("chs", "test", "1") if "id" not in resource else None
    stored = repo.put(resource, source=source).stored
    assert stored.content is not None
    assert_fhir_r4(stored.content)
    assert_fhir_r4(repo.read(stored.resource_type, stored.id).content or {})
