"""The per-process cache of client rows for the refresh grant, the hot path (RFC 6749 §6).

Reading the client on every refresh costs a database round trip of its own. The cache saves it
without ever acting on a stale row: an entry carries the row's version (PostgreSQL's `xmin`),
and the rotation statement itself rotates only while the client's row is still at that version,
answering with the current one (store/rotation.py). A changed, disabled-by-update or deleted
client is so noticed in the same round trip, before anything is written, and the request is
redone with the row read afresh (`authenticate_client` with no cache).

What the cache does not change: the presented secret is verified on every request, against the
entry's digest, in constant time; an entry is only ever trusted to say yes, so a request it
would refuse (wrong secret, grant not allowed) is decided again on a fresh read; and only the
grants whose statement confirms the version use it (`grants.CONFIRMS_CLIENT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authserver.models import VersionedClient

MAX_ENTRIES = 1024  # clients are registered by operators; past this, start again


@dataclass
class ClientCache:
    entries: dict[str, VersionedClient] = field(default_factory=dict)
    max_entries: int = MAX_ENTRIES

    def get(self, client_id: str) -> VersionedClient | None:
        return self.entries.get(client_id)

    def put(self, entry: VersionedClient) -> None:
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[entry.client.client_id] = entry

    def forget(self, client_id: str) -> None:
        self.entries.pop(client_id, None)
