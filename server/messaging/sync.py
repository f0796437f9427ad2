"""Sync: everything visible to a client after its cursor, in feed order, marking it delivered."""

from __future__ import annotations

import asyncio
import uuid

from server.core.principal import Principal
from server.messaging import store
from server.messaging.access import Access, audit_access
from server.messaging.deps import Deps
from server.messaging.receipts import Receipts
from server.messaging.rendering import Renderer
from server.messaging.schemas import SyncOut

SYNCS_AT_ONCE = 4  # leave pooled connections for sends and logins


class Sync:
    def __init__(self, deps: Deps, access: Access, renderer: Renderer, receipts: Receipts) -> None:
        self.deps = deps
        self.access = access
        self.renderer = renderer
        self.receipts = receipts
        self._slots = asyncio.Semaphore(SYNCS_AT_ONCE)

    async def sync(self, principal: Principal, since: int, limit: int | None = None) -> SyncOut:
        """Everything visible to the caller after `since`, in feed order, one snapshot per message.

        Reading happens in one transaction; recording delivery and the access-log rows in a second,
        short write transaction (SQLite has one writer at a time, so writes must not wait on rendering).
        """
        deps = self.deps
        page = min(limit or deps.config.sync_page_size, deps.config.sync_page_size)
        async with self._slots, deps.db.transaction() as session:
            rows = await store.feed_page(session, principal.user_id, principal.unit_ids, since, page + 1)
            has_more = len(rows) > page
            rows = rows[:page]
            latest: dict[uuid.UUID, int] = {}
            order: list[uuid.UUID] = []
            for seq, message_id, _conversation in rows:
                if message_id not in latest:
                    order.append(message_id)
                latest[message_id] = seq
            messages = {m.id: m for m in await store.messages_by_ids(session, order)}
            undelivered = await store.undelivered_receipts(
                session, list(messages), principal.user_id, principal.unit_ids
            )
            conversations = {m.conversation_id: m for m in messages.values()}
            case_refs = await store.case_refs(session, list(conversations))
            ordered = [messages[i] for i in order if i in messages]
            loaded = await self.renderer.load(session, ordered)
        out = self.renderer.build(loaded, principal, latest)  # CPU work after the connection went back to the pool
        now = deps.clock()
        if undelivered or conversations:
            accesses = {c: await self.access.access(c) for c in conversations}
            async with deps.write_transaction() as session:
                await store.mark_delivered(session, [r.id for r in undelivered], now)
                for conversation_id, access in accesses.items():
                    await audit_access(
                        session,
                        principal,
                        access,
                        "conversation.sync",
                        "conversation",
                        conversation_id,
                        case_refs.get(conversation_id),
                    )
            for receipt in undelivered:
                await self.receipts.emit_receipt(receipt, "delivered", None, now, accesses[receipt.conversation_id])
        return SyncOut(messages=out, cursor=rows[-1][0] if rows else since, has_more=has_more)
