"""CLI: `brygga user ...`, `brygga membership ...`, `brygga token create`."""

from __future__ import annotations

import argparse
import getpass
import re
import uuid
from datetime import timedelta
from typing import Any

from server.core.context import AppContext
from server.core.principal import SYSTEM_ROLES
from server.identity import service, sessions, store
from server.settings import Settings

TTL = re.compile(r"^(\d+)([mhd])$")


def parse_ttl(text: str | None) -> timedelta | None:
    from server.core.commands import CommandError

    if not text:
        return None
    match = TTL.match(text)
    if not match:
        raise CommandError(f"--ttl '{text}' is not understood; use e.g. 30m, 1h or 7d.")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


def _run(settings: Settings, work: Any) -> Any:
    from server.core.commands import run_with_context

    return run_with_context(settings, work)


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> None:
    from auth import accounts

    password = args.password or accounts.generate_password()

    async def work(ctx: AppContext) -> str:
        async with ctx.db.transaction() as session:
            user = await service.create_local_user(
                session, args.login, args.name, roles=args.role or [], title=args.title, email=args.email
            )
            await accounts.set_password(session, user, password, ctx.clock())
            return str(user.id)

    print(f"Created user {args.login} ({_run(settings, work)}).")
    if not args.password:
        print(f"One-time password: {password}")
    print("At the first login (password, one-time code left empty) the user sets up an authenticator app.")


def cmd_user_password(args: argparse.Namespace, settings: Settings) -> None:
    from auth import accounts

    password = args.password or accounts.generate_password()

    async def work(ctx: AppContext) -> None:
        async with ctx.db.transaction() as session:
            user = await service.require_user(session, args.login)
            await accounts.set_password(session, user, password, ctx.clock())
            if args.reset_totp:
                await accounts.reset_totp(session, user, ctx.clock())
            await sessions.destroy_user_sessions(session, user.id)

    _run(settings, work)
    print(
        f"Password of {args.login} changed; their sessions were ended." + ("" if args.password else f" New: {password}")
    )
    if args.reset_totp:
        print("The authenticator app is reset: the user sets up a new one at the next login.")


def cmd_user_logout(args: argparse.Namespace, settings: Settings) -> None:
    async def work(ctx: AppContext) -> int:
        async with ctx.db.transaction() as session:
            user = await service.require_user(session, args.login)
            return await sessions.destroy_user_sessions(session, user.id)

    print(f"Ended {_run(settings, work)} session(s) of {args.login}; open connections close within a second.")


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
            await service.set_disabled(session, user, not args.enable)

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


def cmd_membership_admin(args: argparse.Namespace, settings: Settings) -> None:
    granted = args.action == "grant"

    async def work(ctx: AppContext) -> str:
        async with ctx.db.transaction() as session:
            user = await service.require_user(session, args.login)
            changed = await service.grant_membership_admin(
                session, user, args.organisation, granted=granted, by=getpass.getuser()
            )
        state = "may now" if granted else "may no longer"
        return f"{args.login} {state} manage unit memberships of organisation {args.organisation}" + (
            "." if changed else " (unchanged)."
        )

    print(_run(settings, work))


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(ctx: AppContext) -> list[str]:
        async with ctx.db.transaction() as session:
            user = await service.require_user(session, args.user)
            lines = []
            for token in await store.list_tokens(session, user.id):
                expiry = f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "never"
                state = "revoked" if token.revoked_at else f"expires {expiry}"
                lines.append(f"{token.id}  {token.name:20} created {token.created_at:%Y-%m-%d %H:%M}  {state}")
            return lines

    for line in _run(settings, work):
        print(line)


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> None:
    async def work(ctx: AppContext) -> bool:
        async with ctx.db.transaction() as session:
            return await service.revoke_token(session, args.id, ctx.clock())

    if not _run(settings, work):
        from server.core.commands import CommandError

        raise CommandError(f"No active token with id {args.id}.")
    print(f"Token {args.id} revoked.")


def cmd_idp_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from auth.keys import key_file, rotate

    kid = rotate(key_file(settings.data_dir))
    print(f"New signing key {kid}; the previous keys stay published for verification.")


def cmd_idp_client(args: argparse.Namespace, settings: Settings) -> None:
    import secrets as random

    from auth.provider import Provider

    secret = random.token_urlsafe(32) if args.confidential else None

    async def work(ctx: AppContext) -> None:
        async with ctx.db.transaction() as session:
            await Provider.register_client_row(
                session,
                args.client_id,
                name=args.name or args.client_id,
                redirect_uris=args.redirect_uri,
                post_logout_redirect_uris=args.post_logout_redirect_uri or [],
                backchannel_logout_uri=args.backchannel_logout_uri,
                secret=secret,
            )

    _run(settings, work)
    print(f"Client {args.client_id} registered at the built-in provider ({settings.builtin_issuer}).")
    if secret:
        print(f"Client secret (shown once): {secret}")


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
    create.add_argument("--role", action="append", choices=list(SYSTEM_ROLES), help="system role")
    create.add_argument("--password", help="initial password (default: a generated one-time password is printed)")
    create.set_defaults(func=cmd_user_create)
    user.add_parser("list", help="list users").set_defaults(func=cmd_user_list)
    password = user.add_parser("password", help="set a new password (ends the user's sessions)")
    password.add_argument("--login", required=True)
    password.add_argument("--password", help="the new password (default: generate and print one)")
    password.add_argument("--reset-totp", action="store_true", help="also make the user set up a new authenticator")
    password.set_defaults(func=cmd_user_password)
    logout = user.add_parser("logout", help="end all sessions and connections of a user")
    logout.add_argument("--login", required=True)
    logout.set_defaults(func=cmd_user_logout)
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

    admin = sub.add_parser(
        "membership-admin", help="the audited right to manage an organisation's unit memberships (PDL)"
    ).add_subparsers(dest="action", required=True)
    for action in ("grant", "revoke"):
        parser = admin.add_parser(action, help=f"{action} a user's membership-admin right for an organisation")
        parser.add_argument("--login", required=True)
        parser.add_argument("--organisation", required=True, type=uuid.UUID, help="organisation id")
        parser.set_defaults(func=cmd_membership_admin)

    token = sub.add_parser("token", help="personal access tokens").add_subparsers(dest="token_cmd", required=True)
    token_create = token.add_parser("create", help="create a token for a user and print it once")
    token_create.add_argument("--user", required=True, help="login")
    token_create.add_argument("--name", default="cli", help="what the token is for")
    token_create.add_argument("--ttl", help="lifetime such as 30m, 1h, 7d (default: no expiry)")
    token_create.set_defaults(func=cmd_token_create)
    token_list = token.add_parser("list", help="list a user's tokens (never the secrets)")
    token_list.add_argument("--user", required=True, help="login")
    token_list.set_defaults(func=cmd_token_list)
    token_revoke = token.add_parser("revoke", help="revoke a token by id")
    token_revoke.add_argument("--id", required=True, type=uuid.UUID)
    token_revoke.set_defaults(func=cmd_token_revoke)

    idp = sub.add_parser("idp", help="the built-in OpenID Provider").add_subparsers(dest="idp_cmd", required=True)
    idp.add_parser("rotate-keys", help="create a new ID-token signing key").set_defaults(func=cmd_idp_rotate)
    client = idp.add_parser("client", help="register (or update) a relying party at the built-in provider")
    client.add_argument("--client-id", required=True)
    client.add_argument("--name")
    client.add_argument("--redirect-uri", action="append", required=True, help="exact redirect URI (repeatable)")
    client.add_argument("--post-logout-redirect-uri", action="append")
    client.add_argument("--backchannel-logout-uri")
    client.add_argument("--confidential", action="store_true", help="issue a client secret (printed once)")
    client.set_defaults(func=cmd_idp_client)
