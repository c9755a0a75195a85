"""SIGTERM under refresh load: requests in flight finish, no rotation is cut in the middle.

A rotation cut in the middle would leave its chain stuck: the server committed the new token but
the client never received it, so the client's only way on (presenting its token again) is reuse,
which revokes the family. So the proof is: every chain, after the restart, continues with the
last token it received, and no family is revoked.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ServeFactory
from tests.e2e.refresh_load import Chain, Credentials, family_report, login, new_client, prepare
from tests.e2e.refresh_load import refresh as refresh_request

pytestmark = pytest.mark.e2e

CHAINS = 16
LOAD_BEFORE_SIGTERM = 1.5  # seconds


async def hammer(
    chain: Chain, base_url: str, credentials: Credentials, signalled: list[float]
) -> None:
    """Rotate until the server goes away. A request without an answer leaves `chain.token` as
    it was: it is presented again to the next server."""
    async with new_client() as http:
        while True:
            try:
                response = await refresh_request(http, base_url, credentials, chain.token)
            except httpx.TransportError as exc:
                chain.unanswered.append((base_url, type(exc).__name__))
                return
            if response.status_code != 200:
                chain.failure = f"{response.status_code} {response.text}"
                return
            chain.rotated(response.json()["refresh_token"], after_event=bool(signalled))


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_under_refresh_load_finishes_in_flight_rotations_and_exits_0(
    postgres_database_url: str, tmp_path: Path, serve: ServeFactory, workers: int
) -> None:
    env = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    credentials = prepare(tmp_path, env)
    server = serve(tmp_path, env=env, workers=workers)
    async with new_client() as http:
        chains = [
            Chain(index, await login(http, server.base_url, credentials)) for index in range(CHAINS)
        ]

    signalled: list[float] = []
    load = [
        asyncio.create_task(hammer(chain, server.base_url, credentials, signalled))
        for chain in chains
    ]
    await asyncio.sleep(LOAD_BEFORE_SIGTERM)
    in_flight_at_signal = sum(1 for task in load if not task.done())
    os.kill(server.process.pid, signal.SIGTERM)  # the server process only, as an orchestrator does
    signalled.append(time.monotonic())
    await asyncio.wait_for(asyncio.gather(*load), timeout=20)
    status = await asyncio.to_thread(server.process.wait, 20)
    log = server.log.read_text(errors="replace")

    assert status == 0, log
    assert '"level":"error"' not in log, log
    assert "Traceback" not in log, log
    assert [chain.failure for chain in chains if chain.failure] == []
    assert in_flight_at_signal == CHAINS
    assert all(chain.successes > 0 for chain in chains)
    # Requests under way when the signal came were answered, not cut.
    assert sum(chain.successes_after_event for chain in chains) > 0
    assert all(chain.unanswered for chain in chains)  # every chain ran until the server left

    # A new server on the same database: every chain goes on with the last token it received.
    successor = serve(tmp_path, env=env)
    async with new_client() as http:
        answers = await asyncio.gather(
            *(refresh_request(http, successor.base_url, credentials, c.token) for c in chains)
        )
    for chain, answer in zip(chains, answers, strict=True):
        assert answer.status_code == 200, (chain, answer.text)

    report = await family_report(postgres_database_url)
    assert report.families == CHAINS
    assert report.revoked == {}  # no reuse was ever detected
    assert report.forks == 0
    assert sorted(report.live_tokens_per_family.values()) == [1] * CHAINS
