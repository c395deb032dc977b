"""Encryption at rest and keyed hashing.

* :class:`KeyRing` — AES-256-GCM with a key id inside each stored value, so keys rotate
  without a flag day: old values stay readable, ``carebridge keys rotate`` re-encrypts them.
* :class:`Hasher` — HMAC-SHA-256 for the NHS number blind index and content hashes; its key
  lives outside the database, so neither can be brute-forced from a database copy alone.

Stored value layout: ``0x01 | len(key_id) | key_id | nonce(12) | ciphertext+tag``. The
associated data binds a value to its row (e.g. ``Patient/123/4``) so values cannot be swapped
between rows unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bridge.core.errors import ConfigurationError, CryptoError
from bridge.core.files import create_private, replace_private

_FORMAT = 1
_NONCE = 12


@dataclass
class KeyRing:
    """The data encryption keys: one active for new values, older ones for reading."""

    keys: dict[str, bytes]
    active: str
    development: bool = True
    created: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ConfigurationError(f"key ring's active key {self.active!r} is not in the ring")
        for kid, key in self.keys.items():
            if len(key) != 32:
                raise ConfigurationError(f"key {kid!r} must be 32 bytes (AES-256)")
            if not kid or len(kid.encode()) > 255:
                raise ConfigurationError("key ids must be 1..255 bytes")
        self._aead = {kid: AESGCM(key) for kid, key in self.keys.items()}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def generate(cls, *, development: bool, now: datetime | None = None) -> KeyRing:
        """Make a ring with one fresh random key."""
        kid = cls._new_kid(now)
        return cls(
            {kid: AESGCM.generate_key(bit_length=256)},
            kid,
            development,
            {kid: (now or datetime.now(UTC)).isoformat()},
        )

    @staticmethod
    def _new_kid(now: datetime | None) -> str:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
        return f"k{stamp}-{secrets.token_hex(3)}"

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read a ring from its JSON file."""
        try:
            data = json.loads(path.read_text())
            keys = {kid: base64.b64decode(v) for kid, v in data["keys"].items()}
            return cls(
                keys,
                data["active"],
                bool(data.get("development", False)),
                dict(data.get("created", {})),
            )
        except FileNotFoundError as exc:
            raise ConfigurationError(f"data key file {path} does not exist") from exc
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"data key file {path} is not a valid key ring: {exc}"
            ) from exc

    @classmethod
    def load_or_create(cls, path: Path, *, allow_create: bool) -> KeyRing:
        """Read the ring, creating a development ring on first run when allowed."""
        if not path.exists() and allow_create:
            # Exclusive create: of two processes starting together, one key ring wins.
            create_private(path, cls.generate(development=True)._serialise())
        return cls.load(path)

    def _serialise(self) -> bytes:
        data = {
            "format": _FORMAT,
            "development": self.development,
            "active": self.active,
            "keys": {kid: base64.b64encode(k).decode() for kid, k in self.keys.items()},
            "created": self.created,
        }
        return json.dumps(data, indent=2).encode()

    def save(self, path: Path) -> None:
        """Write the ring atomically with owner-only permissions."""
        replace_private(path, self._serialise())

    def with_new_active_key(self, now: datetime | None = None) -> KeyRing:
        """Return a copy with a fresh key added and made active (old keys stay for reads)."""
        kid = self._new_kid(now)
        keys = dict(self.keys)
        keys[kid] = AESGCM.generate_key(bit_length=256)
        created = dict(self.created)
        created[kid] = (now or datetime.now(UTC)).isoformat()
        return KeyRing(keys, kid, self.development, created)

    # -- use ----------------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt with the active key; ``aad`` must be given again to decrypt."""
        kid = self.active.encode()
        nonce = os.urandom(_NONCE)
        ct = self._aead[self.active].encrypt(nonce, plaintext, aad)
        return bytes([_FORMAT, len(kid)]) + kid + nonce + ct

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a value made by :meth:`encrypt` with any key still in the ring."""
        kid = self.key_id_of(blob)
        aead = self._aead.get(kid)
        if aead is None:
            raise CryptoError(f"value was encrypted with key {kid!r}, which is not in the ring")
        start = 2 + len(kid.encode())
        nonce, ct = blob[start : start + _NONCE], blob[start + _NONCE :]
        try:
            return aead.decrypt(nonce, ct, aad)
        except InvalidTag as exc:
            raise CryptoError("stored value failed authentication (tampered or misplaced)") from exc

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """Return the id of the key a stored value was encrypted with."""
        if len(blob) < 2 or blob[0] != _FORMAT:
            raise CryptoError("stored value has an unknown encryption format")
        n = blob[1]
        return bytes(blob[2 : 2 + n]).decode()


class Hasher:
    """Keyed hashes: blind index tokens and content hashes."""

    def __init__(self, key: bytes, *, development: bool = True) -> None:
        if len(key) < 32:
            raise ConfigurationError("the index key must be at least 32 bytes")
        self._key = key
        self.development = development

    @classmethod
    def load_or_create(cls, path: Path, *, allow_create: bool) -> Hasher:
        """Read the index key file, creating a development key on first run when allowed."""
        if not path.exists():
            if not allow_create:
                raise ConfigurationError(f"key file {path} does not exist")
            create_private(path, cls._new_key_file(development=True))
        raw = path.read_text().strip().splitlines()
        try:
            development = raw[0] == "development"
            return cls(base64.b64decode(raw[-1]), development=development)
        except (IndexError, ValueError) as exc:
            raise ConfigurationError(f"key file {path} is not valid") from exc

    @staticmethod
    def _new_key_file(*, development: bool) -> bytes:
        label = "development" if development else "production"
        return f"{label}\n{base64.b64encode(os.urandom(32)).decode()}\n".encode()

    @classmethod
    def write_new(cls, path: Path, *, development: bool) -> None:
        """Write a fresh random index key unless one exists (first line: its mode)."""
        if not create_private(path, cls._new_key_file(development=development)):
            raise ConfigurationError(f"{path} already exists; refusing to overwrite a key")

    def index_token(self, system: str, value: str) -> str:
        """Return the blind index token for an identifier (system + value)."""
        msg = f"id|{system}|{value.strip()}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def content_hash(self, canonical: bytes) -> str:
        """Return a keyed hash of canonical content (detects unchanged re-ingests)."""
        return hmac.new(self._key, b"content|" + canonical, hashlib.sha256).hexdigest()

    def mac(self, *parts: bytes) -> str:
        """Return HMAC-SHA-256 over the parts, each length-prefixed (no ambiguity)."""
        m = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            m.update(len(part).to_bytes(8, "big"))
            m.update(part)
        return m.hexdigest()
