"""Passwords (Argon2) and API tokens (random, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "blt_"
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified against when a username does not exist, so that a wrong username costs
# as much time as a wrong password and does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("bulletin-timing-equaliser")


class PasswordTooWeak(ValueError):
    """A new password does not meet the minimum length."""


def hash_password(password: str) -> str:
    """Hash a new password with Argon2id."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooWeak(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; spends the same time when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash uses outdated parameters."""
    return _hasher.check_needs_rehash(password_hash)


def new_token() -> str:
    """A new API token: a recognisable prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token. Tokens carry 256 bits, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    """The first characters of a token, safe to show in lists."""
    return token[: len(TOKEN_PREFIX) + 6]


def constant_time_equals(a: str, b: str) -> bool:
    """Compare two secrets without leaking where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())
