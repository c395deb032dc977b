"""ORM models; importing this package registers every table on ``Base.metadata``."""

from bridge.store.models.access import BreakGlassRecord
from bridge.store.models.audit import AuditEntry, AuditHead
from bridge.store.models.base import Base
from bridge.store.models.identity import (
    IdentityLink,
    IdentityMerge,
    MatchCandidate,
    MatchKey,
    ResourceSubject,
)
from bridge.store.models.inbound import DeadLetter, InboundMessage
from bridge.store.models.resources import IdentifierIndex, ResourceCurrent, ResourceHistory
from bridge.store.models.sync import OutboxMessage, SyncCheckpoint, SyncJob, SyncRun

__all__ = [
    "AuditEntry",
    "AuditHead",
    "Base",
    "BreakGlassRecord",
    "DeadLetter",
    "IdentifierIndex",
    "IdentityLink",
    "IdentityMerge",
    "InboundMessage",
    "MatchCandidate",
    "MatchKey",
    "OutboxMessage",
    "ResourceCurrent",
    "ResourceHistory",
    "ResourceSubject",
    "SyncCheckpoint",
    "SyncJob",
    "SyncRun",
]
