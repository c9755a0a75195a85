"""What a request handler needs, built once per app by `create_app` (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from authserver.clients.cache import ClientCache
from authserver.clock import utc_now
from authserver.keys.kek import KeyEncryptionKeys
from authserver.keys.ring import KeyRing
from authserver.login.limits import LockoutPolicy
from authserver.login.passwords import Passwords
from authserver.observability.metrics import Metrics
from authserver.settings import Settings
from authserver.store.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    passwords: Passwords
    lockout: LockoutPolicy
    keks: KeyEncryptionKeys = field(repr=False)  # replaced when the KEK file is re-read
    keys: KeyRing  # replaced (never mutated) when the key poller sees a change
    metrics: Metrics
    clock: Callable[[], datetime] = utc_now
    client_cache: ClientCache = field(default_factory=ClientCache)  # the refresh grant's
