"""The client's API types are generated from the server's OpenAPI document and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_client_api_types_match_the_servers_openapi_document() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api_types.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
