"""SPEC: wrong username and wrong password are indistinguishable in timing (medians within 20 %);
the issue adds the disabled user to the same rule, and security review finding 4 (issue 15) a
wrong password for a user whose stored hash was made with older, cheaper parameters, or is
malformed: whatever is stored.

Production argon2 parameters (OWASP: 19 MiB, t=2, p=1). The three kinds of failure are sampled
in rounds, each round in a rotated order, so that noise on a shared machine (another process
waking up, the CPU clock changing) hits every kind alike; the median of each kind then ignores
the odd slow sample. The login limits are raised so that no sample is a 429.

Other processes on a 2-core machine (the rest of the suite, other work) can still skew one
measurement by more than 20 % (seen: 37 ms against 51 ms while another test run was hashing).
So a measurement that misses the 20 % bound is taken again, up to ATTEMPTS times, and the test
passes when one measurement meets it. A real difference is systematic and fails every attempt:
skipping argon2 for an unknown user would make its median a few milliseconds against 40-90 ms.
A miss by more than 20 % is retried like any other: the argon2 threads run at nice +10, so when
the rest of a parallel test run (or a CPU hog) keeps both cores busy, one measurement's medians
were seen 2.4 times apart (0.106 s against 0.255 s) with nothing wrong in the code.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from argon2 import PasswordHasher

from authserver import admin
from authserver.services import Services
from authserver.store import users as user_store
from tests.conftest import RegisteredClient
from tests.helpers import password_login

ROUNDS = 31
ATTEMPTS = 3

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
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid username or password.",
    }
    return elapsed


@pytest.mark.parametrize("settings_overrides", [PRODUCTION_HASHING], indirect=True)
async def test_every_kind_of_failed_login_takes_the_same_time_whatever_is_stored(
    http: httpx.AsyncClient,
    make_client: Callable[..., Awaitable[RegisteredClient]],
    make_user: Callable[..., Awaitable[str]],
    services: Services,
) -> None:
    client = await make_client()
    await make_user("alice")
    await make_user("dora")
    await admin.disable_user(services.db, "dora", datetime.now(UTC))
    # Hashed before the operator raised the parameters to today's (t=1, 4 MiB: about a fifth of
    # the cost), and a hash that is not one (an edited row).
    older = PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1).hash("older password")
    await user_store.create_user(services.db, "olga", older, datetime.now(UTC))
    await user_store.create_user(services.db, "mal", "$argon2id$v=19$broken", datetime.now(UTC))
    kinds: dict[str, Callable[[int], Awaitable[httpx.Response]]] = {
        "wrong password": lambda i: password_login(http, client, "alice", f"guess-{i}"),
        "unknown user": lambda i: password_login(http, client, f"nobody-{i}", f"guess-{i}"),
        "disabled user": lambda i: password_login(http, client, "dora", f"guess-{i}"),
        "older parameters": lambda i: password_login(http, client, "olga", f"guess-{i}"),
        "malformed hash": lambda i: password_login(http, client, "mal", f"guess-{i}"),
    }
    for kind in kinds.values():  # warm-up: first-use costs (connections, caches) stay out
        await timed(kind(-1))

    measured: list[dict[str, float]] = []
    for _attempt in range(ATTEMPTS):
        medians = await measure(kinds)
        measured.append(medians)
        if worst_ratio(medians) <= 0.20:
            break
    assert worst_ratio(measured[-1]) <= 0.20, measured
    assert min(measured[-1].values()) > 0.005, measured  # argon2 work happened on every path


async def measure(kinds: dict[str, Callable[[int], Awaitable[httpx.Response]]]) -> dict[str, float]:
    """The median time of each kind of failure over ROUNDS interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    names = list(kinds)
    for i in range(ROUNDS):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            samples[name].append(await timed(kinds[name](i)))
    return {name: statistics.median(values) for name, values in samples.items()}


def worst_ratio(medians: dict[str, float]) -> float:
    return max(
        abs(medians[a] - medians[b]) / min(medians[a], medians[b])
        for a, b in itertools.combinations(medians, 2)
    )
