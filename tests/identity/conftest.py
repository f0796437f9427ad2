"""Fixtures for identity tests."""

from __future__ import annotations

import pytest

from tests.identity.helpers import start_live


@pytest.fixture
async def live(tmp_path):
    """The app on a real loopback port whose public URL matches (redirects and cookies work as deployed)."""
    instance = await start_live(tmp_path / "data")
    try:
        yield instance
    finally:
        await instance.client.close()
