"""Identity figures: session-authenticated request latency, single sign-on login round trip, and the
time from a provider logout to the user's socket.io connection being dropped (target < 2 s).

Run: .venv/bin/python bench/identity.py  (SQLite in a temporary directory, built-in provider)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import socketio
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.identity.helpers import csrf, local_user, login_via_forms, login_with_provider_session, start_live


def summary(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name:48} n={len(samples):4}  p50={statistics.median(ordered) * 1000:7.1f} ms  p99={p99 * 1000:7.1f} ms")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        live = await start_live(Path(tmp) / "data")
        try:
            _, secret = await local_user(live.ctx, "bench")
            browser = live.browser()
            assert (await login_via_forms(browser, "bench", secret=secret)).status == 302

            samples = []
            for _ in range(300):
                started = time.perf_counter()
                async with browser.get("/api/v1/me") as response:
                    assert response.status == 200
                samples.append(time.perf_counter() - started)
            summary("GET /api/v1/me with a session cookie", samples)

            samples = []
            for _ in range(30):
                await browser.post("/api/v1/session/logout", headers=await csrf(browser))
                started = time.perf_counter()
                assert (await login_with_provider_session(browser)).status == 302
                samples.append(time.perf_counter() - started)
            summary("login round trip (provider session, no form)", samples)

            samples = []
            for round_ in range(10):
                user = live.browser()
                _, key = await local_user(live.ctx, f"bench{round_}")
                assert (await login_via_forms(user, f"bench{round_}", secret=key)).status == 302
                cookie = user.session.cookie_jar.filter_cookies(URL(live.base))["brygga_session"].value
                sio = socketio.AsyncClient(reconnection=False)
                dropped = asyncio.Event()
                sio.on("disconnect", lambda *args, event=dropped: event.set())
                await sio.connect(live.base, headers={"Cookie": f"brygga_session={cookie}"}, transports=["websocket"])
                started = time.perf_counter()
                async with user.get("/idp/logout") as response:  # the provider session ends at the provider
                    assert response.status == 200
                await asyncio.wait_for(dropped.wait(), 5)
                samples.append(time.perf_counter() - started)
                await user.close()
            summary("provider logout -> back-channel -> socket dropped", samples)
            await browser.close()
        finally:
            await live.client.close()


if __name__ == "__main__":
    asyncio.run(main())
