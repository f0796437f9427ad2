"""`brygga keys rotate|status`: key-encryption keys for messages, attachments, TOTP secrets and sealed columns."""

from __future__ import annotations

import argparse
import functools

from server.core.context import AppContext
from server.core.envelope import KeyRing, kek_ids_in_use, rotate_keys
from server.settings import Settings


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from auth.accounts import rewrap_totp_batch
    from server.core.commands import run_with_context
    from server.core.sealed_columns import rewrap_sealed_columns
    from server.messaging.wiring import build_service

    async def work(ctx: AppContext) -> str:
        service = await build_service(ctx)
        report = await rotate_keys(
            service.envelope,
            [
                service.rewrap_batch,
                functools.partial(rewrap_totp_batch, ctx.db),
                functools.partial(rewrap_sealed_columns, ctx.db),
            ],
            batch_size=args.batch_size,
            grace_seconds=args.grace,
            drop_retired=args.drop_retired,
            progress=print,
        )
        retired = ", ".join(report.retired) or "none"
        dropped = f"; deleted: {', '.join(report.dropped)}" if report.dropped else ""
        return (
            f"Active key is now {report.new_kek_id}; rewrapped {report.rewrapped} data keys; "
            f"retired (kept wrapped in the key file): {retired}{dropped}."
        )

    print(run_with_context(settings, work))


def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> None:
    """Which key wraps how many records; exit 1 when a key id in use is missing from the key file."""
    from server.core.commands import CommandError, run_with_context

    async def work(ctx: AppContext) -> dict[str, dict[str, int]]:
        async with ctx.db.transaction() as session:
            return await kek_ids_in_use(session)

    in_use = run_with_context(settings, work)
    path = settings.effective_key_file
    known: list[str] = []
    retired: list[str] = []
    if path.exists():
        keyring = KeyRing(path)
        known, retired = keyring.ids(), keyring.retired_ids()
        print(f"key file: {path}\nactive: {keyring.active_id}")
        if retired:
            print(f"retired (wrapped by the active key): {', '.join(retired)}")
    else:
        print(f"key file: {path} (MISSING)")
    for kek_id, counts in sorted(in_use.items()):
        state = "MISSING" if kek_id not in known else "retired" if kek_id in retired else "ok"
        for name, count in sorted(counts.items()):
            print(f"{name:12} {kek_id:32} {count:>9} {state}")
    missing = sorted(kek_id for kek_id in in_use if kek_id not in known)
    if missing:
        raise CommandError(
            f"records are sealed with {', '.join(missing)}, which {path} lacks: restore the key file backup"
        )


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="key-encryption keys for data at rest").add_subparsers(
        dest="keys_cmd", required=True
    )
    rotate = keys.add_parser("rotate", help="new key-encryption key; rewrap every data key (no downtime)")
    rotate.add_argument("--batch-size", type=int, default=100, help="rows per transaction (default 100)")
    rotate.add_argument(
        "--grace", type=float, default=3.0, help="seconds for running servers to pick up the new key (default 3)"
    )
    rotate.add_argument(
        "--drop-retired",
        action="store_true",
        help="delete the retired keys instead of keeping them wrapped: only once no database backup "
        "from before this rotation is kept (such a backup becomes unreadable)",
    )
    rotate.set_defaults(func=cmd_keys_rotate)
    keys.add_parser("status", help="which key wraps how many records; exit 2 if a key in use is missing").set_defaults(
        func=cmd_keys_status
    )
