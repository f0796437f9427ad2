"""CLI: `brygga user ...`, `brygga membership ...`, `brygga token create`."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any

from server.core.context import AppContext
from server.identity import service, store
from server.settings import Settings

TTL = re.compile(r"^(\d+)([mhd])$")


def parse_ttl(text: str | None) -> timedelta | None:
    from server.cli import CommandError

    if not text:
        return None
    match = TTL.match(text)
    if not match:
        raise CommandError(f"--ttl '{text}' is not understood; use e.g. 30m, 1h or 7d.")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


def _run(settings: Settings, work: Any) -> Any:
    from server.cli import run_with_context

    return run_with_context(settings, work)


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> None:
    async def work(ctx: AppContext) -> str:
        async with ctx.db.transaction() as session:
            user = await service.create_local_user(
                session, args.login, args.name, roles=args.role or [], title=args.title, email=args.email
            )
            return str(user.id)

    print(f"Created user {args.login} ({_run(settings, work)}).")


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(ctx: AppContext) -> list[str]:
        async with ctx.db.transaction() as session:
            return [
                f"{user.login or '-':20} {user.display_name:30} {','.join(user.system_roles) or '-':25} "
                f"{'disabled' if user.disabled else 'active'}"
                for user in await store.list_users(session)
            ]

    for line in _run(settings, work):
        print(line)


def cmd_user_disable(args: argparse.Namespace, settings: Settings) -> None:
    async def work(ctx: AppContext) -> None:
        async with ctx.db.transaction() as session:
            user = await service.require_user(session, args.login)
            user.disabled = not args.enable
        if not args.enable and settings.redis_url:
            from server.core.cluster import publish_disconnect_user

            await publish_disconnect_user(settings.redis_url, user.id)  # all nodes drop the user's sockets

    _run(settings, work)
    print(f"User {args.login} {'enabled' if args.enable else 'disabled'}.")


def cmd_membership(args: argparse.Namespace, settings: Settings) -> None:
    async def work(ctx: AppContext) -> str:
        async with ctx.db.transaction() as session:
            user = await service.require_user(session, args.login)
            unit = await service.find_unit(session, args.unit)
            if args.action == "add":
                await service.set_membership(session, user, unit.id, args.role)
                return f"{args.login} is now {args.role} of {unit.name}."
            removed = await service.remove_membership(session, user, unit.id)
            return f"{args.login} removed from {unit.name}." if removed else f"{args.login} was not in {unit.name}."

    print(_run(settings, work))


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> None:
    ttl = parse_ttl(args.ttl)

    async def work(ctx: AppContext) -> str:
        async with ctx.db.transaction() as session:
            user = await service.require_user(session, args.user)
            return await service.create_token_for(session, user, args.name, ttl)

    print(_run(settings, work))


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = sub.add_parser("user", help="manage local user accounts").add_subparsers(dest="user_cmd", required=True)
    create = user.add_parser("create", help="create a local account")
    create.add_argument("--login", required=True)
    create.add_argument("--name", required=True, help="display name, e.g. 'Anna Svensson'")
    create.add_argument("--title", help="e.g. 'Sjuksköterska'")
    create.add_argument("--email")
    create.add_argument("--role", action="append", choices=["directory_admin", "auditor"], help="system role")
    create.set_defaults(func=cmd_user_create)
    user.add_parser("list", help="list users").set_defaults(func=cmd_user_list)
    disable = user.add_parser("disable", help="disable (or --enable) an account")
    disable.add_argument("--login", required=True)
    disable.add_argument("--enable", action="store_true", help="re-enable instead")
    disable.set_defaults(func=cmd_user_disable)

    membership = sub.add_parser("membership", help="put users in units").add_subparsers(dest="action", required=True)
    for action in ("add", "remove"):
        parser = membership.add_parser(action, help=f"{action} a user's unit membership")
        parser.add_argument("--login", required=True)
        parser.add_argument("--unit", required=True, help="unit id or HSA-id")
        if action == "add":
            parser.add_argument("--role", default="member", choices=["member", "unit_admin"])
        parser.set_defaults(func=cmd_membership)

    token = sub.add_parser("token", help="personal access tokens").add_subparsers(dest="token_cmd", required=True)
    token_create = token.add_parser("create", help="create a token for a user and print it once")
    token_create.add_argument("--user", required=True, help="login")
    token_create.add_argument("--name", default="cli", help="what the token is for")
    token_create.add_argument("--ttl", help="lifetime such as 30m, 1h, 7d (default: no expiry)")
    token_create.set_defaults(func=cmd_token_create)
