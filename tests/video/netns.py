"""A private network namespace with a veth pair for WebRTC tests.

Loopback alone gives no media (aioice drops 127.0.0.1 candidates, Chromium ignores loopback), so
the call runs in a namespace with two veth ends (10.77.x.1 and 10.77.x.2) and `lo` for HTTP.
Nothing in the namespace can reach the host's real network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Namespace:
    name: str
    addresses: tuple[str, str]

    def command(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


def why_no_namespaces() -> str | None:
    """None if this process can create network namespaces, else the reason."""
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN)"
    probe = f"brygga-probe-{uuid.uuid4().hex[:6]}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"'ip netns add' failed: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@contextmanager
def namespace() -> Iterator[Namespace]:
    suffix = uuid.uuid4().hex[:6]
    name = f"brygga-{suffix}"
    octet = int(suffix[:2], 16) % 250 + 1
    addresses = (f"10.77.{octet}.1", f"10.77.{octet}.2")
    _run("ip", "netns", "add", name)
    try:
        ns = ["ip", "-n", name]
        _run(*ns, "link", "set", "lo", "up")
        _run(*ns, "link", "add", "bry0", "type", "veth", "peer", "name", "bry1")
        _run(*ns, "addr", "add", f"{addresses[0]}/24", "dev", "bry0")
        _run(*ns, "addr", "add", f"{addresses[1]}/24", "dev", "bry1")
        _run(*ns, "link", "set", "bry0", "up")
        _run(*ns, "link", "set", "bry1", "up")
        yield Namespace(name, addresses)
    finally:
        subprocess.run(["ip", "netns", "pids", name], capture_output=True, check=False)
        # Processes started inside are ended by their owners; deleting the namespace frees the links.
        subprocess.run(["ip", "netns", "del", name], check=False)
