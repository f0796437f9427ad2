"""What other domains may ask of messaging: the seam video uses for invitations and the meeting chat.

The messaging plugin puts its service in `ctx.conversations`; video depends on this protocol, never on
the messaging package.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.core.principal import Principal


class ConversationGate(Protocol):
    async def may(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> bool:
        """Whether the principal may do `action` (e.g. "conversation.post") on the conversation."""
        ...

    async def require(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> object:
        """Raise NotFound (never reveal that it exists) unless the principal may do `action` on it."""
        ...

    async def post_system_notice(
        self, session: AsyncSession, conversation_id: uuid.UUID, kind: str, data: dict[str, Any]
    ) -> uuid.UUID:
        """Add a system message (e.g. a meeting invitation) in the caller's transaction; returns its id."""
        ...
