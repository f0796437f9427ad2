"""`brygga seed-demo` demo users and the identity CLI, as an operator uses them."""

from __future__ import annotations

import os
import subprocess
import sys

from server.identity.demo import DEMO_PASSWORD, USERS
from tests.identity.helpers import login_via_forms, start_live


def brygga(data_dir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRYGGA_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "server", *args], env=env, capture_output=True, text=True, timeout=60)


async def test_demo_users_can_log_in_with_the_printed_instructions(tmp_path):
    data_dir = tmp_path / "data"
    assert brygga(data_dir, "migrate").returncode == 0
    first = brygga(data_dir, "seed-demo")
    assert first.returncode == 0, first.stderr
    assert DEMO_PASSWORD in first.stdout and "sjukskoterska" in first.stdout and "pyotp" in first.stdout
    again = brygga(data_dir, "seed-demo")
    assert again.returncode == 0 and again.stdout == first.stdout  # idempotent

    live = await start_live(data_dir)
    try:
        nurse = next(user for user in USERS if user.login == "sjukskoterska")
        done = await login_via_forms(live.client, "sjukskoterska", DEMO_PASSWORD, secret=nurse.totp_secret)
        assert done.status == 302
        me = await (await live.client.get("/api/v1/me")).json()
        assert me["display_name"] == "Sara Sjöberg"
        assert [unit["unit_name"] for unit in me["units"]] == ["Avdelning 52, Medicinkliniken, Södersjukhuset"]
    finally:
        await live.client.close()
    listed = brygga(data_dir, "user", "list").stdout
    assert "granskare" in listed and "auditor" in listed and "directory_admin" in listed


async def test_user_password_logout_and_token_commands(tmp_path):
    data_dir = tmp_path / "data"
    assert brygga(data_dir, "migrate").returncode == 0
    created = brygga(data_dir, "user", "create", "--login", "gun", "--name", "Gun Ek")
    assert created.returncode == 0 and "One-time password:" in created.stdout
    token = brygga(data_dir, "token", "create", "--user", "gun").stdout.strip()
    assert token.startswith("bry_")
    listed = brygga(data_dir, "token", "list", "--user", "gun").stdout
    assert token not in listed and "cli" in listed
    token_id = listed.split()[0]
    assert brygga(data_dir, "token", "revoke", "--id", token_id).returncode == 0
    assert "revoked" in brygga(data_dir, "token", "list", "--user", "gun").stdout
    changed = brygga(data_dir, "user", "password", "--login", "gun", "--password", "ett-nytt-langt-losen")
    assert changed.returncode == 0, changed.stderr
    client = brygga(
        data_dir, "idp", "client", "--client-id", "app", "--redirect-uri", "https://app.example/cb", "--confidential"
    )
    assert client.returncode == 0 and "Client secret (shown once):" in client.stdout
