"""`brygga keys rotate|status`: key-encryption keys for messages and attachments at rest."""

from __future__ import annotations

import argparse

from sqlalchemy import func, select

from server.core.context import AppContext
from server.core.envelope import rotate_keys
from server.settings import Settings


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from server.cli import run_with_context
    from server.messaging.plugin import build_service

    async def work(ctx: AppContext) -> str:
        service = build_service(ctx)
        report = await rotate_keys(
            service.envelope,
            [service.rewrap_batch],
            batch_size=args.batch_size,
            grace_seconds=args.grace,
            retire=not args.keep_old,
            progress=print,
        )
        retired = ", ".join(report.retired) or "none"
        return f"Active key is now {report.new_kek_id}; rewrapped {report.rewrapped} data keys; retired: {retired}."

    print(run_with_context(settings, work))


def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> None:
    from server.cli import run_with_context
    from server.messaging.models import Attachment, Message, MessageRevision
    from server.messaging.plugin import envelope_for

    async def work(ctx: AppContext) -> list[str]:
        envelope = envelope_for(ctx)
        lines = [f"key file: {envelope.keyring.path}", f"active: {envelope.keyring.active_id}"]
        async with ctx.db.transaction() as session:
            for name, column in (
                ("messages", Message.body_kek),
                ("revisions", MessageRevision.body_kek),
                ("attachments", Attachment.kek_id),
            ):
                rows = await session.execute(select(column, func.count()).group_by(column))
                for kek_id, count in rows.all():
                    lines.append(f"{name:12} {kek_id:32} {count}")
        return lines

    for line in run_with_context(settings, work):
        print(line)


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="key-encryption keys for data at rest").add_subparsers(
        dest="keys_cmd", required=True
    )
    rotate = keys.add_parser("rotate", help="new key-encryption key; rewrap every data key (no downtime)")
    rotate.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")
    rotate.add_argument(
        "--grace", type=float, default=3.0, help="seconds for running servers to pick up the new key (default 3)"
    )
    rotate.add_argument("--keep-old", action="store_true", help="keep the old keys in the key file afterwards")
    rotate.set_defaults(func=cmd_keys_rotate)
    keys.add_parser("status", help="which key wraps how many records").set_defaults(func=cmd_keys_status)
