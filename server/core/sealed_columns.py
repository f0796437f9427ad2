"""Text columns sealed at rest (envelope encryption), and keyed blind indexes to look them up.

A model keeps such a value in two columns, `<name>_kek` (the KEK id, for rotation) and `<name>_enc`
(envelope ciphertext, server.core.envelope), and exposes it as an ordinary attribute:

    @sealed_model
    class Conversation(Base):
        subject_kek: Mapped[str | None] = mapped_column(String(64))
        subject_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
        subject: ClassVar[SealedText[str]] = SealedText()

Setting the attribute keeps the text in memory; the flush seals it (a `before_flush` hook, with the
`Sealer` of the session's `Database`). Reading a loaded row opens the ciphertext on first access and
caches the text on the instance: a row whose sealed values are never read costs no decryption.
With `indexed=True` the flush also fills `<name>_hmac`, the blind index: HMAC-SHA-256 of the
normalised value under the index key (its own key file, like the discharge pseudonym key; never
rotated, since every index would have to be recomputed). Look-ups compare `<name>_hmac` with
`Sealer.blind_index(value)`: equality only, and the database never sees the value itself.

The associated data binds a ciphertext to its table, column and (with `bound=True`) row id, so a
ciphertext copied into another row or column does not open. Audit rows are inserted before their
`seq` exists; they are unbound and the audit hash chain, which covers the opened value, catches a
swap. `@sealed_model` registers every sealed column with `brygga keys status`, key rotation
(`rewrap_sealed_columns`) and `brygga backup verify`.

Only the ORM path seals: a Core INSERT/UPDATE must use `Sealer.seal_value` itself, and a Core
SELECT of the two columns opens them with `Sealer.open_value`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, attributes

from server.core.envelope import Envelope, Readability, Sealed, Sealer, associated_data, register_sealed

if TYPE_CHECKING:
    from server.core.db import Database

T = TypeVar("T", str, str | None)
M = TypeVar("M", bound=type)

_PENDING = "_sealed_pending"  # {name: text} set but not sealed yet
_CACHE = "_sealed_cache"  # {name: (ciphertext, text)} opened or sealed already
_SEALER = "_sealer"  # the Sealer of the session that loaded the row


def column_aad(table: str, row_id: object | None, column: str) -> bytes:
    return associated_data(table, row_id if row_id is not None else "-", "-", column)


class SealedText(Generic[T]):
    """A text attribute stored sealed in `<name>_kek`/`<name>_enc` (see the module docstring)."""

    def __init__(self, *, indexed: bool = False, bound: bool = True) -> None:
        self.indexed = indexed
        self.bound = bound
        self.name = ""
        self.table = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.kek, self.enc, self.hmac = f"{name}_kek", f"{name}_enc", f"{name}_hmac"

    def aad(self, instance: Any) -> bytes:
        return column_aad(self.table, instance.id if self.bound else None, self.name)

    @overload
    def __get__(self, instance: None, owner: type) -> SealedText[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> SealedText[T] | T:
        if instance is None:
            return self
        state = instance.__dict__
        if self.name in state.get(_PENDING, {}):
            return state[_PENDING][self.name]  # type: ignore[no-any-return]
        blob = getattr(instance, self.enc)
        if blob is None:
            return None  # type: ignore[return-value]
        cached = state.get(_CACHE, {}).get(self.name)
        if cached is not None and cached[0] == blob:
            return cached[1]  # type: ignore[no-any-return]
        sealer: Sealer | None = state.get(_SEALER)
        if sealer is None:
            raise RuntimeError(f"{type(instance).__name__}.{self.name} is sealed and no key file is loaded")
        text = sealer.open_value(self.aad(instance), getattr(instance, self.kek), blob)
        state.setdefault(_CACHE, {})[self.name] = (blob, text)
        return text  # type: ignore[return-value]

    def __set__(self, instance: object, value: T) -> None:
        instance.__dict__.setdefault(_PENDING, {})[self.name] = value
        if attributes.instance_state(instance).persistent:
            attributes.flag_modified(instance, self.kek)

    def columns(self, sealer: Sealer | None, row_id: object, text: str | None) -> dict[str, Any]:
        """The stored columns for `text` in row `row_id` (Core bulk inserts; the ORM path calls it at flush)."""
        if text is None or sealer is None:  # (no sealer only ever comes with None)
            values: dict[str, Any] = {self.kek: None, self.enc: None}
        else:
            sealed = sealer.seal_value(column_aad(self.table, row_id if self.bound else None, self.name), text)
            values = {self.kek: sealed.kek_id, self.enc: sealed.blob}
        if self.indexed:
            values[self.hmac] = sealer.blind_index(text) if text is not None and sealer is not None else None
        return values

    def seal_into(self, sealer: Sealer | None, instance: Any, text: str | None) -> None:
        if self.bound and instance.id is None:
            instance.id = uuid.uuid4()
        values = self.columns(sealer, instance.id if self.bound else None, text)
        for column, value in values.items():
            setattr(instance, column, value)
        if values[self.enc] is not None:
            instance.__dict__.setdefault(_CACHE, {})[self.name] = (values[self.enc], text)


# Every sealed column of every `@sealed_model`: (model, field)
_FIELDS: list[tuple[type, SealedText[Any]]] = []


def fields_of(model: type) -> list[SealedText[Any]]:
    return [value for value in vars(model).values() if isinstance(value, SealedText)]


def sealed_model(model: M) -> M:
    """Class decorator for a mapped model with `SealedText` attributes: registers each with key status,
    rotation and backup verification, and lets loaded rows find the session's sealer."""
    fields = fields_of(model)
    for field_ in fields:
        field_.table = model.__tablename__  # type: ignore[attr-defined]
        _FIELDS.append((model, field_))
        label = f"{field_.table}.{field_.name}"
        register_sealed(label, getattr(model, field_.kek), _read_check(model, field_, label))
    event.listen(model, "load", _remember_sealer)
    event.listen(model, "refresh", lambda target, context, _attrs: _remember_sealer(target, context))
    return model


def sealer_of(db: Database) -> Sealer:
    """The database's sealer, for blind-index look-ups (`sealer_of(db).blind_index(case_ref)`)."""
    if not isinstance(db.sealer, Sealer):
        raise RuntimeError("the key files are not loaded for this database (server.core.app_keys.envelope_for)")
    return db.sealer


def _sealer_of(session: Session) -> Sealer | None:
    database: Database | None = session.info.get("database")
    return database.sealer if database is not None and isinstance(database.sealer, Sealer) else None


def _remember_sealer(target: object, context: Any) -> None:
    target.__dict__[_SEALER] = _sealer_of(context.session)


@event.listens_for(Session, "before_flush")
def _seal_pending(session: Session, _context: Any, _instances: Any) -> None:
    for instance in (*session.new, *session.dirty):
        pending: dict[str, Any] | None = instance.__dict__.get(_PENDING)
        if not pending:
            continue
        sealer = _sealer_of(session)
        if sealer is None and any(text is not None for text in pending.values()):
            raise RuntimeError(f"cannot seal {type(instance).__name__}: no key file is loaded for this database")
        by_name = {field_.name: field_ for field_ in fields_of(type(instance))}
        for name, text in pending.items():
            by_name[name].seal_into(sealer, instance, text)
        pending.clear()
        instance.__dict__.setdefault(_SEALER, sealer)


# ------------------------------------------------------------------------------ rotation, verification


def _id_column(model: type, field_: SealedText[Any]) -> Any:
    return model.id if field_.bound else next(iter(model.__table__.primary_key.columns))  # type: ignore[attr-defined]


async def rewrap_sealed_columns(db: Database, envelope: Envelope, batch_size: int) -> int:
    """Key rotation: rewrap up to `batch_size` data keys per sealed column that the active KEK does not wrap."""
    active = envelope.keyring.active_id
    changed = 0
    async with db.transaction() as session:
        for model, field_ in _FIELDS:
            kek, enc, key = getattr(model, field_.kek), getattr(model, field_.enc), _id_column(model, field_)
            rows = await session.execute(select(key, kek, enc).where(kek.is_not(None), kek != active).limit(batch_size))
            for row_id, kek_id, blob in rows.all():
                sealed = envelope.rewrap_blob(kek_id, blob)
                result = await session.execute(
                    update(model.__table__)  # type: ignore[attr-defined]
                    .where(key == row_id, kek == kek_id, enc == blob)
                    .values({field_.kek: sealed.kek_id, field_.enc: sealed.blob})
                )
                changed += result.rowcount  # type: ignore[attr-defined]
    return changed


def _read_check(model: type, field_: SealedText[Any], label: str) -> Any:
    async def check(db: Database, envelope: Envelope, report: Readability) -> None:
        """`brygga backup verify`: open every value of this column."""
        kek, enc, key = getattr(model, field_.kek), getattr(model, field_.enc), _id_column(model, field_)
        async with db.transaction() as session:
            rows = await session.stream(select(key, kek, enc).where(kek.is_not(None)))
            async for row_id, kek_id, blob in rows:
                aad = column_aad(field_.table, row_id if field_.bound else None, field_.name)
                try:
                    envelope.open(Sealed(kek_id, blob), aad)
                except Exception:  # InvalidTag, InvalidUnwrap, KeyFileError: cannot be read with these keys
                    report.unreadable.append(f"{label} {row_id}")
                else:
                    report.checked += 1

    return check
