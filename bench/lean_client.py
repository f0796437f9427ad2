"""A lean socket.io client for load generation: Engine.IO 4 / Socket.IO 5 text packets over one websocket.

`socketio.AsyncClient` costs about as much CPU per message as the server does, so with the load
generator and the server on the same 2-core machine it, not the server, sets the measured throughput.
This client speaks only what the benchmarks need (connect with an `auth` token, emit with an ack,
receive events, answer pings) and nothing else: no polling transport, no binary packets, no
namespaces other than "/". The server sees ordinary websocket clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

EventCallback = Callable[[Any], None]


class ConnectRefused(Exception):
    """The server refused the socket.io connection (CONNECT_ERROR) or the handshake failed."""


class LeanSocket:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/").replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.handlers: dict[str, EventCallback] = {}
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[None] | None = None

    def on(self, event: str, callback: EventCallback) -> None:
        self.handlers[event] = callback

    async def connect(self, token: str, patience: float = 30.0) -> None:
        self._ws = await self.http.ws_connect(self.url, timeout=aiohttp.ClientWSTimeout(ws_close=patience))
        opened = await self._ws.receive_str(timeout=patience)
        if not opened.startswith("0"):
            raise ConnectRefused(f"unexpected Engine.IO open packet {opened[:40]!r}")
        self._connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        await self._ws.send_str("40" + orjson.dumps({"token": token}).decode())
        await asyncio.wait_for(self._connected, patience)

    async def call(self, event: str, data: Any, patience: float = 30.0) -> Any:
        """Emit with an ack id and wait for the ack's first argument."""
        assert self._ws is not None
        self._next_id += 1
        ack_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        try:
            await self._ws.send_str(f"42{ack_id}" + orjson.dumps([event, data]).decode())
            return await asyncio.wait_for(future, patience)
        finally:
            self._acks.pop(ack_id, None)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if frame.type is aiohttp.WSMsgType.TEXT:
                    await self._packet(frame.data)
        finally:
            self._fail_pending(ConnectionError("socket closed"))

    async def _packet(self, text: str) -> None:
        kind = text[:1]
        if kind == "2":  # Engine.IO ping: answer at once or the server drops us
            assert self._ws is not None
            await self._ws.send_str("3")
        elif kind == "4":
            self._socketio_packet(text[1:])

    def _socketio_packet(self, packet: str) -> None:
        kind, rest = packet[:1], packet[1:]
        if kind == "0" and self._connected and not self._connected.done():
            self._connected.set_result(None)
        elif kind == "4" and self._connected and not self._connected.done():
            self._connected.set_exception(ConnectRefused(rest[:200]))
        elif kind == "2":
            event, *args = orjson.loads(rest)
            handler = self.handlers.get(event)
            if handler is not None:
                handler(args[0] if args else None)
        elif kind == "3":
            split = rest.index("[")
            future = self._acks.get(int(rest[:split]))
            if future is not None and not future.done():
                future.set_result(orjson.loads(rest[split:])[0])

    def _fail_pending(self, error: Exception) -> None:
        for future in self._acks.values():
            if not future.done():
                future.set_exception(error)
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(ConnectRefused(str(error)))

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
