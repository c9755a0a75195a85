"""Every serving process follows key changes made anywhere (SPEC "Signing keys": pick-up without
a restart, within KEYS_REFRESH_INTERVAL).

Polling is the guarantee: every KEYS_REFRESH_INTERVAL the process compares the (kid, state) pairs
in the database with the ones its KeyRing was built from. On PostgreSQL a dedicated connection
also LISTENs on the channel that key changes NOTIFY, which wakes the poll at once; if that
connection drops, polling alone carries on while it reconnects. The same loop runs automatic
rotation (KEY_ROTATION_INTERVAL) and rebuilds the JWKS when a retired key's publication ends.

KEK rotation: a key sealed under a KEK this process does not hold (`keys rekey` ran with a new
KEY_ENCRYPTION_KEY) makes it re-read the KEK file, if that is where its KEKs came from, and try
again: the operator's edit of the file is all it takes. KEKs from the settings (the environment)
cannot change under a running process: until it is restarted with the new KEK it keeps the keys
it has, and says so at each round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from authserver.keys.kek import KekNotConfigured, KeyDecryptionError, load_keks
from authserver.keys.lifecycle import rotate_if_due, rotation_event
from authserver.keys.ring import load_key_ring
from authserver.observability.audit import record
from authserver.services import Services
from authserver.settings import ConfigError
from authserver.store import keys as key_store

log = logging.getLogger("authserver.keys")

LISTEN_RETRY_MAX = 30.0  # seconds between reconnection attempts of the LISTEN connection, at most


async def watch_keys(svc: Services) -> None:
    """Run until cancelled: apply key changes, rotate when due."""
    wake = asyncio.Event()
    listener = asyncio.create_task(_listen(svc, wake)) if svc.db.dialect.notifies else None
    try:
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can hold up a cancellation that
            # arrives as its inner wait ends, which stalled shutdown by seconds.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(svc.settings.keys_refresh_interval):
                    await wake.wait()
            wake.clear()
            await check_keys(svc)
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def check_keys(svc: Services) -> None:
    """One round: rotate if due, then reload the key ring if anything changed. Never raises:
    a failed round keeps the keys this process has and tries again next round."""
    try:
        try:
            await _rotate_and_reload(svc)
        except KekNotConfigured:
            if not await _reread_kek_file(svc):
                raise
            await _rotate_and_reload(svc)
    except svc.db.dialect.unavailable:
        log.warning("key check: database unavailable; keeping the current keys")
    except KekNotConfigured as exc:  # each round until fixed: only the operator can fix it
        where = "the KEK file" if svc.keks.file is not None else "a restart with the new settings"
        log.error("key check: %s; keeping the current keys until %s provides it", exc, where)
    except KeyDecryptionError as exc:
        log.error("key check: %s; keeping the current keys", exc)
    except Exception:
        log.exception("key check failed; keeping the current keys")


async def _rotate_and_reload(svc: Services) -> None:
    if svc.settings.key_rotation_interval:
        rotation = await rotate_if_due(svc.db, svc.settings, svc.keks, svc.clock())
        if rotation is not None:
            await record(svc.db, rotation_event(rotation, "server", forced=False), svc.clock())
            log.info(
                "automatic rotation: %s is current, %s retired, %s next",
                rotation.current_kid,
                rotation.retired_kid,
                rotation.next_kid,
            )
    await reload_keys_if_changed(svc)


async def _reread_kek_file(svc: Services) -> bool:
    """Whether the KEK file (if the KEKs came from it) now holds other KEKs, now in use."""
    if svc.keks.file is None:
        return False
    try:
        fresh = await asyncio.to_thread(load_keks, svc.settings, create=False)
    except ConfigError as exc:
        log.error("key check: %s; keeping the KEKs read before", exc)
        return False
    if fresh.all == svc.keks.all:
        return False
    svc.keks = fresh
    log.info(
        "re-read %s: KEY_ENCRYPTION_KEY is KEK %s; previous KEKs: %s",
        fresh.file,
        fresh.current.id,
        ", ".join(kek.id for kek in fresh.previous) or "none",
    )
    return True


async def reload_keys_if_changed(svc: Services) -> None:
    states = await key_store.key_states(svc.db)
    now = svc.clock()
    ring = svc.keys
    if states == ring.states and (ring.changes_at is None or now < ring.changes_at):
        return
    svc.keys = await load_key_ring(svc.db, svc.settings, svc.keks, now)
    if svc.keys.kid != ring.kid:
        log.info("signing with key %s (was %s)", svc.keys.kid, ring.kid)


async def _listen(svc: Services, wake: asyncio.Event) -> None:
    """PostgreSQL LISTEN on the key channel, reconnecting with back-off; wakes the poll loop."""
    from authserver.store import postgresql  # only PostgreSQL notifies: never loaded for SQLite

    delay = svc.settings.keys_refresh_interval
    while True:
        try:
            await postgresql.listen(
                svc.settings.database_url,
                key_store.KEYS_CHANNEL,
                svc.settings.database_connect_timeout,
                wake.set,
            )
            log.warning("key change listener lost its connection; polling until it reconnects")
            delay = svc.settings.keys_refresh_interval
        except postgresql.LISTEN_FAILURES as exc:
            log.warning("key change listener cannot connect (%s); polling", type(exc).__name__)
        await asyncio.sleep(delay)
        delay = min(delay * 2, LISTEN_RETRY_MAX)
