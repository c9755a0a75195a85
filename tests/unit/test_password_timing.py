"""Security review finding 4 (issue 15): a failed password check lasts at least what one at
today's argon2 parameters does, whatever is stored. Checked through the seam of the wait itself
(`Passwords.sleep`), so it holds on a loaded machine; tests/http/test_login_timing.py measures
the real times."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from authserver.login.passwords import COST_SAMPLES, CostOfToday, Passwords

PASSWORD = "right password 1"
TODAY = PasswordHasher(time_cost=2, memory_cost=64, parallelism=1)
OLDER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
COST = 0.25  # what a verification at today's parameters takes, as these tests pretend


def passwords_with(waits: list[float]) -> Passwords:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    cost = CostOfToday()
    for _ in range(COST_SAMPLES):
        cost.add(COST)
    return Passwords(TODAY, TODAY.hash("dummy"), cost, sleep)


@pytest.mark.parametrize(
    "stored",
    [
        OLDER.hash(PASSWORD),
        PasswordHasher(time_cost=2, memory_cost=32, parallelism=1).hash(PASSWORD),
        "$argon2id$v=19$m=64,t=2,p=1$broken",
        "not a hash at all",
    ],
    ids=["older parameters", "less memory", "malformed", "not argon2"],
)
async def test_wrong_password_on_a_hash_not_at_todays_parameters_waits_for_todays_cost(
    stored: str,
) -> None:
    waits: list[float] = []
    passwords = passwords_with(waits)
    assert await passwords.verify(stored, "wrong password") is False
    assert len(waits) == 1
    assert COST - 0.2 < waits[0] <= COST  # today's cost less what argon2 spent on the stored hash


@pytest.mark.parametrize("stored", [None, TODAY.hash(PASSWORD)], ids=["unknown user", "today's"])
async def test_a_check_at_todays_parameters_waits_for_nothing_and_is_a_sample(
    stored: str | None,
) -> None:
    waits: list[float] = []
    passwords = passwords_with(waits)
    assert await passwords.verify(stored, "wrong password") is False
    assert waits == []
    assert len(passwords.cost_of_today.samples) == COST_SAMPLES
    assert passwords.cost_of_today.samples[-1] < COST  # the real verification's time went in


async def test_right_password_on_an_older_hash_is_not_delayed() -> None:
    waits: list[float] = []
    passwords = passwords_with(waits)
    assert await passwords.verify(OLDER.hash(PASSWORD), PASSWORD) is True
    assert waits == []
    assert passwords.needs_rehash(OLDER.hash(PASSWORD))  # login/check.py re-makes it


def test_the_cost_of_today_is_the_median_of_the_latest_verifications() -> None:
    cost = CostOfToday()
    assert cost.median() == 0.0
    for seconds in (0.02, 0.03, 0.9):  # one slow outlier does not move the median
        cost.add(seconds)
    assert cost.median() == 0.03
    for _ in range(COST_SAMPLES):
        cost.add(0.05)
    assert cost.median() == 0.05  # only the latest COST_SAMPLES count
