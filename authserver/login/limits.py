"""Brute-force limits on the password grant (SPEC "Login limits"), as pure state transitions.

Per username (known or not): the `max_failures`-th consecutive failure still answers
invalid_grant and locks the name for `lock_seconds`; while locked every attempt, right password
included, answers 429. A success resets the count (see below for a lock still running).

Escalation, and its decay (security review, finding 3):
- a failure soon after a lock ended — within `lock_max_seconds` of its end — locks again for
  twice as long, capped at `lock_max_seconds` (SPEC: "each failure right after a lock ends");
- a failure later than that locks again for `lock_seconds` only: the escalation has decayed;
- after `failure_reset_seconds` (LOGIN_FAILURE_RESET_SECONDS, 12 h by default, Keycloak's
  "failure reset time") without a failure and with no lock running, the counter is forgotten:
  the name has its full `max_failures` again.
So an attacker who keeps at it gets at best one guess per `lock_max_seconds` + `lock_seconds`
(the same as at the cap), while the owner who mistypes a day after an attack ends is not locked
at all, and one who mistypes an hour after it ends waits `lock_seconds`, not the cap.

Per client IP: `ip_max_failures` failures within a fixed window of `ip_window_seconds` block
further attempts from that IP until the window ends. "IP" is `limit_key`: an IPv6 client is its
/64, since a host chooses its own interface identifiers within it (RFC 4291 §2.5.1, RFC 8981
temporary addresses), so a new address there costs an attacker nothing and an owner gets one
every day; the same key makes an address known.

Known IPs (OWASP's device-cookie idea, with the address standing in for the cookie): an address
from which the username logged in successfully within the last `known_ip_days` is *known* for
that username. An attempt from a known IP is not subject to the username's lock: it is counted
and locked by its own per-(username, IP) counter under the same rules instead, so an attacker who
locks a username from elsewhere cannot lock its owner out of the places the owner uses, and one
who shares such an address still gets no more than `max_failures` guesses there before the
doubling locks apply. The per-IP limit applies to every attempt. `known_ip_days` = 0: no IP is
known, every attempt is counted per username.

A success resets the counter the attempt went through entirely (taking back the lock its own
pre-count may have set: every attempt is counted before its password is checked) and the count
of the username's counter in any case. A success from a known IP leaves a lock on the username
running until it ends: proving the password from a known IP must not cut short a lock that an
attacker elsewhere is waiting out (SPEC: 429 "until the lock ends"). A counter with nothing
since its last success, or quiet for `failure_reset_seconds`, counts for nothing (`is_reset`).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from authserver.settings import Settings

IPV6_CLIENT_PREFIX = 64


def limit_key(client_ip: str) -> str:
    """What a client address is counted and remembered under: an IPv4 address itself, an IPv6
    address's /64 (`2001:db8:a:1::/64`), and anything that is not an address ("unknown") as is."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if address.version == 4:
        return client_ip
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 10
    lock_seconds: int = 60
    lock_max_seconds: int = 900
    ip_max_failures: int = 100
    ip_window_seconds: int = 900
    known_ip_days: int = 30
    failure_reset_seconds: int = 43_200

    @classmethod
    def from_settings(cls, settings: Settings) -> LockoutPolicy:
        return cls(
            settings.login_max_failures,
            settings.login_lock_seconds,
            settings.login_lock_max_seconds,
            settings.login_ip_max_failures,
            settings.login_ip_window_seconds,
            settings.login_known_ip_days,
            settings.login_failure_reset_seconds,
        )

    def known_since(self, now: datetime) -> datetime | None:
        """A success later than this makes its IP known; None: the exception is switched off."""
        if self.known_ip_days <= 0:
            return None
        return now - timedelta(days=self.known_ip_days)


@dataclass(frozen=True)
class UserFailures:
    """A username's counter, or a (username, known IP) counter: the same rules apply to both."""

    failures: int
    last_failure_at: datetime
    locked_until: datetime | None
    lock_seconds: int  # length of the last lock; 0 = never locked since the last success


@dataclass(frozen=True)
class IpFailures:
    window_started_at: datetime
    failures: int


def is_reset(state: UserFailures, policy: LockoutPolicy, now: datetime) -> bool:
    """Whether a counter is equivalent to no counter at all: no lock running, and either nothing
    since the last success (no failure, no lock) or quiet for `failure_reset_seconds`."""
    if state.locked_until is not None and state.locked_until > now:
        return False
    if state.failures == 0 and state.lock_seconds == 0:
        return True
    quiet_since = max(state.last_failure_at, state.locked_until or state.last_failure_at)
    return now - quiet_since >= timedelta(seconds=policy.failure_reset_seconds)


def user_after_failure(
    state: UserFailures | None, policy: LockoutPolicy, now: datetime
) -> UserFailures:
    """The counter after one more failure (`state` None: no counter, or one that `is_reset`)."""
    if state is not None and state.lock_seconds > 0:
        lock_ended = state.locked_until or state.last_failure_at
        if now - lock_ended <= timedelta(seconds=policy.lock_max_seconds):
            lock = min(state.lock_seconds * 2, policy.lock_max_seconds)  # soon after: escalate
        else:
            lock = min(policy.lock_seconds, policy.lock_max_seconds)  # the escalation decayed
        return UserFailures(state.failures + 1, now, now + timedelta(seconds=lock), lock)
    failures = 1 if state is None else state.failures + 1
    if failures >= policy.max_failures:
        lock = min(policy.lock_seconds, policy.lock_max_seconds)
        return UserFailures(failures, now, now + timedelta(seconds=lock), lock)
    return UserFailures(failures, now, None, 0)


def ip_after_failure(state: IpFailures | None, policy: LockoutPolicy, now: datetime) -> IpFailures:
    if state is None or now >= state.window_started_at + timedelta(
        seconds=policy.ip_window_seconds
    ):
        return IpFailures(now, 1)
    return IpFailures(state.window_started_at, state.failures + 1)


def retry_after(
    user: UserFailures | None, ip: IpFailures | None, policy: LockoutPolicy, now: datetime
) -> int | None:
    """Whole seconds until an attempt may be made, or None if it may be made now."""
    waits: list[float] = []
    if user is not None and user.locked_until is not None and user.locked_until > now:
        waits.append((user.locked_until - now).total_seconds())
    if ip is not None and ip.failures >= policy.ip_max_failures:
        window_end = ip.window_started_at + timedelta(seconds=policy.ip_window_seconds)
        if window_end > now:
            waits.append((window_end - now).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None
