"""Operational endpoints: /healthz, /readyz, /metrics, /api/openapi.json and /api/docs."""

from __future__ import annotations

import hmac
import html
import logging
from typing import Any, Literal

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from server import __version__
from server.core.api import ApiRouter
from server.core.context import ctx_of
from server.core.errors import Problem
from server.core.http import METRICS

log = logging.getLogger("brygga.health")

api = ApiRouter()

OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]


@api.route("GET", "/healthz", summary="Process is up", tags=["operations"], response=Health, security="public")
async def healthz(request: web.Request) -> Health:
    return Health(status="ok", version=__version__)


@api.route(
    "GET",
    "/readyz",
    summary="Database is reachable and takes writes (503 `not_ready` or `storage_full` otherwise)",
    tags=["operations"],
    response=Readiness,
    security="public",
    errors=(503,),
)
async def readyz(request: web.Request) -> Readiness:
    db = ctx_of(request).db
    try:
        await db.ping()
    except Exception as exc:
        log.warning("database not reachable", extra={"error": type(exc).__name__})
        raise Problem("not_ready", "The database is not reachable; check BRYGGA_DATABASE_URL.", status=503) from None
    if not await db.probe_storage():
        raise Problem("storage_full", "The database's storage is full: writes fail; free space.", status=503)
    return Readiness(status="ready", database="ok")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text, only with `Authorization: Bearer <BRYGGA_METRICS_TOKEN>`; without a token set it is off.

    Route names, statuses and timings tell an outsider what the server does and how loaded it is."""
    expected = ctx_of(request).settings.metrics_token
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), expected.encode()):
        raise web.HTTPNotFound()
    registry = request.app[METRICS].registry
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_KEY])


def _docs_html(spec: dict[str, Any]) -> str:
    """A script-free, readable rendering of the OpenAPI document (works under the strict CSP)."""
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            auth = "public" if op.get("security") == [] else "login or token"
            statuses = ", ".join(op["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td><td>{auth}</td><td>{statuses}</td></tr>"
            )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Brygga API</title>"
        "<link rel='stylesheet' href='/api/docs.css'></head><body><main>"
        f"<h1>Brygga API {html.escape(spec['info']['version'])}</h1>"
        f"<p>{html.escape(spec['info']['description'])}</p>"
        "<p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a> (OpenAPI 3.1). "
        "Errors are RFC 9457 problem JSON with a stable <code>code</code>. Realtime events: docs/realtime.md.</p>"
        "<table><thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Auth</th><th>Statuses</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></main></body></html>"
    )


DOCS_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}"
    "code{font-size:.95em}th{background:#f0f3f6}"
)


async def api_docs(request: web.Request) -> web.Response:
    return web.Response(text=_docs_html(request.app[OPENAPI_KEY]), content_type="text/html")


async def api_docs_css(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_CSS, content_type="text/css")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/docs", api_docs)
    app.router.add_get("/api/docs.css", api_docs_css)
