"""Ingest: source records through the mapping specs into the store, losing nothing."""
