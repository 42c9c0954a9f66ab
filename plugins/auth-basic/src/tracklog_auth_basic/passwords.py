"""Password hashing (argon2id) and a short-lived cache of successful checks, so a client
sending Basic credentials on every request pays the deliberately slow hash once a minute,
not once per request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Any

_hasher: Any = None
_KEY = secrets.token_bytes(32)  # per process: cache keys mean nothing outside it
_CACHE_TTL = 60.0
_CACHE_MAX = 10_000
_cache: dict[bytes, float] = {}
_lock = threading.Lock()


def _ph() -> Any:
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def hash_password(password: str) -> str:
    return str(_ph().hash(password))


def _key(stored_hash: str, password: str) -> bytes:
    # Bound to the stored hash: a changed password (a new hash) misses the cache.
    return hmac.new(_KEY, stored_hash.encode() + b"\0" + password.encode(),
                    hashlib.sha256).digest()


def verify(stored_hash: str, password: str) -> bool:
    key = _key(stored_hash, password)
    now = time.monotonic()
    with _lock:
        until = _cache.get(key)
    if until is not None and until > now:
        return True
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        _ph().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = now + _CACHE_TTL
    return True


def dummy_verify(password: str) -> None:
    """Spend a check's time for an unknown user, so timing does not tell names apart."""
    verify(_dummy(), password)


_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash
