"""Tamper-evident audit log: hash-chained entries, signed checkpoints, verification."""
