"""SQL for messaging. Functions take an AsyncSession; the service owns transactions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.db import Base
from server.core.models import Unit, User
from server.core.prepared import Prepared, SqliteCalls, Write, in_one_trip
from server.messaging.models import (
    Attachment,
    AttachmentChunk,
    Conversation,
    FeedEvent,
    Message,
    MessageRevision,
    Participant,
    Receipt,
    UnitMessagingSettings,
)

FEED_LOCK_KEY = 0x6272796767610001  # pg advisory lock id: "brygga" + feed


async def lock_feed(session: AsyncSession) -> None:
    """Serialise feed writers so that seq order equals commit order (PostgreSQL; SQLite already does).

    Writers take it just before their first feed insert and hold it until COMMIT: do reads and CPU
    work before, every other node's writers wait while it is held."""
    if not _on_sqlite(session):
        await _feed_lock().rows(session, {"key": FEED_LOCK_KEY})


def _on_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


@cache
def _insert(model: type[Base], keys: tuple[str, ...]) -> Prepared:
    table: Table = model.__table__  # type: ignore[assignment]
    return Prepared.of(insert(table).values({key: bindparam(key, type_=table.c[key].type) for key in keys}))


@cache
def _feed_lock() -> Prepared:
    return Prepared.of(select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger()))))


@cache
def _feed_returning_seq() -> Prepared:
    feed: Table = FeedEvent.__table__  # type: ignore[assignment]
    keys = ("conversation_id", "message_id", "kind", "at")
    return Prepared.of(
        insert(feed).values({key: bindparam(key, type_=feed.c[key].type) for key in keys}).returning(feed.c.seq)
    )


@cache
def _latest_feed() -> Prepared:
    feed: Table = FeedEvent.__table__  # type: ignore[assignment]
    return Prepared.of(
        select(feed.c.message_id, feed.c.seq).order_by(feed.c.seq.desc()).limit(bindparam("n", type_=Integer()))
    )


@cache
def _set_last_seq() -> Prepared:
    table: Table = Conversation.__table__  # type: ignore[assignment]
    return Prepared.of(
        update(table)
        .where(table.c.id == bindparam("conversation_id", type_=table.c.id.type))
        .values(last_seq=bindparam("seq", type_=table.c.last_seq.type))
    )


async def append_messages(
    session: AsyncSession, feed_rows: list[dict[str, Any]], then: Callable[[list[int]], list[Write]]
) -> list[int]:
    """Append `message` feed rows (conversation_id, message_id, kind, at) for new messages, then the
    writes that need their seq values (`then(seqs)`: the messages, their receipts, the conversations'
    last_seq); returns the seqs in the order given. Callers hold the feed lock (`lock_feed`).

    PostgreSQL: one executemany with RETURNING, then one call per write. SQLite: all of it in one trip
    to the driver's thread (`in_one_trip`), the seqs read back after the insert (its executemany returns
    no rows, and RETURNING with a guaranteed order would fall back to one INSERT per row).
    """
    if not feed_rows:
        return []
    if not _on_sqlite(session):
        seqs = [int(seq) for (seq,) in await _feed_returning_seq().rows_many(session, feed_rows)]
        for prepared, rows in then(seqs):
            await prepared.run_many(session, rows)
        return seqs

    def work(calls: SqliteCalls) -> list[int]:
        calls.run_many(_insert(FeedEvent, tuple(feed_rows[0])), feed_rows)
        # This transaction holds SQLite's write lock since the insert: the newest rows are these.
        seq_of = dict(calls.rows(_latest_feed(), {"n": len(feed_rows)}))
        seqs = [int(seq_of[row["message_id"]]) for row in feed_rows]
        for prepared, rows in then(seqs):
            calls.run_many(prepared, rows)
        return seqs

    return await in_one_trip(session, work)


def inserts(model: type[Base], rows: list[dict[str, Any]]) -> Write:
    """Complete rows (every row has the same keys) to insert with one executemany."""
    return _insert(model, tuple(rows[0]) if rows else ()), rows


def last_seqs(last: dict[uuid.UUID, int]) -> Write:
    """Set each conversation's last_seq (callers hold the feed lock, so seq only grows)."""
    return _set_last_seq(), [{"conversation_id": conversation_id, "seq": seq} for conversation_id, seq in last.items()]


async def participants(session: AsyncSession, conversation_id: uuid.UUID) -> list[Participant]:
    rows = await session.execute(select(Participant).where(Participant.conversation_id == conversation_id))
    return list(rows.scalars())


async def participants_of(session: AsyncSession, conversation_ids: Iterable[uuid.UUID]) -> list[Participant]:
    ids = list(conversation_ids)
    if not ids:
        return []
    return list((await session.execute(select(Participant).where(Participant.conversation_id.in_(ids)))).scalars())


def visible_conversations(user_id: uuid.UUID, unit_ids: Iterable[uuid.UUID]):  # type: ignore[no-untyped-def]
    units = list(unit_ids)
    condition = Participant.user_id == user_id
    if units:
        condition = or_(condition, Participant.unit_id.in_(units))
    return select(Participant.conversation_id).where(condition)


async def list_conversations(
    session: AsyncSession,
    user_id: uuid.UUID,
    unit_ids: Iterable[uuid.UUID],
    limit: int = 200,
    *,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[Conversation]:
    """The visible conversations, latest activity first; `where`: more conditions (`search_conditions`)."""
    query = (
        select(Conversation)
        .where(Conversation.id.in_(visible_conversations(user_id, unit_ids)), *where)
        .order_by(Conversation.last_seq.desc(), Conversation.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


def search_conditions(
    case_ref_hmac: str | None, unit_id: uuid.UUID | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    """Search filters SQL can apply: the case reference by its blind index, a participating unit, a period
    of creation. (The subject is sealed: the service filters on it after opening.)"""
    conditions: list[ColumnElement[bool]] = []
    if case_ref_hmac is not None:
        conditions.append(Conversation.case_ref_hmac == case_ref_hmac)
    if unit_id is not None:
        with_unit = select(Participant.conversation_id).where(Participant.unit_id == unit_id)
        conditions.append(Conversation.id.in_(with_unit))
    if since is not None:
        conditions.append(Conversation.created_at >= since)
    if until is not None:
        conditions.append(Conversation.created_at < until)
    return conditions


async def last_messages(session: AsyncSession, conversation_ids: Sequence[uuid.UUID]) -> list[Message]:
    """The newest message people wrote (not a system notice) in each of these conversations."""
    if not conversation_ids:
        return []
    newest = (
        select(Message.conversation_id, func.max(Message.seq).label("seq"))
        .where(Message.conversation_id.in_(conversation_ids), Message.kind == "text")
        .group_by(Message.conversation_id)
        .subquery()
    )
    query = select(Message).join(
        newest, (Message.conversation_id == newest.c.conversation_id) & (Message.seq == newest.c.seq)
    )
    return list((await session.execute(query)).scalars())


async def existing_sends(session: AsyncSession, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> dict[tuple, Message]:  # type: ignore[type-arg]
    if not keys:
        return {}
    rows = await session.execute(select(Message).where(tuple_(Message.sender_user_id, Message.client_id).in_(keys)))
    return {(message.sender_user_id, message.client_id): message for message in rows.scalars()}


async def receipts_for(session: AsyncSession, message_ids: Iterable[uuid.UUID]) -> list[Receipt]:
    ids = list(message_ids)
    if not ids:
        return []
    return list((await session.execute(select(Receipt).where(Receipt.message_id.in_(ids)))).scalars())


async def recipient_responded(session: AsyncSession, message_id: uuid.UUID) -> bool:
    """Has any recipient read, acknowledged or claimed the message (so its text must no longer change)?"""
    query = select(Receipt.id).where(
        Receipt.message_id == message_id,
        or_(Receipt.read_at.is_not(None), Receipt.acknowledged_at.is_not(None), Receipt.claimed_at.is_not(None)),
    )
    return (await session.execute(query.limit(1))).first() is not None


async def attachments_for(session: AsyncSession, message_ids: Iterable[uuid.UUID]) -> list[Attachment]:
    ids = list(message_ids)
    if not ids:
        return []
    return list((await session.execute(select(Attachment).where(Attachment.message_id.in_(ids)))).scalars())


async def messages_by_ids(session: AsyncSession, ids: Iterable[uuid.UUID]) -> list[Message]:
    wanted = list(ids)
    if not wanted:
        return []
    return list((await session.execute(select(Message).where(Message.id.in_(wanted)))).scalars())


async def conversation_messages(
    session: AsyncSession, conversation_id: uuid.UUID, before_seq: int | None, limit: int
) -> list[Message]:
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before_seq is not None:
        query = query.where(Message.seq < before_seq)
    rows = await session.execute(query.order_by(Message.seq.desc()).limit(limit))
    return list(reversed(list(rows.scalars())))


async def feed_page(
    session: AsyncSession, user_id: uuid.UUID, unit_ids: Iterable[uuid.UUID], since: int, limit: int
) -> list[tuple[int, uuid.UUID, uuid.UUID]]:
    query = (
        select(FeedEvent.seq, FeedEvent.message_id, FeedEvent.conversation_id)
        .where(FeedEvent.seq > since, FeedEvent.conversation_id.in_(visible_conversations(user_id, unit_ids)))
        .order_by(FeedEvent.seq)
        .limit(limit)
    )
    return [(seq, message_id, conversation_id) for seq, message_id, conversation_id in (await session.execute(query))]


async def user_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    return dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))).all())


async def unit_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    return dict((await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(wanted)))).all())


async def active_units(session: AsyncSession, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    wanted = list(ids)
    rows = await session.execute(select(Unit.id).where(Unit.id.in_(wanted), Unit.active.is_(True)))
    return set(rows.scalars())


async def active_users(session: AsyncSession, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    wanted = list(ids)
    rows = await session.execute(select(User.id).where(User.id.in_(wanted), User.disabled.is_(False)))
    return set(rows.scalars())


async def unit_settings(session: AsyncSession, unit_id: uuid.UUID) -> UnitMessagingSettings | None:
    return await session.get(UnitMessagingSettings, unit_id)


async def bump_conversations(session: AsyncSession, last: dict[uuid.UUID, int]) -> None:
    prepared, rows = last_seqs(last)
    await prepared.run_many(session, rows)


async def mark_delivered(session: AsyncSession, receipt_ids: list[uuid.UUID], when: datetime) -> None:
    if receipt_ids:
        await session.execute(
            update(Receipt)
            .where(Receipt.id.in_(receipt_ids), Receipt.delivered_at.is_(None))
            .values(delivered_at=when)
            .execution_options(synchronize_session=False)
        )


async def case_refs(session: AsyncSession, conversation_ids: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    if not conversation_ids:
        return {}
    rows = await session.execute(select(Conversation).where(Conversation.id.in_(conversation_ids)))
    return {conversation.id: conversation.case_ref for conversation in rows.scalars()}  # opened here


async def my_receipts(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    unit_ids: Iterable[uuid.UUID],
    up_to: int,
) -> list[tuple[Receipt, Message]]:
    units = list(unit_ids)
    mine = Receipt.user_id == user_id
    if units:
        mine = or_(mine, Receipt.unit_id.in_(units))
    query = (
        select(Receipt, Message)
        .join(Message, Message.id == Receipt.message_id)
        .where(Receipt.conversation_id == conversation_id, Message.seq <= up_to, Receipt.read_at.is_(None), mine)
    )
    return [(receipt, message) for receipt, message in (await session.execute(query)).all()]


async def undelivered_receipts(
    session: AsyncSession, message_ids: Iterable[uuid.UUID], user_id: uuid.UUID, unit_ids: Iterable[uuid.UUID]
) -> list[Receipt]:
    ids, units = list(message_ids), list(unit_ids)
    if not ids:
        return []
    mine = Receipt.user_id == user_id
    if units:
        mine = or_(mine, Receipt.unit_id.in_(units))
    query = select(Receipt).where(Receipt.message_id.in_(ids), Receipt.delivered_at.is_(None), mine)
    return list((await session.execute(query)).scalars())


def _open_for_unit(unit_id: uuid.UUID):  # type: ignore[no-untyped-def]
    return and_(Receipt.unit_id == unit_id, Receipt.returned_at.is_(None))


async def inbox_counts(session: AsyncSession, unit_id: uuid.UUID) -> dict[str, int]:
    return (await inbox_counts_many(session, [unit_id]))[unit_id]


async def inbox_counts_many(session: AsyncSession, unit_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Inbox counts for several units in two grouped queries."""
    counts = {
        unit_id: {"unread": 0, "unacknowledged": 0, "escalated": 0, "claimed": 0, "escalated_sent": 0}
        for unit_id in unit_ids
    }
    if not unit_ids:
        return counts
    open_ack = Receipt.acknowledged_at.is_(None)
    rows = await session.execute(
        select(
            Receipt.unit_id,
            func.sum(Receipt.read_at.is_(None).cast(Integer())),
            func.sum(and_(Receipt.needs_ack, open_ack).cast(Integer())),
            func.sum(and_(Receipt.escalated_at.is_not(None), open_ack).cast(Integer())),
            func.sum(and_(Receipt.claimed_at.is_not(None), open_ack).cast(Integer())),
        )
        .where(
            Receipt.unit_id.in_(unit_ids),
            Receipt.returned_at.is_(None),
            # Implied by the sums (a read and acknowledged receipt adds 0 to each); lets the open-receipt index serve.
            or_(Receipt.read_at.is_(None), open_ack),
        )
        .group_by(Receipt.unit_id)
    )
    for unit_id, unread, unacked, escalated, claimed in rows.all():
        if unit_id is None:
            continue
        counts[unit_id].update(
            unread=int(unread or 0),
            unacknowledged=int(unacked or 0),
            escalated=int(escalated or 0),
            claimed=int(claimed or 0),
        )
    sent = await session.execute(
        select(Message.sender_unit_id, func.count(func.distinct(Receipt.message_id)))
        .join(Message, Message.id == Receipt.message_id)
        .where(
            Message.sender_unit_id.in_(unit_ids),
            Receipt.escalated_at.is_not(None),
            open_ack,
            Receipt.returned_at.is_(None),
        )
        .group_by(Message.sender_unit_id)
    )
    for unit_id, number in sent.all():
        if unit_id is not None:
            counts[unit_id]["escalated_sent"] = int(number or 0)
    return counts


async def inbox_conversations(session: AsyncSession, unit_id: uuid.UUID, limit: int = 100) -> list[tuple]:  # type: ignore[type-arg]
    base = _open_for_unit(unit_id)
    per_conversation = (
        select(
            Receipt.conversation_id.label("conversation_id"),
            func.sum(Receipt.read_at.is_(None).cast(Integer())).label("unread"),
            func.sum(and_(Receipt.needs_ack, Receipt.acknowledged_at.is_(None)).cast(Integer())).label("unacked"),
            func.sum(and_(Receipt.escalated_at.is_not(None), Receipt.acknowledged_at.is_(None)).cast(Integer())).label(
                "escalated"
            ),
        )
        .where(base)
        .group_by(Receipt.conversation_id)
        .subquery()
    )
    query = (
        select(
            Conversation,
            func.coalesce(per_conversation.c.unread, 0),
            func.coalesce(per_conversation.c.unacked, 0),
            func.coalesce(per_conversation.c.escalated, 0),
        )
        .join(Participant, Participant.conversation_id == Conversation.id)
        .outerjoin(per_conversation, per_conversation.c.conversation_id == Conversation.id)
        .where(Participant.unit_id == unit_id)
        .order_by(Conversation.last_seq.desc())
        .limit(limit)
    )
    return [tuple(row) for row in (await session.execute(query)).all()]


async def awaiting_acknowledgement(
    session: AsyncSession, unit_id: uuid.UUID, limit: int = 200
) -> list[tuple[Message, Conversation, list[Receipt]]]:
    """Messages the unit sent that some recipient has still to acknowledge, most pressing first:
    urgent, then the highest escalation level, then the longest wait."""
    open_receipt = and_(Receipt.needs_ack, Receipt.acknowledged_at.is_(None), Receipt.returned_at.is_(None))
    level = func.max(Receipt.escalation_level).label("level")
    pressing = (
        select(Receipt.message_id, level)
        .join(Message, Message.id == Receipt.message_id)
        .where(Message.sender_unit_id == unit_id, Message.retracted_at.is_(None), open_receipt)
        .group_by(Receipt.message_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(Message, Conversation)
            .join(pressing, pressing.c.message_id == Message.id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .order_by(
                (Message.priority == "urgent").desc(),
                pressing.c.level.desc(),
                Message.created_at,
                Message.seq,
            )
            .limit(limit)
        )
    ).all()
    receipts: dict[uuid.UUID, list[Receipt]] = {}
    if rows:
        found = await session.scalars(
            select(Receipt)
            .where(Receipt.message_id.in_([message.id for message, _ in rows]), open_receipt)
            .order_by(Receipt.id)
        )
        for receipt in found:
            receipts.setdefault(receipt.message_id, []).append(receipt)
    return [(message, conversation, receipts.get(message.id, [])) for message, conversation in rows]


async def attachments_by_ids(session: AsyncSession, ids: Iterable[uuid.UUID]) -> list[Attachment]:
    return list((await session.execute(select(Attachment).where(Attachment.id.in_(list(ids))))).scalars())


async def insert_attachment(session: AsyncSession, attachment: Attachment, chunks: list[bytes]) -> None:
    session.add(attachment)
    await session.flush()
    for index, blob in enumerate(chunks):
        session.add(AttachmentChunk(attachment_id=attachment.id, idx=index, data=blob))


async def revisions_of(session: AsyncSession, message_id: uuid.UUID) -> list[MessageRevision]:
    query = select(MessageRevision).where(MessageRevision.message_id == message_id).order_by(MessageRevision.version)
    return list((await session.execute(query)).scalars())


# ------------------------------------------------------------------------------ key rotation

SealedRow = type[Message] | type[MessageRevision]


async def stale_bodies(
    session: AsyncSession, model: SealedRow, active: str, limit: int
) -> list[tuple[uuid.UUID, str, bytes]]:
    """Up to `limit` (id, kek_id, blob) of `model` rows whose body is not sealed with the `active` KEK."""
    rows = await session.execute(
        select(model.id, model.body_kek, model.body_enc).where(model.body_kek != active).limit(limit)
    )
    return [(row_id, kek_id, blob) for row_id, kek_id, blob in rows.all()]


async def replace_body(
    session: AsyncSession, model: SealedRow, row_id: uuid.UUID, old: tuple[str, bytes], new: tuple[str, bytes]
) -> int:
    """Store the rewrapped body unless the row changed meanwhile; returns the rows changed (0 or 1)."""
    result = await session.execute(
        update(model)
        .where(model.id == row_id, model.body_kek == old[0], model.body_enc == old[1])
        .values(body_kek=new[0], body_enc=new[1])
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def stale_attachment_keys(session: AsyncSession, active: str, limit: int) -> list[tuple[uuid.UUID, str, bytes]]:
    rows = await session.execute(
        select(Attachment.id, Attachment.kek_id, Attachment.wrapped_dek).where(Attachment.kek_id != active).limit(limit)
    )
    return [(row_id, kek_id, wrapped) for row_id, kek_id, wrapped in rows.all()]


async def replace_attachment_key(session: AsyncSession, row_id: uuid.UUID, old_kek: str, new: tuple[str, bytes]) -> int:
    result = await session.execute(
        update(Attachment)
        .where(Attachment.id == row_id, Attachment.kek_id == old_kek)
        .values(kek_id=new[0], wrapped_dek=new[1])
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
