"""The login-limit policy of SPEC "Login limits", as pure state transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from authserver.login.limits import (
    IpFailures,
    LockoutPolicy,
    UserFailures,
    ip_after_failure,
    is_reset,
    limit_key,
    retry_after,
    user_after_failure,
)

POLICY = LockoutPolicy()
T0 = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)


def fail(times: int, state: UserFailures | None = None, at: datetime = T0) -> UserFailures:
    for _ in range(times):
        state = user_after_failure(state, POLICY, at)
    assert state is not None
    return state


def test_nine_failures_do_not_lock() -> None:
    state = fail(9)
    assert state.locked_until is None
    assert retry_after(state, None, POLICY, T0) is None


def test_tenth_failure_locks_for_sixty_seconds() -> None:
    state = fail(10)
    assert state.locked_until == T0 + timedelta(seconds=60)
    assert retry_after(state, None, POLICY, T0) == 60
    assert retry_after(state, None, POLICY, T0 + timedelta(seconds=60)) is None


def test_each_failure_after_a_lock_doubles_it_up_to_fifteen_minutes() -> None:
    state = fail(10)
    locks = []
    for _ in range(6):
        after_lock = state.locked_until
        assert after_lock is not None
        state = user_after_failure(state, POLICY, after_lock)
        locks.append(state.lock_seconds)
    assert locks == [120, 240, 480, 900, 900, 900]


def escalate_to_the_cap() -> UserFailures:
    state = fail(10)
    while state.lock_seconds < POLICY.lock_max_seconds:
        assert state.locked_until is not None
        state = user_after_failure(state, POLICY, state.locked_until)
    return state


def test_a_failure_later_than_the_escalation_window_locks_for_the_first_length_only() -> None:
    """Escalation decays (review finding 3): the owner who mistypes an hour after an attack
    ended waits LOGIN_LOCK_SECONDS, not the cap."""
    state = escalate_to_the_cap()
    assert state.locked_until is not None
    an_hour_later = state.locked_until + timedelta(hours=1)
    assert user_after_failure(state, POLICY, an_hour_later).lock_seconds == 60


def test_a_failure_within_the_escalation_window_still_doubles() -> None:
    state = fail(10)
    assert state.locked_until is not None
    soon = state.locked_until + timedelta(seconds=POLICY.lock_max_seconds)
    assert user_after_failure(state, POLICY, soon).lock_seconds == 120


def test_a_counter_quiet_for_the_reset_time_is_forgotten() -> None:
    """A username locked weeks ago is not locked again by one failure: its counter is
    equivalent to none, so the next failure is the first of a fresh count."""
    state = escalate_to_the_cap()
    assert state.locked_until is not None
    quiet = state.locked_until + timedelta(seconds=POLICY.failure_reset_seconds)
    assert is_reset(state, POLICY, quiet)
    assert not is_reset(state, POLICY, quiet - timedelta(seconds=1))
    assert user_after_failure(None, POLICY, quiet).locked_until is None


def test_failures_below_the_limit_are_forgotten_after_the_reset_time() -> None:
    state = fail(9)
    assert not is_reset(state, POLICY, T0 + timedelta(seconds=POLICY.failure_reset_seconds - 1))
    assert is_reset(state, POLICY, T0 + timedelta(seconds=POLICY.failure_reset_seconds))


def test_a_running_lock_is_never_forgotten() -> None:
    long_lock = UserFailures(10, T0, T0 + timedelta(days=2), 900)
    assert not is_reset(long_lock, POLICY, T0 + timedelta(days=1))


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    state = fail(10)
    assert retry_after(state, None, POLICY, T0 + timedelta(seconds=59.2)) == 1
    assert retry_after(state, None, POLICY, T0 + timedelta(seconds=0.5)) == 60


def test_ip_limit_blocks_until_its_window_ends() -> None:
    ip: IpFailures | None = None
    for _ in range(100):
        ip = ip_after_failure(ip, POLICY, T0)
    assert retry_after(None, ip, POLICY, T0 + timedelta(seconds=100)) == 800
    assert retry_after(None, ip, POLICY, T0 + timedelta(seconds=900)) is None


def test_ip_window_restarts_after_it_ends() -> None:
    ip = IpFailures(T0, 99)
    later = T0 + timedelta(seconds=901)
    assert ip_after_failure(ip, POLICY, later) == IpFailures(later, 1)


def test_longest_wait_wins_when_both_limits_apply() -> None:
    user = fail(10)
    ip = IpFailures(T0, 100)
    assert retry_after(user, ip, POLICY, T0) == 900


@pytest.mark.parametrize(
    ("client_ip", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:a:1::10", "2001:db8:a:1::/64"),
        ("2001:db8:a:1:ffff:ffff:ffff:ffff", "2001:db8:a:1::/64"),
        ("2001:db8:a:2::10", "2001:db8:a:2::/64"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_client_is_counted_as_its_slash_64_and_an_ipv4_client_as_itself(
    client_ip: str, key: str
) -> None:
    assert limit_key(client_ip) == key
    assert len(key) <= 64  # the width of the IP key columns
