"""The issuer's keys by kid, and the rules for when to fetch them.

- a JWKS is fresh for its `Cache-Control: max-age` (minus `Age`; RFC 9111 §4.2), 300 s without one;
- at most one fetch starts per `refetch_interval` (10 s), whatever the reason: an unknown `kid`,
  a stale set, a failed fetch. A flood of bogus kids therefore costs the issuer one request per
  interval, and callers that arrive while a fetch runs wait for it instead of starting another;
- when a fetch fails the last good keys stay usable for `stale_if_error` seconds past their
  freshness (RFC 5861 §4 semantics), then verification fails with KeySetUnavailable.

Only keys named by the JWKS are ever used: a token's `jku`, `x5u`, `jwk` or `x5c` header is never
looked at, let alone fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from joserfc.jwk import RSAKey

from authserver.verify.errors import KeySetUnavailable, UnknownKey, quoted
from authserver.verify.fetch import Fetched, KeySource, describe

logger = logging.getLogger("authserver.verify")


@dataclass(frozen=True)
class Snapshot:
    """One JWKS as imported: replaced whole, never mutated, so readers need no lock."""

    keys: Mapping[str, RSAKey]
    fresh_until: float  # monotonic time
    stale_until: float  # usable until then when the issuer cannot be reached


EMPTY = Snapshot({}, -math.inf, -math.inf)


@dataclass
class _Flight:
    """A fetch in progress; callers that need its result wait on `done` (or on `task`)."""

    done: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None


def _fetching_on_this_loop(flight: _Flight) -> bool:
    """True when `flight` is an async fetch on the event loop running in this thread (someone
    called verify_sync from async code)."""
    if flight.task is None:
        return False
    try:
        return flight.task.get_loop() is asyncio.get_running_loop()
    except RuntimeError:  # no event loop running in this thread
        return False


class KeyCache:
    """The keys by kid, and the rules for when to fetch them (see the module docstring)."""

    def __init__(
        self,
        source: KeySource,
        *,
        refetch_interval: float,
        stale_if_error: float,
        monotonic: Callable[[], float],
    ) -> None:
        self.source = source
        self.refetch_interval = refetch_interval
        self.stale_if_error = stale_if_error
        self.monotonic = monotonic
        self.snapshot = EMPTY
        self._lock = threading.Lock()  # guards _last_attempt and _flight; never held over I/O
        self._last_attempt: float | None = None
        self._flight: _Flight | None = None

    def get_key_sync(self, kid: str) -> RSAKey:
        action, key, flight = self._plan(kid)
        if action == "use":
            assert key is not None
            return key
        if action == "fetch":
            assert flight is not None
            self._run_sync(flight)
        elif action == "wait":
            assert flight is not None
            if not _fetching_on_this_loop(flight):  # waiting would block that very fetch
                flight.done.wait(self._wait_limit())
        return self._settle(kid)

    async def get_key(self, kid: str) -> RSAKey:
        action, key, flight = self._plan(kid)
        if action == "use":
            assert key is not None
            return key
        if action == "fetch":
            assert flight is not None
            flight.task = asyncio.ensure_future(self._run_async(flight))  # before any await
            await asyncio.shield(flight.task)  # a cancelled request does not cancel the fetch
        elif action == "wait":
            assert flight is not None
            await self._wait_async(flight)
        return self._settle(kid)

    async def prefetch(self) -> bool:
        """Load the JWKS unless fresh (no kid is empty, so "" only ever triggers a fetch)."""
        if self._fresh():
            return True
        with contextlib.suppress(UnknownKey, KeySetUnavailable):
            await self.get_key("")
        return self._usable()

    def prefetch_sync(self) -> bool:
        if self._fresh():
            return True
        with contextlib.suppress(UnknownKey, KeySetUnavailable):
            self.get_key_sync("")
        return self._usable()

    def _fresh(self) -> bool:
        return bool(self.snapshot.keys) and self.monotonic() < self.snapshot.fresh_until

    def _usable(self) -> bool:
        return bool(self.snapshot.keys) and self.monotonic() < self.snapshot.stale_until

    async def _wait_async(self, flight: _Flight) -> None:
        task = flight.task
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(task)
        else:  # a sync fetch, or one started on another event loop
            await asyncio.to_thread(flight.done.wait, self._wait_limit())

    def _wait_limit(self) -> float:
        return self.source.timeout * 3 + 1.0  # discovery (two tries) and the JWKS itself

    def _plan(self, kid: str) -> tuple[str, RSAKey | None, _Flight | None]:
        """use (a key), fetch (this caller does it), wait (for a running fetch), or settle
        (answer from the keys we have)."""
        with self._lock:
            now = self.monotonic()
            snapshot = self.snapshot
            key = snapshot.keys.get(kid)
            if key is not None and now < snapshot.fresh_until:
                return "use", key, None
            if self._flight is not None:
                if key is not None and now < snapshot.stale_until:
                    return "use", key, None  # stale-while-revalidate
                return "wait", None, self._flight
            if self._last_attempt is None or now - self._last_attempt >= self.refetch_interval:
                self._last_attempt = now
                self._flight = _Flight()
                return "fetch", None, self._flight
            return "settle", None, None

    def _settle(self, kid: str) -> RSAKey:
        snapshot = self.snapshot
        if self.monotonic() >= snapshot.stale_until:
            raise KeySetUnavailable("no usable JWKS: never fetched, or too long unreachable")
        key = snapshot.keys.get(kid)
        if key is None:
            raise UnknownKey(f"kid {quoted(kid)} is not in the issuer's JWKS")
        return key

    def _run_sync(self, flight: _Flight) -> None:
        try:
            self._install(self.source.fetch_sync())
        except Exception as exc:  # any failure keeps the last good keys
            self._failed(exc)
        finally:
            self._land(flight)

    async def _run_async(self, flight: _Flight) -> None:
        try:
            self._install(await self.source.fetch())
        except Exception as exc:  # any failure keeps the last good keys
            self._failed(exc)
        finally:
            self._land(flight)

    def _install(self, fetched: Fetched) -> None:
        now = self.monotonic()
        self.snapshot = Snapshot(
            fetched.keys, now + fetched.ttl, now + fetched.ttl + self.stale_if_error
        )
        logger.info(
            "fetched the JWKS of %s: %d usable keys, fresh for %.0f s",
            self.source.issuer,
            len(fetched.keys),
            fetched.ttl,
        )

    def _failed(self, exc: Exception) -> None:
        keeping = "keeping the last good keys" if self.snapshot.keys else "no keys yet"
        logger.warning(
            "fetching the JWKS of %s failed (%s); %s", self.source.issuer, describe(exc), keeping
        )

    def _land(self, flight: _Flight) -> None:
        with self._lock:
            if self._flight is flight:
                self._flight = None
        flight.done.set()
