"""Attachment content types: an allow-list checked against the file's first bytes (magic numbers)."""

from __future__ import annotations

from server.core.errors import Problem

SNIFF_BYTES = 4096

MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    # Office Open XML documents are ZIP containers.
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
}
ALLOWED_TYPES = frozenset({*MAGIC, "text/plain"})
# The file name endings the web client offers in its file picker, per allowed type.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "text/plain": (".txt",),
}
_TEXT_CONTROLS = set(range(32)) - {9, 10, 12, 13}


def _is_text(head: bytes) -> bool:
    if any(byte in _TEXT_CONTROLS for byte in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut off at the sniff boundary is fine
    return True


def sniff(content_type: str, head: bytes) -> None:
    """Raise 415 unless the bytes look like the declared, allowed content type."""
    if content_type == "text/plain":
        ok = _is_text(head)
    else:
        ok = any(head.startswith(magic) for magic in MAGIC.get(content_type, ()))
    if not ok:
        raise Problem(
            "content_type_mismatch",
            "The file's content does not match its declared type. Send it with its real type "
            "(PDF, PNG, JPEG, GIF, Word, Excel or plain text).",
            status=415,
        )
