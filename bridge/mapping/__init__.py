"""Declarative field mappings: source records to FHIR R4 resources (docs/mappings.md).

Load once, then map many records; mapping is pure (no I/O, ``now`` passed in)::

    from bridge.mapping import Mappings

    mappings = Mappings.load(settings.mappings_dir)  # MappingSpecError if a file is wrong
    result = mappings.map(record, now=clock.now())  # MappingError if the record cannot map
    for mapped in result.resources:  # MappedResource(resource=dict, key=(system, kind, value))
        ...  # store mapped.resource under SourceRef(*mapped.key)
    for warning in result.warnings:  # MappingWarning: unmapped code kept as text, …
        ...
"""

from bridge.mapping.compiler import CompiledSpec
from bridge.mapping.loader import Mappings, SpecProblem, default_directory
from bridge.mapping.result import MappedResource, MappingResult, MappingWarning

__all__ = [
    "CompiledSpec",
    "MappedResource",
    "MappingResult",
    "MappingWarning",
    "Mappings",
    "SpecProblem",
    "default_directory",
]
