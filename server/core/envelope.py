"""Envelope encryption at rest: AES-256-GCM with a fresh data key per record, wrapped by a KEK.

* Every record (message body, revision, attachment) gets its own random 256-bit data key (DEK).
  The DEK encrypts the record with AES-256-GCM and is stored wrapped (RFC 3394 AES key wrap) by the
  active key-encryption key (KEK). Only the `kek_id` and the wrapped DEK sit next to the ciphertext.
* The KEKs live in a JSON key file outside the database (`settings.effective_key_file`, created on
  first start with mode 0600). Production can point `BRYGGA_KEY_FILE` at a mounted secret.
* Associated data `table|id|conversation|v` binds each ciphertext to its row: a ciphertext copied
  into another row, conversation or format version fails to decrypt (`InvalidTag`).
* Attachments are split into 1 MiB chunks under one DEK; the nonce is a random 4-byte prefix plus the
  chunk index, and the associated data carries the chunk index and a final-chunk flag, so chunks
  cannot be reordered, dropped or truncated unnoticed.
* `rotate_keys` (CLI: `brygga keys rotate`) adds a new KEK, lets running servers pick it up (they
  re-read the key file when it changes), rewraps every DEK in batches and only then retires the old
  KEKs. Ciphertexts are never re-encrypted, and the server keeps serving throughout.
* Retired KEKs stay in the key file, wrapped by the active KEK (`"retired"`), so a database backup
  from before a rotation stays readable with the key backup from after it. They are deleted only on
  request (`--drop-retired`), once no database backup older than the rotation is kept.
* The key file is created only beside a database that holds no sealed record (`open_checked`): a
  database restored without its key file makes the server refuse to start, naming the key ids it
  needs, instead of sealing new records with a throwaway key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
import threading
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core import keyfiles

if TYPE_CHECKING:
    from server.core.db import Database

log = logging.getLogger("brygga.envelope")

FORMAT_VERSION = 1
CHUNK_SIZE = 1024 * 1024
WRAPPED_LEN = 40  # RFC 3394 wrap of a 32-byte key
NONCE_LEN = 12
HEADER = struct.Struct(">B40s12s")  # format version | wrapped DEK | nonce


class KeyFileError(Exception):
    """The key file is missing a key that a record needs, or cannot be read."""


def associated_data(table: str, row_id: object, conversation_id: object, *extra: object) -> bytes:
    parts = [table, str(row_id), str(conversation_id), str(FORMAT_VERSION), *(str(part) for part in extra)]
    return "|".join(parts).encode()


def _new_kek_id() -> str:
    return "kek-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    keyfiles.replace(path, json.dumps(data, indent=2).encode())


class KeyRing:
    """The KEKs from the key file; re-read when the file changes (rotation without downtime)."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        """`create`: make a new key file if there is none (only beside a database without sealed rows)."""
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float = -1.0
        self._keys: dict[str, bytes] = {}
        self._retired: set[str] = set()
        self._active = ""
        if not path.exists():
            if not create:
                raise KeyFileError(f"the key file {path} does not exist; restore it from the key backup")
            self._create()
        self._load()

    def _create(self) -> None:
        kek_id = _new_kek_id()
        data = {
            "version": 1,
            "active": kek_id,
            "keys": {kek_id: {"key": base64.b64encode(AESGCM.generate_key(256)).decode(), "created": _now()}},
        }
        if not keyfiles.create_once(self.path, json.dumps(data, indent=2).encode()):
            return  # another process created it first
        log.info("created key-encryption key file", extra={"kek_id": kek_id})

    def _load(self) -> None:
        try:
            stat = self.path.stat()
            raw = json.loads(self.path.read_text())
            keys = {kek_id: base64.b64decode(entry["key"]) for kek_id, entry in raw["keys"].items()}
            active = raw["active"]
            retired = {
                kek_id: aes_key_unwrap(keys[entry["wrapped_by"]], base64.b64decode(entry["wrapped"]))
                for kek_id, entry in raw.get("retired", {}).items()
            }
        except (OSError, ValueError, KeyError, TypeError, InvalidUnwrap) as exc:
            raise KeyFileError(f"cannot read the key file {self.path}: {type(exc).__name__}") from None
        if active not in keys or any(len(key) != 32 for key in keys.values()):
            raise KeyFileError(f"the key file {self.path} is inconsistent (active key missing or not 256-bit)")
        self._keys, self._retired = {**retired, **keys}, set(retired) - set(keys)
        self._active, self._mtime = active, stat.st_mtime

    def refresh(self) -> None:
        """Re-read the file if it changed on disk (cheap: one stat)."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime != self._mtime:
            with self._lock:
                self._load()

    @property
    def active_id(self) -> str:
        return self._active

    def active(self) -> tuple[str, bytes]:
        self.refresh()
        return self._active, self._keys[self._active]

    def get(self, kek_id: str) -> bytes:
        key = self._keys.get(kek_id)
        if key is None:
            self.refresh()
            key = self._keys.get(kek_id)
        if key is None:
            raise KeyFileError(f"key {kek_id} is not in {self.path}; restore it from the key backup")
        return key

    def ids(self) -> list[str]:
        """Every key id this file can unwrap: the active one, those in use and the retired ones."""
        return sorted(self._keys)

    def retired_ids(self) -> list[str]:
        return sorted(self._retired)

    # -- rotation (run by the CLI, one process at a time) --------------------------------------

    def add_active(self) -> str:
        raw = json.loads(self.path.read_text())
        kek_id = _new_kek_id()
        raw["keys"][kek_id] = {"key": base64.b64encode(AESGCM.generate_key(256)).decode(), "created": _now()}
        raw["active"] = kek_id
        _write_private(self.path, raw)
        self._load()
        return kek_id

    def retire_all_but_active(self, *, drop: bool = False) -> tuple[list[str], list[str]]:
        """Keep only the active key in the clear; every other key is kept wrapped by it (or, with
        `drop`, deleted: only once no database backup older than this rotation is kept).
        Returns (keys retired now, keys deleted)."""
        self._load()
        raw = json.loads(self.path.read_text())
        active_id = raw["active"]
        retired = sorted(kek_id for kek_id in self._keys if kek_id != active_id)
        newly = [kek_id for kek_id in raw["keys"] if kek_id != active_id]
        active_key = self._keys[active_id]
        raw["keys"] = {active_id: raw["keys"][active_id]}
        raw["retired"] = (
            {}
            if drop
            else {
                kek_id: {
                    "wrapped": base64.b64encode(aes_key_wrap(active_key, self._keys[kek_id])).decode(),
                    "wrapped_by": active_id,
                    "retired": raw.get("retired", {}).get(kek_id, {}).get("retired") or _now(),
                }
                for kek_id in retired
            }
        )
        _write_private(self.path, raw)
        self._load()
        return newly, retired if drop else []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Sealed:
    """What is stored: the KEK id (its own column, for rotation) and header+ciphertext."""

    kek_id: str
    blob: bytes


@dataclass(frozen=True)
class DataKey:
    kek_id: str
    key: bytes
    wrapped: bytes


class Envelope:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def new_data_key(self) -> DataKey:
        kek_id, kek = self.keyring.active()
        dek = AESGCM.generate_key(256)
        return DataKey(kek_id, dek, aes_key_wrap(kek, dek))

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        return aes_key_unwrap(self.keyring.get(kek_id), wrapped)

    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        data_key = self.new_data_key()
        nonce = os.urandom(NONCE_LEN)
        ciphertext = AESGCM(data_key.key).encrypt(nonce, plaintext, aad)
        return Sealed(data_key.kek_id, HEADER.pack(FORMAT_VERSION, data_key.wrapped, nonce) + ciphertext)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        version, wrapped, nonce = HEADER.unpack_from(sealed.blob)
        if version != FORMAT_VERSION:
            raise KeyFileError(f"unknown envelope format {version}")
        dek = self.unwrap(sealed.kek_id, wrapped)
        return AESGCM(dek).decrypt(nonce, sealed.blob[HEADER.size :], aad)

    def seal_text(self, text: str, aad: bytes) -> Sealed:
        return self.seal(text.encode(), aad)

    def open_text(self, sealed: Sealed, aad: bytes) -> str:
        return self.open(sealed, aad).decode()

    def rewrap_blob(self, kek_id: str, blob: bytes) -> Sealed:
        """Same ciphertext, DEK wrapped by the active KEK."""
        version, wrapped, nonce = HEADER.unpack_from(blob)
        dek = self.unwrap(kek_id, wrapped)
        new_id, kek = self.keyring.active()
        return Sealed(new_id, HEADER.pack(version, aes_key_wrap(kek, dek), nonce) + blob[HEADER.size :])

    def rewrap_key(self, kek_id: str, wrapped: bytes) -> tuple[str, bytes]:
        dek = self.unwrap(kek_id, wrapped)
        new_id, kek = self.keyring.active()
        return new_id, aes_key_wrap(kek, dek)


class ChunkCipher:
    """AES-256-GCM over numbered chunks of one attachment (nonce = 4-byte prefix + 8-byte index)."""

    def __init__(self, key: bytes, nonce_prefix: bytes, aad_base: bytes) -> None:
        if len(nonce_prefix) != 4:
            raise ValueError("nonce prefix must be 4 bytes")
        self._aead = AESGCM(key)
        self._prefix = nonce_prefix
        self._aad_base = aad_base

    def _nonce_aad(self, index: int, final: bool) -> tuple[bytes, bytes]:
        return self._prefix + struct.pack(">Q", index), self._aad_base + f"|{index}|{int(final)}".encode()

    def encrypt(self, index: int, chunk: bytes, final: bool) -> bytes:
        nonce, aad = self._nonce_aad(index, final)
        return self._aead.encrypt(nonce, chunk, aad)

    def decrypt(self, index: int, ciphertext: bytes, final: bool) -> bytes:
        nonce, aad = self._nonce_aad(index, final)
        return self._aead.decrypt(nonce, ciphertext, aad)


def iter_chunks(data: bytes, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# --------------------------------------------------------------------------------------------- rotation

# Each domain that stores wrapped keys registers how to rewrap one batch of its rows: the callable
# gets the envelope and a batch size, rewraps up to that many rows whose kek_id is not active and
# returns how many it changed (0 = done).
Rewrapper = Callable[[Envelope, int], Awaitable[int]]


@dataclass
class RotationReport:
    new_kek_id: str
    rewrapped: int
    retired: list[str]
    dropped: list[str]


async def rotate_keys(
    envelope: Envelope,
    rewrappers: list[Rewrapper],
    *,
    batch_size: int = 100,
    grace_seconds: float = 3.0,
    drop_retired: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RotationReport:
    """New active KEK, rewrap every DEK in batches, then retire old KEKs (see module docstring).

    Each batch is its own short transaction (the rewrappers' job), so the send path, which shares
    SQLite's one writer, waits for one small batch at most and never for the whole rotation.
    """
    import asyncio

    say = progress or (lambda _text: None)
    new_id = envelope.keyring.add_active()
    say(f"new active key {new_id}; waiting {grace_seconds:g}s for running servers to pick it up")
    await asyncio.sleep(grace_seconds)
    total = 0
    loop = asyncio.get_running_loop()
    for round_no in range(2):
        while True:
            changed = 0
            started = loop.time()
            for rewrap in rewrappers:
                changed += await rewrap(envelope, batch_size)
            total += changed
            if changed == 0:
                break
            say(f"rewrapped {total} data keys")
            # Yield the database (SQLite: its one writer) for as long as the batch held it: rotation
            # takes at most half of the write time, and senders wait for one small batch at most.
            await asyncio.sleep(max(0.005, loop.time() - started))
        if round_no == 0:
            await asyncio.sleep(grace_seconds)  # catch rows written by a server that had not reloaded yet
    retired, dropped = envelope.keyring.retire_all_but_active(drop=drop_retired)
    return RotationReport(new_id, total, retired, dropped)


# ------------------------------------------------------------------------------- keys a database needs

# Every ORM column that holds the id of the KEK wrapping a record's data key, registered by the domain
# that owns it (`register_sealed`). The startup check, `brygga keys status` and `brygga backup verify`
# ask these which key ids the database needs.
_SEALED_KEY_COLUMNS: dict[str, Any] = {}


@dataclass
class Readability:
    """What `ReadCheck`s found: how many records opened, and which did not (`"<kind> <id>"`)."""

    checked: int = 0
    unreadable: list[str] = field(default_factory=list)


# Opens every sealed record a domain owns (`brygga backup verify`), adding to the report.
ReadCheck = Callable[["Database", Envelope, Readability], Awaitable[None]]
_READ_CHECKS: dict[str, ReadCheck] = {}


def register_sealed(name: str, kek_column: Any, check: ReadCheck | None = None) -> None:
    """`kek_column`: an ORM attribute (e.g. `Message.body_kek`); `name` labels it in reports;
    `check` opens every record of the domain (one check per domain is enough)."""
    _SEALED_KEY_COLUMNS[name] = kek_column
    if check is not None:
        _READ_CHECKS[name] = check


async def check_readable(db: Database, envelope: Envelope) -> Readability:
    report = Readability()
    for check in _READ_CHECKS.values():
        await check(db, envelope, report)
    return report


async def kek_ids_in_use(session: AsyncSession) -> dict[str, dict[str, int]]:
    """{kek_id: {name: rows}} over every registered column (NULL: nothing sealed in that row)."""
    found: dict[str, dict[str, int]] = {}
    for name, column in _SEALED_KEY_COLUMNS.items():
        counts = select(column, func.count()).where(column.is_not(None)).group_by(column)
        for kek_id, count in (await session.execute(counts)).all():
            found.setdefault(str(kek_id), {})[name] = int(count)
    return found


def open_checked(path: Path, in_use: Iterable[str]) -> Envelope:
    """The envelope for a database that needs the key ids `in_use`.

    Creates the key file only if it is missing and the database holds no sealed record; raises
    `KeyFileError` naming the missing key ids otherwise, so a server never seals new records with a
    throwaway key beside a database it cannot read.
    """
    needed = sorted(set(in_use))
    if needed and not path.exists():
        raise KeyFileError(
            f"the key file {path} does not exist, but the database holds records sealed with "
            f"{', '.join(needed)}; restore the key file from the key backup (no new key is created "
            "beside sealed data)"
        )
    keyring = KeyRing(path, create=not needed)
    missing = [kek_id for kek_id in needed if kek_id not in keyring.ids()]
    if missing:
        raise KeyFileError(
            f"the database holds records sealed with {', '.join(missing)}, which the key file {path} "
            "lacks; restore the key file that belongs to this database"
        )
    return Envelope(keyring)


# ------------------------------------------------------------------------------ sealed columns' keys


def normalise(value: str) -> str:
    """What a blind index is computed over: NFKC, no white space, upper case ("ut 2026-1" = "UT2026-1")."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def blind_index(key: bytes, value: str) -> str:
    return hmac.new(key, normalise(value).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Sealer:
    """The envelope (KEKs) and the blind-index key that sealed columns use (server/core/sealed_columns.py);
    one per process, on `Database.sealer`."""

    envelope: Envelope
    index_key: bytes

    def blind_index(self, value: str) -> str:
        return blind_index(self.index_key, value)

    def seal_value(self, aad: bytes, text: str) -> Sealed:
        return self.envelope.seal_text(text, aad)

    def open_value(self, aad: bytes, kek_id: str | None, blob: bytes | None) -> str | None:
        if kek_id is None or blob is None:
            return None
        return self.envelope.open_text(Sealed(kek_id, blob), aad)


def attach_sealer(db: Database, envelope: Envelope, index_key_file: Path, *, sealed_records: bool) -> None:
    """Let `db`'s sessions seal and open sealed columns. The blind-index key file is created only beside
    a database without sealed records, like the KEK file: a new key would make every look-up miss."""
    if sealed_records and not index_key_file.exists():
        raise KeyFileError(
            f"the blind-index key file {index_key_file} does not exist, but the database holds sealed records; "
            "restore it from the key backup"
        )
    db.sealer = Sealer(envelope, keyfiles.secret(index_key_file))
