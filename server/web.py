"""Serve the built web client: index.html at `/`, hashed assets under /assets (cached immutably), and the
unhashed files an installable web app needs at fixed addresses: /favicon.ico, /manifest.webmanifest and
/icons/* (from client_web/public; server/core/http.py caches them for a day)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.core.http import Handler

NOT_BUILT = (
    "<!doctype html><html lang='sv'><head><meta charset='utf-8'><title>Brygga</title></head>"
    "<body><h1>Brygga</h1><p>Webbklienten är inte byggd. Kör <code>make run</code>.</p>"
    "<p lang='en'>The web client is not built. Run <code>make run</code>.</p></body></html>"
)


def setup_web(app: web.Application, dist: Path) -> None:
    index = dist / "index.html"

    async def serve_index(request: web.Request) -> web.StreamResponse:
        if not index.is_file():
            return web.Response(text=NOT_BUILT, content_type="text/html")
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/", serve_index)
    if (dist / "assets").is_dir():
        app.router.add_static("/assets", dist / "assets")
    for name, content_type in FIXED_FILES.items():
        if (dist / name).is_file():
            app.router.add_get(f"/{name}", fixed_file(dist / name, content_type))
    if (dist / "icons").is_dir():
        app.router.add_static("/icons", dist / "icons", append_version=False)


FIXED_FILES = {"favicon.ico": "image/x-icon", "manifest.webmanifest": "application/manifest+json"}


def fixed_file(path: Path, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": content_type})

    return serve
