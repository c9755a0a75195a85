"""Argon2id password hashing, off the event loop.

An unknown username is verified against a dummy hash made with the same parameters, so a miss
costs the same time as a wrong password (SPEC: indistinguishable in body and timing).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authserver.settings import Settings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class Passwords:
    hasher: PasswordHasher
    dummy_hash: str = field(repr=False)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches; a None hash (unknown user) costs a dummy verification."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            ok = self.hasher.verify(password_hash or self.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False


def make_passwords(settings: Settings) -> Passwords:
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )
    return Passwords(hasher, hasher.hash("authserver dummy password for unknown users"))


def check_new_password(password: str) -> str | None:
    """Why a password may not be set, or None if it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    return None
