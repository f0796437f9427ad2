"""Who may see and write a conversation: its participants (cached), the policy check with an audited
denial, and the access-log rows of reads."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core import policy
from server.core.db import Database
from server.core.errors import NotFound
from server.core.principal import Principal
from server.core.realtime import unit_room, user_room
from server.messaging import store
from server.messaging.models import Conversation, Participant
from server.messaging.rules import ConversationAccess

CACHE_LIMIT = 50_000  # conversations whose participants are kept; the cache starts over beyond it
# Node message (server/core/realtime.py `tell_nodes`) after a commit that changed a conversation's participants.
PARTICIPANTS_CHANGED = "messaging.participants_changed"


def access_of(conversation_id: uuid.UUID, participants: list[Participant]) -> ConversationAccess:
    return ConversationAccess(
        conversation_id,
        frozenset(p.unit_id for p in participants if p.unit_id is not None),
        frozenset(p.user_id for p in participants if p.user_id is not None),
    )


def rooms_of(access: ConversationAccess) -> list[str]:
    return [unit_room(unit_id) for unit_id in sorted(access.unit_ids)] + [
        user_room(user_id) for user_id in sorted(access.user_ids)
    ]


def acting_unit(principal: Principal, access: ConversationAccess) -> uuid.UUID | None:
    """The unit a participant writes for: None when they take part in person, else their first unit in it."""
    if principal.user_id in access.user_ids:
        return None
    mine = sorted(access.unit_ids & principal.unit_ids)
    return mine[0] if mine else None


async def audit_access(
    session: AsyncSession,
    principal: Principal,
    access: ConversationAccess,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    case_ref: str | None,
    ip: str | None = None,
) -> None:
    """Access-log row naming the unit the reader acted for (their first unit in the conversation)."""
    mine = sorted(access.unit_ids & principal.unit_ids)
    await record(
        session,
        actor=principal,
        action=action,
        object_type=object_type,
        object_id=object_id,
        unit_id=mine[0] if mine else None,
        case_ref=case_ref,
        ip=ip,
    )


async def open_conversation(
    session: AsyncSession, principal: Principal, conversation_id: uuid.UUID, access: ConversationAccess
) -> Conversation:
    """The conversation's row, its reading written to the access log; 404 if it is gone."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    await audit_access(
        session, principal, access, "conversation.read", "conversation", conversation.id, conversation.case_ref
    )
    return conversation


class Access:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[uuid.UUID, ConversationAccess] = {}
        self._loading: dict[uuid.UUID, asyncio.Task[ConversationAccess]] = {}

    async def access(self, conversation_id: uuid.UUID, *, fresh: bool = False) -> ConversationAccess:
        """Participants of a conversation, cached; concurrent misses share one query."""
        cached = None if fresh else self._cache.get(conversation_id)
        if cached is not None:
            return cached
        loading = self._loading.get(conversation_id)
        if loading is None:
            loading = asyncio.get_running_loop().create_task(self._load(conversation_id))
            self._loading[conversation_id] = loading
            loading.add_done_callback(lambda _task: self._loading.pop(conversation_id, None))
        return await asyncio.shield(loading)

    async def _load(self, conversation_id: uuid.UUID) -> ConversationAccess:
        async with self.db.transaction() as session:
            participants = await store.participants(session, conversation_id)
        if not participants:
            raise NotFound("conversation")
        access = access_of(conversation_id, participants)
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()
        self._cache[conversation_id] = access
        return access

    def remember(self, conversation_id: uuid.UUID, participants: list[Participant]) -> None:
        self._cache[conversation_id] = access_of(conversation_id, participants)

    def forget(self, conversation_id: uuid.UUID) -> None:
        self._cache.pop(conversation_id, None)

    async def participants_changed(self, data: dict[str, object]) -> None:
        """Node message `PARTICIPANTS_CHANGED` {conversation_id}: reload its participants when next asked."""
        try:
            self.forget(uuid.UUID(str(data.get("conversation_id"))))
        except ValueError:
            return

    async def start_over(self, _data: dict[str, object]) -> None:
        """Node message `NODES_RESYNC`: this node may have missed changes while Redis was away."""
        self._cache.clear()

    async def may(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> bool:
        """Whether `action` is allowed, to decide what a page offers; nothing is read, so nothing is audited."""
        try:
            return policy.allowed(principal, action, await self.access(conversation_id))
        except NotFound:
            return False

    async def require(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> ConversationAccess:
        """The conversation's access if allowed; otherwise an audited denial and 404 (no existence leak)."""
        try:
            access = await self.access(conversation_id)
        except NotFound:
            await self.audit_denied(principal, action, "conversation", conversation_id)
            raise
        if not policy.allowed(principal, action, access):
            access = await self.access(conversation_id, fresh=True)  # participants may have been added
            if not policy.allowed(principal, action, access):
                await self.audit_denied(principal, action, "conversation", conversation_id)
                raise NotFound("conversation")
        return access

    async def audit_denied(self, principal: Principal, action: str, object_type: str, object_id: object) -> None:
        async with self.db.transaction() as session:
            await record(
                session,
                actor=principal,
                action=action,
                object_type=object_type,
                object_id=str(object_id),
                outcome="denied",
            )
