"""Owner-only secret files, written atomically."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _write_tmp(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def replace_private(path: Path, data: bytes) -> None:
    """Write ``path`` (owner-only), replacing it atomically if it exists."""
    os.replace(_write_tmp(path, data), path)


def create_private(path: Path, data: bytes) -> bool:
    """Create ``path`` (owner-only) unless it exists; say whether this call created it.

    ``link()`` fails when the file already exists, so two processes starting at once
    cannot overwrite each other's new key (which would make data or tokens unreadable).
    """
    tmp = _write_tmp(path, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
