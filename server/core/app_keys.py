"""The app's keys, opened once per process: the envelope (KEKs) and the sealer of sealed columns.

Apart from server/core/envelope.py, which the models import (through sealed columns), so that the
envelope does not import the app context.
"""

from __future__ import annotations

from server.core.context import AppContext, Key
from server.core.envelope import Envelope, attach_sealer, kek_ids_in_use, open_checked

ENVELOPE: Key[Envelope] = Key("envelope")


async def envelope_for(ctx: AppContext) -> Envelope:
    """The app's envelope over the key file, checked against the key ids the database needs (the server
    refuses to start without them; see `open_checked`). Made once, shared by every domain."""
    envelope = ctx.find(ENVELOPE)
    if envelope is None:
        async with ctx.db.transaction() as session:
            in_use = await kek_ids_in_use(session)
        envelope = open_checked(ctx.settings.effective_key_file, in_use)
        attach_sealer(ctx.db, envelope, ctx.settings.effective_index_key_file, sealed_records=bool(in_use))
        ctx.provide(ENVELOPE, envelope)
    return envelope
