"""REST for messaging: the same operations as the socket.io events, for integrations."""

from __future__ import annotations

import urllib.parse
import uuid

from aiohttp import web
from pydantic import BaseModel, Field

from server.core.api import ApiRouter, body_chunks, path_uuid
from server.core.context import ctx_of
from server.core.errors import NotFound, Problem
from server.core.http import client_address
from server.identity.authn import principal_of
from server.messaging.events import messaging, rate_limited, sync_continuations
from server.messaging.schemas import (
    AttachmentLimits,
    AttachmentOut,
    AttachmentType,
    AwaitingList,
    ClaimBody,
    ConversationCreate,
    ConversationList,
    ConversationListQuery,
    ConversationOut,
    ConversationSearch,
    ConversationSearchQuery,
    ConversationUnitsAdd,
    EditBody,
    InboxHours,
    InboxOut,
    MessageList,
    MessageOut,
    MessageSend,
    MessageSendBody,
    MessagesQuery,
    ReadBody,
    ReadOut,
    ReturnBody,
    SyncOut,
    SyncQuery,
    TypingBody,
    UnitSettingsBody,
    UnitSettingsOut,
)
from server.messaging.sniff import ALLOWED_TYPES, EXTENSIONS

api = ApiRouter()
TAGS = ["messaging"]
CONVERSATION = "/api/v1/conversations/{conversation_id}"
MESSAGE = CONVERSATION + "/messages/{message_id}"


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")


async def check_rate(request: web.Request, *, send: bool = False) -> None:
    ctx = ctx_of(request)
    limiter = ctx.limiter
    config = messaging(ctx).config
    principal = principal_of(request)
    window = config.rate_window_seconds
    hits = [(f"user:{principal.user_id}", config.user_events_per_window, window)]
    if send:
        hits.append((f"send:{principal.user_id}", config.user_sends_per_window, window))
    if not await limiter.hit_all(hits):
        problem = rate_limited()
        problem.headers["Retry-After"] = str(int(config.rate_window_seconds))
        raise problem


@api.route(
    "GET",
    "/api/v1/conversations/sync",
    summary="Changes visible to me after a cursor (like `sync`; the next page of a catch-up is never rate limited)",
    tags=TAGS,
    query=SyncQuery,
    response=SyncOut,
)
async def sync_conversations(request: web.Request, query: SyncQuery) -> SyncOut:
    ctx, principal = ctx_of(request), principal_of(request)
    continuations, caller = sync_continuations(ctx), f"rest:{principal.user_id}"
    if not continuations.is_continuation(caller, query.since):
        await check_rate(request)
    result = await messaging(ctx).sync(principal, query.since, query.limit)
    continuations.served(caller, result.cursor, result.has_more)
    return result


@api.route(
    "POST",
    "/api/v1/conversations",
    summary="Start a conversation between units or persons",
    tags=TAGS,
    body=ConversationCreate,
    response=ConversationOut,
    status=201,
    errors=(404,),
)
async def create_conversation(request: web.Request, body: ConversationCreate) -> ConversationOut:
    await check_rate(request)
    return await messaging(ctx_of(request)).create_conversation(principal_of(request), body)


@api.route(
    "GET",
    "/api/v1/conversations",
    summary="My conversations (or one unit's)",
    tags=TAGS,
    query=ConversationListQuery,
    response=ConversationList,
)
async def list_conversations(request: web.Request, query: ConversationListQuery) -> ConversationList:
    items = await messaging(ctx_of(request)).list_conversations(principal_of(request), query.unit_id, query.preview)
    return ConversationList(items=items)


@api.route(
    "GET",
    "/api/v1/conversations/search",  # before CONVERSATION: "search" is not a conversation id
    summary="Search my conversations by case reference, subject, unit and date (the search is logged)",
    tags=TAGS,
    query=ConversationSearchQuery,
    response=ConversationSearch,
)
async def search_conversations(request: web.Request, query: ConversationSearchQuery) -> ConversationSearch:
    return await messaging(ctx_of(request)).search_conversations(principal_of(request), query)


@api.route(
    "GET",
    CONVERSATION,
    summary="One conversation (access is logged)",
    tags=TAGS,
    response=ConversationOut,
    errors=(404,),
)
async def get_conversation(request: web.Request) -> ConversationOut:
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    return await messaging(ctx_of(request)).get_conversation(principal_of(request), conversation_id)


@api.route(
    "POST",
    CONVERSATION + "/units",
    summary="Add units to a conversation (members of a unit taking part; they see its history; audited)",
    tags=TAGS,
    body=ConversationUnitsAdd,
    response=ConversationOut,
    errors=(403, 404, 409, 422),
)
async def add_conversation_units(request: web.Request, body: ConversationUnitsAdd) -> ConversationOut:
    await check_rate(request)
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    return await messaging(ctx_of(request)).add_units(principal_of(request), conversation_id, body.unit_ids)


@api.route(
    "GET",
    CONVERSATION + "/messages",
    summary="Messages of a conversation, oldest first (access is logged)",
    tags=TAGS,
    query=MessagesQuery,
    response=MessageList,
    errors=(404,),
)
async def list_messages(request: web.Request, query: MessagesQuery) -> MessageList:
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    items = await messaging(ctx_of(request)).list_messages(
        principal_of(request), conversation_id, query.before_seq, query.limit
    )
    return MessageList(items=items)


@api.route(
    "POST",
    CONVERSATION + "/messages",
    summary="Send a message (201; a resend with the same client_id: 200)",
    tags=TAGS,
    body=MessageSendBody,
    response=MessageOut,
    status=201,
    errors=(404, 409, 429),
)
async def send_message(request: web.Request, body: MessageSendBody) -> web.Response:
    await check_rate(request, send=True)
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    send = MessageSend(conversation_id=conversation_id, **body.model_dump())
    message, created = await messaging(ctx_of(request)).send(principal_of(request), send)
    return json_response(message, 201 if created else 200)


@api.route(
    "POST",
    CONVERSATION + "/read",
    summary="Mark messages up to a seq as read",
    tags=TAGS,
    body=ReadBody,
    response=ReadOut,
    errors=(404,),
)
async def read_messages(request: web.Request, body: ReadBody) -> ReadOut:
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    marked = await messaging(ctx_of(request)).mark_read(principal_of(request), conversation_id, body.up_to)
    return ReadOut(marked=marked)


@api.route(
    "POST", CONVERSATION + "/typing", summary="Typing indicator", tags=TAGS, body=TypingBody, status=204, errors=(404,)
)
async def typing(request: web.Request, body: TypingBody) -> None:
    await check_rate(request)
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    await messaging(ctx_of(request)).typing(principal_of(request), conversation_id, body.typing)


async def message_in_path(request: web.Request) -> uuid.UUID:
    """The message id from the path, checked to belong to the conversation in the path (else 404)."""
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    message_id = path_uuid(request, "message_id", "message")
    if await messaging(ctx_of(request)).conversation_of(message_id) != conversation_id:
        raise NotFound("message")
    return message_id


@api.route(
    "POST",
    MESSAGE + "/acknowledge",
    summary="Acknowledge (kvittera) for my unit",
    tags=TAGS,
    response=MessageOut,
    errors=(404, 409),
)
async def acknowledge_message(request: web.Request) -> MessageOut:
    message_id = await message_in_path(request)
    return await messaging(ctx_of(request)).acknowledge(principal_of(request), message_id)


@api.route(
    "POST",
    MESSAGE + "/claim",
    summary="Take (or release) responsibility for a message",
    tags=TAGS,
    body=ClaimBody,
    response=MessageOut,
    errors=(404, 409),
)
async def claim_message(request: web.Request, body: ClaimBody) -> MessageOut:
    message_id = await message_in_path(request)
    return await messaging(ctx_of(request)).claim(principal_of(request), message_id, body.release)


@api.route(
    "POST",
    MESSAGE + "/return",
    summary="Return a misdirected message to its sender",
    tags=TAGS,
    body=ReturnBody,
    response=MessageOut,
    errors=(404,),
)
async def return_message(request: web.Request, body: ReturnBody) -> MessageOut:
    message_id = await message_in_path(request)
    return await messaging(ctx_of(request)).return_misdirected(principal_of(request), message_id, body.reason)


@api.route(
    "PATCH",
    MESSAGE,
    summary="Edit my message within the edit window",
    tags=TAGS,
    body=EditBody,
    response=MessageOut,
    errors=(404, 409),
)
async def edit_message(request: web.Request, body: EditBody) -> MessageOut:
    message_id = await message_in_path(request)
    return await messaging(ctx_of(request)).edit(principal_of(request), message_id, body.body)


@api.route(
    "POST",
    MESSAGE + "/retract",
    summary="Retract my message within the edit window",
    tags=TAGS,
    response=MessageOut,
    errors=(404, 409),
)
async def retract_message(request: web.Request) -> MessageOut:
    message_id = await message_in_path(request)
    return await messaging(ctx_of(request)).edit(principal_of(request), message_id, None)


@api.route(
    "POST",
    CONVERSATION + "/attachments",
    summary="Upload an attachment (streamed, encrypted at rest)",
    tags=TAGS,
    response=AttachmentOut,
    status=201,
    errors=(404, 413, 415),
    raw_body="application/octet-stream",
    description="Send the file as the raw body with its real Content-Type "
    f"({', '.join(sorted(ALLOWED_TYPES))}) and the file name, percent-encoded, in X-Filename. "
    "The size limit is BRYGGA_MAX_UPLOAD_BYTES.",
)
async def upload_attachment(request: web.Request) -> AttachmentOut:
    await check_rate(request)
    ctx = ctx_of(request)
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    declared = request.content_length
    limit = ctx.settings.max_upload_bytes
    if declared is not None and declared > limit:
        raise Problem("payload_too_large", f"Attachments can be at most {limit // (1024 * 1024)} MiB.", status=413)
    filename = urllib.parse.unquote(request.headers.get("X-Filename", ""))

    return await messaging(ctx).upload(
        principal_of(request), conversation_id, request.content_type, filename, body_chunks(request, 256 * 1024), limit
    )


@api.route(
    "GET",
    "/api/v1/attachment-limits",
    summary="What an attachment may be: the size limit and the accepted types (check before uploading)",
    tags=TAGS,
    response=AttachmentLimits,
)
async def attachment_limits(request: web.Request) -> AttachmentLimits:
    return AttachmentLimits(
        max_bytes=ctx_of(request).settings.max_upload_bytes,
        types=[AttachmentType(content_type=kind, extensions=list(EXTENSIONS[kind])) for kind in sorted(ALLOWED_TYPES)],
    )


class AttachmentQuery(BaseModel):
    inline: bool = Field(
        default=False,
        description="Show a PDF or an image in the page (a sandboxed frame of the same origin) instead of saving it.",
    )


PREVIEWABLE = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif"})


@api.route(
    "GET",
    CONVERSATION + "/attachments/{attachment_id}",
    summary="Download an attachment (access is logged)",
    tags=TAGS,
    query=AttachmentQuery,
    errors=(404,),
    content_type="application/octet-stream",
)
async def download_attachment(request: web.Request, query: AttachmentQuery) -> web.StreamResponse:
    conversation_id = path_uuid(request, "conversation_id", "conversation")
    attachment_id = path_uuid(request, "attachment_id", "attachment")
    meta, chunks = await messaging(ctx_of(request)).open_attachment(
        principal_of(request), conversation_id, attachment_id, ip=client_address(request)
    )
    inline = query.inline and meta.content_type in PREVIEWABLE
    ancestors = "'self'" if inline else "'none'"
    response = web.StreamResponse(
        headers={
            "Content-Type": meta.content_type,
            "Content-Length": str(meta.size),
            "Content-Disposition": ("inline" if inline else "attachment")
            + "; filename*=UTF-8''"
            + urllib.parse.quote(meta.filename),
            # Sandboxed either way (no scripts, no same-origin access); a preview may be framed by our own page only.
            # The other security headers come from `security_headers` as the response is prepared.
            "Content-Security-Policy": f"default-src 'none'; sandbox; frame-ancestors {ancestors}",
            "X-Frame-Options": "SAMEORIGIN" if inline else "DENY",
        }
    )
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@api.route(
    "GET",
    "/api/v1/units/{unit_id}/inbox",
    summary="A unit's inbox with unread/unacknowledged/escalated counts",
    tags=TAGS,
    response=InboxOut,
    errors=(404,),
)
async def unit_inbox(request: web.Request) -> InboxOut:
    unit_id = path_uuid(request, "unit_id", "unit")
    return await messaging(ctx_of(request)).inbox(principal_of(request), unit_id)


@api.route(
    "GET",
    "/api/v1/units/{unit_id}/inbox-hours",
    summary="Is the unit's secure-message inbox staffed now; if not, its next opening and routes to use now",
    tags=TAGS,
    response=InboxHours,
    errors=(404,),
)
async def unit_inbox_hours(request: web.Request) -> InboxHours:
    unit_id = path_uuid(request, "unit_id", "unit")
    return await messaging(ctx_of(request)).inbox_hours(unit_id)


@api.route(
    "GET",
    "/api/v1/units/{unit_id}/awaiting-acknowledgement",
    summary="Messages this unit sent that still wait for acknowledgement (urgent and escalated first)",
    tags=TAGS,
    response=AwaitingList,
    errors=(404,),
)
async def awaiting_acknowledgement(request: web.Request) -> AwaitingList:
    unit_id = path_uuid(request, "unit_id", "unit")
    return await messaging(ctx_of(request)).awaiting_acknowledgement(principal_of(request), unit_id)


@api.route(
    "GET",
    "/api/v1/units/{unit_id}/messaging-settings",
    summary="A unit's acknowledgement deadlines",
    tags=TAGS,
    response=UnitSettingsOut,
    errors=(404,),
)
async def get_unit_settings(request: web.Request) -> UnitSettingsOut:
    unit_id = path_uuid(request, "unit_id", "unit")
    return await messaging(ctx_of(request)).get_unit_settings(principal_of(request), unit_id)


@api.route(
    "PUT",
    "/api/v1/units/{unit_id}/messaging-settings",
    summary="Set a unit's acknowledgement deadlines",
    tags=TAGS,
    body=UnitSettingsBody,
    response=UnitSettingsOut,
    errors=(404,),
)
async def put_unit_settings(request: web.Request, body: UnitSettingsBody) -> UnitSettingsOut:
    unit_id = path_uuid(request, "unit_id", "unit")
    return await messaging(ctx_of(request)).set_unit_settings(
        principal_of(request), unit_id, body.urgent_minutes, body.normal_minutes
    )
