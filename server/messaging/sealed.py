"""Which messaging columns hold key ids, and how `brygga backup verify` opens every sealed record."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from server.core.db import Database
from server.core.envelope import ChunkCipher, Envelope, Readability, Sealed, associated_data, register_sealed
from server.messaging.attachments import NAME_INDEX
from server.messaging.models import Attachment, Message, MessageRevision

BATCH = 500


async def check_messaging(db: Database, envelope: Envelope, report: Readability) -> None:
    """Open every message body, earlier revision and attachment name (which proves the file's data key)."""
    async with db.transaction() as session:
        messages = await session.stream(
            select(Message.id, Message.conversation_id, Message.version, Message.body_kek, Message.body_enc)
        )
        async for message_id, conversation_id, version, kek_id, blob in messages:
            aad = associated_data("messages", message_id, conversation_id, version)
            _try_open(report, f"message {message_id}", envelope.open, Sealed(kek_id, blob), aad)
        revisions = await session.stream(
            select(
                MessageRevision.id, Message.conversation_id, MessageRevision.version,
                MessageRevision.body_kek, MessageRevision.body_enc,
            ).join(Message, Message.id == MessageRevision.message_id)
        )  # fmt: skip
        async for revision_id, conversation_id, version, kek_id, blob in revisions:
            aad = associated_data("message_revisions", revision_id, conversation_id, version)
            _try_open(report, f"revision {revision_id}", envelope.open, Sealed(kek_id, blob), aad)
        attachments = await session.stream(select(Attachment))
        async for (attachment,) in attachments:
            _try_open(report, f"attachment {attachment.id}", _attachment_name, envelope, attachment)


def _attachment_name(envelope: Envelope, attachment: Attachment) -> bytes:
    key = envelope.unwrap(attachment.kek_id, attachment.wrapped_dek)
    aad = associated_data("message_attachment_chunks", attachment.id, attachment.conversation_id)
    return ChunkCipher(key, attachment.nonce_prefix, aad).decrypt(NAME_INDEX, attachment.name_enc, True)


def _try_open(report: Readability, what: str, open_it: Callable[..., object], *args: object) -> None:
    try:
        open_it(*args)
    except Exception:  # InvalidTag, InvalidUnwrap, KeyFileError: all mean "cannot be read with these keys"
        report.unreadable.append(what)
    else:
        report.checked += 1


register_sealed("messages", Message.body_kek, check_messaging)
register_sealed("revisions", MessageRevision.body_kek)
register_sealed("attachments", Attachment.kek_id)
