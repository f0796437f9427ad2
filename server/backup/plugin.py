"""`brygga backup verify`: check that a restored database and key file belong together.

Run it with the restored pair configured (`BRYGGA_DATA_DIR`, or `BRYGGA_DATABASE_URL` and
`BRYGGA_KEY_FILE`), before serving from it. It never creates a key file. It checks, in order:

1. the key file exists and holds every key id the database's sealed records name (and the blind-index
   key file exists beside sealed records);
2. every sealed record opens with those keys (each domain registers its own check,
   `server.core.envelope.register_sealed`);
3. the audit log's hash chain and signed checkpoints (`brygga audit verify`).

Exit 0 only if all three hold; otherwise exit 1 with what is wrong (key ids, record ids).
"""

from __future__ import annotations

import argparse
import sys

from server.audit import chain
from server.audit.cli import trusted_keys
from server.core.context import AppContext
from server.core.envelope import KeyFileError, attach_sealer, check_readable, kek_ids_in_use, open_checked
from server.core.plugin import Plugin
from server.settings import Settings


async def verify_pair(ctx: AppContext, extra_public_keys: list[str]) -> list[str]:
    """Lines to print; the first word of a failing line is `FAIL`."""
    async with ctx.db.transaction() as session:
        in_use = await kek_ids_in_use(session)
    path = ctx.settings.effective_key_file
    if not path.exists():
        return [f"FAIL keys: the key file {path} does not exist (the database needs {', '.join(sorted(in_use))})"]
    try:
        envelope = open_checked(path, in_use)
        if in_use:  # the audit chain covers sealed case references; never creates the index key file
            attach_sealer(ctx.db, envelope, ctx.settings.effective_index_key_file, sealed_records=True)
    except KeyFileError as exc:
        return [f"FAIL keys: {exc}"]
    lines = [f"ok   keys: {path} holds all {len(in_use)} key ids the database uses"]
    readable = await check_readable(ctx.db, envelope)
    if readable.unreadable:
        lines.append(f"FAIL records: {len(readable.unreadable)} of "
                     f"{readable.checked + len(readable.unreadable)} sealed records do not open:")  # fmt: skip
        lines.extend(f"       {what}" for what in readable.unreadable[:50])
    else:
        lines.append(f"ok   records: all {readable.checked} sealed records open")
    report = await chain.verify(ctx.db, trusted_keys(ctx.settings, extra_public_keys))
    if report.ok:
        lines.append(
            f"ok   audit: {report.rows_checked} chained rows, {report.checkpoints_checked} signed checkpoints, "
            f"{report.unchained} not chained yet"
        )
    else:
        lines.append(f"FAIL audit: {len(report.findings)} findings, first tampered row seq {report.first_tampered_seq}")
        lines.extend(f"       {finding}" for finding in report.findings[:20])
    return lines


def cmd_verify(args: argparse.Namespace, settings: Settings) -> None:
    from server.core.commands import run_with_context

    async def work(ctx: AppContext) -> list[str]:
        return await verify_pair(ctx, args.public_key or [])

    lines: list[str] = run_with_context(settings, work)
    print("\n".join(lines))
    if any(line.startswith("FAIL") for line in lines):
        print("Backup NOT usable: see FAIL above.", file=sys.stderr)
        raise SystemExit(1)
    print("Backup OK: database and keys belong together and everything is readable.")


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    backup = sub.add_parser("backup", help="database + key backups").add_subparsers(dest="backup_cmd", required=True)
    verify = backup.add_parser(
        "verify", help="check a restored database and key file: keys present, every record readable, audit chain"
    )
    verify.add_argument("--public-key", action="append", help="extra trusted audit checkpoint key (PEM file)")
    verify.set_defaults(func=cmd_verify)


PLUGIN = Plugin(name="backup", cli=register_cli)
