"""Deterministic synthetic data for both source systems (see docs/synthetic-data.md)."""

from bridge.synth.generator import DEFAULT_AS_OF, GENERATOR_VERSION, GenerationSummary, generate
from bridge.synth.output import INVALID_KINDS, InvalidRow

__all__ = [
    "DEFAULT_AS_OF",
    "GENERATOR_VERSION",
    "INVALID_KINDS",
    "GenerationSummary",
    "InvalidRow",
    "generate",
]
