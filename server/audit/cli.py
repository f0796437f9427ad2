"""`brygga audit verify` and `brygga audit seal`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.audit import chain
from server.audit.models import AuditCheckpoint
from server.core.app_keys import envelope_for
from server.core.context import AppContext
from server.core.envelope import KeyFileError
from server.settings import Settings


def trusted_keys(settings: Settings, extra: list[str]) -> list[Ed25519PublicKey]:
    keys = [chain.load_public_key(Path(path)) for path in extra]
    own = chain.key_path(settings.data_dir)
    if own.exists():
        keys.append(chain.load_or_create_signing_key(settings.data_dir).public_key())
    return keys


async def load_keys(ctx: AppContext) -> None:
    """The chain covers sealed case references: open the key files (as the server does) or say which is missing."""
    from server.core.commands import CommandError

    try:
        await envelope_for(ctx)
    except KeyFileError as exc:
        raise CommandError(str(exc)) from None


def cmd_verify(args: argparse.Namespace, settings: Settings) -> None:
    from server.core.commands import run_with_context

    async def work(ctx: AppContext) -> chain.VerifyReport:
        await load_keys(ctx)
        return await chain.verify(ctx.db, trusted_keys(settings, args.public_key or []))

    report: chain.VerifyReport = run_with_context(settings, work)
    if args.json:
        print(json.dumps({
            "ok": report.ok, "rows_checked": report.rows_checked, "checkpoints_checked": report.checkpoints_checked,
            "unchained": report.unchained, "first_tampered_seq": report.first_tampered_seq,
            "findings": [{"seq": f.seq, "chain_pos": f.chain_pos, "problem": f.problem} for f in report.findings],
        }))  # fmt: skip
    else:
        print(
            f"Checked {report.rows_checked} chained rows and {report.checkpoints_checked} signed checkpoints; "
            f"{report.unchained} rows not chained yet."
        )
    if not report.ok:
        if not args.json:
            print(f"TAMPERED: first tampered row is seq {report.first_tampered_seq}.", file=sys.stderr)
            for finding in report.findings[:20]:
                print(f"  {finding}", file=sys.stderr)
        raise SystemExit(1)
    if report.checkpoints_checked == 0 and report.rows_checked and not args.json:
        print("warning: no signed checkpoint yet; run `brygga audit seal`.", file=sys.stderr)
    if not args.json:
        print("Audit log OK.")


def cmd_seal(args: argparse.Namespace, settings: Settings) -> None:
    from server.core.commands import run_with_context

    async def work(ctx: AppContext) -> tuple[int, AuditCheckpoint | None]:
        await load_keys(ctx)
        chained = await chain.chain_pending(ctx.db)
        return chained, await chain.write_checkpoint(ctx.db, chain.load_or_create_signing_key(settings.data_dir))

    chained, checkpoint = run_with_context(settings, work)
    where = "no new checkpoint"
    if checkpoint is not None:
        where = f"checkpoint at seq {checkpoint.seq} (chain position {checkpoint.chain_pos})"
    print(f"Chained {chained} rows; {where}.")


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit_parser = sub.add_parser("audit", help="the tamper-evident access log")
    audit = audit_parser.add_subparsers(dest="audit_cmd", required=True)
    verify = audit.add_parser("verify", help="check the hash chain and signed checkpoints; exit 1 if tampered")
    verify.add_argument("--public-key", action="append", help="extra trusted checkpoint key (PEM file)")
    verify.add_argument("--json", action="store_true", help="machine-readable result")
    verify.set_defaults(func=cmd_verify)
    seal = audit.add_parser("seal", help="chain pending rows now and sign a checkpoint (normally done by the server)")
    seal.set_defaults(func=cmd_seal)
