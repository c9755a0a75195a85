"""The load generator that `bench/run.py` starts as a second process (pinned to its own core).

It speaks minimal HTTP/1.1 on a raw asyncio transport: one keep-alive connection per chain, a
pre-built request, then the status line, the headers and a Content-Length body. No HTTP library:
the client must cost far less CPU per request than the server it measures.

Protocol with run.py: the configuration arrives as one JSON object on standard input (so the
client secret and the password never appear in a process listing). Standard output carries
three lines: `start` when the measured window opens (after the warm-up), `end` when it closes,
and `result {json}` once every chain has stopped. run.py reads the server's CPU time at `start`
and at `end`.

Scenarios:
- refresh: each chain logs in once (password grant, or a peer's login grant) before the warm-up,
  then refreshes in a loop with the refresh token it has just received (real rotation).
- jwks: GET /.well-known/jwks.json in a loop.
- password: the password grant in a loop (argon2 dominates).
- mixed: the refresh chains, and beside them `--login-chains` chains doing the password grant in
  a loop (the server's argon2 at full rate). The figures are the refresh chains'; the logins'
  are reported apart (issue 13, item 5: logins must not stall refreshes).
- seeded: the refresh scenario, run by bench/run.py after it stored millions of tokens.

Every non-200 answer, dropped connection or timeout is an error. A refresh chain that meets an
error logs in again (outside the counts) so that one failure does not stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

SCENARIOS = ("refresh", "jwks", "password", "mixed", "seeded")
REFRESHING = ("refresh", "mixed", "seeded")  # refresh chains, measured
WARMUP, MEASURING, STOPPING = 0, 1, 2
REQUEST_TIMEOUT = 30.0  # seconds; a request slower than this counts as an error
DRAIN_TIMEOUT = 35.0  # how long chains may take to finish their last request after `end`


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this client can read (or the connection closed)."""


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    client_id: str
    client_secret: str
    usernames: list[str]
    password: str
    # What differs for a peer server (bench/peers.py): the grant a chain logs in with (it takes
    # `username` and `password` as the password grant does), and where the JWKS is served.
    login_grant: str = "password"
    jwks_path: str = "/.well-known/jwks.json"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Config:
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            client_id=str(data["client_id"]),
            client_secret=str(data["client_secret"]),
            usernames=[str(name) for name in data["usernames"]],
            password=str(data["password"]),
            login_grant=str(data.get("login_grant", cls.login_grant)),
            jwks_path=str(data.get("jwks_path", cls.jwks_path)),
        )


class Requests:
    """Pre-built request bytes; only the refresh token changes from one request to the next."""

    def __init__(self, config: Config) -> None:
        self.host = f"{config.host}:{config.port}"
        credentials = f"{quote(config.client_id, safe='')}:{quote(config.client_secret, safe='')}"
        self._auth = base64.b64encode(credentials.encode()).decode()
        self._password = config.password
        self._login_grant = config.login_grant
        self.jwks = (
            f"GET {config.jwks_path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
        self._token_head = (
            f"POST /token HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Basic {self._auth}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n"
            "Content-Length: "
        ).encode()

    def token(self, body: bytes) -> bytes:
        return b"%s%d\r\n\r\n%s" % (self._token_head, len(body), body)

    def password(self, username: str) -> bytes:
        form = {"grant_type": self._login_grant, "username": username, "password": self._password}
        return self.token(urlencode(form).encode())

    def refresh(self, refresh_token: str) -> bytes:
        # Refresh tokens are URL-safe base64 with a prefix: no escaping needed.
        return self.token(b"grant_type=refresh_token&refresh_token=" + refresh_token.encode())


class _HttpProtocol(asyncio.Protocol):
    """Parses one response at a time out of the bytes the loop hands over (no stream layer)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                response = self._parse()
            except ProtocolError as exc:
                self.waiter.set_exception(exc)
                return
            if response is not None:
                self.waiter.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = ProtocolError(f"connection closed ({exc!r})")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.closed)

    def _parse(self) -> tuple[int, bytes, bool] | None:
        """(status, body, server closes) once a whole response is buffered, else None."""
        buffer = self.buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(buffer[: head_end + 2]).lower()
        if not head.startswith(b"http/1.1 "):
            raise ProtocolError(f"not an HTTP/1.1 response: {head[:40]!r}")
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise ProtocolError("response without Content-Length")
        length = int(head[at + 17 : head.find(b"\r\n", at + 2)])
        end = head_end + 4 + length
        if len(buffer) < end:
            return None
        body = bytes(buffer[head_end + 4 : end])
        del buffer[:end]
        return int(head[9:12]), body, b"\r\nconnection: close" in head


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time; reopened after a failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._protocol: _HttpProtocol | None = None
        self._transport: asyncio.WriteTransport | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        protocol, transport = self._protocol, self._transport
        loop = asyncio.get_running_loop()
        if protocol is None or transport is None or protocol.closed is not None:
            transport, protocol = await loop.create_connection(_HttpProtocol, self.host, self.port)
            self._protocol, self._transport = protocol, transport
        waiter = protocol.waiter = loop.create_future()
        transport.write(raw)
        status, body, closing = await waiter
        protocol.waiter = None
        if closing:
            await self.close()
        return status, body

    async def close(self) -> None:
        transport, self._transport, self._protocol = self._transport, None, None
        if transport is not None:
            transport.close()


@dataclass
class Stats:
    """What the chains record; latencies only for requests completed inside the window."""

    phase: int = WARMUP
    completed: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds
    errors_in_window: int = 0
    errors_total: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None

    def ok(self, latency: float) -> None:
        if self.phase == MEASURING:
            self.completed += 1
            self.latencies.append(latency)

    def error(self, kind: str, detail: str) -> None:
        self.errors_total += 1
        if self.phase == MEASURING:
            self.errors_in_window += 1
        self.error_kinds[kind] += 1
        if self.first_error is None:
            self.first_error = f"{kind}: {detail[:300]}"


class Chain:
    """One client: one connection, requests strictly one after the other."""

    def __init__(self, index: int, scenario: str, config: Config, requests: Requests) -> None:
        self.scenario = scenario
        self.requests = requests
        self.username = config.usernames[index % len(config.usernames)]
        self.connection = Connection(config.host, config.port)
        self.refresh_token: str | None = None

    async def login(self, stats: Stats) -> bool:
        """Password grant; keeps the refresh token. False (and an error recorded) on failure."""
        status, body = await self.connection.request(self.requests.password(self.username))
        if status != 200:
            stats.error(f"login HTTP {status}", body.decode(errors="replace"))
            return False
        self.refresh_token = json.loads(body)["refresh_token"]
        return True

    def next_request(self) -> bytes:
        if self.scenario == "refresh":
            assert self.refresh_token is not None
            return self.requests.refresh(self.refresh_token)
        if self.scenario == "jwks":
            return self.requests.jwks
        return self.requests.password(self.username)

    async def run(self, stats: Stats) -> None:
        perf_counter = time.perf_counter
        while stats.phase != STOPPING:
            raw = self.next_request()
            started = perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    status, body = await self.connection.request(raw)
            except (OSError, ProtocolError, ValueError) as exc:
                stats.error(type(exc).__name__, str(exc))
                await self._recover(stats)
                continue
            except TimeoutError:
                stats.error("timeout", f"no answer within {REQUEST_TIMEOUT} s")
                await self._recover(stats)
                continue
            latency = perf_counter() - started
            if status != 200:
                stats.error(f"HTTP {status}", body.decode(errors="replace"))
                await self._recover(stats)
                continue
            if self.scenario == "refresh":
                try:
                    self.refresh_token = json.loads(body)["refresh_token"]
                except (ValueError, KeyError) as exc:
                    stats.error("bad body", repr(exc))
                    await self._recover(stats)
                    continue
            stats.ok(latency)

    async def _recover(self, stats: Stats) -> None:
        """After a failure: a fresh connection and, for a refresh chain, a fresh login."""
        await self.connection.close()
        await asyncio.sleep(0.05)  # never spin on a server that refuses everything
        if self.scenario == "refresh" and stats.phase != STOPPING:
            with contextlib.suppress(OSError, ProtocolError, ValueError, KeyError):
                await self.login(stats)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run(
    scenario: str,
    config: Config,
    concurrency: int,
    warmup: float,
    duration: float,
    login_chains: int = 0,
) -> dict[str, Any]:
    requests = Requests(config)
    stats = Stats()
    kind = "refresh" if scenario in REFRESHING else scenario
    chains = [Chain(i, kind, config, requests) for i in range(concurrency)]
    if kind == "refresh":
        logged_in = await asyncio.gather(*(chain.login(stats) for chain in chains))
        if not all(logged_in):
            raise SystemExit(f"load: the initial logins failed: {stats.first_error}")
    tasks = [asyncio.create_task(chain.run(stats)) for chain in chains]
    logins = Stats()  # mixed: the password chains beside the refresh chains
    login_tasks = [
        asyncio.create_task(Chain(i, "password", config, requests).run(logins))
        for i in range(login_chains if scenario == "mixed" else 0)
    ]
    tasks += login_tasks
    await asyncio.sleep(warmup)

    logins.phase = MEASURING
    stats.phase = MEASURING
    cpu_started, started = time.process_time(), time.perf_counter()
    emit("start")
    await asyncio.sleep(duration)
    stats.phase = logins.phase = STOPPING
    elapsed = time.perf_counter() - started
    load_cpu = time.process_time() - cpu_started
    emit("end")

    _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
    for task in pending:
        task.cancel()
        stats.error("timeout", "request still running after the window closed")
    await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            stats.error("crash", repr(task.exception()))
    for chain in chains:
        await chain.connection.close()
    login_latencies = sorted(logins.latencies)

    latencies = sorted(stats.latencies)
    return {
        "scenario": scenario,
        "concurrency": concurrency,
        "elapsed_s": elapsed,
        "completed": stats.completed,
        "requests_per_s": stats.completed / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "errors": stats.errors_in_window,
        "errors_total": stats.errors_total,
        "error_kinds": dict(stats.error_kinds),
        "first_error": stats.first_error,
        "load_cpu_s": load_cpu,
        "logins_per_s": logins.completed / elapsed,
        "login_p50_ms": percentile(login_latencies, 0.50) * 1000,
        "login_p99_ms": percentile(login_latencies, 0.99) * 1000,
        "login_errors": logins.errors_total,
        "login_first_error": logins.first_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--login-chains", type=int, default=4)
    args = parser.parse_args()
    config = Config.from_json(json.loads(sys.stdin.readline()))
    if config.host != "127.0.0.1":
        raise SystemExit("load: only 127.0.0.1 is allowed")
    work = run(
        args.scenario, config, args.concurrency, args.warmup, args.duration, args.login_chains
    )
    try:
        import uvloop  # optional speed-up; uvicorn[standard] brings it
    except ImportError:
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    emit("result " + json.dumps(result))


if __name__ == "__main__":
    main()
