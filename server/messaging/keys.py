"""Key rotation for messaging: rewrap the data keys of message bodies, revisions and attachments."""

from __future__ import annotations

from server.core.db import Database
from server.core.envelope import Envelope
from server.messaging import store
from server.messaging.models import Message, MessageRevision


async def rewrap_batch(db: Database, envelope: Envelope, batch_size: int) -> int:
    """Rewrap up to `batch_size` data keys not wrapped by the active KEK (messages, revisions, files)."""
    active = envelope.keyring.active_id
    changed = 0
    async with db.transaction() as session:
        for model in (Message, MessageRevision):
            for row_id, kek_id, blob in await store.stale_bodies(session, model, active, batch_size):
                sealed = envelope.rewrap_blob(kek_id, blob)
                changed += await store.replace_body(
                    session, model, row_id, (kek_id, blob), (sealed.kek_id, sealed.blob)
                )
        for row_id, kek_id, wrapped in await store.stale_attachment_keys(session, active, batch_size):
            changed += await store.replace_attachment_key(session, row_id, kek_id, envelope.rewrap_key(kek_id, wrapped))
    return changed
