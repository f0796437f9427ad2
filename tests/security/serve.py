"""A real `brygga serve` process for the security tests (SQLite in a temporary dir, on a free port)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests.conftest import free_port


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server on a free port (BRYGGA_PORT) with its own data dir, no PostgreSQL/Redis."""
    port = free_port()
    env = {
        **os.environ,
        "BRYGGA_DATA_DIR": str(data_dir),
        "BRYGGA_PORT": str(port),
        "BRYGGA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "BRYGGA_LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("BRYGGA_DATABASE_URL", None)
    env.pop("BRYGGA_REDIS_URL", None)
    return env


@contextmanager
def serving(env: dict[str, str], log: IO[bytes] | int = subprocess.DEVNULL) -> Iterator[str]:
    """`brygga serve` until the block ends; yields its base URL once /readyz answers."""
    base = env["BRYGGA_PUBLIC_BASE_URL"]
    server = subprocess.Popen([sys.executable, "-m", "server", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)
