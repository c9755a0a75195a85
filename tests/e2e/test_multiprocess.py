"""Several `serve` processes on one PostgreSQL: refresh chains hop between them, one process is
killed with SIGKILL mid-load, and the survivors carry every chain on.

A request in flight on the killed process has an ambiguous outcome: the process may have
committed the rotation just before it died. The chain then presents the same token to a
survivor: if the rotation had committed, that is (correctly) reuse and revokes the family. Such
revocations are counted apart and must only hit chains that had a request in flight on the killed
process at the moment of the kill; every other chain must go on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ServeFactory
from tests.e2e.refresh_load import Chain, Credentials, family_report, login, new_client, prepare
from tests.e2e.refresh_load import refresh as refresh_request

pytestmark = pytest.mark.e2e

SERVERS = 3
CHAINS = 12
LOAD_BEFORE_KILL = 1.5  # seconds
LOAD_AFTER_KILL = 2.0


async def hop(
    chain: Chain,
    urls: list[str],
    credentials: Credentials,
    killed: list[str],
    stop: asyncio.Event,
) -> None:
    """Round-robin over every server. On a transport error the same token goes to the next
    server; an invalid_grant right after an unanswered request to the killed process ends the
    chain as an ambiguous reuse; any other non-200 answer is a failure."""
    step = chain.index
    async with new_client() as http:
        while not stop.is_set():
            url = urls[step % len(urls)]
            step += 1
            chain.in_flight_to = url
            try:
                response = await refresh_request(http, url, credentials, chain.token)
            except httpx.TransportError as exc:
                chain.unanswered.append((url, type(exc).__name__))
                continue
            finally:
                chain.in_flight_to = None
            if response.status_code == 200:
                chain.rotated(response.json()["refresh_token"], after_event=bool(killed))
                continue
            last_failure = chain.unanswered[-1][0] if chain.unanswered else None
            if (
                response.status_code == 400
                and response.json().get("error") == "invalid_grant"
                and killed
                and last_failure == killed[0]
            ):
                return  # ambiguous: the killed process rotated it before dying (checked below)
            chain.failure = f"{url}: {response.status_code} {response.text}"
            return


def reuse_detected(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "authserver_refresh_reuse_detected_total"
    )


async def test_chains_hopping_between_processes_survive_a_sigkill_of_one(
    postgres_database_url: str, tmp_path: Path, serve: ServeFactory
) -> None:
    env = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    credentials = prepare(tmp_path, env)
    servers = [serve(tmp_path, env=env) for _ in range(SERVERS)]
    urls = [server.base_url for server in servers]
    async with new_client() as http:
        chains = [
            Chain(index, await login(http, urls[index % SERVERS], credentials))
            for index in range(CHAINS)
        ]

    killed: list[str] = []
    stop = asyncio.Event()
    load = [asyncio.create_task(hop(chain, urls, credentials, killed, stop)) for chain in chains]
    await asyncio.sleep(LOAD_BEFORE_KILL)
    victim = servers[0]
    # No await between the snapshot and the kill: no chain can start a request in between.
    in_flight_on_victim = {chain.index for chain in chains if chain.in_flight_to == victim.base_url}
    os.kill(victim.process.pid, signal.SIGKILL)
    killed.append(victim.base_url)
    killed_at = time.monotonic()
    await asyncio.sleep(LOAD_AFTER_KILL)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*load), timeout=30)
    assert victim.process.wait(timeout=5) == -signal.SIGKILL

    assert [chain.failure for chain in chains if chain.failure] == []
    ended = {chain.index for chain in chains if chain.successes_after_event == 0}
    # Only chains with a request under way on the killed process may have been cut short ...
    assert ended <= in_flight_on_victim, (ended, in_flight_on_victim)
    # ... and every other chain went on, on the survivors, several times.
    for chain in chains:
        if chain.index not in ended:
            assert chain.successes_after_event >= 2, chain
    # Chains kept hopping onto the dead process and were refused, then carried on elsewhere.
    assert any(url == victim.base_url for chain in chains for url, _ in chain.unanswered)
    assert time.monotonic() - killed_at >= LOAD_AFTER_KILL

    report = await family_report(postgres_database_url)
    assert report.forks == 0  # no token was ever handed out twice
    revoked_chains = set(report.revoked)
    assert len(revoked_chains) == len(ended)  # exactly the ambiguous ones were revoked ...
    assert set(report.revoked.values()) <= {"reuse_detected"}  # ... as reuse
    assert sorted(report.live_tokens_per_family.values()) == [1] * (CHAINS - len(ended))

    # Every surviving chain's last token works on either survivor; then a real reuse still fires.
    survivors = urls[1:]
    live = [chain for chain in chains if chain.index not in ended]
    async with new_client() as http:
        for position, chain in enumerate(live):
            answer = await refresh_request(http, survivors[position % 2], credentials, chain.token)
            assert answer.status_code == 200, answer.text
            chain.rotated(answer.json()["refresh_token"], after_event=True)

        thief = live[0]
        assert thief.previous is not None
        before = sum(reuse_detected(url) for url in survivors)
        replay = await refresh_request(http, survivors[0], credentials, thief.previous)
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_grant"
        # The family is revoked: the legitimate holder's current token is dead too, on any process.
        for url in survivors:
            after = await refresh_request(http, url, credentials, thief.token)
            assert after.status_code == 400
            assert after.json()["error"] == "invalid_grant"
    assert sum(reuse_detected(url) for url in survivors) == before + 1
    final = await family_report(postgres_database_url)
    assert len(final.revoked) == len(ended) + 1


async def test_metrics_of_several_workers_are_added_up(
    postgres_database_url: str, tmp_path: Path, serve: ServeFactory
) -> None:
    """With --workers 2, /metrics shows the whole server's numbers whichever worker answers."""
    env = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    credentials = prepare(tmp_path, env)
    server = serve(tmp_path, env=env, workers=2)
    logins = 10
    for _ in range(logins):
        async with new_client() as http:  # a new connection each time: both workers answer
            await login(http, server.base_url, credentials)

    def password_successes(text: str) -> float:
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "authserver_token_requests_total"
            and sample.labels == {"grant": "password", "outcome": "success"}
        )

    def pool_size(text: str) -> float:
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "authserver_database_pool_size"
        )

    scrapes = []
    for _ in range(6):
        async with new_client() as scraper:  # a new connection: any worker may answer
            scrapes.append((await scraper.get(f"{server.base_url}/metrics")).text)
        await asyncio.sleep(0.5)
    assert {password_successes(text) for text in scrapes} == {logins}
    # The pool gauges are summed over the live workers: 2 x DATABASE_POOL_SIZE (10).
    assert pool_size(scrapes[-1]) == 20
