"""Benchmark sign-in through /authorize on PostgreSQL (issue 12): what a sign-in page, a
sign-in and a session reuse cost the server, next to a refresh.

    .venv/bin/python bench/sign_in.py [--operations 300] [--runs 3] [--cheap-hash]

A real `authserver serve` (one worker, pinned to --server-cpu) on a throwaway database, set up
with the CLI: one public client with the authorization_code and refresh_token grants, and the
users. This process drives it from the other core with httpx, one cookie jar per chain, like
browsers. For each scenario and run it reads the server's CPU seconds (process tree) and the
PostgreSQL backends' before and after a window of --operations operations:

  page      GET /authorize with no session: the sign-in page (validation, a pending row).
  sign-in   the whole first visit: the page, the sign-in form (argon2id at the production
            parameters unless --cheap-hash), the code exchange at /token.
  reuse     a signed-in browser: GET /authorize answers 303 with a code at once (no page, no
            password), then the code exchange at /token.
  authorize the reuse's GET /authorize alone (what replaces the password check).
  refresh   the refresh grant with rotation, the token endpoint's hot path, for comparison.

Reported per operation: server CPU ms, PostgreSQL CPU ms, latency p50 and p99 (ms) seen by the
client, medians over the runs. The issue's yardstick: a session reuse must cost less than one
refresh. Run as a script (its directory on sys.path, like bench/run.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from console import BenchError, log
from cpu import openssl_rsa2048_signs, pids_cpu, process_tree_cpu
from database import Postgres, drop_database, drop_orphans, sqlalchemy_url, throwaway_name
from options import HOST, parse_options
from processes import stop_process
from server import PASSWORD, Cli, free_port, server_environment, start_server, wait_ready

REDIRECT_URI = "http://127.0.0.1:1/callback"  # never contacted: the 303 is read, not followed
SCENARIOS = ("page", "sign-in", "reuse", "authorize", "refresh")
HIDDEN = re.compile(r'name="(authorization_request|csrf_token)" value="([^"]+)"')


@dataclass(frozen=True)
class Window:
    operations: int
    seconds: float
    server_cpu: float
    postgres_cpu: float
    latencies: list[float]  # seconds per operation


@dataclass
class Chain:
    """One browser: its cookie jar, and its refresh token for the refresh scenario."""

    http: httpx.AsyncClient
    username: str
    refresh_token: str | None = None


class Bench:
    def __init__(self, base_url: str, client_id: str) -> None:
        self.base_url = base_url
        self.client_id = client_id

    def authorize_url(self) -> tuple[str, str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = httpx.QueryParams(
            response_type="code",
            client_id=self.client_id,
            redirect_uri=REDIRECT_URI,
            state=secrets.token_urlsafe(8),
            code_challenge=challenge.rstrip(b"=").decode(),
            code_challenge_method="S256",
        )
        return f"/authorize?{params}", verifier

    async def page(self, chain: Chain) -> str:
        url, _verifier = self.authorize_url()
        response = await chain.http.get(url)
        expect(response, 200)
        return response.text

    async def sign_in(self, chain: Chain) -> None:
        chain.http.cookies.clear()  # a browser that is not signed in yet
        url, verifier = self.authorize_url()
        page = await chain.http.get(url)
        expect(page, 200)
        fields = dict(HIDDEN.findall(page.text))
        form = {**fields, "username": chain.username, "password": PASSWORD}
        answer = await chain.http.post("/authorize/sign-in", data=form)
        expect(answer, 303)
        await self.exchange(chain, answer, verifier)

    async def authorize(self, chain: Chain) -> tuple[httpx.Response, str]:
        url, verifier = self.authorize_url()
        answer = await chain.http.get(url)
        expect(answer, 303)
        return answer, verifier

    async def reuse(self, chain: Chain) -> None:
        answer, verifier = await self.authorize(chain)
        await self.exchange(chain, answer, verifier)

    async def exchange(self, chain: Chain, answer: httpx.Response, verifier: str) -> None:
        code = httpx.URL(answer.headers["location"]).params["code"]
        form = {
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
        }
        response = await chain.http.post("/token", data=form)
        expect(response, 200)
        chain.refresh_token = response.json()["refresh_token"]

    async def refresh(self, chain: Chain) -> None:
        assert chain.refresh_token is not None
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "refresh_token": chain.refresh_token,
        }
        response = await chain.http.post("/token", data=form)
        expect(response, 200)
        chain.refresh_token = response.json()["refresh_token"]


def expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise BenchError(f"{response.request.url.path}: {response.status_code} {response.text}")


async def window(
    chains: list[Chain], operation: Callable[[Chain], Awaitable[Any]], operations: int
) -> tuple[list[float], float]:
    """`operations` operations spread over the chains, each chain one at a time."""
    latencies: list[float] = []
    remaining = operations

    async def run(chain: Chain) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await operation(chain)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(run(chain) for chain in chains))
    return latencies, time.perf_counter() - started


def measure(
    bench: Bench,
    scenario: str,
    operations: int,
    concurrency: int,
    server_pid: int,
    postgres: Postgres,
    database: str,
    usernames: list[str],
) -> Window:
    """One window of `scenario`, with the CPU readings around it (not around its set-up)."""

    async def main() -> Window:
        clients = [
            httpx.AsyncClient(base_url=bench.base_url, timeout=60) for _ in range(concurrency)
        ]
        chains = [Chain(c, usernames[i % len(usernames)]) for i, c in enumerate(clients)]
        try:
            if scenario in ("reuse", "authorize", "refresh"):  # signed in first, not counted
                await asyncio.gather(*(bench.sign_in(chain) for chain in chains))
            operation: Callable[[Chain], Awaitable[Any]] = {
                "page": bench.page,
                "sign-in": bench.sign_in,
                "reuse": bench.reuse,
                "authorize": bench.authorize,
                "refresh": bench.refresh,
            }[scenario]
            # The maintenance connection runs its own loop: in a thread, not inside this one.
            backends = await asyncio.to_thread(postgres.backend_pids, database)
            server_before, postgres_before = process_tree_cpu(server_pid), pids_cpu(backends)
            latencies, seconds = await window(chains, operation, operations)
            server_after, postgres_after = process_tree_cpu(server_pid), pids_cpu(backends)
        finally:
            for client in clients:
                await client.aclose()
        postgres_cpu = sum(postgres_after.get(p, v) - v for p, v in postgres_before.items())
        return Window(operations, seconds, server_after - server_before, postgres_cpu, latencies)

    return asyncio.run(main())


def row(scenario: str, windows: list[Window]) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    server = median([w.server_cpu / w.operations * 1000 for w in windows])
    postgres = median([w.postgres_cpu / w.operations * 1000 for w in windows])
    latencies = sorted(x for w in windows for x in w.latencies)
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    rate = median([w.operations / w.seconds for w in windows])
    return f"| {scenario} | {server:.2f} | {postgres:.2f} | {p50:.1f} | {p99:.1f} | {rate:.0f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=300, help="per window")
    parser.add_argument("--sign-ins", type=int, default=40, help="per window of sign-in")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--cheap-hash", action="store_true")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    options = parse_options(
        [
            *(["--cheap-hash"] if args.cheap_hash else []),
            *("--postgres", args.postgres),
            *("--server-cpu", str(args.server_cpu), "--load-cpu", str(args.load_cpu)),
        ]
    )
    if args.load_cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {args.load_cpu})
    postgres = Postgres(args.postgres)
    postgres.connect()
    drop_orphans(postgres)
    database = throwaway_name()
    postgres.create_database(database)
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="authserver-bench-sign-in-") as home:
            workdir = Path(home)
            port = free_port()
            env = server_environment(
                options, sqlalchemy_url(args.postgres, database), workdir, port
            )
            cli = Cli(options, workdir, env, port)
            cli("db", "upgrade")
            created = cli(
                *("clients", "create", "bench-web", "--public", "--json", "--scope", "read"),
                *("--grant", "authorization_code", "--grant", "refresh_token"),
                *("--redirect-uri", REDIRECT_URI),
            )
            client_id = re.search(r'"client_id": "([^"]+)"', created)
            assert client_id is not None
            usernames = [f"bench-user-{i}" for i in range(args.concurrency)]
            for name in usernames:
                cli("users", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
            log_path = workdir / "serve.log"
            server = start_server(cli, log_path)
            wait_ready(server, port, log_path)
            bench = Bench(f"http://{HOST}:{port}", client_id.group(1))
            signs = openssl_rsa2048_signs(args.server_cpu)
            results: dict[str, list[Window]] = {}
            for scenario in SCENARIOS:
                count = args.sign_ins if scenario == "sign-in" else args.operations
                windows = [
                    measure(
                        bench,
                        scenario,
                        count,
                        args.concurrency,
                        server.pid,
                        postgres,
                        database,
                        usernames,
                    )
                    for _ in range(args.runs + 1)
                ]
                results[scenario] = windows[1:]  # the first one warms up, not counted
                log(f"{scenario}: done")
    finally:
        stop_process(server)
        drop_database(postgres, database)
        postgres.close()
    argon2 = "argon2 t=1, 1 MiB (--cheap-hash)" if args.cheap_hash else "argon2id t=2, 19 MiB"
    print(f"sign-in through /authorize, PostgreSQL, 1 worker, {args.concurrency} chains, {argon2}")
    print("| scenario | server CPU ms/op | PostgreSQL CPU ms/op | p50 ms | p99 ms | op/s |")
    print("|---|---|---|---|---|---|")
    for scenario, windows in results.items():
        print(row(scenario, windows))
    if signs:
        print(f"RSA-2048 signs/s on the server's core: {signs:.0f} ({1000 / signs:.2f} ms each)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(str(exc))
        sys.exit(2)
