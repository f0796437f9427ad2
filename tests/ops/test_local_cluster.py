"""deploy/local-cluster brings up the compose topology on loopback: two nodes on PostgreSQL + a private
Redis (+ nginx with TLS when installed); a revocation on node A drops the user's socket on node B."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import tempfile
import uuid
from pathlib import Path

import aiohttp
import pytest
import socketio

from tests.conftest import PG_ADMIN_URL, bearer, free_port, port_open, require_service
from tests.ops.nodes import user_with_tokens

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "local-cluster"


def cluster(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def node_logs(state: str) -> str:
    """The end of each node's log, for a failure message (the state dir is removed afterwards)."""
    return "".join(f"\n--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(Path(state).glob("node-*.log")))


async def test_local_cluster_two_nodes_share_users_and_socket_rooms():
    require_service(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    require_service(shutil.which("redis-server") is not None, "redis-server (Debian package)")
    port_a, port_b, redis_port, nginx_port = free_port(), free_port(), free_port(), free_port()
    state = tempfile.mkdtemp(prefix="brygga-local-cluster-")  # not tmp_path: pytest runs prune those
    env = {
        **os.environ,
        "BRYGGA_CLUSTER_DIR": state,
        "BRYGGA_CLUSTER_PG_ADMIN": PG_ADMIN_URL,
        "BRYGGA_CLUSTER_DB": f"brygga_lc_{uuid.uuid4().hex[:10]}",
        "BRYGGA_CLUSTER_PORTS": f"{port_a} {port_b}",
        "BRYGGA_CLUSTER_REDIS_PORT": str(redis_port),
        "BRYGGA_CLUSTER_NGINX_PORT": str(nginx_port),
        "BRYGGA_CLUSTER_TURN_PORT": str(free_port()),
    }
    try:
        started = cluster(env, "start")
        assert started.returncode == 0, started.stdout + started.stderr + node_logs(state)
        status = cluster(env, "status")
        assert status.returncode == 0, status.stdout + node_logs(state)
        assert "node-1: running, ready" in status.stdout and "node-2: running, ready" in status.stdout
        values = dict(line.split("=", 1) for line in cluster(env, "env").stdout.split())
        node_a, node_b = values["BRYGGA_NODE_A"], values["BRYGGA_NODE_B"]

        # Redis is private: no password, no access.
        denied = subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True, text=True)
        assert "NOAUTH" in denied.stdout + denied.stderr

        async with aiohttp.ClientSession() as http:
            for url in (node_a, node_b):
                async with http.get(f"{url}/readyz") as ready:
                    assert ready.status == 200

            database_url = values["BRYGGA_DATABASE_URL"]
            _, [(token_id, socket_token), (_, api_token)] = await user_with_tokens(database_url, "maja")
            on_b = socketio.AsyncClient(reconnection=False)
            await on_b.connect(node_b, auth={"token": socket_token}, transports=["websocket"])
            try:
                # Revoked on node A; node B learns it from the identity change feed and drops the socket.
                async with http.delete(f"{node_a}/api/v1/tokens/{token_id}", headers=bearer(api_token)) as revoked:
                    assert revoked.status == 204
                for _ in range(100):
                    if not on_b.connected:
                        break
                    await asyncio.sleep(0.02)
                assert not on_b.connected
            finally:
                if on_b.connected:
                    await on_b.disconnect()

            front = values.get("BRYGGA_FRONT")
            if shutil.which("nginx"):
                assert front == f"https://127.0.0.1:{nginx_port}"
                insecure = ssl.create_default_context()
                insecure.check_hostname = False
                insecure.verify_mode = ssl.CERT_NONE  # self-signed dev certificate
                async with http.get(f"{front}/readyz", ssl=insecure) as ready:
                    assert ready.status == 200
                connector = aiohttp.TCPConnector(ssl=insecure)
                tls_session = aiohttp.ClientSession(connector=connector)
                via_nginx = socketio.AsyncClient(reconnection=False, http_session=tls_session)
                await via_nginx.connect(front, auth={"token": api_token}, transports=["websocket"])
                assert via_nginx.transport() == "websocket"
                await via_nginx.disconnect()
                await tls_session.close()
    finally:
        stopped = cluster(env, "stop", "--drop")
    shutil.rmtree(state, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr
    assert cluster(env, "status").returncode == 1
    for port in (port_a, port_b, redis_port, nginx_port):
        assert not port_open("127.0.0.1", port)
