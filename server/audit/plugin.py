"""The access log required by HSLF-FS 2016:40: who did what, on which object, for which unit, when."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from server.audit import chain
from server.audit.cli import register_cli
from server.audit.routes import api
from server.core import leases
from server.core.app_keys import envelope_for
from server.core.background import running
from server.core.context import AppContext
from server.core.plugin import Plugin

CHAINER_LEASE = "audit-chainer"


async def chainer(ctx: AppContext) -> AsyncIterator[None]:
    """Run the audit chainer on the one node holding the `audit-chainer` lease; seal once more on shutdown.
    The chain covers the opened case references: the key files are loaded first."""
    await envelope_for(ctx)
    key = chain.load_or_create_signing_key(ctx.settings.data_dir)
    config = chain.ChainerConfig()
    keeper = leases.LeaseKeeper(ctx.db, CHAINER_LEASE, ctx.node_id, ttl=config.lease_ttl)
    async with keeper.kept():
        try:
            async with running(chain.run_chainer(ctx.db, key, config, lambda: keeper.held), name="audit-chainer"):
                yield
        finally:
            if keeper.held:  # seal once more while the lease is still ours
                with contextlib.suppress(Exception):
                    await chain.chain_pending(ctx.db)
                    await chain.write_checkpoint(ctx.db, key)


PLUGIN = Plugin(name="audit", api=api, cli=register_cli, lifecycle=[chainer])
