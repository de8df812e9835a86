"""Accounts of the people who use the hotline's REST API (agents and admins) and their tokens.

A token is shown once, when it is made; the store keeps only its sha256. Tokens are 256 random
bits, so a plain (unsalted) hash cannot be reversed by guessing. Accounts are disabled, never
deleted: the records of what they did keep naming them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ticketing.models import NAMING_CONVENTION, UtcDateTime

ADMIN_NAME = "admin"  # the account behind HOTLINE_ADMIN_TOKEN and `hotline token admin`
TOKEN_PREFIX = "hl_"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Role(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who a request comes from."""

    name: str
    role: Role


class AccountError(Exception):
    pass


class AccountExists(AccountError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an account named {name!r} already exists")


class AccountNotFound(AccountError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no account named {name!r}")


class InvalidAccountName(AccountError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is not a valid account name: use 1-64 letters, digits, '.', '_' or '-'")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[Role] = mapped_column(
        sa.Enum(Role, name="account_role", native_enum=False, create_constraint=True, length=16,
                values_callable=lambda members: [m.value for m in members], validate_strings=True)
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str | None] = mapped_column(sa.String(64))


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, '.', '_' or '-'; at most 64")
    role: Role = Role.AGENT


class AccountPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    name: str
    role: Role
    active: bool
    created_at: datetime
    created_by: str | None


class AccountCreated(AccountPublic):
    token: str = Field(description="shown only now; the hotline keeps only its hash")


# ---------------------------------------------------------------- tokens


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (compared as their hashes, so lengths do not leak)."""
    return hmac.compare_digest(hash_token(given), hash_token(expected))


# ---------------------------------------------------------------- data access


def principal_for_token(session: Session, *, token: str) -> Principal | None:
    """The active account whose token this is, or None."""
    digest = hash_token(token)
    account = session.scalar(sa.select(Account).where(Account.token_hash == digest))
    if account is None or not account.active or not hmac.compare_digest(account.token_hash, digest):
        return None
    return Principal(account.name, account.role)


def create_account(
    session: Session, *, name: str, role: Role, now: datetime, created_by: str | None = None
) -> AccountCreated:
    """A new account and its token (returned once, never stored)."""
    try:
        checked = AccountCreate(name=name, role=role)
    except ValidationError:
        raise InvalidAccountName(name) from None
    token = new_token()
    account = Account(name=checked.name, role=checked.role, token_hash=hash_token(token), active=True,
                      created_at=now, created_by=created_by)
    session.add(account)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AccountExists(checked.name) from None
    return AccountCreated(**AccountPublic.model_validate(account).model_dump(), token=token)


def list_accounts(session: Session) -> list[AccountPublic]:
    accounts = session.scalars(sa.select(Account).order_by(Account.name))
    return [AccountPublic.model_validate(account) for account in accounts]


def _account(session: Session, name: str) -> Account:
    account = session.scalar(sa.select(Account).where(Account.name == name))
    if account is None:
        raise AccountNotFound(name)
    return account


def is_active_account(session: Session, *, name: str) -> bool:
    """Whether `name` is an account that may work (e.g. own tickets)."""
    return bool(session.scalar(sa.select(Account.active).where(Account.name == name)))


def disable_account(session: Session, *, name: str) -> AccountPublic:
    """The account's token stops working at once; the account stays for the records that name it."""
    account = _account(session, name)
    account.active = False
    session.commit()
    return AccountPublic.model_validate(account)


def rotate_token(session: Session, *, name: str) -> str:
    """A new token for an account (re-enabled if it was disabled); the old one stops working."""
    account = _account(session, name)
    token = new_token()
    account.token_hash = hash_token(token)
    account.active = True
    session.commit()
    return token


def set_admin_token(session: Session, *, token: str | None, now: datetime) -> str | None:
    """Makes sure the admin account exists.

    With `token` (HOTLINE_ADMIN_TOKEN) the admin account takes that token. Without one, a first
    start creates the account with a new token and returns it, to be shown once; later starts
    return None.
    """
    account = session.scalar(sa.select(Account).where(Account.name == ADMIN_NAME))
    if account is not None:
        if token is not None and not hmac.compare_digest(account.token_hash, hash_token(token)):
            account.token_hash = hash_token(token)
            account.active = True
            session.commit()
        return None
    made = token or new_token()
    session.add(Account(name=ADMIN_NAME, role=Role.ADMIN, token_hash=hash_token(made), active=True,
                        created_at=now, created_by=None))
    try:
        session.commit()
    except IntegrityError:  # another gateway on the same store made it first
        session.rollback()
        return None
    return None if token is not None else made
