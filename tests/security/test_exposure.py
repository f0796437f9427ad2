"""What the server shows an outsider (issue 15, item 12): metrics, version headers, where scripts may connect."""

from __future__ import annotations

from server.core.context import CTX


async def test_metrics_need_the_token_and_are_off_without_one(client):
    assert (await client.get("/metrics")).status == 404  # no token configured: off
    client.app[CTX].settings.metrics_token = "scrape-secret"
    assert (await client.get("/metrics")).status == 404
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 404
    scraped = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert scraped.status == 200 and "brygga_http_requests_total" in await scraped.text()


async def test_no_server_versions_and_scripts_connect_only_to_the_own_origin(client):
    for path in ("/healthz", "/no/such/page", "/api/openapi.json", "/socket.io/?EIO=4&transport=polling"):
        response = await client.get(path, headers={"Origin": "http://127.0.0.1"})
        server = response.headers.get("Server", "")
        assert "Python" not in server and "aiohttp" not in server, (path, server)
    policy = (await client.get("/")).headers["Content-Security-Policy"]
    connect = next(part.strip() for part in policy.split(";") if part.strip().startswith("connect-src"))
    assert connect == "connect-src 'self'"


def test_the_shipped_nginx_does_not_expose_metrics():
    from pathlib import Path

    template = (Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "brygga.conf.template").read_text()
    assert "location = /metrics {\n        return 404;" in template
