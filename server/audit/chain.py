"""Tamper evidence for the access log: a SHA-256 hash chain plus Ed25519-signed checkpoints.

Rows are appended by `server.audit.service.record` inside the callers' transactions, without any
hash. One chainer (the holder of the `audit-chainer` lease, see `ChainerTask`) later assigns each
committed, not yet chained row the next `chain_pos` in seq order and sets

    hash = SHA-256(prev_hash || canonical JSON of the row's content)

where `prev_hash` is the previous chain row's hash (64 zeros for the first row). PostgreSQL sequence
gaps (rolled back inserts) and out-of-order commits need no special handling: the chain order is
`chain_pos`, dense and assigned by a single writer, and a row that commits late simply joins the
chain on the next pass. A unique index on `chain_pos` makes a second concurrent chainer fail instead
of forking the chain. Why this design and not a lock around every append: docs/audit.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.models import AuditCheckpoint
from server.core import keyfiles
from server.core.db import Database, log_failure, utcnow
from server.core.models import AuditEvent

log = logging.getLogger("brygga.audit")

GENESIS = "0" * 64
BATCH = 1000


# ------------------------------------------------------------------------------------------ hashing


def canonical(row: AuditEvent) -> bytes:
    """The row's content as canonical JSON (sorted keys, no spaces, UTF-8); excludes the hash fields."""
    content: dict[str, Any] = {
        "seq": row.seq,
        "chain_pos": row.chain_pos,
        "at": row.at.isoformat(timespec="microseconds"),
        "actor_user_id": str(row.actor_user_id) if row.actor_user_id else None,
        "actor_unit_id": str(row.actor_unit_id) if row.actor_unit_id else None,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "case_ref": row.case_ref,
        "outcome": row.outcome,
        "ip": row.ip,
        "details": row.details,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(prev_hash: str, row: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(row)).hexdigest()


# ------------------------------------------------------------------------------------------ signing


def key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / "audit-ed25519.pem"


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def load_or_create_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key (PKCS#8 PEM, mode 0600); its public half is written next to it."""
    path = key_path(data_dir)
    if not path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if keyfiles.create_once(path, pem):
            public_pem = fresh.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            keyfiles.replace(path.with_suffix(".pub"), public_pem)
    # Read back even after creating: a node started at the same moment may have won the race.
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def checkpoint_message(chain_pos: int, seq: int, hash_: str, at: datetime) -> bytes:
    return f"brygga-audit-checkpoint:v1:{chain_pos}:{seq}:{hash_}:{at.isoformat(timespec='microseconds')}".encode()


# ------------------------------------------------------------------------------------------ chaining


async def chain_head(session: AsyncSession) -> tuple[int, str]:
    """(chain_pos, hash) of the newest chained row, or (0, GENESIS) for an empty chain."""
    row = (
        await session.execute(
            select(AuditEvent.chain_pos, AuditEvent.hash)
            .where(AuditEvent.chain_pos.is_not(None))
            .order_by(AuditEvent.chain_pos.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return 0, GENESIS
    return int(row[0] or 0), str(row[1])


async def chain_pending(db: Database, *, batch: int = BATCH) -> int:
    """Chain every committed row that has no chain position yet; returns how many were chained."""
    total = 0
    while True:
        async with db.transaction() as session:
            position, previous = await chain_head(session)
            rows = (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.chain_pos.is_(None)).order_by(AuditEvent.seq).limit(batch)
                )
            ).scalars()
            count = 0
            for row in rows:
                position += 1
                row.chain_pos = position
                row.prev_hash = previous
                row.hash = previous = row_hash(previous, row)
                count += 1
        total += count
        if count < batch:
            return total


async def write_checkpoint(db: Database, key: Ed25519PrivateKey) -> AuditCheckpoint | None:
    """Sign the current chain head unless the newest checkpoint already covers it."""
    async with db.transaction() as session:
        position, head_hash = await chain_head(session)
        if position == 0:
            return None
        latest = (
            await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.chain_pos.desc()).limit(1))
        ).scalar_one_or_none()
        if latest is not None and latest.chain_pos >= position:
            return None
        seq = (await session.execute(select(AuditEvent.seq).where(AuditEvent.chain_pos == position))).scalar_one()
        at = utcnow()
        signature = key.sign(checkpoint_message(position, seq, head_hash, at)).hex()
        checkpoint = AuditCheckpoint(
            chain_pos=position, seq=seq, hash=head_hash, at=at, key_id=key_id_of(key.public_key()), signature=signature
        )
        session.add(checkpoint)
    # The log line is what ships the checkpoint off-host (ASVS 16.4.3) through the log pipeline.
    log.info(
        "audit checkpoint",
        extra={"chain_pos": position, "seq": seq, "hash": head_hash, "key_id": checkpoint.key_id, "sig": signature},
    )
    return checkpoint


# ------------------------------------------------------------------------------------------ verifying


@dataclass
class Finding:
    seq: int | None
    chain_pos: int | None
    problem: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else f"chain position {self.chain_pos}"
        return f"{where}: {self.problem}"


@dataclass
class VerifyReport:
    rows_checked: int = 0
    checkpoints_checked: int = 0
    unchained: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_tampered_seq(self) -> int | None:
        return next((finding.seq for finding in self.findings if finding.seq is not None), None)


# A running server chains rows within a second or two and seals on shutdown; a row still unchained
# this long after it was written means the chain was reset (e.g. its columns dropped by a downgrade)
# or rows were inserted behind the chainer's back.
UNCHAINED_GRACE = timedelta(minutes=10)


async def verify(
    db: Database,
    trusted_keys: list[Ed25519PublicKey],
    *,
    batch: int = BATCH,
    unchained_grace: timedelta = UNCHAINED_GRACE,
) -> VerifyReport:
    """Recompute the chain from the first row and check every signed checkpoint against it.

    The first finding names the earliest row whose stored content no longer matches the chain. Rows
    older than `unchained_grace` that are not chained are a finding too (they should be).
    """
    report = VerifyReport()
    keys = {key_id_of(key): key for key in trusted_keys}
    recomputed: dict[int, tuple[int, str]] = {}  # chain_pos -> (seq, recomputed hash), checkpoint positions only
    async with db.transaction() as session:
        checkpoint_rows = await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.chain_pos))
        checkpoints = list(checkpoint_rows.scalars())
        wanted = {checkpoint.chain_pos for checkpoint in checkpoints}
        expected_pos, expected_prev = 1, GENESIS
        while True:
            rows = list(
                (
                    await session.execute(
                        select(AuditEvent)
                        .where(AuditEvent.chain_pos >= expected_pos)
                        .order_by(AuditEvent.chain_pos)
                        .limit(batch)
                    )
                ).scalars()
            )
            for row in rows:
                assert row.chain_pos is not None
                if row.chain_pos != expected_pos:
                    report.findings.append(
                        Finding(
                            row.seq,
                            row.chain_pos,
                            f"rows at chain positions {expected_pos}..{row.chain_pos - 1} "
                            "are missing (deleted) before this row",
                        )
                    )
                    expected_pos = row.chain_pos
                if row.prev_hash != expected_prev:
                    report.findings.append(
                        Finding(
                            row.seq,
                            row.chain_pos,
                            "prev_hash does not match the previous row: the previous row "
                            "was rewritten with a new hash, or this row's link was edited",
                        )
                    )
                try:
                    computed = row_hash(expected_prev, row)
                except Exception:  # InvalidTag, KeyFileError: the sealed case reference does not open
                    report.findings.append(Finding(row.seq, row.chain_pos, "sealed case reference does not open"))
                    computed = row.hash or ""
                if computed != row.hash:
                    report.findings.append(Finding(row.seq, row.chain_pos, "content does not match its hash (edited)"))
                if row.chain_pos in wanted:
                    recomputed[row.chain_pos] = (row.seq, computed)
                expected_prev = computed
                expected_pos += 1
                report.rows_checked += 1
            if len(rows) < batch:
                break
        report.unchained = (
            await session.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_pos.is_(None)))
        ).scalar_one()
        overdue = AuditEvent.chain_pos.is_(None) & (AuditEvent.at < utcnow() - unchained_grace)
        overdue_count, first_overdue = (
            await session.execute(select(func.count(), func.min(AuditEvent.seq)).where(overdue))
        ).one()
        if overdue_count:
            report.findings.append(
                Finding(first_overdue, None, f"{overdue_count} rows written over {unchained_grace} ago are not "
                        "chained: the chain was reset (a downgrade drops it) or rows were added behind the chainer")
            )  # fmt: skip
    for checkpoint in checkpoints:
        report.checkpoints_checked += 1
        key = keys.get(checkpoint.key_id)
        if key is None:
            report.findings.append(
                Finding(checkpoint.seq, checkpoint.chain_pos, f"checkpoint signed by untrusted key {checkpoint.key_id}")
            )
            continue
        message = checkpoint_message(checkpoint.chain_pos, checkpoint.seq, checkpoint.hash, checkpoint.at)
        try:
            key.verify(bytes.fromhex(checkpoint.signature), message)
        except (InvalidSignature, ValueError):
            report.findings.append(Finding(checkpoint.seq, checkpoint.chain_pos, "checkpoint signature is invalid"))
            continue
        seq_hash = recomputed.get(checkpoint.chain_pos)
        if seq_hash is None:
            report.findings.append(Finding(checkpoint.seq, checkpoint.chain_pos, "signed checkpoint row is missing"))
        elif seq_hash != (checkpoint.seq, checkpoint.hash):
            report.findings.append(
                Finding(checkpoint.seq, checkpoint.chain_pos, "chain up to this signed checkpoint was rewritten")
            )
    report.findings.sort(key=lambda finding: finding.chain_pos or 0)
    return report


# ------------------------------------------------------------------------------------------ background


@dataclass
class ChainerConfig:
    chain_interval: float = 1.0  # seconds between chaining passes
    checkpoint_interval: float = 300.0  # seconds between signed checkpoints (when the head moved)
    lease_ttl: float = 15.0  # seconds another node waits before taking the chainer over


async def run_chainer(
    db: Database, key: Ed25519PrivateKey, config: ChainerConfig, is_leader: Callable[[], bool] = lambda: True
) -> None:
    """Chain pending rows every `chain_interval` and sign a checkpoint every `checkpoint_interval`,
    while `is_leader()` (this node holds the `audit-chainer` lease)."""
    loop = asyncio.get_running_loop()
    next_checkpoint = loop.time() + config.checkpoint_interval
    while True:
        try:
            if not is_leader():
                await asyncio.sleep(config.chain_interval)
                continue
            await chain_pending(db)
            if loop.time() >= next_checkpoint:
                await write_checkpoint(db, key)
                next_checkpoint = loop.time() + config.checkpoint_interval
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failure(log, "audit chaining failed; retrying", exc)
        await asyncio.sleep(config.chain_interval)
