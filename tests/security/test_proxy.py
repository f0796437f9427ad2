"""Behind a reverse proxy (issue 15, item 8): rate limits and the audit log see the client, not the proxy;
forwarding headers count only from `BRYGGA_TRUSTED_PROXIES`. The last test runs the real nginx of
deploy/local-cluster in front of two nodes."""

from __future__ import annotations

import os
import shutil
import ssl
import sys
import tempfile
import uuid

import aiohttp
import pytest
from sqlalchemy import select

from server.core.context import CTX
from server.core.db import Database
from server.core.models import AuditEvent
from server.identity import service
from tests.conftest import PG_ADMIN_URL, bearer, free_port, port_open, require_service

REDEEM = {"link": "x" * 30, "name": "Gunnar", "code": "123456"}


async def redeem_statuses(client, forwarded_for: str, times: int) -> list[int]:
    statuses = []
    for _ in range(times):
        headers = {"X-Forwarded-For": forwarded_for}
        response = await client.post("/api/v1/guest-links/redeem", json=REDEEM, headers=headers)
        statuses.append(response.status)
    return statuses


async def test_forwarded_client_addresses_count_only_from_trusted_proxies(client):
    # Not configured: the header is the client's word, ignored; every "client" is the one socket peer.
    assert (await redeem_statuses(client, "203.0.113.1", 10))[-1] != 429
    assert await redeem_statuses(client, "203.0.113.2", 1) == [429]

    # The proxy is trusted: one attacker no longer blocks everybody behind it.
    client.app[CTX].settings.trusted_proxies = ["127.0.0.1/32"]
    assert (await redeem_statuses(client, "198.51.100.1", 10))[-1] != 429
    assert await redeem_statuses(client, "198.51.100.1", 1) == [429]
    assert await redeem_statuses(client, "10.9.9.9, 198.51.100.2", 1) != [429]  # the rightmost untrusted hop


async def audited_ip(ctx) -> str | None:
    async with ctx.db.transaction() as session:
        query = select(AuditEvent).where(AuditEvent.action.like("audit.%")).order_by(AuditEvent.seq.desc())
        row = (await session.execute(query)).scalars().first()
        return row.ip if row else None


async def test_the_audit_log_records_the_client_behind_the_proxy(client, actors):
    ctx = client.app[CTX]
    _, token = await actors.user("revisor", roles=["auditor"])
    ctx.settings.trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8"]
    cases = [
        ({"X-Forwarded-For": "192.0.2.44"}, "192.0.2.44"),
        ({"X-Forwarded-For": "192.0.2.44, 10.1.2.3"}, "192.0.2.44"),  # through two trusted proxies
        ({"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}, "2001:db8::7"),
        ({"X-Forwarded-For": "not-an-address"}, "127.0.0.1"),
    ]
    for headers, expected in cases:
        response = await client.post(
            "/api/v1/audit/access-log", json={"case_ref": "case-1"}, headers={**bearer(token), **headers}
        )
        assert response.status == 200, await response.text()
        assert await audited_ip(ctx) == expected, headers


@pytest.mark.slow
async def test_behind_the_real_nginx_of_local_cluster():
    from tests.ops.test_local_cluster import cluster, node_logs

    require_service(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    require_service(shutil.which("redis-server") is not None, "redis-server (Debian package)")
    require_service(shutil.which("nginx") is not None, "nginx (Debian package nginx-light)")
    port_a, port_b, redis_port, nginx_port = free_port(), free_port(), free_port(), free_port()
    state = tempfile.mkdtemp(prefix="brygga-proxy-")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "BRYGGA_CLUSTER_DIR": state,
        "BRYGGA_CLUSTER_PG_ADMIN": PG_ADMIN_URL,
        "BRYGGA_CLUSTER_DB": f"brygga_px_{uuid.uuid4().hex[:10]}",
        "BRYGGA_CLUSTER_PORTS": f"{port_a} {port_b}",
        "BRYGGA_CLUSTER_REDIS_PORT": str(redis_port),
        "BRYGGA_CLUSTER_NGINX_PORT": str(nginx_port),
    }
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # the dev certificate is self-signed
    try:
        started = cluster(env, "start")
        assert started.returncode == 0, started.stdout + started.stderr + node_logs(state)
        values = dict(line.split("=", 1) for line in cluster(env, "env").stdout.split())
        front = values["BRYGGA_FRONT"]
        database_url = values["BRYGGA_DATABASE_URL"]

        def through_nginx(source: str) -> aiohttp.ClientSession:
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0), ssl=tls))

        async with through_nginx("127.0.0.2") as attacker, through_nginx("127.0.0.3") as guest:
            # The attacker exhausts the per-address redeem limit (10 a minute), forging a header too.
            statuses = []
            for _ in range(12):
                async with attacker.post(
                    f"{front}/api/v1/guest-links/redeem", json=REDEEM, headers={"X-Forwarded-For": "203.0.113.9"}
                ) as response:
                    statuses.append(response.status)
            assert 429 in statuses
            # A guest at another address is not blocked by it.
            async with guest.post(f"{front}/api/v1/guest-links/redeem", json=REDEEM) as response:
                assert response.status != 429
            # nginx never forwards /metrics.
            async with guest.get(f"{front}/metrics") as response:
                assert response.status == 404

            # The audit log records the client's address, not nginx's (and not the forged header).
            database = Database(database_url)
            async with database.transaction() as session:
                auditor = await service.create_local_user(session, "revisor", "Revisor", roles=["auditor"])
                token = await service.create_token_for(session, auditor, "test", None)
            async with attacker.post(
                f"{front}/api/v1/audit/access-log",
                json={"case_ref": "case-1"},
                headers={**bearer(token), "X-Forwarded-For": "203.0.113.9"},
            ) as response:
                assert response.status == 200, await response.text()
        try:
            async with database.transaction() as session:
                query = select(AuditEvent.ip).where(AuditEvent.action.like("audit.%"))
                ips = (await session.execute(query)).scalars().all()
        finally:
            await database.close()
        assert ips and set(ips) == {"127.0.0.2"}
    finally:
        stopped = cluster(env, "stop", "--drop")
        shutil.rmtree(state, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
