"""Signing keys of the built-in provider: created on first start in the data dir, rotatable.

The file holds private JWKs, newest first. The newest signs; older ones stay published in the
JWKS (so tokens signed just before a rotation still verify) until `KEEP` newer keys exist.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from server.core import keyfiles

KEEP = 3
ALG = "RS256"


def key_file(data_dir: Path) -> Path:
    return data_dir / "keys" / "idp_jwks.json"


def _new_key() -> dict[str, Any]:
    key = RSAKey.generate_key(2048, parameters={"alg": ALG, "use": "sig"}, auto_kid=True)
    data: dict[str, Any] = dict(key.as_dict(private=True))
    data["iat"] = int(time.time())
    return data


def _encoded(keys: list[dict[str, Any]]) -> bytes:
    return json.dumps({"keys": keys}).encode()


def _read(path: Path) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = json.loads(path.read_text())["keys"]
    return keys


def load_or_create(path: Path) -> list[dict[str, Any]]:
    # Nodes sharing a data dir may start together: the first to create the file decides the key.
    if not path.exists():
        keyfiles.create_once(path, _encoded([_new_key()]))
    keys = _read(path)
    if not keys:
        keys = [_new_key()]
        keyfiles.replace(path, _encoded(keys))
    return keys


def rotate(path: Path) -> str:
    """Add a new signing key in front; returns its kid."""
    keys = [_new_key(), *load_or_create(path)][:KEEP]
    keyfiles.replace(path, _encoded(keys))
    return str(keys[0]["kid"])


class SigningKeys:
    """The key file, parsed once per change (importing an RSA private key is slow) and re-checked every second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1.0
        self._checked = 0.0
        self._keys: list[dict[str, Any]] = []
        self._current: RSAKey | None = None
        self._public: dict[str, Any] = {"keys": []}
        self.reload()

    def reload(self) -> None:
        """Pick up a rotation done by `brygga idp rotate-keys` while the server runs."""
        now = time.monotonic()
        if self._current is not None and now - self._checked < 1.0:
            return
        self._checked = now
        if not self.path.exists() or self.path.stat().st_mtime != self._mtime:
            self._keys = load_or_create(self.path)
            self._mtime = self.path.stat().st_mtime
            self._current = RSAKey.import_key(self._keys[0])
            public = []
            for data in self._keys:
                item = dict(RSAKey.import_key(data).as_dict(private=False))
                item.pop("iat", None)
                item.update({"kid": data["kid"], "alg": ALG, "use": "sig"})
                public.append(item)
            self._public = {"keys": public}

    @property
    def current(self) -> RSAKey:
        self.reload()
        assert self._current is not None
        return self._current

    @property
    def kid(self) -> str:
        self.reload()
        return str(self._keys[0]["kid"])

    def public_jwks(self) -> dict[str, Any]:
        self.reload()
        return self._public

    def verification_keys(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())  # type: ignore[arg-type]
