"""Render the web client's icons from client_web/public/icons/icon.svg with Debian's Chromium.

Writes icon-192.png, icon-512.png, icon-maskable-512.png (full-bleed square, artwork inside the 80 % safe
zone), apple-touch-icon.png (180 px) and favicon.ico (16/32/48 px PNG frames). Run after changing the SVG:
`.venv/bin/python scripts/make_icons.py`; the files are committed (Vite copies public/ into dist/).
"""

from __future__ import annotations

import asyncio
import base64
import struct
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "client_web" / "public"
ICONS = PUBLIC / "icons"
CHROMIUM = "/usr/lib/chromium/chromium"


def maskable(svg: str) -> str:
    """Square background to the edges, the artwork scaled to 80 % around the centre."""
    inner = svg.split(">", 1)[1].rsplit("</svg>", 1)[0]
    background, artwork = inner.split("/>", 1)
    background = background.replace(' rx="96"', "") + "/>"
    scaled = f'<g transform="translate(51.2 51.2) scale(0.8)">{artwork}</g>'
    return svg.split(">", 1)[0] + ">" + background + scaled + "</svg>"


async def render(page, svg: str, size: int) -> bytes:
    data = base64.b64encode(svg.encode()).decode()
    await page.set_viewport_size({"width": size, "height": size})
    await page.set_content(
        f'<html><body style="margin:0;background:transparent">'
        f'<img src="data:image/svg+xml;base64,{data}" width="{size}" height="{size}" style="display:block">'
        "</body></html>"
    )
    return await page.screenshot(omit_background=True, clip={"x": 0, "y": 0, "width": size, "height": size})


def ico(frames: dict[int, bytes]) -> bytes:
    """An .ico whose frames are PNG images (every browser and Windows since Vista read them)."""
    header = struct.pack("<HHH", 0, 1, len(frames))
    offset = len(header) + 16 * len(frames)
    entries, payload = b"", b""
    for size, png in frames.items():
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset + len(payload))
        payload += png
    return header + entries + payload


async def main() -> None:
    svg = (ICONS / "icon.svg").read_text()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page()
        for size in (192, 512):
            (ICONS / f"icon-{size}.png").write_bytes(await render(page, svg, size))
        (ICONS / "icon-maskable-512.png").write_bytes(await render(page, maskable(svg), 512))
        (ICONS / "apple-touch-icon.png").write_bytes(await render(page, maskable(svg), 180))
        (PUBLIC / "favicon.ico").write_bytes(ico({size: await render(page, svg, size) for size in (16, 32, 48)}))
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
