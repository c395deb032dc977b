"""The encryption context every repository is built with."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bridge.core.crypto import Hasher, KeyRing
from bridge.core.settings import Settings

# How often a running process looks at the key ring file for a rotation (seconds).
RELOAD_INTERVAL = 5.0


class StoreCrypto:
    """Key ring for payloads plus keyed hasher for blind indexes and content hashes.

    When built from a key ring file, it notices `carebridge keys rotate` while running:
    new values use the new active key within ``RELOAD_INTERVAL`` seconds, and a value
    sealed with a key this process has not loaded yet triggers an immediate reload.
    """

    def __init__(self, keyring: KeyRing, hasher: Hasher, *, ring_path: Path | None = None):
        self._keyring = keyring
        self.hasher = hasher
        self._ring_path = ring_path
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._mtime = ring_path.stat().st_mtime_ns if ring_path else 0

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreCrypto:
        """Load the keys; in development create them under DATA_DIR on first run."""
        allow = not settings.is_production
        path = settings.effective_data_key_file
        return cls(
            KeyRing.load_or_create(path, allow_create=allow),
            Hasher.load_or_create(settings.effective_index_key_file, allow_create=allow),
            ring_path=path,
        )

    @property
    def keyring(self) -> KeyRing:
        """Return the key ring currently in use."""
        return self._keyring

    def reload(self, *, force: bool = False) -> None:
        """Re-read the key ring file if it changed (or unconditionally with ``force``)."""
        if self._ring_path is None:
            return
        with self._lock:
            self._checked = time.monotonic()
            mtime = self._ring_path.stat().st_mtime_ns
            if force or mtime != self._mtime:
                self._keyring = KeyRing.load(self._ring_path)
                self._mtime = mtime

    def seal(self, plaintext: bytes, aad: str) -> tuple[bytes, str]:
        """Encrypt ``plaintext`` bound to ``aad``; return the value and its key id."""
        if self._ring_path is not None and time.monotonic() - self._checked > RELOAD_INTERVAL:
            self.reload()
        ring = self._keyring
        return ring.encrypt(plaintext, aad.encode()), ring.active

    def open(self, blob: bytes, aad: str) -> bytes:
        """Decrypt a value sealed with the same ``aad``."""
        ring = self._keyring
        if KeyRing.key_id_of(blob) not in ring.keys and self._ring_path is not None:
            self.reload(force=True)
            ring = self._keyring
        return ring.decrypt(blob, aad.encode())
