"""Authorisation rules for messaging, registered in the shared policy (server.core.policy)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from server.core.policy import rule
from server.core.principal import Principal


@dataclass(frozen=True)
class ConversationAccess:
    """Who takes part in a conversation: the object of the conversation.* rules."""

    conversation_id: uuid.UUID
    unit_ids: frozenset[uuid.UUID]
    user_ids: frozenset[uuid.UUID]

    def includes(self, principal: Principal) -> bool:
        return principal.user_id in self.user_ids or bool(self.unit_ids & principal.unit_ids)


@dataclass(frozen=True)
class RecipientRef:
    """One recipient of a message (a unit or a user): the object of the message.* recipient rules."""

    unit_id: uuid.UUID | None
    user_id: uuid.UUID | None

    def is_acted_for_by(self, principal: Principal) -> bool:
        if self.unit_id is not None:
            return principal.is_member_of(self.unit_id)
        return self.user_id == principal.user_id


@rule("conversation.read")
def _read(principal: Principal, access: Any) -> bool:
    return isinstance(access, ConversationAccess) and access.includes(principal)


@rule("conversation.post")
def _post(principal: Principal, access: Any) -> bool:
    return isinstance(access, ConversationAccess) and access.includes(principal)


@rule("conversation.add_unit")
def _add_unit(principal: Principal, access: Any) -> bool:
    """Bring another unit into a conversation: members of a unit that takes part (not people in person)."""
    return isinstance(access, ConversationAccess) and bool(access.unit_ids & principal.unit_ids)


@rule("conversation.create")
def _create(principal: Principal, from_unit_id: Any) -> bool:
    """Anyone may start a direct conversation; a unit conversation only from a unit one belongs to."""
    return from_unit_id is None or principal.is_member_of(from_unit_id)


@rule("message.edit")
def _edit(principal: Principal, sender_user_id: Any) -> bool:
    return bool(sender_user_id == principal.user_id)


@rule("message.act_as_recipient")
def _act_as_recipient(principal: Principal, recipient: Any) -> bool:
    """Acknowledge, claim or return a message on behalf of the recipient unit (or as the recipient)."""
    return isinstance(recipient, RecipientRef) and recipient.is_acted_for_by(principal)
