"""`brygga` command line: serve, migrate, seed demo data and administer users, tokens and domains."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys

from server.core.commands import CommandError, run_with_context
from server.core.context import AppContext
from server.settings import Settings

EPILOG = """\
Configuration comes from BRYGGA_* environment variables (see README). Typical first run:
  brygga migrate && brygga seed-demo && brygga serve
"""


def use_uvloop() -> None:
    """Serve on uvloop when it is installed (less event-loop CPU per socket.io packet)."""
    if os.environ.get("BRYGGA_UVLOOP", "1") == "0":
        return
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    from aiohttp import web

    from server.app import create_app
    from server.migrate import upgrade

    if args.migrate:
        asyncio.run(upgrade(settings.effective_database_url))
    use_uvloop()
    app = create_app(settings)
    # Everything imported and built so far lives as long as the process: keep it out of the garbage
    # collector's full passes, whose pauses otherwise show up as send→deliver latency spikes.
    gc.freeze()
    # Collect the young generation every 50,000 net allocations instead of 700: under load most
    # per-message objects die by reference counting before that, so far fewer reach the old generation
    # and its full collections (over 200 ms each with 2,000 sockets open, every ~1 s at full load) become
    # rare. Measured with bench/messaging.py; see docs/messaging.md.
    gc.set_threshold(50_000, 20, 100)
    print(f"Brygga serving on {settings.public_base_url} (listening on {settings.host}:{settings.port})", flush=True)
    # keepalive_timeout also bounds how long a new or idle connection may take to send a whole request
    # head (aiohttp closes it if no complete request arrived by then): slow-header clients cannot pile up.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=5,
        keepalive_timeout=settings.header_timeout_seconds,
    )


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from server.migrate import current_heads, upgrade

    asyncio.run(upgrade(settings.effective_database_url))
    heads = asyncio.run(current_heads(settings.effective_database_url))
    print(f"Database is at {', '.join(sorted(heads))}.")


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> None:
    from server.domains import plugins

    async def seed(ctx: AppContext) -> list[str]:
        lines: list[str] = []
        for plugin in plugins():
            if plugin.seed_demo is not None:
                lines.extend(await plugin.seed_demo(ctx))
        return lines

    for line in run_with_context(settings, seed):
        print(line)


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> None:
    import json

    from server.app import openapi_document

    print(json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=True))


def build_parser() -> argparse.ArgumentParser:
    from server.domains import plugins

    parser = argparse.ArgumentParser(
        prog="brygga",
        description="Brygga: secure messaging, contact directory and video meetings for care units.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = sub.add_parser("serve", help="run the HTTP and socket.io server")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)
    sub.add_parser("seed-demo", help="load the demo directory, units and users (idempotent)").set_defaults(
        func=cmd_seed_demo
    )
    sub.add_parser(
        "openapi", help="print the OpenAPI document (/api/openapi.json) without starting a server"
    ).set_defaults(func=cmd_openapi)
    for plugin in plugins():
        if plugin.cli is not None:
            plugin.cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from server.core.envelope import KeyFileError
    from server.core.errors import Problem
    from server.core.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {key: getattr(args, key) for key in ("host", "port") if getattr(args, key, None) is not None}
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        args.func(args, settings)
    except (CommandError, Problem, KeyFileError) as exc:  # KeyFileError: `serve` refuses a database without its keys
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
