"""Attacks on the login (issue 15, items 3-5): open redirect after login, username enumeration by
answer or timing, and failed logins used to lock a named clinician out."""

from __future__ import annotations

import re
import statistics
import time

import pytest

from auth.accounts import LOGIN_THROTTLE, LoginThrottle, ThrottlePolicy
from tests.identity.helpers import PASSWORD, form_fields, local_user, login_via_forms, path_of

HOSTILE_RETURN_TO = [
    "/%09/evil.example/x",  # the tab is dropped by browsers: //evil.example
    "/%0A/evil.example",  # newline: also broke the Location header (500)
    "/%0D%0ASet-Cookie:%20a=b",
    "/%5Cevil.example",  # backslash counts as a slash in browsers
    "/%5C%5Cevil.example",
    "//evil.example/",
    "https://evil.example/",
    "/%20/evil.example",
    "/%E2%80%A8/evil.example",  # a Unicode line separator
    "javascript:alert(1)",
]


async def sso_login(browser, start_path: str):
    """Log in again while the provider session is alive; returns the callback's answer."""
    start = await browser.get(start_path, allow_redirects=False)
    authorize = await browser.get(path_of(start.headers["Location"]), allow_redirects=False)
    assert authorize.status == 302, await authorize.text()
    return await browser.get(path_of(authorize.headers["Location"]), allow_redirects=False)


async def test_return_to_stays_on_the_site_and_never_crashes(live):
    _, secret = await local_user(live.ctx, "rita")
    browser = live.browser()
    try:
        first = await login_via_forms(browser, "rita", secret=secret, start_path="/auth/login?return_to=/%23/inbox")
        assert first.status == 302 and first.headers["Location"] == "/#/inbox"  # a same-origin path is kept
        for target in HOSTILE_RETURN_TO:
            answer = await sso_login(browser, f"/auth/login?return_to={target}")
            assert answer.status == 302, (target, answer.status)
            assert answer.headers["Location"] == "/", target
            assert "Set-Cookie: a" not in str(answer.headers)
    finally:
        await browser.close()


def throttle(live, **policy) -> None:
    live.ctx.provide(LOGIN_THROTTLE, LoginThrottle(ThrottlePolicy(**policy)))


def message(html: str) -> str:
    found = re.search(r"data-testid='login-error'>([^<]*)<", html)
    return found.group(1) if found else ""


async def attempt(browser, login: str, password: str, code: str = "123456"):
    """One form post on a fresh login page; returns (status, error message, seconds taken)."""
    start = await browser.get("/auth/login", allow_redirects=False)
    page = await browser.get(path_of(start.headers["Location"]), allow_redirects=False)
    fields = form_fields(await page.text())
    started = time.perf_counter()
    answer = await browser.post(
        "/idp/login", data={**fields, "login": login, "password": password, "code": code}, allow_redirects=False
    )
    elapsed = time.perf_counter() - started
    return answer.status, message(await answer.text()), elapsed


async def test_unknown_and_known_logins_get_the_same_answers_and_throttling(live):
    await local_user(live.ctx, "lars")
    throttle(live, per_account_source=3)
    browser = live.browser()
    try:
        known = [await attempt(browser, "lars", "fel-losenord-123") for _ in range(4)]
        unknown = [await attempt(browser, "larz", "fel-losenord-123") for _ in range(4)]
    finally:
        await browser.close()
    assert [(status, text) for status, text, _ in known] == [(status, text) for status, text, _ in unknown]
    assert [status for status, _, _ in known] == [401, 401, 401, 429]  # slowed down alike, never "locked"


@pytest.mark.slow
async def test_login_time_does_not_tell_whether_an_account_exists(live):
    """The enumeration timing check of `make security`: argon2 runs for unknown logins too."""
    await local_user(live.ctx, "lars")
    throttle(live, per_account_source=1000, per_source=1000, account_delay_after=1000)
    browser = live.browser()
    known: list[float] = []
    unknown: list[float] = []
    try:
        for _ in range(12):  # interleaved, so load on the machine hits both alike
            known.append((await attempt(browser, "lars", "fel-losenord-123"))[2])
            unknown.append((await attempt(browser, "nobody-here", "fel-losenord-123"))[2])
    finally:
        await browser.close()
    ratio = statistics.median(unknown) / statistics.median(known)
    print(f"login timing: known {statistics.median(known) * 1000:.1f} ms, unknown "
          f"{statistics.median(unknown) * 1000:.1f} ms (median of 12), ratio {ratio:.2f}")  # fmt: skip
    assert 0.6 < ratio < 1.6


async def test_failures_from_one_address_do_not_lock_the_clinician_out(live):
    _, secret = await local_user(live.ctx, "lars")
    throttle(live, per_account_source=5)
    attacker = live.browser("127.0.0.1")
    clinician = live.browser("127.0.0.2")
    try:
        for _ in range(8):
            status, _text, _ = await attempt(attacker, "lars", "fel-losenord-123")
            assert status in (401, 429)
        # The attacker's address now waits, even with the right password ...
        assert (await login_via_forms(attacker, "lars", PASSWORD, secret=secret)).status == 429
        # ... while the clinician, from an address that has not been failing, logs in with password + TOTP.
        answer = await login_via_forms(clinician, "lars", PASSWORD, secret=secret)
        assert answer.status == 302 and answer.headers["Location"] == "/"
    finally:
        await attacker.close()
        await clinician.close()


async def test_one_address_failing_on_many_names_is_slowed_down(live):
    throttle(live, per_source=4)
    browser = live.browser()
    try:
        statuses = [(await attempt(browser, f"name{n}", "fel-losenord-123"))[0] for n in range(5)]
    finally:
        await browser.close()
    assert statuses == [401, 401, 401, 401, 429]
