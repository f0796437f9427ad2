"""Real `python -m server serve` processes for multi-node tests (shared PostgreSQL + Redis)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import socketio

from server.core.db import Database
from server.identity import service, tokens
from tests.conftest import free_port


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def node_env(data_dir: Path, port: int, database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "BRYGGA_DATA_DIR": str(data_dir),
        "BRYGGA_DATABASE_URL": database_url,
        "BRYGGA_REDIS_URL": redis_url,
        "BRYGGA_PORT": str(port),
        "BRYGGA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "BRYGGA_LOG_LEVEL": "WARNING",
    }


async def start_node(
    tmp: Path, name: str, database_url: str, redis_url: str, extra_env: dict[str, str] | None = None
) -> Node:
    port = free_port()
    data_dir = tmp / name
    data_dir.mkdir(parents=True, exist_ok=True)
    log = tmp / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve"],
        env={**node_env(data_dir, port, database_url, redis_url), **(extra_env or {})},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    node = Node(port, process, log)
    async with aiohttp.ClientSession() as http:
        for _ in range(600):  # up to 60 s: starting a node takes long on a loaded 2-core machine
            if process.poll() is not None:
                raise RuntimeError(f"node {name} exited: {log.read_text()[-2000:]}")
            try:
                async with http.get(f"{node.url}/readyz") as response:
                    if response.status == 200:
                        return node
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    node.stop()
    raise RuntimeError(f"node {name} did not become ready: {log.read_text()[-2000:]}")


async def user_with_tokens(
    database_url: str, login: str, count: int = 2
) -> tuple[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    """A user with `count` tokens: (user id, [(token id, secret), ...])."""
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            user = await service.create_local_user(session, login, login.capitalize())
            made = [await tokens.create_token(session, user.id, f"t{i}") for i in range(count)]
            return user.id, [(token.id, secret) for token, secret in made]
    finally:
        await db.close()


async def shut_down(clients: list[socketio.AsyncClient], nodes: list[Node]) -> str:
    """Disconnect the clients, stop the nodes; returns the nodes' logs (callers check for tracebacks)."""
    for sio in clients:
        if sio.connected:
            await sio.disconnect()
    for node in nodes:
        node.stop()
    return "".join(node.log.read_text() for node in nodes)
