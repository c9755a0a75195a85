"""Fixtures for end-to-end tests: the real `authserver` console script run as a subprocess.

Every run gets a clean environment: the caller's environment without any `AUTHSERVER_*`
variable (so neither a developer's settings nor the test session's AUTHSERVER_CONFIG leak in),
plus /metrics on the main port, cheap Argon2 parameters, plus whatever the test adds. By
default a command runs in the test's own empty `tmp_path`, i.e. with no configuration at all.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import httpx
import pytest

from tests.postgres import POSTGRES_ENV, postgres_server, throwaway_database

AUTHSERVER = str(Path(sys.executable).with_name("authserver"))
DEFAULT_TIMEOUT = 60.0
READY_TIMEOUT = 20.0
CHEAP_ARGON2 = {"AUTHSERVER_ARGON2_TIME_COST": "1", "AUTHSERVER_ARGON2_MEMORY_COST": "8"}
# /metrics on each server's own port: the default METRICS_PORT (9464) is one port per host, and
# the servers of a test run (and of other runs on the machine) would fight over it. A test that
# wants the separate port sets AUTHSERVER_METRICS_PORT to a free one.
METRICS_ON_THE_MAIN_PORT = {"AUTHSERVER_METRICS_PORT": "0"}
# The embedded default issuer: the `iss` and default `aud` whatever port the server listens on.
DEFAULT_ISSUER = "http://127.0.0.1:8000"


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def clean_env(
    extra: Mapping[str, str] | None = None, *, cheap_argon2: bool = True
) -> dict[str, str]:
    """os.environ without AUTHSERVER_*, with /metrics on the main port, cheap Argon2 (unless
    told otherwise) and `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    env.update(METRICS_ON_THE_MAIN_PORT)
    if cheap_argon2:
        env.update(CHEAP_ARGON2)
    env.update(extra or {})
    return env


def start_authserver(
    args: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    cheap_argon2: bool = True,
) -> subprocess.Popen[str]:
    """Start `authserver ARGS` without waiting (for runs that must overlap)."""
    return subprocess.Popen(
        [AUTHSERVER, *args],
        cwd=cwd,
        env=clean_env(env, cheap_argon2=cheap_argon2),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(
    process: subprocess.Popen[str], stdin: str = "", timeout: float = DEFAULT_TIMEOUT
) -> CliResult:
    """Wait for a started command. One still running after `timeout` (say, a `serve` that should
    have refused to start) is killed, and the result says so in stderr: the test's assertions
    then fail with the whole output in view."""
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        stderr += f"\n[e2e: still running after {timeout} s; killed]\n"
    return CliResult(process.returncode, stdout, stderr)


def run_authserver(
    args: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cheap_argon2: bool = True,
) -> CliResult:
    """Run `authserver ARGS` in `cwd` and wait for it (see `finish` for a run past `timeout`)."""
    process = start_authserver(args, cwd, env=env, cheap_argon2=cheap_argon2)
    return finish(process, stdin or "", timeout)


class Invocation(NamedTuple):
    args: list[str]
    cwd: Path
    env: Mapping[str, str] | None = None
    stdin: str = ""


def run_concurrently(*invocations: Invocation, timeout: float = DEFAULT_TIMEOUT) -> list[CliResult]:
    """Start every invocation at once, then wait for all; results in the same order."""
    processes = [start_authserver(inv.args, inv.cwd, env=inv.env) for inv in invocations]
    try:
        return [
            finish(process, inv.stdin, timeout)
            for process, inv in zip(processes, invocations, strict=True)
        ]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


class Cli(Protocol):
    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        cheap_argon2: bool = True,
    ) -> CliResult: ...


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """`cli("users", "list", cwd=..., env=..., stdin=...)`; cwd defaults to the empty tmp_path."""

    def run(
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        cheap_argon2: bool = True,
    ) -> CliResult:
        return run_authserver(
            list(args),
            cwd if cwd is not None else tmp_path,
            env=env,
            stdin=stdin,
            timeout=timeout,
            cheap_argon2=cheap_argon2,
        )

    return run


# --- assertions shared by the CLI tests -------------------------------------------------------

CLICK_USAGE_PREFIXES = ("Usage:", "Try '")
# The line every command starts its stderr with: which database and issuer it uses.
CONTEXT_PREFIX = "authserver: using database "
# `serve` says it as its first log line: JSON (LOG_FORMAT=json) or text ("… authserver: using …").
SERVE_CONTEXT_JSON = '"logger":"authserver","message":"using database '


def is_context_line(line: str) -> bool:
    return CONTEXT_PREFIX in line or SERVE_CONTEXT_JSON in line


def context_line(result: CliResult) -> str:
    """The stderr line naming the database and the issuer (exactly one)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith(CONTEXT_PREFIX)]
    assert len(lines) == 1, f"expected one context line on stderr:\n{result.stderr}"
    return lines[0]


def error_lines(result: CliResult) -> list[str]:
    """Non-blank stderr lines other than click's usage lines and the context line."""
    return [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(CLICK_USAGE_PREFIXES) and not is_context_line(line)
    ]


def assert_one_line_error(result: CliResult, *mentions: str) -> str:
    """Non-zero exit, no traceback, exactly one error line (besides click usage), naming
    everything in `mentions` (case-insensitive). Returns that line."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.output, result.output
    lines = error_lines(result)
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    line = lines[0]
    assert len(line) <= 300, line
    for mention in mentions:
        assert mention.lower() in line.lower(), f"{mention!r} not in {line!r}"
    return line


def assert_ok(result: CliResult) -> None:
    assert result.returncode == 0, result
    assert "Traceback" not in result.output, result.output


# --- a live server ----------------------------------------------------------------------------


def free_port() -> int:
    """A port no one listens on, for a server the test starts next.

    Not one the kernel picks (`bind(("127.0.0.1", 0))`): those come from the ephemeral range,
    where every outgoing connection (to PostgreSQL, say) takes its local port too, so the port
    could be taken between this check and the server's own bind ("address already in use").
    Ports come from just below that range instead, from a slice of their own for each xdist
    worker, and none is handed out twice in one process."""
    first, size = _port_slice()
    for _ in range(1000):
        port = first + _random.randrange(size)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {first}-{first + size - 1}")


_random = random.Random()
_handed_out: set[int] = set()
_WORKER_SLICES = 8  # xdist workers gw0 … gw7 get ports of their own; more share them


def _port_slice() -> tuple[int, int]:
    """The first port and the number of ports of this worker's slice, below the ephemeral range
    (/proc/sys/net/ipv4/ip_local_port_range: 32768-60999 by default)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    below = min(low, 65536) - 10000  # 10,000 ports, above the well-known ones
    below = max(below, 1024)
    size = (min(low, 65536) - below) // _WORKER_SLICES
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % _WORKER_SLICES if worker.isdigit() else 0
    return below + index * size, size


class Server(NamedTuple):
    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


class ServeFactory(Protocol):
    def __call__(
        self, cwd: Path, *, env: Mapping[str, str] | None = None, workers: int = 1
    ) -> Server: ...


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (uvicorn workers too), then SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    # Workers left behind by a parent that died early belong to the same group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_until_ready(server: Server) -> None:
    """Poll /readyz until it answers 200; fail with the server's log if it exits first."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    with httpx.Client(base_url=server.base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(
                    f"authserver serve exited with {server.process.returncode} before it was "
                    f"ready:\n{server.log.read_text(errors='replace')}"
                )
            try:
                response = http.get("/readyz")
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            time.sleep(0.1)
    pytest.fail(
        f"authserver serve not ready within {READY_TIMEOUT} s ({last}):\n"
        f"{server.log.read_text(errors='replace')}"
    )


@pytest.fixture
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeFactory]:
    """`serve(cwd, env=..., workers=...)` starts `authserver serve --port <free>` in `cwd`, waits
    until GET /readyz answers 200 and returns the Server; every server is stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    logs = tmp_path_factory.mktemp("serve-logs")

    def start(cwd: Path, *, env: Mapping[str, str] | None = None, workers: int = 1) -> Server:
        port = free_port()
        log = logs / f"serve-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [AUTHSERVER, "serve", "--port", str(port), "--workers", str(workers)],
                cwd=cwd,
                env=clean_env(env),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: teardown reaches the workers
            )
        started.append(process)
        server = Server(f"http://127.0.0.1:{port}", port, process, log)
        wait_until_ready(server)
        return server

    try:
        yield start
    finally:
        for process in started:
            stop_server(process)


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
async def postgres_database_url() -> AsyncIterator[str]:
    """A fresh, empty (un-migrated) PostgreSQL database, dropped at teardown."""
    if postgres_server() == "off":
        pytest.fail(f"the e2e tests need PostgreSQL; {POSTGRES_ENV}=off is not supported here")
    async with throwaway_database("authserver_e2e") as url:
        yield url


# --- CLI output -------------------------------------------------------------------------------

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def assert_recent_iso_utc(value: object) -> None:
    """An ISO 8601 UTC time ending in `Z`, and close to now (so it really is UTC)."""
    assert isinstance(value, str), value
    assert ISO_UTC.match(value), value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 3600, value
