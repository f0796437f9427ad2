"""Faster socket.io packet encoding: orjson behind the `json` interface, and a cheap binary check.

python-socketio encodes every emit and decodes every incoming event with `Packet.json`, and walks
every payload to see whether it holds bytes (binary events). Both show up per message in the
profile of `message:send`, so the server uses `SioPacket` (same wire format, same results):

- `dumps`/`loads` use orjson; whatever orjson refuses (integers beyond 64 bits, NaN, lone
  surrogates, non-str keys) falls back to the standard library, so the JSON accepted and produced
  is what it was before; only the common case is faster.
- `data_is_binary` stops at the first bytes value and does not build lists while walking.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from socketio.packet import Packet

JSONDecodeError = json.JSONDecodeError


def dumps(obj: Any, **_kwargs: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"))


def loads(data: str | bytes, **_kwargs: Any) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class SioPacket(Packet):  # type: ignore[misc]
    """socket.io packet with the faster JSON and binary check (a `serializer` for AsyncServer)."""

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, (bytes, bytearray)):
                return True
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
        return False
