"""socket.io events for messaging (documented in docs/realtime.md).

Every handler is rate limited per connection and per user before it does any work (except the next
page of a `sync` catch-up); a refusal is the ack `{ok: false, error: {code: "rate_limited", ...}}`.
Payloads are validated by the models.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from server.core.context import AppContext, Key
from server.core.errors import Problem
from server.core.principal import Principal
from server.core.realtime import EventHandler, EventRouter
from server.messaging.schemas import (
    ClaimRequest,
    EditRequest,
    MessageRef,
    MessageSend,
    ReadRequest,
    ReturnRequest,
    SyncRequest,
    TypingRequest,
)
from server.messaging.service import MessagingService

events = EventRouter()
MESSAGING: Key[MessagingService] = Key("messaging")  # the messaging plugin starts the service and keeps it here


def messaging(ctx: AppContext) -> MessagingService:
    service = ctx.find(MESSAGING)
    if service is None:
        raise Problem("unavailable", "Messaging is starting; try again in a moment.", status=503)
    return service


def rate_limited() -> Problem:
    return Problem("rate_limited", "Too many events from this client; wait a few seconds and try again.", status=429)


async def check_rate(ctx: AppContext, principal: Principal, sid: str, *, send: bool = False) -> None:
    limiter = ctx.limiter
    config = messaging(ctx).config
    window = config.rate_window_seconds
    hits = [
        (f"conn:{sid}", config.connection_events_per_window, window),
        (f"user:{principal.user_id}", config.user_events_per_window, window),
    ]
    if send:
        hits.append((f"send:{principal.user_id}", config.user_sends_per_window, window))
    if not await limiter.hit_all(hits):  # one Redis round trip for all of them
        raise rate_limited()


def limited(*, send: bool = False) -> Callable[[Callable[..., Awaitable[Any]]], EventHandler]:
    def wrap(handler: Callable[..., Awaitable[Any]]) -> EventHandler:
        @functools.wraps(handler)
        async def guarded(ctx: AppContext, principal: Principal, sid: str, payload: Any) -> dict[str, Any] | None:
            await check_rate(ctx, principal, sid, send=send)
            result: dict[str, Any] | None = await handler(ctx, principal, sid, payload)
            return result

        return guarded

    return wrap


@events.on(
    "message:send",
    MessageSend,
    "Send a message; the ack (carrying the message) comes only after it is stored (idempotent on client_id). "
    "The sending connection gets no message:new for it; the sender's other connections do.",
)
@limited(send=True)
async def on_send(ctx: AppContext, principal: Principal, sid: str, payload: MessageSend) -> dict[str, Any]:
    message, created = await messaging(ctx).send(principal, payload, origin=sid)
    return {"message": message.as_json(), "duplicate": not created}


class SyncContinuations:
    """Catching up is never refused: the page after one that said `has_more` is not rate limited.

    Per caller (a socket, or a user over REST) it remembers the cursor of the last page that had
    more; a `sync` from exactly that cursor is the next page of a catch-up and skips the limiter
    (the first page of a catch-up counts as one event). Each exempt page moves the cursor forward,
    so a client cannot repeat a page for free; at most `MAX_CALLERS` callers are remembered.
    """

    MAX_CALLERS = 10_000

    def __init__(self) -> None:
        self._next: OrderedDict[str, int] = OrderedDict()

    def is_continuation(self, caller: str, since: int) -> bool:
        return self._next.pop(caller, None) == since

    def served(self, caller: str, cursor: int, has_more: bool) -> None:
        if has_more:
            self._next[caller] = cursor
            if len(self._next) > self.MAX_CALLERS:
                self._next.popitem(last=False)


SYNC_CONTINUATIONS: Key[SyncContinuations] = Key("messaging.sync_continuations")


def sync_continuations(ctx: AppContext) -> SyncContinuations:
    found = ctx.find(SYNC_CONTINUATIONS)
    if found is None:
        found = SyncContinuations()
        ctx.provide(SYNC_CONTINUATIONS, found)
    return found


@events.on(
    "sync",
    SyncRequest,
    "Everything visible to me after the cursor, in order, paginated. The next page of a catch-up "
    "(`since` = the previous page's cursor when it said `has_more`) is never rate limited.",
)
async def on_sync(ctx: AppContext, principal: Principal, sid: str, payload: SyncRequest) -> dict[str, Any]:
    continuations = sync_continuations(ctx)
    if not continuations.is_continuation(sid, payload.since):
        await check_rate(ctx, principal, sid)
    result = await messaging(ctx).sync(principal, payload.since, payload.limit)
    continuations.served(sid, result.cursor, result.has_more)
    return result.model_dump(mode="json")


@events.on("message:read", ReadRequest, "Mark messages up to a seq in a conversation as read.")
@limited()
async def on_read(ctx: AppContext, principal: Principal, sid: str, payload: ReadRequest) -> dict[str, Any]:
    return {"marked": await messaging(ctx).mark_read(principal, payload.conversation_id, payload.up_to)}


@events.on("message:acknowledge", MessageRef, "Acknowledge (kvittera) a message on behalf of my unit.")
@limited()
async def on_acknowledge(ctx: AppContext, principal: Principal, sid: str, payload: MessageRef) -> dict[str, Any]:
    message = await messaging(ctx).acknowledge(principal, payload.message_id)
    return {"message": message.model_dump(mode="json")}


@events.on("message:claim", ClaimRequest, "Take responsibility for a message (or release it); colleagues see it.")
@limited()
async def on_claim(ctx: AppContext, principal: Principal, sid: str, payload: ClaimRequest) -> dict[str, Any]:
    message = await messaging(ctx).claim(principal, payload.message_id, payload.release)
    return {"message": message.model_dump(mode="json")}


@events.on("message:return", ReturnRequest, "Return a misdirected message to its sender (felsänt).")
@limited()
async def on_return(ctx: AppContext, principal: Principal, sid: str, payload: ReturnRequest) -> dict[str, Any]:
    message = await messaging(ctx).return_misdirected(principal, payload.message_id, payload.reason)
    return {"message": message.model_dump(mode="json")}


@events.on("message:edit", EditRequest, "Change the text of my message within the edit window.")
@limited()
async def on_edit(ctx: AppContext, principal: Principal, sid: str, payload: EditRequest) -> dict[str, Any]:
    message = await messaging(ctx).edit(principal, payload.message_id, payload.body)
    return {"message": message.model_dump(mode="json")}


@events.on("message:retract", MessageRef, "Retract my message within the edit window (the original is kept).")
@limited()
async def on_retract(ctx: AppContext, principal: Principal, sid: str, payload: MessageRef) -> dict[str, Any]:
    message = await messaging(ctx).edit(principal, payload.message_id, None)
    return {"message": message.model_dump(mode="json")}


@events.on("typing", TypingRequest, "Tell the conversation that I am (not) typing.")
@limited()
async def on_typing(ctx: AppContext, principal: Principal, sid: str, payload: TypingRequest) -> None:
    await messaging(ctx).typing(principal, payload.conversation_id, payload.typing)
