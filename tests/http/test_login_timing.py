"""SPEC: wrong username and wrong password are indistinguishable in timing (medians within 20 %).

Production argon2 parameters (OWASP: 19 MiB, t=2, p=1), samples interleaved so that noise on a
shared machine hits both sides alike. The login limits are raised so that no sample is a 429.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.conftest import RegisteredClient
from tests.helpers import password_login

SAMPLES = 25

PRODUCTION_HASHING = {
    "argon2_time_cost": 2,
    "argon2_memory_cost": 19_456,
    "argon2_parallelism": 1,
    "login_max_failures": 10_000,
    "login_ip_max_failures": 10_000,
}


async def timed(request: Awaitable[httpx.Response]) -> float:
    started = time.perf_counter()
    response = await request
    elapsed = time.perf_counter() - started
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    return elapsed


@pytest.mark.parametrize("settings_overrides", [PRODUCTION_HASHING], indirect=True)
async def test_unknown_user_and_wrong_password_take_the_same_time(
    http: httpx.AsyncClient,
    make_client: Callable[..., Awaitable[RegisteredClient]],
    make_user: Callable[..., Awaitable[str]],
) -> None:
    client = await make_client()
    await make_user("alice")
    await timed(password_login(http, client, "alice", "warm-up-guess"))

    wrong_password: list[float] = []
    unknown_user: list[float] = []
    for i in range(SAMPLES):
        wrong_password.append(await timed(password_login(http, client, "alice", f"guess-{i}")))
        unknown_user.append(await timed(password_login(http, client, f"nobody-{i}", f"g-{i}")))

    known, unknown = statistics.median(wrong_password), statistics.median(unknown_user)
    assert abs(known - unknown) / min(known, unknown) <= 0.20, (known, unknown)
    assert min(known, unknown) > 0.005  # the argon2 work really happened on both paths
