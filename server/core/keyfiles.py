"""Private key files (mode 0600) that several processes may create at once.

Nodes of a cluster share one data dir and may start together: a key file must come into being
whole and once, so every process ends up using the same key. The content is written to a private
temporary file first and then hard-linked into place (link fails if the name exists), so readers
never see a half-written file and the loser of the race simply reads the winner's key.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def _write_temporary(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def create_once(path: Path, data: bytes) -> bool:
    """Create `path` with `data` unless it exists; False when another process (or run) made it first."""
    tmp = _write_temporary(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def replace(path: Path, data: bytes) -> None:
    """Replace `path` atomically: readers see the old or the new content, never a mix."""
    os.replace(_write_temporary(path, data), path)


def secret(path: Path) -> bytes:
    """A 256-bit key kept base64 in its own private file (HMAC keys), created on first use."""
    if not path.exists():
        create_once(path, base64.b64encode(secrets.token_bytes(32)))
    key = base64.b64decode(path.read_bytes().strip())
    if len(key) != 32:
        raise ValueError(f"the key file {path} does not hold a 256-bit key")
    return key
