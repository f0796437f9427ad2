"""The `brygga` command line as an operator uses it."""

from __future__ import annotations

import os
import subprocess
import sys

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from tests.conftest import bearer


def brygga(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRYGGA_DATA_DIR": str(settings.data_dir)}
    return subprocess.run([sys.executable, "-m", "server", *args], env=env, capture_output=True, text=True, timeout=60)


def test_help_explains_commands(settings):
    result = brygga(settings, "--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "seed-demo", "user", "token"):
        assert command in result.stdout


async def test_user_and_token_from_cli_work_on_the_api(settings):
    assert brygga(settings, "migrate").returncode == 0
    created = brygga(settings, "user", "create", "--login", "frida", "--name", "Frida Ek")
    assert created.returncode == 0, created.stderr
    duplicate = brygga(settings, "user", "create", "--login", "frida", "--name", "Frida Ek")
    assert duplicate.returncode == 2
    assert "already taken" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    bad_ttl = brygga(settings, "token", "create", "--user", "frida", "--ttl", "soon")
    assert bad_ttl.returncode == 2 and "30m" in bad_ttl.stderr
    token = brygga(settings, "token", "create", "--user", "frida", "--ttl", "1h").stdout.strip()
    assert token.startswith("bry_")

    async with TestClient(TestServer(create_app(settings))) as client:
        me = await client.get("/api/v1/me", headers=bearer(token))
        assert me.status == 200
        assert (await me.json())["display_name"] == "Frida Ek"
        assert brygga(settings, "user", "disable", "--login", "frida").returncode == 0
        refused = await client.get("/api/v1/me", headers=bearer(token))
        assert refused.status == 401
