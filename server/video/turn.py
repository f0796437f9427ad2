"""TURN REST credentials (coturn `use-auth-secret`): username `expiry:user`, password base64(HMAC-SHA1).

The shared secret never leaves the server; each participant gets credentials that expire after
`turn_ttl_seconds`. No public STUN server is ever configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from pydantic import BaseModel


class IceServer(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


def turn_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_credentials(secret: str, user: str, now: datetime, ttl_seconds: int) -> tuple[str, str]:
    """(username, password) valid until now + ttl; `user` is an opaque id, never a name."""
    username = f"{int(now.timestamp()) + ttl_seconds}:{user}"
    return username, turn_password(secret, username)


def ice_servers(urls: list[str], secret: str, user: str, now: datetime, ttl_seconds: int) -> list[IceServer]:
    """What a participant's RTCPeerConnection gets: TURN with fresh credentials, or nothing."""
    if not urls or not secret:
        return []
    username, password = turn_credentials(secret, user, now, ttl_seconds)
    return [IceServer(urls=urls, username=username, credential=password)]
