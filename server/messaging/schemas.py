"""Pydantic models shared by the socket.io events, the REST routes and the service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from server.core.api import MAX_SQL_INT

Priority = Literal["normal", "urgent"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------ input


class ConversationCreate(Strict):
    subject: str = Field(min_length=1, max_length=200, description="What it is about; never a personal number.")
    case_ref: str | None = Field(
        default=None, max_length=64, description="Pseudonymous case id (never a personal identity number)."
    )
    from_unit_id: uuid.UUID | None = Field(default=None, description="The unit you write for (unit conversations).")
    unit_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20, description="Recipient units.")
    user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20, description="Person participants.")


class ConversationUnitsAdd(Strict):
    unit_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=10, description="Units to take part from now on (any already in it stay)."
    )


class MessageSend(Strict):
    conversation_id: uuid.UUID
    client_id: uuid.UUID = Field(
        description="Chosen by the client; a resend with the same id returns the same message."
    )
    body: str = Field(min_length=1, max_length=100_000, description="Text (limit enforced: max_body_chars).")
    priority: Priority = "normal"
    ack_required: bool = False
    reply_to: uuid.UUID | None = None
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=10)


class MessageSendBody(Strict):
    """REST variant of message:send (the conversation comes from the path)."""

    client_id: uuid.UUID
    body: str = Field(min_length=1, max_length=100_000)
    priority: Priority = "normal"
    ack_required: bool = False
    reply_to: uuid.UUID | None = None
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=10)


class SyncRequest(Strict):
    since: int = Field(
        default=0, ge=0, le=MAX_SQL_INT, description="The cursor from the previous sync (0: from the start)."
    )
    limit: int | None = Field(default=None, ge=1, le=1000)


class ReadRequest(Strict):
    conversation_id: uuid.UUID
    up_to: int = Field(
        ge=0, le=MAX_SQL_INT, description="Mark every message with seq <= up_to in the conversation as read."
    )


class ReadBody(Strict):
    up_to: int = Field(ge=0, le=MAX_SQL_INT)


class MessageRef(Strict):
    message_id: uuid.UUID


class ClaimRequest(Strict):
    message_id: uuid.UUID
    release: bool = Field(default=False, description="Give the message back to the unit.")


class ClaimBody(Strict):
    release: bool = False


class ReturnRequest(Strict):
    message_id: uuid.UUID
    reason: Literal["wrong_unit", "wrong_patient", "other"] = "wrong_unit"


class ReturnBody(Strict):
    reason: Literal["wrong_unit", "wrong_patient", "other"] = "wrong_unit"


class EditRequest(Strict):
    message_id: uuid.UUID
    body: str = Field(min_length=1, max_length=100_000)


class EditBody(Strict):
    body: str = Field(min_length=1, max_length=100_000)


class TypingRequest(Strict):
    conversation_id: uuid.UUID
    typing: bool


class TypingBody(Strict):
    typing: bool


class ConversationListQuery(Strict):
    unit_id: uuid.UUID | None = Field(default=None, description="Only conversations of this unit.")
    preview: bool = Field(
        default=False,
        description="Add each conversation's last message (sender, time, start of the text). Reading a preview "
        "is a read of the conversation: one access-log row per previewed conversation.",
    )


class MessagesQuery(Strict):
    before_seq: int | None = Field(default=None, ge=0, le=MAX_SQL_INT, description="Page backwards from this seq.")
    limit: int = Field(default=50, ge=1, le=200)


class SyncQuery(Strict):
    since: int = Field(default=0, ge=0, le=MAX_SQL_INT)
    limit: int | None = Field(default=None, ge=1, le=1000)


class UnitSettingsBody(Strict):
    urgent_minutes: int = Field(ge=1, le=7 * 24 * 60)
    normal_minutes: int = Field(ge=1, le=14 * 24 * 60)


# ----------------------------------------------------------------------------------------- output


class UserRef(BaseModel):
    id: uuid.UUID
    name: str


class ParticipantOut(BaseModel):
    unit_id: uuid.UUID | None = None
    unit_name: str | None = None
    user_id: uuid.UUID | None = None
    user_name: str | None = None


PREVIEW_CHARS = 120


class MessagePreview(BaseModel):
    id: uuid.UUID
    sender_name: str | None
    created_at: datetime
    text: str | None = Field(description=f"The first {PREVIEW_CHARS} characters on one line; None if retracted.")
    attachments: int
    retracted: bool


class ConversationOut(BaseModel):
    id: uuid.UUID
    kind: Literal["units", "direct"]
    subject: str
    case_ref: str | None
    created_at: datetime
    created_by: UserRef
    participants: list[ParticipantOut]
    last_seq: int
    last_message: MessagePreview | None = Field(default=None, description="Only with ?preview=true.")


class ConversationList(BaseModel):
    items: list[ConversationOut]


class ConversationSearchQuery(Strict):
    case_ref: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="The whole case reference (upper/lower case and white space do not matter); found by its "
        "keyed blind index, never compared in clear.",
    )  # fmt: skip
    q: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Part of the subject. Subjects are sealed: they are opened and matched only among the newest "
        "conversations you can read that pass the other filters (see `complete`).",
    )  # fmt: skip
    unit_id: uuid.UUID | None = Field(default=None, description="Only conversations this unit takes part in.")
    since: date | None = Field(default=None, description="Started on or after this day (Swedish time).")
    until: date | None = Field(default=None, description="Started on or before this day (Swedish time).")
    limit: int = Field(default=50, ge=1, le=200)


class ConversationSearch(BaseModel):
    items: list[ConversationOut] = Field(description="Latest activity first.")
    scanned: int = Field(description="How many conversations' subjects were opened to match `q` (0 without `q`).")
    complete: bool = Field(
        description="False when more conversations passed the other filters than a subject search opens: only "
        "the newest were searched; narrow by case reference, unit or date."
    )


class EscalationRouteOut(BaseModel):
    route_id: uuid.UUID | None
    purpose: str
    channel: str
    label: str
    value: str


class RecipientState(BaseModel):
    unit_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    needs_ack: bool
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    read_by: UserRef | None = Field(default=None, description="Only shown within the read-receipt policy.")
    acknowledged_at: datetime | None = None
    acknowledged_by: UserRef | None = None
    claimed_at: datetime | None = None
    claimed_by: UserRef | None = None
    returned_at: datetime | None = None
    returned_by: UserRef | None = None
    escalated_at: datetime | None = None
    escalation_level: int = 0
    escalation_route: EscalationRouteOut | None = None


class AttachmentOut(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    content_type: str
    size: int
    filename: str
    created_at: datetime
    message_id: uuid.UUID | None = None


class AttachmentType(BaseModel):
    content_type: str
    extensions: list[str] = Field(description="File name endings, e.g. ['.jpg', '.jpeg'].")


class AttachmentLimits(BaseModel):
    max_bytes: int = Field(description="The largest attachment the server accepts (BRYGGA_MAX_UPLOAD_BYTES).")
    types: list[AttachmentType] = Field(description="The content types accepted; anything else is refused (415).")


class SystemNotice(BaseModel):
    kind: str
    data: dict[str, Any]


class MessageOut(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int = Field(description="Position in the feed when it was created (orders a conversation).")
    event_seq: int | None = Field(default=None, description="Feed position of the change that sent this copy.")
    client_id: uuid.UUID
    sender: UserRef | None
    sender_unit_id: uuid.UUID | None
    kind: Literal["text", "system"]
    body: str | None = Field(description="None when retracted or for system notices.")
    system: SystemNotice | None = None
    priority: Priority
    ack_required: bool
    reply_to: uuid.UUID | None
    attachments: list[AttachmentOut]
    created_at: datetime
    edited_at: datetime | None
    retracted_at: datetime | None
    version: int
    state: Literal["sent", "open", "acknowledged", "returned", "escalated"]
    recipients: list[RecipientState]
    _json: dict[str, Any] | None = PrivateAttr(default=None)

    def as_json(self) -> dict[str, Any]:
        """The JSON form, computed once: a new message goes out both as the ack and as `message:new`."""
        if self._json is None:
            self._json = self.model_dump(mode="json")
        return self._json


class MessageList(BaseModel):
    items: list[MessageOut]


class SyncOut(BaseModel):
    messages: list[MessageOut]
    cursor: int
    has_more: bool


class ReadOut(BaseModel):
    marked: int


class InboxConversation(BaseModel):
    conversation_id: uuid.UUID
    subject: str
    case_ref: str | None
    last_seq: int
    unread: int
    unacknowledged: int
    escalated: int


class InboxCounts(BaseModel):
    unit_id: uuid.UUID
    unread: int
    unacknowledged: int
    escalated: int
    escalated_sent: int = Field(description="Messages this unit sent that escalated and are still open.")
    claimed: int


class InboxOut(InboxCounts):
    conversations: list[InboxConversation]


class InboxHours(BaseModel):
    """Whether a unit's secure-message inbox is staffed now (the calendar escalations use)."""

    unit_id: uuid.UUID
    open_now: bool
    next_opening: datetime | None = Field(description="When closed: when the inbox is next staffed (3 weeks ahead).")
    use_now: list[EscalationRouteOut] = Field(description="When closed: other routes usable now, best first.")


class AwaitingRecipient(BaseModel):
    """A recipient unit (or person) that has not yet acknowledged the message."""

    unit_id: uuid.UUID | None
    unit_name: str | None
    user_id: uuid.UUID | None
    delivered_at: datetime | None
    read_at: datetime | None
    claimed_by: UserRef | None
    escalated_at: datetime | None
    escalation_level: int
    escalation_route: EscalationRouteOut | None


class AwaitingMessage(BaseModel):
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    subject: str
    case_ref: str | None
    priority: Priority
    sender: UserRef | None
    sent_at: datetime = Field(description="Waiting for acknowledgement since then.")
    escalation_level: int = Field(description="The highest escalation level among its open recipients.")
    waiting_for: list[AwaitingRecipient]


class AwaitingList(BaseModel):
    unit_id: uuid.UUID
    items: list[AwaitingMessage] = Field(
        description="Urgent first, then the highest escalation level, then the longest wait."
    )


class UnitSettingsOut(BaseModel):
    unit_id: uuid.UUID
    urgent_minutes: int
    normal_minutes: int


class ReceiptEvent(BaseModel):
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    kind: Literal["delivered", "read", "acknowledged", "claimed", "released", "returned"]
    unit_id: uuid.UUID | None
    user_id: uuid.UUID | None
    by: UserRef | None
    at: datetime


class EscalationEvent(BaseModel):
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    unit_id: uuid.UUID
    level: int
    route: EscalationRouteOut | None
    at: datetime
