"""Attachments: streamed upload into encrypted 1 MiB chunks (type sniffed, size capped), and the
audited, decrypting download."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

from server.audit.service import record
from server.core.envelope import CHUNK_SIZE, ChunkCipher, Envelope, associated_data
from server.core.errors import NotFound, Problem
from server.core.principal import Principal
from server.messaging import store
from server.messaging.access import Access, acting_unit, audit_access
from server.messaging.deps import Deps
from server.messaging.models import Attachment, AttachmentChunk, Conversation
from server.messaging.schemas import AttachmentOut
from server.messaging.sniff import ALLOWED_TYPES, SNIFF_BYTES, sniff

NAME_INDEX = 2**64 - 1  # chunk index reserved for the encrypted file name
UPLOADS_AT_ONCE = 4


def attachment_cipher(envelope: Envelope, attachment: Attachment) -> ChunkCipher:
    key = envelope.unwrap(attachment.kek_id, attachment.wrapped_dek)
    aad = associated_data("message_attachment_chunks", attachment.id, attachment.conversation_id)
    return ChunkCipher(key, attachment.nonce_prefix, aad)


def attachment_out(envelope: Envelope, attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.id,
        conversation_id=attachment.conversation_id,
        content_type=attachment.content_type,
        size=attachment.size,
        filename=attachment_cipher(envelope, attachment).decrypt(NAME_INDEX, attachment.name_enc, True).decode(),
        created_at=attachment.created_at,
        message_id=attachment.message_id,
    )


class Attachments:
    def __init__(self, deps: Deps, access: Access) -> None:
        self.deps = deps
        self.access = access
        self._upload_slots = asyncio.Semaphore(UPLOADS_AT_ONCE)

    async def upload(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        content_type: str,
        filename: str,
        chunks: AsyncIterator[bytes],
        max_bytes: int,
    ) -> AttachmentOut:
        """Stream an upload into encrypted 1 MiB chunks; nothing is stored unless it all arrives and passes."""
        deps = self.deps
        access = await self.access.require(principal, "conversation.post", conversation_id)
        if content_type not in ALLOWED_TYPES:
            raise Problem(
                "unsupported_media_type",
                f"Attachments may be {', '.join(sorted(ALLOWED_TYPES))}.",
                status=415,
            )
        async with self._upload_slots:
            data_key = deps.envelope.new_data_key()
            attachment_id = uuid.uuid4()
            prefix = os.urandom(4)
            cipher = ChunkCipher(
                data_key.key, prefix, associated_data("message_attachment_chunks", attachment_id, conversation_id)
            )
            encrypted: list[bytes] = []
            buffer = bytearray()
            size = 0
            head = b""
            sniffed = False
            async for piece in chunks:
                size += len(piece)
                if size > max_bytes:
                    raise Problem(
                        "payload_too_large", f"Attachments can be at most {max_bytes // (1024 * 1024)} MiB.", status=413
                    )
                if len(head) < SNIFF_BYTES:
                    head = (head + piece)[:SNIFF_BYTES]
                if not sniffed and len(head) >= SNIFF_BYTES:
                    sniff(content_type, head)  # reject a wrong type before reading the rest
                    sniffed = True
                buffer += piece
                while len(buffer) > CHUNK_SIZE:
                    encrypted.append(cipher.encrypt(len(encrypted), bytes(buffer[:CHUNK_SIZE]), False))
                    del buffer[:CHUNK_SIZE]
            if size == 0:
                raise Problem("empty_upload", "The upload was empty.", status=422)
            if not sniffed:
                sniff(content_type, head)
            encrypted.append(cipher.encrypt(len(encrypted), bytes(buffer), True))
            name = (filename or "bilaga").replace("/", "_").replace("\\", "_")[:200]
            attachment = Attachment(
                id=attachment_id,
                conversation_id=conversation_id,
                uploader_user_id=principal.user_id,
                content_type=content_type,
                size=size,
                chunk_count=len(encrypted),
                kek_id=data_key.kek_id,
                wrapped_dek=data_key.wrapped,
                nonce_prefix=prefix,
                name_enc=cipher.encrypt(NAME_INDEX, name.encode(), True),
                created_at=deps.clock(),
            )
            async with deps.write_transaction() as session:
                await store.insert_attachment(session, attachment, encrypted)
                await record(
                    session,
                    actor=principal,
                    action="attachment.upload",
                    object_type="attachment",
                    object_id=attachment_id,
                    unit_id=acting_unit(principal, access),
                    details={"size": size, "content_type": content_type},
                )
            return attachment_out(deps.envelope, attachment)

    async def open_attachment(
        self, principal: Principal, conversation_id: uuid.UUID, attachment_id: uuid.UUID, ip: str | None = None
    ) -> tuple[AttachmentOut, AsyncIterator[bytes]]:
        """Check access, write the access-log row, and return a decrypting chunk iterator."""
        deps = self.deps
        access = await self.access.require(principal, "conversation.read", conversation_id)
        async with deps.write_transaction() as session:
            attachment = await session.get(Attachment, attachment_id)
            if attachment is None or attachment.conversation_id != conversation_id:
                raise NotFound("attachment")
            if attachment.message_id is None and attachment.uploader_user_id != principal.user_id:
                raise NotFound("attachment")
            conversation = await session.get(Conversation, conversation_id)
            case_ref = conversation.case_ref if conversation else None
            await audit_access(
                session, principal, access, "attachment.download", "attachment", attachment_id, case_ref, ip
            )
        cipher = attachment_cipher(deps.envelope, attachment)
        meta = attachment_out(deps.envelope, attachment)

        async def stream() -> AsyncIterator[bytes]:
            for index in range(attachment.chunk_count):
                async with deps.db.transaction() as session:
                    chunk = await session.get(AttachmentChunk, (attachment.id, index))
                if chunk is None:
                    raise NotFound("attachment chunk")
                yield cipher.decrypt(index, chunk.data, index == attachment.chunk_count - 1)

        return meta, stream()
