"""A private ejabberd (Debian's package) on loopback, configured as the anchor of bench/peers.py.

XEP-0198 stream management, message archive `mod_mam` in SQLite switched to WAL with full sync
(Brygga's own durability: every archived row is fsynced before the next statement returns), plain
c2s on 127.0.0.1 (no TLS, like Brygga's loopback listener in the same run). `make bench-peers`
installs the package; nothing here touches the system's ejabberd service or its files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import time
from pathlib import Path

EJABBERDCTL = "/usr/sbin/ejabberdctl"
SCHEMA = Path("/usr/share/ejabberd/sql/lite.sql")
HOST = "bench.localhost"
RUN_AS = "ejabberd"  # ejabberdctl refuses other users than root and this one, and drops root to it

CONFIG = """\
hosts: ["{host}"]
loglevel: warning
log_rotate_count: 0
certfiles: []
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    starttls: false
auth_method: [sql]
auth_password_format: plain
default_db: sql
sql_type: sqlite
sql_database: "{database}"
new_sql_schema: false
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
shaper_rules: {{}}
modules:
  mod_mam:
    db_type: sql
    default: always
    assume_mam_usage: true
  mod_stream_mgmt:
    resend_on_timeout: if_offline
  mod_roster:
    db_type: sql
  mod_offline:
    db_type: sql
  mod_disco: {{}}
  mod_ping: {{}}
"""


def installed() -> bool:
    return Path(EJABBERDCTL).exists() and SCHEMA.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Ejabberd:
    """One ejabberd node in its own directory (config, spool, logs, SQLite archive)."""

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        self.directory = directory
        self.users = users
        self.port = _free_port()
        self.node = f"bryggabench{os.getpid()}@localhost"
        self.database = directory / "ejabberd.db"
        self.proc: asyncio.subprocess.Process | None = None

    def jid(self, user: str) -> str:
        return f"{user}@{HOST}"

    def _prepare(self) -> None:
        for sub in ("spool", "logs"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "ejabberd.yml").write_text(CONFIG.format(host=HOST, port=self.port, database=self.database))
        (self.directory / "inetrc").write_text('{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n')
        (self.directory / "ejabberdctl.cfg").write_text('ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n')
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            db.executescript(SCHEMA.read_text())
            db.executemany("INSERT INTO users(username, password) VALUES (?, ?)", self.users.items())
            # WAL persists in the file; SQLite's default synchronous=FULL then fsyncs every commit.
            db.execute("PRAGMA journal_mode=WAL")
            db.commit()
        if os.geteuid() == 0:
            account = pwd.getpwnam(RUN_AS)
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)

    def _ctl(self, *args: str) -> list[str]:
        return [
            EJABBERDCTL,
            "--config-dir", str(self.directory),
            "--config", str(self.directory / "ejabberd.yml"),
            "--ctl-config", str(self.directory / "ejabberdctl.cfg"),
            "--spool", str(self.directory / "spool"),
            "--logs", str(self.directory / "logs"),
            "--node", self.node,
            *args,
        ]  # fmt: skip

    async def start(self, patience: float = 60.0) -> None:
        self._prepare()
        log = (self.directory / "foreground.log").open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            *self._ctl("foreground"),
            stdout=log,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"ejabberd exited ({self.proc.returncode}); see {self.directory / 'logs'}")
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"ejabberd did not listen on {self.port} in {patience}s; see {self.directory / 'logs'}")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        stop = await asyncio.create_subprocess_exec(
            *self._ctl("stop"), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        await stop.wait()
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()

    def archived_rows(self) -> int:
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            return int(db.execute("SELECT count(*) FROM archive").fetchone()[0])

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
