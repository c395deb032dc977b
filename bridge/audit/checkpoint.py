"""Signed checkpoints of the chain head, kept outside the database.

A stolen HMAC key lets an attacker rewrite the whole chain consistently, and truncating the
tail leaves a valid shorter chain; neither survives a comparison with the last checkpoint,
which is signed with an Ed25519 key the database never sees.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session, sessionmaker

from bridge.core.clock import Clock, fhir_instant
from bridge.core.errors import ConfigurationError
from bridge.core.files import create_private
from bridge.store.audit import AuditRepository

CHECKPOINT_FILE = "audit-checkpoints.jsonl"
PUBLIC_KEY_FILE = "audit-signing.pub.pem"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: at time ``at`` the chain's entry ``seq`` had hash ``hash``."""

    seq: int
    hash: str
    at: str
    signature: str

    def message(self) -> bytes:
        """Return the signed bytes."""
        return f"carebridge-audit-checkpoint|{self.seq}|{self.hash}|{self.at}".encode()


def load_signing_key(path: Path, *, allow_create: bool) -> Ed25519PrivateKey:
    """Read the checkpoint signing key, creating it on first use when allowed."""
    if not path.exists():
        if not allow_create:
            raise ConfigurationError(f"audit signing key {path} does not exist")
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        create_private(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"audit signing key {path} is not an Ed25519 private key")
    return key


def write_checkpoint(
    directory: Path, key: Ed25519PrivateKey, *, seq: int, hash_: str, at: datetime
) -> Checkpoint:
    """Sign the head and append it to the checkpoint file (publishing the public key)."""
    directory.mkdir(parents=True, exist_ok=True)
    pub = directory / PUBLIC_KEY_FILE
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not pub.exists():
        create_private(pub, pub_pem)
    elif pub.read_bytes() != pub_pem:
        raise ConfigurationError(
            f"{pub} holds another key: the checkpoint directory belongs to another signing key"
        )
    unsigned = Checkpoint(seq, hash_, fhir_instant(at), "")
    sig = base64.b64encode(key.sign(unsigned.message())).decode()
    cp = Checkpoint(seq, hash_, unsigned.at, sig)
    line = json.dumps({"seq": seq, "hash": hash_, "at": cp.at, "signature": sig}) + "\n"
    with (directory / CHECKPOINT_FILE).open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
    return cp


def load_checkpoints(directory: Path) -> tuple[list[Checkpoint], list[str]]:
    """Read and check the signatures of every checkpoint; return them and any problems."""
    path = directory / CHECKPOINT_FILE
    if not path.exists():
        return [], []
    problems: list[str] = []
    try:
        public = serialization.load_pem_public_key((directory / PUBLIC_KEY_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        return [], [f"checkpoint public key cannot be read: {exc}"]
    if not isinstance(public, Ed25519PublicKey):
        return [], ["checkpoint public key is not an Ed25519 key"]
    good: list[Checkpoint] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            cp = Checkpoint(int(d["seq"]), str(d["hash"]), str(d["at"]), str(d["signature"]))
            public.verify(base64.b64decode(cp.signature), cp.message())
        except (ValueError, KeyError, TypeError, InvalidSignature):
            problems.append(f"checkpoint line {n} is malformed or its signature is not valid")
            continue
        good.append(cp)
    return good, problems


class CheckpointSchedule:
    """Signs the chain head every ``every_entries`` entries or ``every_minutes`` minutes.

    ``tick`` is cheap (one read of the head); the worker calls it on each poll. A
    checkpoint is written when the head has moved by ``every_entries`` since the last one,
    or when it has moved at all and ``every_minutes`` have passed. The last checkpoint is
    read from the directory at start, so a restarted worker carries on where it was.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        key: Ed25519PrivateKey,
        directory: Path,
        clock: Clock,
        *,
        every_entries: int,
        every_minutes: float,
    ) -> None:
        self.factory = factory
        self.key = key
        self.directory = directory
        self.clock = clock
        self.every_entries = every_entries
        self.every = timedelta(minutes=every_minutes)
        done, _problems = load_checkpoints(directory)
        last = max(done, key=lambda c: c.seq, default=None)
        self.last_seq = last.seq if last else 0
        self.last_at = datetime.fromisoformat(last.at) if last else None

    def tick(self) -> Checkpoint | None:
        """Write a checkpoint if one is due; return it (None when not due)."""
        with self.factory() as session:
            seq, head = AuditRepository(session).head()
        now = self.clock.now()
        moved = seq - self.last_seq
        if moved <= 0:
            return None
        timed_out = self.last_at is None or now - self.last_at >= self.every
        if moved < self.every_entries and not timed_out:
            return None
        cp = write_checkpoint(self.directory, self.key, seq=seq, hash_=head, at=now)
        self.last_seq, self.last_at = seq, now
        return cp
