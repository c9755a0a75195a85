"""Known IPs (docs: login limits; login/limits.py): an attacker who knows a username can
lock it only from the addresses its owner has never logged in from.

A password attempt from an IP the username logged in from successfully within
LOGIN_KNOWN_IP_DAYS skips the username lock and is counted and locked by its own
per-(username, IP) counter under the same rules; the per-IP limit applies to everyone. Every
other attempt follows SPEC "Login limits in detail" to the letter (and
tests/http/test_password_grant.py, unchanged, still passes). Black-box over HTTP, on SQLite and
PostgreSQL; each client IP is the TCP peer address of its own ASGI transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from starlette.applications import Starlette

from authserver.services import Services
from authserver.store.tables import login_known_ips, login_user_failures, login_user_ip_failures
from tests.conftest import ISSUER, Clock, RegisteredClient
from tests.helpers import assert_uncached_oauth_error, password_login

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]
FromIp = Callable[[str], httpx.AsyncClient]

HOME = "198.51.100.10"  # where alice logs in from
OFFICE = "198.51.100.20"  # another address alice uses
ATTACKER = "192.0.2.66"  # never used by alice
ELSEWHERE = "192.0.2.77"  # a second attacker address
WRONG = "not the password"
DAY = 86400


@pytest.fixture
async def from_ip(app: Starlette) -> AsyncIterator[FromIp]:
    """An HTTP client whose requests come from the given IP (the connection's peer address)."""
    async with AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}

        def client(ip: str) -> httpx.AsyncClient:
            if ip not in clients:
                transport = httpx.ASGITransport(app=app, client=(ip, 50000))
                opened = httpx.AsyncClient(transport=transport, base_url=ISSUER)
                clients[ip] = opened
                stack.push_async_callback(opened.aclose)
            return clients[ip]

        yield client


def retry_after(response: httpx.Response) -> int:
    """429 with `invalid_request` and a Retry-After of whole seconds (SPEC)."""
    assert_uncached_oauth_error(response, 429, "invalid_request")
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    return int(value)


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert "access_token" in response.json()


async def fail(
    http: httpx.AsyncClient, client: RegisteredClient, times: int = 1, username: str = "alice"
) -> None:
    """`times` wrong-password attempts, each answered invalid_grant (not 429)."""
    for _ in range(times):
        response = await password_login(http, client, username, WRONG)
        assert_uncached_oauth_error(response, 400, "invalid_grant")


async def setup(make_client: MakeClient, make_user: MakeUser) -> RegisteredClient:
    client = await make_client()
    await make_user("alice")
    return client


# --- the exception --------------------------------------------------------------------------------


async def test_a_locked_username_still_logs_in_from_an_ip_it_logged_in_from_before(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await setup(make_client, make_user)
    home, attacker = from_ip(HOME), from_ip(ATTACKER)
    assert_ok(await password_login(home, client))

    await fail(attacker, client, times=10)
    assert retry_after(await password_login(attacker, client)) == 60  # right password: locked

    assert_ok(await password_login(home, client))
    assert_ok(await password_login(from_ip(HOME), client))


async def test_a_success_from_a_known_ip_does_not_cut_short_the_attackers_lock(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """SPEC: 429 "until the lock ends" holds for the attacker; the owner's success resets the
    count, so once that lock has ended the attacker starts again from ten failures."""
    client = await setup(make_client, make_user)
    home, attacker = from_ip(HOME), from_ip(ATTACKER)
    assert_ok(await password_login(home, client))
    await fail(attacker, client, times=10)
    clock.advance(20)

    assert_ok(await password_login(home, client))

    assert retry_after(await password_login(attacker, client)) == 40
    clock.advance(41)
    await fail(attacker, client, times=9)  # reset by the success: no 120-second relock
    assert_ok(await password_login(attacker, client))


async def test_a_known_ip_is_itself_limited_per_username(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """An attacker behind alice's own address (same NAT) gets the SPEC limits there: ten
    failures, then 429 even for the right password, doubling locks; a third IP meanwhile is
    under the username lock, and alice's other known address is untouched by either."""
    client = await setup(make_client, make_user)
    home, office, elsewhere = from_ip(HOME), from_ip(OFFICE), from_ip(ELSEWHERE)
    assert_ok(await password_login(home, client))
    assert_ok(await password_login(office, client))

    await fail(home, client, times=10)
    assert retry_after(await password_login(home, client)) == 60
    assert retry_after(await password_login(home, client, "alice", WRONG)) == 60
    await fail(elsewhere, client, times=10)
    assert retry_after(await password_login(elsewhere, client)) == 60
    assert_ok(await password_login(office, client))

    clock.advance(61)
    await fail(home, client)  # right after its lock: locks again for twice as long
    assert retry_after(await password_login(home, client)) == 120
    clock.advance(121)
    assert_ok(await password_login(home, client))


async def test_failures_from_a_known_ip_are_not_counted_for_the_username(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await setup(make_client, make_user)
    home, attacker = from_ip(HOME), from_ip(ATTACKER)
    assert_ok(await password_login(home, client))
    await fail(home, client, times=9)
    await fail(attacker, client, times=9)  # the username's count is 9, not 18
    assert_ok(await password_login(attacker, client))


async def test_a_success_from_a_known_ip_resets_its_own_count(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await setup(make_client, make_user)
    home = from_ip(HOME)
    assert_ok(await password_login(home, client))
    await fail(home, client, times=9)
    assert_ok(await password_login(home, client))
    await fail(home, client, times=9)
    assert_ok(await password_login(home, client))


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}])
async def test_the_per_ip_limit_applies_to_known_ips_too(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await setup(make_client, make_user)
    home = from_ip(HOME)
    assert_ok(await password_login(home, client))
    for username in ("u1", "u2", "u3"):
        await fail(home, client, username=username)
    wait = retry_after(await password_login(home, client))
    assert 1 <= wait <= 900


async def test_concurrent_guesses_from_a_known_ip_cannot_exceed_its_limit(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await setup(make_client, make_user)
    home = from_ip(HOME)
    assert_ok(await password_login(home, client))
    responses = await asyncio.gather(
        *(password_login(home, client, "alice", f"guess number {i}") for i in range(30))
    )
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {400, 429}, statuses
    assert statuses.count(400) <= 10, statuses
    retry_after(await password_login(home, client))


async def test_concurrent_logins_and_guesses_from_a_known_ip_all_get_an_answer(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Successes and failures for one username from its known IP, and from elsewhere, at once:
    every transaction takes its row locks in the same order, so none waits on another in a
    cycle (on PostgreSQL a deadlock would abort one: a 5xx here)."""
    client = await setup(make_client, make_user)
    home, attacker = from_ip(HOME), from_ip(ATTACKER)
    assert_ok(await password_login(home, client))
    requests = []
    for i in range(12):
        requests.append(password_login(home, client))
        requests.append(password_login(home, client, "alice", f"guess {i}"))
        requests.append(password_login(attacker, client, "alice", f"guess {i}"))
    statuses = [response.status_code for response in await asyncio.gather(*requests)]
    assert set(statuses) <= {200, 400, 429}, statuses
    assert 200 in statuses, statuses


# --- attackers from new addresses: SPEC to the letter ---------------------------------------------


async def test_an_attacker_from_a_new_ip_still_gets_the_username_lock_exactly_per_spec(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """alice has a known IP; from anywhere else the tenth failure still answers invalid_grant,
    then every attempt, right password included, answers 429 until the lock ends; each failure
    right after a lock relocks for twice as long, capped at 15 minutes; unknown usernames alike."""
    client = await setup(make_client, make_user)
    assert_ok(await password_login(from_ip(HOME), client))
    attacker, elsewhere = from_ip(ATTACKER), from_ip(ELSEWHERE)

    await fail(attacker, client, times=10)
    await fail(attacker, client, times=10, username="mallory")  # no such user
    right = await password_login(attacker, client)
    wrong = await password_login(elsewhere, client, "alice", WRONG)
    unknown = await password_login(attacker, client, "mallory", WRONG)
    assert retry_after(right) == retry_after(wrong) == retry_after(unknown) == 60
    assert right.content == wrong.content == unknown.content

    observed = []
    for _ in range(5):
        clock.advance(901)  # past any lock
        await fail(elsewhere, client)  # the failure itself still answers invalid_grant
        observed.append(retry_after(await password_login(attacker, client)))
    assert observed == [120, 240, 480, 900, 900]


# --- expiry and the setting -----------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"login_known_ip_days": 2}])
async def test_known_ips_expire_after_login_known_ip_days(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await setup(make_client, make_user)
    home, attacker = from_ip(HOME), from_ip(ATTACKER)
    assert_ok(await password_login(home, client))
    clock.advance(1.5 * DAY)
    assert_ok(await password_login(home, client))  # renews: known until 3.5 days from the start

    clock.advance(2 * DAY - 30)  # 30 s before it expires
    await fail(attacker, client, times=10)
    await fail(home, client)  # still known: counted for (alice, HOME), not refused
    clock.advance(31)  # expired, while the username lock has about 30 s to run
    locked = retry_after(await password_login(home, client))
    assert 25 <= locked <= 30

    clock.advance(locked)
    assert_ok(await password_login(home, client))  # known again from now on
    await fail(attacker, client, times=10)
    assert_ok(await password_login(home, client))


@pytest.mark.parametrize("settings_overrides", [{"login_known_ip_days": 0}])
async def test_login_known_ip_days_0_turns_the_exception_off(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    client = await setup(make_client, make_user)
    home, attacker = from_ip(HOME), from_ip(ATTACKER)
    assert_ok(await password_login(home, client))
    await fail(attacker, client, times=10)
    assert retry_after(await password_login(home, client)) == 60
    async with services.db.statement() as conn:
        remembered = await conn.execute(select(func.count()).select_from(login_known_ips))
        assert remembered.scalar() == 0


# --- no user enumeration --------------------------------------------------------------------------


@contextmanager
def recorded_statements(services: Services) -> Iterator[list[str]]:
    """The SQL text of every statement SQLAlchemy sends while the block runs."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# The key watcher polls on its own schedule (KEYS_REFRESH_INTERVAL, 0.2 s in the tests): on a busy
# machine, where a login takes longer, its poll (`BEGIN`, `SELECT … FROM signing_keys`) landed
# among the login's statements. Here it polls once, at start-up, before anything is recorded.
@pytest.mark.parametrize("settings_overrides", [{"keys_refresh_interval": 3600}])
async def test_unknown_username_and_known_user_cost_the_same_statements(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    """The known-IP lookup is by username, so a username nobody has is looked up by the same
    statement as alice from an address she never used, and both go on through the same
    statements (the same SQL, only parameters differ). A failure from one of alice's known
    addresses costs the same number of statements, on its own counter table. (Timing:
    tests/http/test_login_timing.py.)"""
    client = await setup(make_client, make_user)
    assert_ok(await password_login(from_ip(HOME), client))
    attacker = from_ip(ATTACKER)
    await fail(attacker, client, username="warm-up")  # first-use statements stay out

    with recorded_statements(services) as unknown_user:
        await fail(attacker, client, username="nobody")
    with recorded_statements(services) as wrong_password:
        await fail(attacker, client)
    with recorded_statements(services) as from_known_ip:
        await fail(from_ip(HOME), client)

    assert unknown_user == wrong_password
    assert len(from_known_ip) == len(wrong_password)
    assert any(login_user_failures.name in sql for sql in wrong_password)
    assert not any(login_user_ip_failures.name in sql for sql in wrong_password)
    assert any(login_user_ip_failures.name in sql for sql in from_known_ip)
    assert not any(login_user_failures.name in sql for sql in from_known_ip)


# --- IPv6: one /64 is one client ----------------------------------------------------------------

# A host picks its own interface identifiers (RFC 8981 temporary addresses, and any attacker with
# a /64 routed to it): within a /64, a new source address costs nothing.
HOME_V6 = "2001:db8:a:1::10"
HOME_V6_LATER = "2001:db8:a:1:9c41:27ff:fe00:3"  # alice's next temporary address
ATTACKER_V6 = "2001:db8:bad:1::"


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}])
async def test_an_attacker_rotating_addresses_within_one_ipv6_slash_64_gets_one_ip_limit(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await setup(make_client, make_user)
    for n, username in enumerate(("u1", "u2", "u3"), start=1):
        await fail(from_ip(f"{ATTACKER_V6}{n}"), client, username=username)

    wait = retry_after(await password_login(from_ip(f"{ATTACKER_V6}99"), client, "u4", WRONG))
    assert 1 <= wait <= 900
    assert retry_after(await password_login(from_ip("2001:db8:bad:1:ffff::1"), client)) == wait
    assert_ok(await password_login(from_ip("2001:db8:bad:2::1"), client))  # the next /64 is not


async def test_a_locked_username_still_logs_in_from_a_new_address_in_a_known_ipv6_slash_64(
    from_ip: FromIp, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await setup(make_client, make_user)
    assert_ok(await password_login(from_ip(HOME_V6), client))
    await fail(from_ip(f"{ATTACKER_V6}1"), client, times=10)
    assert retry_after(await password_login(from_ip(f"{ATTACKER_V6}2"), client)) == 60

    assert_ok(await password_login(from_ip(HOME_V6_LATER), client))
    assert retry_after(await password_login(from_ip("2001:db8:a:2::10"), client)) > 0
