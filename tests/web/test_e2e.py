"""Issue 7, acceptance 1: a ward nurse and a municipal officer, in two browsers, coordinate a discharge.

The nurse (desktop) finds the municipal unit in the directory, starts a conversation and sends an
urgent message with an attachment; the officer (phone) sees it arrive live, claims and acknowledges
it; the nurse sees "Kvitterat av Olle Berg". The nurse's page is reloaded while the message is in
flight (committed on the server, its ack not yet received): nothing is lost and nothing doubles.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.web.conftest import Demo, login
from tests.web.support import (
    DESKTOP,
    PHONE,
    ConsoleErrors,
    assert_accessible,
    assert_no_horizontal_scroll,
    screenshot,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PDF = b"%PDF-1.4\n% Brygga test: epikris (invented)\n" + b"0" * 200_000 + b"\n%%EOF\n"
TEXT = "Patienten (ärende ARENDE-1234) är utskrivningsklar fredag 10:00. Behöver hemtjänst från fredag kväll."

# Records desktop notifications instead of showing them (a spy on the browser API, not on Brygga).
NOTIFICATION_SPY = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) { window.__notes.push({title, body: (options || {}).body || ''}); }
  static get permission() { return 'granted'; }
  static requestPermission() { return Promise.resolve('granted'); }
};
"""

OUTBOX = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open('brygga');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const request = open.result.transaction('outbox').objectStore('outbox').getAll();
    request.onsuccess = () => resolve(request.result.map(e => ({client_id: e.client_id, body: e.body,
      uploaded: e.files.map(f => !!f.attachment)})));
  };
})"""

# socket.io ack frame of message:send: engine.io "4" + socket.io ACK "3" + id + [{"ok":true,"message":...}]
SEND_ACK = re.compile(r'^43\d+\[\{"ok":true,"message":')


async def outbox(page: Any) -> list[dict[str, Any]]:
    return await page.evaluate(OUTBOX)


async def wait_until(predicate: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_nurse_and_officer_coordinate_a_discharge(demo: Demo, browser):
    nurse_context = await browser.new_context(viewport=DESKTOP, locale="sv-SE", timezone_id="Europe/Stockholm")
    officer_context = await browser.new_context(viewport=PHONE, locale="sv-SE", timezone_id="Europe/Stockholm")
    await officer_context.add_init_script(NOTIFICATION_SPY)
    nurse = await nurse_context.new_page()
    officer = await officer_context.new_page()
    nurse_errors = ConsoleErrors().attach(nurse)
    officer_errors = ConsoleErrors().attach(officer)

    # The nurse's socket.io traffic passes through a relay that withholds the first message:send ack,
    # as if the connection broke right after the server committed the message.
    withheld: list[str] = []

    def relay(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and SEND_ACK.match(message) and not withheld:
                withheld.append(message)
                return
            ws.send(message)

        server.on_message(from_server)
        ws.on_message(lambda message: server.send(message))

    await nurse.route_web_socket(re.compile(r".*/socket\.io/.*"), relay)

    # Uploads are slowed down so the progress bar can be seen.
    async def slow_upload(route: Any) -> None:
        await asyncio.sleep(1.5)
        await route.continue_()

    await nurse.route(re.compile(r".*/api/v1/conversations/[^/]+/attachments$"), slow_upload)

    # 1. Both log in through the real login (built-in OIDC provider, password + TOTP).
    await login(nurse, demo, demo.nurse)
    await login(officer, demo, demo.officer)
    await officer.get_by_role("heading", name="Inkorg").wait_for()
    await assert_accessible(officer, "the inbox (phone)")

    # 2. The nurse finds the municipal unit in the directory, typing as she searches (accent-free).
    await nurse.get_by_role("link", name="Katalog").click()
    search = nurse.get_by_label("Sök enhet")
    await search.press_sequentially("bistandsenh nacka", delay=30)
    result = nurse.get_by_test_id("unit-results").get_by_role("link", name="Biståndsenheten Nacka")
    await result.wait_for()
    assert await search.input_value() == "bistandsenh nacka"  # no keystroke lost to a focus change
    await assert_accessible(nurse, "the directory search")
    await screenshot(nurse, "directory")
    await result.click()
    await nurse.get_by_role("heading", name="Biståndsenheten Nacka").wait_for()
    await nurse.get_by_test_id("reachability").wait_for()
    assert "08-718 80 00" in await nurse.get_by_role("table").inner_text()
    await assert_accessible(nurse, "the unit page")
    await screenshot(nurse, "unit")

    # 3. She starts a conversation from the unit page.
    await nurse.get_by_role("button", name="Starta konversation").first.click()
    await nurse.get_by_label("Ämne").fill("Utskrivning fredag – behov av hemtjänst")
    await nurse.get_by_label("Ärendereferens (pseudonym, aldrig personnummer)").fill("ARENDE-1234")
    await nurse.locator("form").get_by_role("button", name="Starta konversation").click()
    await nurse.get_by_role("heading", name="Utskrivning fredag – behov av hemtjänst").wait_for()
    conversation_id = nurse.url.rsplit("/", 1)[1]

    # 4. An urgent message with an attachment; the upload shows a progress bar.
    await nurse.get_by_label("Meddelande", exact=True).fill(TEXT)
    await nurse.get_by_label("Brådskande").check()
    await nurse.get_by_label("Bifoga fil").set_input_files(
        files=[{"name": "epikris.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await nurse.get_by_role("button", name="Skicka").click()
    await nurse.get_by_role("progressbar", name="Laddar upp epikris.pdf").wait_for(timeout=5_000)
    pending = await outbox(nurse)
    assert [entry["body"] for entry in pending] == [TEXT]  # persisted before anything was sent
    client_id = pending[0]["client_id"]

    # 5. The officer sees it arrive live in the inbox, urgent first, with a notification without text.
    item = officer.get_by_test_id("conversation-item").filter(has_text="Utskrivning fredag")
    await item.wait_for(timeout=15_000)
    await item.get_by_text("Brådskande").wait_for()
    await wait_until(lambda: officer.evaluate("window.__notes.length > 0"), what="a desktop notification")
    notes = await officer.evaluate("window.__notes")
    assert notes[0]["body"] == "Nytt meddelande i Biståndsenheten Nacka"
    assert all(TEXT[:20] not in note["body"] + note["title"] for note in notes)
    await assert_accessible(officer, "the inbox with a new urgent conversation (phone)")
    await assert_no_horizontal_scroll(officer, "the inbox (phone)")
    await screenshot(officer, "inbox")

    # 6. The server committed the message but the nurse never got the ack: reload now.
    async def ack_withheld() -> bool:
        return bool(withheld)

    await wait_until(ack_withheld, what="the withheld message:send ack")
    still = await outbox(nurse)
    assert [entry["client_id"] for entry in still] == [client_id] and still[0]["uploaded"] == [True]
    await nurse.reload()
    await nurse.get_by_role("heading", name="Utskrivning fredag – behov av hemtjänst").wait_for()

    async def outbox_empty() -> bool:
        return await outbox(nurse) == []

    await wait_until(outbox_empty, what="the outbox to be resent and acked after the reload")
    mine = nurse.get_by_test_id("message").filter(has_text="utskrivningsklar fredag")
    await mine.wait_for()
    assert await mine.count() == 1
    stored = await (await nurse.request.get(demo.url(f"/api/v1/conversations/{conversation_id}/messages"))).json()
    assert [m["client_id"] for m in stored["items"] if m["body"] == TEXT] == [client_id]  # exactly once

    # 7. The officer opens it, sees the attachment, types, claims and acknowledges.
    await item.get_by_role("link").click()
    message = officer.get_by_test_id("message").filter(has_text="utskrivningsklar fredag")
    await message.wait_for()
    await message.get_by_text("Brådskande").wait_for()
    link = message.get_by_role("link", name="epikris.pdf")
    download = await officer.request.get(demo.url(await link.get_attribute("href")))
    assert download.status == 200 and await download.body() == PDF
    await officer.get_by_label("Meddelande", exact=True).press_sequentially("Vi", delay=50)
    await nurse.get_by_test_id("typing").filter(has_text="Olle Berg skriver").wait_for(timeout=10_000)
    await message.get_by_role("button", name="Jag tar detta").click()
    await nurse.get_by_test_id("claimed").filter(has_text="Tas om hand av Olle Berg").wait_for(timeout=10_000)
    await assert_accessible(officer, "the conversation (phone)")
    await assert_no_horizontal_scroll(officer, "the conversation (phone)")
    await message.get_by_role("button", name="Kvittera").click()

    # 8. The nurse sees who acknowledged, live.
    receipt = nurse.get_by_test_id("receipt").filter(has_text="Kvitterat av Olle Berg")
    await receipt.wait_for(timeout=10_000)
    assert "Biståndsenheten Nacka" in await receipt.inner_text()
    await message.get_by_test_id("receipt").filter(has_text="Kvitterat av Olle Berg").wait_for()
    assert await message.get_by_role("button", name="Kvittera").count() == 0
    await assert_accessible(nurse, "the conversation (desktop)")
    await screenshot(nurse, "conversation")

    assert nurse_errors.real() == [] and officer_errors.real() == []
    await nurse_context.close()
    await officer_context.close()
