"""Fixtures for the attack tests: `live`, the app on a real loopback port (as in tests/identity), and
`world`, the messaging test's units and people (as in tests/messaging)."""

from __future__ import annotations

from tests.identity.conftest import live
from tests.messaging.conftest import world

__all__ = ["live", "world"]
