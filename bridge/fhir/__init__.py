"""FHIR R4 helpers over ``fhir.resources.R4B`` (the R4-compatible models)."""
