"""Local accounts of the built-in provider: argon2id passwords, mandatory TOTP, throttled failed logins."""

from __future__ import annotations

import enum
import functools
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.models import OpAccount
from server.core.api import CONTROL_CHARACTERS
from server.core.context import Key
from server.core.db import Database
from server.core.envelope import Envelope, Sealed, associated_data
from server.core.models import User

HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
TOTP_ISSUER = "Brygga"
MIN_PASSWORD = 10


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown logins, so they cost the same time as a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(16))


class Outcome(enum.Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"  # unknown login or wrong password (never say which)
    BAD_TOTP = "bad_totp"
    TOTP_REQUIRED = "totp_required"
    ENROL = "enrol"  # password right, no confirmed TOTP yet: show the enrolment page
    DISABLED = "disabled"


@dataclass
class LoginResult:
    outcome: Outcome
    user: User | None = None


@dataclass(frozen=True)
class ThrottlePolicy:
    """How failed logins slow down further attempts (ASVS 2.4.1), without ever locking an account.

    Failures are counted per (login name, client address) and per client address within `window`.
    A login name is counted whether or not the account exists, so unknown names behave exactly like
    known ones. After `per_account_source` failures that pair must wait until the window has passed;
    the same account from an address that has not been failing is not affected. After `per_source`
    failures the address is slowed down for every login name. Failures of one account from anywhere
    above `account_delay_after` add a short delay to its attempts: slower, never locked.
    """

    per_account_source: int = 5
    window: timedelta = timedelta(minutes=15)
    per_source: int = 20
    source_window: timedelta = timedelta(minutes=5)
    account_delay_after: int = 50
    account_delay_seconds: float = 1.0


class LoginThrottle:
    """In-process failure counters for the built-in provider's login form (each node counts its own)."""

    MAX_KEYS = 10_000

    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self.failures: dict[str, list[datetime]] = {}

    @staticmethod
    def _name(login: str) -> str:
        return login.strip().casefold()

    def _recent(self, key: str, now: datetime, window: timedelta) -> int:
        recent = [when for when in self.failures.get(key, []) if when > now - window]
        if recent:
            self.failures[key] = recent
        else:
            self.failures.pop(key, None)
        return len(recent)

    def blocked(self, login: str, address: str, now: datetime) -> bool:
        """True while this address must slow down, for this login name or for all of them."""
        policy = self.policy
        return (
            self._recent(f"src:{address}", now, policy.source_window) >= policy.per_source
            or self._recent(f"pair:{self._name(login)}|{address}", now, policy.window) >= policy.per_account_source
        )

    def delay(self, login: str, now: datetime) -> float:
        """Seconds to wait before answering: only once an account is failing from many addresses."""
        failures = self._recent(f"acct:{self._name(login)}", now, self.policy.window)
        return self.policy.account_delay_seconds if failures >= self.policy.account_delay_after else 0.0

    def failed(self, login: str, address: str, now: datetime) -> None:
        name = self._name(login)
        for key in (f"src:{address}", f"pair:{name}|{address}", f"acct:{name}"):
            self.failures.setdefault(key, []).append(now)
        if len(self.failures) > self.MAX_KEYS:  # bounded memory under a spray from many addresses
            horizon = max(self.policy.window, self.policy.source_window)
            for key in list(self.failures)[:1000]:
                self._recent(key, now, horizon)


LOGIN_THROTTLE: Key[LoginThrottle] = Key("idp.login_throttle")  # the identity plugin keeps it here


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        from server.core.errors import Problem

        raise Problem("weak_password", f"Choose a password of at least {MIN_PASSWORD} characters.")
    return HASHER.hash(password)


def generate_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def get_account(session: AsyncSession, user_id: uuid.UUID) -> OpAccount | None:
    return await session.get(OpAccount, user_id)


async def set_password(session: AsyncSession, user: User, password: str, now: datetime) -> OpAccount:
    account = await session.get(OpAccount, user.id)
    if account is None:
        account = OpAccount(user_id=user.id, totp_confirmed=False, totp_last_step=0)
        session.add(account)
    account.password_hash = hash_password(password)
    account.updated_at = now
    await session.flush()
    return account


def totp_aad(user_id: uuid.UUID) -> bytes:
    return associated_data("op_accounts", user_id, "-", "totp")


def store_totp_secret(envelope: Envelope, account: OpAccount, secret: str | None) -> None:
    """Seal the TOTP secret with the key-encryption key (a copied row or blob does not open elsewhere)."""
    if secret is None:
        account.totp_kek = account.totp_enc = None
        return
    sealed = envelope.seal_text(secret, totp_aad(account.user_id))
    account.totp_kek, account.totp_enc = sealed.kek_id, sealed.blob


def totp_secret_of(envelope: Envelope, account: OpAccount) -> str | None:
    if account.totp_kek is None or account.totp_enc is None:
        return None
    return envelope.open_text(Sealed(account.totp_kek, account.totp_enc), totp_aad(account.user_id))


async def set_totp(session: AsyncSession, envelope: Envelope, user: User, secret: str, now: datetime) -> None:
    """A confirmed TOTP secret given by an administrator (the demo's fixed keys, tests)."""
    account = await session.get(OpAccount, user.id)
    assert account is not None, "set a password first"
    store_totp_secret(envelope, account, secret)
    account.totp_confirmed = True
    account.updated_at = now


async def reset_totp(session: AsyncSession, user: User, now: datetime) -> None:
    account = await session.get(OpAccount, user.id)
    if account is not None:
        account.totp_kek = account.totp_enc = None
        account.totp_confirmed = False
        account.updated_at = now


def totp_step(now: datetime) -> int:
    return int(now.timestamp()) // 30


def check_totp(envelope: Envelope, account: OpAccount, code: str, now: datetime) -> bool:
    """A 6-digit code for the current step (±1 for clock drift), each step usable only once."""
    secret = totp_secret_of(envelope, account)
    if not secret or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    step = totp_step(now)
    for candidate in (step - 1, step, step + 1):
        if candidate > account.totp_last_step and secrets.compare_digest(totp.at(candidate * 30), code):
            account.totp_last_step = candidate
            return True
    return False


def provisioning_uri(secret: str, login: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=TOTP_ISSUER)


def qr_svg(uri: str) -> str:
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#111", light="#fff"))


async def authenticate(
    session: AsyncSession, envelope: Envelope, login: str, password: str, code: str, now: datetime
) -> LoginResult:
    """Check login + password + TOTP. An unknown login costs the same argon2 work as a wrong password
    and gets the same answer; throttling is the caller's (`LoginThrottle`), per login name and address."""
    user = None
    if not CONTROL_CHARACTERS.search(login):  # such a name exists nowhere (and PostgreSQL refuses NUL)
        query = select(User).where(User.login == login, User.issuer == "local")
        user = (await session.execute(query)).scalar_one_or_none()
    account = await session.get(OpAccount, user.id) if user is not None else None
    password_ok = verify_password(account.password_hash if account is not None else None, password)
    if user is None or account is None or not password_ok:
        return LoginResult(Outcome.BAD_CREDENTIALS)
    if user.disabled:
        return LoginResult(Outcome.DISABLED, user)
    if not account.totp_confirmed:
        return LoginResult(Outcome.ENROL, user)
    if not code.strip():
        return LoginResult(Outcome.TOTP_REQUIRED, user)
    if not check_totp(envelope, account, code.strip(), now):
        return LoginResult(Outcome.BAD_TOTP, user)
    return LoginResult(Outcome.OK, user)


async def start_enrolment(session: AsyncSession, envelope: Envelope, user: User, now: datetime) -> str:
    """A fresh, unconfirmed TOTP secret for the enrolment page (replaces an unconfirmed one)."""
    account = await session.get(OpAccount, user.id)
    assert account is not None
    if account.totp_confirmed:
        raise ValueError("already enrolled")
    secret = pyotp.random_base32()
    store_totp_secret(envelope, account, secret)
    account.updated_at = now
    await session.flush()
    return secret


async def confirm_enrolment(session: AsyncSession, envelope: Envelope, user: User, code: str, now: datetime) -> bool:
    account = await session.get(OpAccount, user.id)
    if account is None or account.totp_confirmed or not check_totp(envelope, account, code.strip(), now):
        return False
    account.totp_confirmed = True
    account.updated_at = now
    return True


async def rewrap_totp_batch(db: Database, envelope: Envelope, batch_size: int) -> int:
    """Key rotation (`brygga keys rotate`): rewrap up to `batch_size` TOTP secrets not under the active KEK."""
    active = envelope.keyring.active_id
    changed = 0
    async with db.transaction() as session:
        query = select(OpAccount).where(OpAccount.totp_kek.is_not(None), OpAccount.totp_kek != active)
        for account in (await session.execute(query.limit(batch_size))).scalars():
            assert account.totp_kek is not None and account.totp_enc is not None
            sealed = envelope.rewrap_blob(account.totp_kek, account.totp_enc)
            account.totp_kek, account.totp_enc = sealed.kek_id, sealed.blob
            changed += 1
    return changed
