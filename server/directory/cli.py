"""CLI: `brygga directory import FILE [--dry-run]`, `export`, `generate --units N`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from server.core.context import AppContext
from server.settings import Settings


def _progress(line: str) -> None:
    print(f"  … {line}", file=sys.stderr, flush=True)


def _format(path: str, given: str | None) -> str:
    if given:
        return given
    return "json" if path.lower().endswith(".json") else "csv"


def cmd_import(args: argparse.Namespace, settings: Settings) -> None:
    from server.core.commands import CommandError, run_with_context
    from server.directory import importer

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"No such file: {path}")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not UTF-8; save it as UTF-8 and try again.") from None
    fmt: Any = _format(str(path), args.format)
    print(f"Importing {path} ({fmt}{', dry run' if args.dry_run else ''})", file=sys.stderr, flush=True)

    async def work(ctx: AppContext) -> importer.ImportReport:
        return await importer.run_import(
            ctx.db, content, fmt, dry_run=args.dry_run, progress=_progress, now=ctx.clock()
        )

    report: importer.ImportReport = run_with_context(settings, work)
    for error in report.errors:
        print(f"line {error.line}: {error.record}: {error.reason}")
    summary = (
        f"{report.records} records; organisations {report.organisations_created} new / "
        f"{report.organisations_updated} updated; units {report.units_created} new / {report.units_updated} updated; "
        f"{report.routes_written} routes"
    )
    if report.errors:
        raise CommandError(f"{len(report.errors)} record(s) rejected; nothing was imported. ({summary})")
    print(("Dry run OK, nothing written: " if args.dry_run else "Imported: ") + summary)


def cmd_export(args: argparse.Namespace, settings: Settings) -> None:
    from server.core.commands import run_with_context
    from server.directory import export

    fmt: Any = args.format or (_format(args.output, None) if args.output else "json")

    async def work(ctx: AppContext) -> str:
        return await export.export(ctx.db, fmt)

    body: str = run_with_context(settings, work)
    if args.output:
        Path(args.output).write_text(body, encoding="utf-8")
        print(f"Wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(body)


def cmd_generate(args: argparse.Namespace, settings: Settings) -> None:
    from server.core.commands import CommandError, run_with_context
    from server.directory import seed

    async def work(ctx: AppContext) -> int:
        try:
            return await seed.generate(ctx, args.units, seed=args.seed, progress=_progress)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None

    print(f"Generated {run_with_context(settings, work)} synthetic units (invented names).")


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    directory = sub.add_parser("directory", help="import, export or generate the contact directory")
    commands = directory.add_subparsers(dest="directory_cmd", required=True)
    imp = commands.add_parser("import", help="import units and routes from CSV or JSON (all or nothing)")
    imp.add_argument("file")
    imp.add_argument("--format", choices=["csv", "json"], help="default: from the file name")
    imp.add_argument("--dry-run", action="store_true", help="check and report only; write nothing")
    imp.set_defaults(func=cmd_import)
    exp = commands.add_parser("export", help="export the directory (same formats as import)")
    exp.add_argument("--format", choices=["csv", "json"])
    exp.add_argument("-o", "--output", help="file to write (default: stdout)")
    exp.set_defaults(func=cmd_export)
    gen = commands.add_parser("generate", help="add synthetic units for load tests (needs seed-demo first)")
    gen.add_argument("--units", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=1, help="random seed (same seed, same names)")
    gen.set_defaults(func=cmd_generate)
