"""Serve the built web client: index.html at `/`, hashed assets under /assets (cached immutably)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

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
