"""Conversations: creating one (units or people), case threads for other domains, listing, reading
one and its messages (audited)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core import policy
from server.core.calendar import start_of_day
from server.core.errors import Forbidden, NotFound, Problem
from server.core.principal import Principal
from server.core.sealed_columns import sealer_of
from server.messaging import store
from server.messaging.access import PARTICIPANTS_CHANGED, Access, acting_unit, audit_access, open_conversation
from server.messaging.deps import Deps, after_commit
from server.messaging.models import Conversation, Message, Participant
from server.messaging.pii import looks_like_personal_number
from server.messaging.rendering import Renderer
from server.messaging.schemas import (
    PREVIEW_CHARS,
    ConversationCreate,
    ConversationOut,
    ConversationSearch,
    ConversationSearchQuery,
    MessageOut,
    MessagePreview,
    ParticipantOut,
    UserRef,
)

SUBJECT_SCAN = 500  # a subject search opens at most this many subjects (the newest that pass the other filters)
MAX_UNITS = 21  # units in one conversation: the writing unit and at most 20 recipients, as when starting one
UNIT_ADDED = "unit_added"  # system notice in the thread when a participant adds units


class Notices(Protocol):
    """Posting a system notice in the caller's transaction (sending.py `Sender`)."""

    async def post_system_notice(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        kind: str,
        data: dict[str, Any],
        *,
        sender: Principal | None = None,
        sender_unit_id: uuid.UUID | None = None,
        ack_unit_ids: Iterable[uuid.UUID] = (),
    ) -> uuid.UUID: ...


def check_metadata(subject: str, case_ref: str | None) -> None:
    for name, value in (("subject", subject), ("case_ref", case_ref or "")):
        if looks_like_personal_number(value):
            raise Problem(
                "personal_number_not_allowed",
                f"The {name} looks like it contains a personal identity number. Use a pseudonymous case "
                "reference instead, and write patient details only in the message text.",
                status=422,
            )


class Conversations:
    def __init__(self, deps: Deps, access: Access, renderer: Renderer, notices: Notices) -> None:
        self.deps = deps
        self.access = access
        self.renderer = renderer
        self.notices = notices

    async def create_conversation(self, principal: Principal, request: ConversationCreate) -> ConversationOut:
        check_metadata(request.subject, request.case_ref)
        policy.require(
            principal,
            "conversation.create",
            request.from_unit_id,
            detail="You can only start a conversation for a unit you belong to.",
        )
        unit_ids = set(request.unit_ids)
        user_ids = set(request.user_ids)
        if request.from_unit_id is not None:
            unit_ids.add(request.from_unit_id)
        elif unit_ids:
            raise Problem("from_unit_required", "Say which of your units writes (from_unit_id) to address units.")
        else:
            user_ids.add(principal.user_id)
        if len(unit_ids) + len(user_ids) < 2:
            raise Problem("too_few_participants", "Add at least one recipient unit or person.", status=422)
        async with self.deps.write_transaction() as session:
            conversation, participants = await self._insert_conversation(
                session, principal, request.subject, request.case_ref, request.from_unit_id, unit_ids, user_ids
            )
            out = await self._conversation_out(session, conversation, participants)
        self.access.remember(conversation.id, participants)
        return out

    async def _insert_conversation(
        self,
        session: AsyncSession,
        principal: Principal,
        subject: str,
        case_ref: str | None,
        from_unit_id: uuid.UUID | None,
        unit_ids: set[uuid.UUID],
        user_ids: set[uuid.UUID],
    ) -> tuple[Conversation, list[Participant]]:
        missing_units = unit_ids - await store.active_units(session, unit_ids)
        missing_users = user_ids - await store.active_users(session, user_ids)
        if missing_units or missing_users:
            raise Problem(
                "unknown_participant", "A recipient unit or person does not exist or is inactive.", status=422
            )
        conversation = Conversation(
            id=uuid.uuid4(),
            kind="units" if unit_ids else "direct",
            subject=subject.strip(),
            case_ref=case_ref,
            created_by_user_id=principal.user_id,
            created_by_unit_id=from_unit_id,
            created_at=self.deps.clock(),
            last_seq=0,
        )
        session.add(conversation)
        await session.flush()
        participants = [Participant(id=uuid.uuid4(), conversation_id=conversation.id, unit_id=u) for u in unit_ids]
        participants += [Participant(id=uuid.uuid4(), conversation_id=conversation.id, user_id=u) for u in user_ids]
        session.add_all(participants)
        await record(
            session,
            actor=principal,
            action="conversation.create",
            object_type="conversation",
            object_id=conversation.id,
            unit_id=from_unit_id,
            case_ref=case_ref,
        )
        return conversation, participants

    # ------------------------------------------------------------------------------ case threads (CaseMessaging)

    async def open_case_thread(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        subject: str,
        case_ref: str,
        from_unit_id: uuid.UUID,
        unit_ids: Iterable[uuid.UUID],
    ) -> uuid.UUID:
        check_metadata(subject, case_ref)
        units = {*unit_ids, from_unit_id}
        conversation, _participants = await self._insert_conversation(
            session, principal, subject, case_ref, from_unit_id, units, set()
        )
        return conversation.id

    async def add_thread_units(
        self, session: AsyncSession, conversation_id: uuid.UUID, unit_ids: Iterable[uuid.UUID]
    ) -> None:
        await self._add_units(session, conversation_id, unit_ids)

    async def _add_units(
        self, session: AsyncSession, conversation_id: uuid.UUID, unit_ids: Iterable[uuid.UUID]
    ) -> list[uuid.UUID]:
        """Add the units not taking part yet (returned) in the caller's transaction. Once it commits, every
        node forgets the participants it cached, so the new units read, write and get events at once."""
        present = {p.unit_id for p in await store.participants(session, conversation_id)}
        new = [u for u in dict.fromkeys(unit_ids) if u not in present]
        if not new:
            return []
        session.add_all(Participant(id=uuid.uuid4(), conversation_id=conversation_id, unit_id=u) for u in new)
        self.access.forget(conversation_id)
        after_commit(session, lambda: self._participants_changed(conversation_id))
        return new

    async def _participants_changed(self, conversation_id: uuid.UUID) -> None:
        self.access.forget(conversation_id)  # also here: a read meanwhile may have cached the old ones
        await self.deps.notifier.tell_nodes(PARTICIPANTS_CHANGED, {"conversation_id": str(conversation_id)})

    async def add_units(
        self, principal: Principal, conversation_id: uuid.UUID, unit_ids: list[uuid.UUID]
    ) -> ConversationOut:
        """A member of a unit taking part brings more units in (e.g. primary care joins a ward and home
        care): they see the whole history from now on. Units already in it are left alone (no notice).
        Audited once per added unit; a system notice in the thread tells every participant. A conversation
        between persons has no unit taking part, so the rule refuses it (start a new one instead)."""
        access = await self.access.require(principal, "conversation.read", conversation_id)
        policy.require(
            principal,
            "conversation.add_unit",
            access,
            detail="Only members of a unit that takes part in the conversation can add units.",
        )
        async with self.deps.write_transaction() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFound("conversation")
            wanted = set(unit_ids)
            if wanted - await store.active_units(session, wanted):
                raise Problem(
                    "unknown_participant", "A recipient unit or person does not exist or is inactive.", status=422
                )
            present = {p.unit_id for p in await store.participants(session, conversation_id) if p.unit_id}
            if len(present | wanted) > MAX_UNITS:
                raise Problem("too_many_units", f"A conversation can have at most {MAX_UNITS} units.", status=422)
            added = await self._add_units(session, conversation_id, unit_ids)
            if added:
                await session.flush()
                acting = acting_unit(principal, access)
                for unit_id in added:
                    await record(
                        session,
                        actor=principal,
                        action="conversation.add_unit",
                        object_type="conversation",
                        object_id=conversation_id,
                        unit_id=acting,
                        case_ref=conversation.case_ref,
                        details={"added_unit_id": str(unit_id)},
                    )
                names = await store.unit_names(session, added)
                await self.notices.post_system_notice(
                    session,
                    conversation_id,
                    UNIT_ADDED,
                    {"unit_ids": [str(u) for u in added], "unit_names": [names.get(u, "") for u in added]},
                    sender=principal,
                    sender_unit_id=acting,
                )
            participants = await store.participants(session, conversation_id)
            out = await self._conversation_out(session, conversation, participants)
        if added:  # committed: tell the nodes before answering, not only in the after-commit task
            await self._participants_changed(conversation_id)
        return out

    async def acknowledgements(
        self, session: AsyncSession, message_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, dict[uuid.UUID, datetime | None]]:
        result: dict[uuid.UUID, dict[uuid.UUID, datetime | None]] = {}
        for receipt in await store.receipts_for(session, list(message_ids)):
            if receipt.needs_ack and receipt.unit_id is not None:
                result.setdefault(receipt.message_id, {})[receipt.unit_id] = receipt.acknowledged_at
        return result

    # ------------------------------------------------------------------------------ reading

    async def _conversation_out(
        self, session: AsyncSession, conversation: Conversation, participants: list[Participant]
    ) -> ConversationOut:
        units = await store.unit_names(session, [p.unit_id for p in participants if p.unit_id])
        names = await self.renderer.names(
            session, [conversation.created_by_user_id, *[p.user_id for p in participants if p.user_id]]
        )
        return ConversationOut(
            id=conversation.id,
            kind=conversation.kind,
            subject=conversation.subject,
            case_ref=conversation.case_ref,
            created_at=conversation.created_at,
            created_by=UserRef(id=conversation.created_by_user_id, name=names.get(conversation.created_by_user_id, "")),
            participants=[
                ParticipantOut(
                    unit_id=p.unit_id,
                    unit_name=units.get(p.unit_id) if p.unit_id else None,
                    user_id=p.user_id,
                    user_name=names.get(p.user_id) if p.user_id else None,
                )
                for p in sorted(participants, key=lambda p: (str(p.unit_id), str(p.user_id)))
            ],
            last_seq=conversation.last_seq,
        )

    async def list_conversations(
        self, principal: Principal, unit_id: uuid.UUID | None, preview: bool = False
    ) -> list[ConversationOut]:
        if unit_id is not None and not principal.is_member_of(unit_id):
            raise Forbidden("You can only list the conversations of units you belong to.")
        async with self.deps.db.transaction() as session:
            units = [unit_id] if unit_id else list(principal.unit_ids)
            user = principal.user_id if unit_id is None else uuid.UUID(int=0)
            conversations = await store.list_conversations(session, user, units)
            items = await self._conversation_outs(session, conversations)
            if preview:
                previews = await self._previews(session, principal, conversations)
                for item in items:
                    item.last_message = previews.get(item.id)
            return items

    async def _conversation_outs(
        self, session: AsyncSession, conversations: list[Conversation]
    ) -> list[ConversationOut]:
        everyone = await store.participants_of(session, [c.id for c in conversations])
        by_conversation: dict[uuid.UUID, list[Participant]] = {}
        for participant in everyone:
            by_conversation.setdefault(participant.conversation_id, []).append(participant)
        return [await self._conversation_out(session, c, by_conversation.get(c.id, [])) for c in conversations]

    async def search_conversations(self, principal: Principal, query: ConversationSearchQuery) -> ConversationSearch:
        """Visible conversations by case reference (its blind index), participating unit and period in SQL;
        by subject after opening the subjects of at most `SUBJECT_SCAN` of them, newest first (subjects are
        sealed: no index can see them). One access-log row per search, with the case reference if given."""
        since = start_of_day(query.since) if query.since else None
        until = start_of_day(query.until + timedelta(days=1)) if query.until else None
        case_ref_hmac = sealer_of(self.deps.db).blind_index(query.case_ref) if query.case_ref else None
        where = store.search_conditions(case_ref_hmac, query.unit_id, since, until)
        bound = SUBJECT_SCAN if query.q else query.limit
        async with self.deps.db.transaction() as session:
            found = await store.list_conversations(
                session, principal.user_id, principal.unit_ids, bound + 1, where=where
            )
            candidates = found[:bound]
            if query.q:
                needle = query.q.casefold().strip()
                candidates = [c for c in candidates if needle in c.subject.casefold()]
            items = await self._conversation_outs(session, candidates[: query.limit])
            filters = [name for name in ("case_ref", "q", "unit_id", "since", "until") if getattr(query, name)]
            await record(
                session, actor=principal, action="conversation.search", object_type="conversation",
                case_ref=query.case_ref, details={"filters": filters, "hits": len(items)},
            )  # fmt: skip
        return ConversationSearch(
            items=items, scanned=min(len(found), bound) if query.q else 0, complete=len(found) <= bound
        )

    async def _previews(
        self, session: AsyncSession, principal: Principal, conversations: list[Conversation]
    ) -> dict[uuid.UUID, MessagePreview]:
        """The last message of each conversation the caller may read, decrypted; each preview is logged as a
        read of its conversation (action conversation.preview, with the case reference)."""
        by_id = {c.id: c for c in conversations}
        readable: list[Message] = []
        for message in await store.last_messages(session, list(by_id)):
            access = await self.access.access(message.conversation_id)
            if policy.allowed(principal, "conversation.read", access):
                conversation = by_id[message.conversation_id]
                await audit_access(
                    session,
                    principal,
                    access,
                    "conversation.preview",
                    "conversation",
                    conversation.id,
                    conversation.case_ref,
                )
                readable.append(message)
        return {
            out.conversation_id: MessagePreview(
                id=out.id,
                sender_name=out.sender.name if out.sender else None,
                created_at=out.created_at,
                text=" ".join(out.body.split())[:PREVIEW_CHARS] if out.body else None,
                attachments=len(out.attachments),
                retracted=out.retracted_at is not None,
            )
            for out in await self.renderer.render(session, readable, viewer=principal)
        }

    async def get_conversation(self, principal: Principal, conversation_id: uuid.UUID) -> ConversationOut:
        access = await self.access.require(principal, "conversation.read", conversation_id)
        async with self.deps.db.transaction() as session:
            conversation = await open_conversation(session, principal, conversation_id, access)
            return await self._conversation_out(
                session, conversation, await store.participants(session, conversation_id)
            )

    async def conversation_of(self, message_id: uuid.UUID) -> uuid.UUID | None:
        async with self.deps.db.transaction() as session:
            message = await session.get(Message, message_id)
            return message.conversation_id if message else None

    async def list_messages(
        self, principal: Principal, conversation_id: uuid.UUID, before_seq: int | None, limit: int
    ) -> list[MessageOut]:
        access = await self.access.require(principal, "conversation.read", conversation_id)
        async with self.deps.db.transaction() as session:
            await open_conversation(session, principal, conversation_id, access)
            messages = await store.conversation_messages(session, conversation_id, before_seq, limit)
            return await self.renderer.render(session, messages, viewer=principal)
