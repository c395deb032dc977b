"""Identifier systems used across carebridge (UK Core conventions)."""

from bridge.core.nhs_number import NHS_NUMBER_SYSTEM

ODS_ORGANIZATION_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS_NUMBER_VERIFICATION_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
SOURCE_SYSTEM_TAG = "https://carebridge.example.org/fhir/CodeSystem/source-system"

__all__ = [
    "NHS_NUMBER_SYSTEM",
    "NHS_NUMBER_VERIFICATION_EXTENSION",
    "ODS_ORGANIZATION_SYSTEM",
    "SOURCE_SYSTEM_TAG",
]
