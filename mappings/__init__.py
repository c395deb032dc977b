"""Declarative field mappings (YAML specs and concept maps), shipped as package data."""
