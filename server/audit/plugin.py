"""The access log required by HSLF-FS 2016:40: who did what, on which object, for which unit, when."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from server.audit import chain
from server.audit.cli import register_cli
from server.audit.routes import api
from server.core.context import AppContext
from server.core.plugin import Plugin


async def chainer(ctx: AppContext) -> AsyncIterator[None]:
    """Run the audit chainer for the app's lifetime; chain and checkpoint once more on shutdown."""
    key = chain.load_or_create_signing_key(ctx.settings.data_dir)
    config: chain.ChainerConfig = ctx.services.setdefault("audit_chainer_config", chain.ChainerConfig())
    task = asyncio.create_task(chain.run_chainer(ctx.db, key, config), name="audit-chainer")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await chain.chain_pending(ctx.db)
            await chain.write_checkpoint(ctx.db, key)


PLUGIN = Plugin(name="audit", api=api, cli=register_cli, lifecycle=[chainer])
