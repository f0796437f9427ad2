"""The HTTP basics a user or operator checks: health, readiness, metrics, errors, headers, OpenAPI."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from server.core.context import CTX
from tests.conftest import bearer, free_port


async def test_health_and_readiness(client):
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "ready", "database": "ok"}


async def test_readyz_reports_unreachable_database(client, ctx):
    from server.core.db import Database

    working = ctx.db
    ctx.db = Database(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/nothing")  # nothing listens there
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["code"] == "not_ready"
    assert "BRYGGA_DATABASE_URL" in body["detail"]
    await ctx.db.close()
    ctx.db = working


async def test_openapi_is_valid_31_and_lists_operations(client):
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert "/healthz" in spec["paths"]
    assert "post" in spec["paths"]["/api/v1/tokens"]
    assert spec["paths"]["/api/v1/tokens"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]


async def test_docs_page_is_readable_html(client):
    response = await client.get("/api/docs")
    assert response.status == 200
    text = await response.text()
    assert "<table>" in text and "/api/v1/tokens" in text
    assert "<script" not in text


async def test_metrics_prometheus_text(client):
    client.app[CTX].settings.metrics_token = "scrape-secret"
    await client.get("/healthz")
    response = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status == 200
    text = await response.text()
    assert 'brygga_http_requests_total{method="GET",route="/healthz",status="200"}' in text


@pytest.mark.parametrize(
    ("method", "path", "data", "headers", "status", "code"),
    [
        ("POST", "/api/v1/anything", "{bad", {"Content-Type": "application/json"}, 404, "not_found"),
        ("DELETE", "/healthz", None, {}, 405, "method_not_allowed"),
        ("GET", "/no/such/page", None, {}, 404, "not_found"),
        ("POST", "/api/v1/tokens", "{bad", {"Content-Type": "application/json"}, 401, "unauthorized"),
    ],
)
async def test_bad_requests_get_problem_json(client, method, path, data, headers, status, code):
    response = await client.request(method, path, data=data, headers=headers)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:brygga:problem:{code}"
    assert body["detail"]


async def test_malformed_json_and_validation_errors(client, actors):
    _, token = await actors.user("anna")
    bad_json = await client.post(
        "/api/v1/tokens", data="{bad", headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert bad_json.status == 400
    assert (await bad_json.json())["code"] == "malformed_json"

    wrong_type = await client.post("/api/v1/tokens", json={"name": 12, "ttl_hours": "x"}, headers=bearer(token))
    assert wrong_type.status == 422
    body = await wrong_type.json()
    assert body["code"] == "validation_error"
    assert {tuple(error["loc"]) for error in body["errors"]} == {("name",), ("ttl_hours",)}

    wrong_media = await client.post(
        "/api/v1/tokens", data="name=x", headers={**bearer(token), "Content-Type": "text/plain"}
    )
    assert wrong_media.status == 415


async def test_oversized_body_is_413_problem(client, actors):
    _, token = await actors.user("bo")
    huge = json.dumps({"name": "x" * (2 * 1024 * 1024)})
    response = await client.post(
        "/api/v1/tokens", data=huge, headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"


async def test_security_headers_everywhere(client):
    for path in ("/", "/healthz", "/no-such"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in response.headers  # plain http in tests
    api = await client.get("/healthz")
    assert api.headers["Cache-Control"] == "no-store"


async def test_hsts_when_public_url_is_https(migrated):
    from aiohttp.test_utils import TestClient, TestServer

    from server.app import create_app

    migrated.public_base_url = "https://brygga.example"
    async with TestClient(TestServer(create_app(migrated))) as https_client:
        response = await https_client.get("/healthz")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_request_log_has_route_template_not_values(client, actors, caplog):
    _, token = await actors.user("cilla")
    caplog.set_level("INFO", logger="brygga.http")
    await client.delete("/api/v1/tokens/3f1c1f7e-0000-4000-8000-000000000000", headers=bearer(token))
    records = [record for record in caplog.records if record.name == "brygga.http"]
    assert records[-1].route == "/api/v1/tokens/{token_id}"
    assert records[-1].status == 404
    assert token not in caplog.text
    assert "3f1c1f7e" not in caplog.text


async def test_database_conflict_is_409_problem_not_500(client, actors):
    """A uniqueness rule enforced only by the database (here: a duplicate HSA-id) answers 409."""
    _, token = await actors.user("olof", roles=["directory_admin"])
    body = {"kind": "private", "name": "Vård AB", "hsa_id": "SE5566778899-VARD1"}
    first = await client.post("/api/v1/organisations", json=body, headers=bearer(token))
    assert first.status == 201, await first.text()
    second = await client.post("/api/v1/organisations", json={**body, "name": "Annan AB"}, headers=bearer(token))
    assert second.status == 409
    assert (await second.json())["code"] in ("conflict", "hsa_id_taken")
