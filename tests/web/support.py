"""Helpers for the web-client browser tests: viewports, axe-core, screenshots, console capture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


class ConsoleErrors(list[str]):
    """Collects console errors and uncaught exceptions of a page (CSP violations show up here)."""

    def attach(self, page: Any) -> ConsoleErrors:
        page.on("console", lambda message: self.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: self.append(str(exc)))
        return self

    def real(self) -> list[str]:
        """Script errors and CSP violations; failed requests (401 after logout, offline) are network noise."""
        noise = ("Failed to load resource", "WebSocket connection to", "net::ERR_INTERNET_DISCONNECTED")
        return [text for text in self if not any(part in text for part in noise)]


async def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core (npm, injected from tests/node) on the current page; return serious/critical violations."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # page.add_script_tag(path=...) inlines the file, which the strict CSP (script-src 'self') rightly
        # blocks; evaluating the same npm file through DevTools is not subject to the page's CSP.
        await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;void 0")
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }"""
    )
    return [violation for violation in result if violation["impact"] in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=2, ensure_ascii=False)


async def assert_accessible(page: Any, where: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], f"axe-core found serious/critical violations on {where}:\n{describe(violations)}"


async def assert_no_horizontal_scroll(page: Any, where: str) -> None:
    """Responsive check: the page does not need sideways scrolling at this viewport."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{where} scrolls sideways by {overflow}px at this viewport"


async def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path
