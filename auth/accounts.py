"""Local accounts of the built-in provider: argon2id passwords, mandatory TOTP, lockout with back-off."""

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
    LOCKED = "locked"
    DISABLED = "disabled"


@dataclass
class LoginResult:
    outcome: Outcome
    user: User | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_minutes: int = 15


class AddressLimiter:
    """Anti-automation per client address (ASVS 2.4.1), beside the per-account lockout: at most
    `limit` failed logins from one address within `window`. In-process; each node counts its own."""

    def __init__(self, limit: int = 20, window: timedelta = timedelta(minutes=5)) -> None:
        self.limit = limit
        self.window = window
        self.failures: dict[str, list[datetime]] = {}

    def _recent(self, address: str, now: datetime) -> list[datetime]:
        recent = [when for when in self.failures.get(address, []) if when > now - self.window]
        if recent:
            self.failures[address] = recent
        else:
            self.failures.pop(address, None)
        return recent

    def blocked(self, address: str, now: datetime) -> bool:
        return len(self._recent(address, now)) >= self.limit

    def failed(self, address: str, now: datetime) -> None:
        self.failures.setdefault(address, []).append(now)
        if len(self.failures) > 10_000:  # bounded memory under a spray from many addresses
            for key in list(self.failures)[:1000]:
                self._recent(key, now)


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


async def set_password(
    session: AsyncSession, user: User, password: str, now: datetime, *, totp_secret: str | None = None
) -> OpAccount:
    account = await session.get(OpAccount, user.id)
    if account is None:
        account = OpAccount(user_id=user.id, totp_confirmed=False, totp_last_step=0, failed_attempts=0)
        session.add(account)
    account.password_hash = hash_password(password)
    account.failed_attempts = 0
    account.locked_until = None
    account.updated_at = now
    if totp_secret is not None:
        account.totp_secret = totp_secret
        account.totp_confirmed = True
    await session.flush()
    return account


async def reset_totp(session: AsyncSession, user: User, now: datetime) -> None:
    account = await session.get(OpAccount, user.id)
    if account is not None:
        account.totp_secret = None
        account.totp_confirmed = False
        account.updated_at = now


def totp_step(now: datetime) -> int:
    return int(now.timestamp()) // 30


def check_totp(account: OpAccount, code: str, now: datetime) -> bool:
    """A 6-digit code for the current step (±1 for clock drift), each step usable only once."""
    if not account.totp_secret or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(account.totp_secret)
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


async def _fail(account: OpAccount | None, now: datetime, policy: LockoutPolicy) -> datetime | None:
    if account is None:
        return None
    account.failed_attempts += 1
    account.updated_at = now
    if account.failed_attempts >= policy.max_failures:
        # Back-off: each further failure doubles the lock (15, 30, 60 ... minutes, at most a day).
        extra = account.failed_attempts - policy.max_failures
        minutes = min(policy.lock_minutes * (2**extra), 24 * 60)
        account.locked_until = now + timedelta(minutes=minutes)
        return account.locked_until
    return None


async def authenticate(
    session: AsyncSession, login: str, password: str, code: str, now: datetime, policy: LockoutPolicy
) -> LoginResult:
    """Check login + password + TOTP. Counts failures, locks after `policy.max_failures`."""
    user = (await session.execute(select(User).where(User.login == login, User.issuer == "local"))).scalar_one_or_none()
    account = await session.get(OpAccount, user.id) if user is not None else None
    if account is not None and account.locked_until is not None and account.locked_until > now:
        return LoginResult(Outcome.LOCKED, user, account.locked_until)
    if user is None or account is None or not verify_password(account.password_hash, password):
        locked = await _fail(account, now, policy)
        if locked is not None:
            return LoginResult(Outcome.LOCKED, user, locked)
        return LoginResult(Outcome.BAD_CREDENTIALS)
    if user.disabled:
        return LoginResult(Outcome.DISABLED, user)
    if not account.totp_confirmed:
        return LoginResult(Outcome.ENROL, user)
    if not code.strip():
        return LoginResult(Outcome.TOTP_REQUIRED, user)
    if not check_totp(account, code.strip(), now):
        locked = await _fail(account, now, policy)
        if locked is not None:
            return LoginResult(Outcome.LOCKED, user, locked)
        return LoginResult(Outcome.BAD_TOTP, user)
    account.failed_attempts = 0
    account.locked_until = None
    return LoginResult(Outcome.OK, user)


async def start_enrolment(session: AsyncSession, user: User, now: datetime) -> str:
    """A fresh, unconfirmed TOTP secret for the enrolment page (replaces an unconfirmed one)."""
    account = await session.get(OpAccount, user.id)
    assert account is not None
    if account.totp_confirmed:
        raise ValueError("already enrolled")
    account.totp_secret = pyotp.random_base32()
    account.updated_at = now
    await session.flush()
    return account.totp_secret


async def confirm_enrolment(session: AsyncSession, user: User, code: str, now: datetime) -> bool:
    account = await session.get(OpAccount, user.id)
    if account is None or account.totp_confirmed or not check_totp(account, code.strip(), now):
        return False
    account.totp_confirmed = True
    account.updated_at = now
    return True
