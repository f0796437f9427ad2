"""Nodes sharing a data dir and starting at the same moment end up with the same keys
(deploy/local-cluster starts both nodes together on a fresh data dir)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.core import keyfiles

# Each child loads (creating if missing) one key file and prints a fingerprint of the key it will use.
LOADERS = {
    "audit signing key": (
        "from server.audit.chain import load_or_create_signing_key, key_id_of;"
        "print(key_id_of(load_or_create_signing_key(d).public_key()))"
    ),
    "key-encryption keys": (
        "from server.core.envelope import KeyRing; print(KeyRing(d / 'kek.json', create=True).active()[1].hex())"
    ),
    "blind-index key": "from server.core.keyfiles import secret; print(secret(d / 'blind-index.key').hex())",
    "identity provider keys": "from auth.keys import load_or_create; print(load_or_create(d / 'jwks.json')[0]['kid'])",
}


@pytest.mark.parametrize("loader", LOADERS)
def test_processes_starting_together_share_one_key(tmp_path: Path, loader: str) -> None:
    for attempt in range(8):
        data_dir = tmp_path / str(attempt)
        code = f"import sys; from pathlib import Path; d = Path(sys.argv[1]); {LOADERS[loader]}"
        children = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        results = [child.communicate(timeout=60) for child in children]
        assert [child.returncode for child in children] == [0, 0, 0], [err[-600:] for _, err in results]
        assert len({out for out, _ in results}) == 1, f"{loader}: the processes use different keys"


def test_create_once_keeps_the_first_content_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k"
    assert keyfiles.create_once(path, b"first")
    assert not keyfiles.create_once(path, b"second")
    assert path.read_bytes() == b"first"
    assert path.stat().st_mode & 0o777 == 0o600
    keyfiles.replace(path, b"third")
    assert path.read_bytes() == b"third" and path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["k"], "temporary files are left behind"
