"""Code systems and identifier systems the consent engine understands."""

from __future__ import annotations

# HL7 terminology.
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"

# NHS identifiers.
ODS_ORGANISATION = "https://fhir.nhs.uk/Id/ods-organization-code"

# carebridge's own systems.
TEAM = "https://carebridge.example.org/Id/team"
CARE_ROLE = "https://carebridge.example.org/fhir/CodeSystem/care-role"
SECURITY_LABEL = "https://carebridge.example.org/fhir/CodeSystem/security-label"
RECORDED_BY = "https://carebridge.example.org/fhir/StructureDefinition/recorded-by"

PRIVACY_SCOPE = "patient-privacy"
# Consent.provision.action codes that cover a social care user viewing shared data.
VIEW_ACTIONS = frozenset({"access", "use", "disclose"})
# ParticipationType code for the data's custodian (whose records a provision is about).
CUSTODIAN = "CST"
# policyRule codes that say whether a Consent with no root provision.type permits or denies.
POLICY_RULE_PERMIT = frozenset({"OPTIN", "OPTINR"})
POLICY_RULE_DENY = frozenset({"OPTOUT", "OPTOUTE"})
