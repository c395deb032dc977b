"""Scheduled sync: job definitions, the job runner (leases, checkpoints), the worker loop,
and the alert outbox. See docs/sync.md."""
