"""A real database outage: the test starts its own throwaway PostgreSQL cluster (`initdb` and
`pg_ctl` on a free port, never the shared server), a real `authserver serve` on it, and then
kills the cluster (`pg_ctl stop -m immediate`, like a crash) and starts it again.

While it is down, POST /token answers 503 temporarily_unavailable with Retry-After within a few
seconds (no hang), /readyz answers 503 and /healthz stays 200. Once it is back, both recover by
themselves: the same `serve` process answers 200 again, with no restart.

initdb refuses to run as root; as root the cluster runs as the `postgres` system user
(`runuser`), in a directory made for it outside the root-only pytest tmp_path.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Cli, ServeFactory, assert_ok, free_port

pytestmark = pytest.mark.e2e

CONNECT_TIMEOUT = 2.0
PROMPT = 5.0  # seconds: the bound on any answer while the database is down
RECOVERY = 20.0  # seconds allowed for serve to notice the database is back


def _postgres_binary(name: str) -> str:
    candidates = [shutil.which(name), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"{name} not found (PostgreSQL server binaries are needed for this test)")


@dataclass
class Cluster:
    directory: Path
    port: int
    as_user: list[str]  # ["runuser", "-u", "postgres", "--"] when running as root

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/authserver"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*self.as_user, _postgres_binary("pg_ctl"), "-D", str(self.directory / "data")]
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=60, check=check
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.directory / "postgres.log"), "-w", "start")

    def crash(self) -> None:
        self.pg_ctl("-m", "immediate", "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A private PostgreSQL cluster with an empty database `authserver`; always stopped and
    removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix="authserver-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(directory, postgres.pw_uid, postgres.pw_gid)
        as_user = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
    running = Cluster(directory, free_port(), as_user)
    try:
        subprocess.run(
            [
                *as_user,
                _postgres_binary("initdb"),
                "-D",
                str(directory / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        running.start()
        subprocess.run(
            [
                *as_user,
                _postgres_binary("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(running.port),
                "-U",
                "postgres",
                "authserver",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        yield running
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            running.pg_ctl("-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(directory, ignore_errors=True)


def test_database_crash_gives_prompt_503s_and_serve_recovers_without_a_restart(
    cluster: Cluster, cli: Cli, serve: ServeFactory, tmp_path: Path
) -> None:
    kek = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {
        "AUTHSERVER_DATABASE_URL": cluster.url,
        "AUTHSERVER_DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "AUTHSERVER_KEY_ENCRYPTION_KEY": kek,
    }
    assert_ok(cli("db", "upgrade", env=env))
    password = "pw-" + secrets.token_urlsafe(12)
    assert_ok(cli("users", "create", "alice", "--password-stdin", env=env, stdin=password + "\n"))
    created = cli(
        "clients", "create", "app", "--grant", "password", "--grant", "refresh_token",
        "--grant", "client_credentials", "--json", env=env,
    )  # fmt: skip
    assert_ok(created)
    client = httpx.BasicAuth(*_id_and_secret(created.stdout))
    login = {"grant_type": "password", "username": "alice", "password": password}
    server = serve(tmp_path, env=env)

    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        first = http.post("/token", data=login, auth=client)
        assert first.status_code == 200, first.text  # the pool now holds live connections
        refresh_token = first.json()["refresh_token"]

        cluster.crash()
        for data in (
            login,
            {"grant_type": "client_credentials"},
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            login,  # again, once the pool has dropped its dead connections
        ):
            started = time.monotonic()
            response = http.post("/token", data=data, auth=client)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "temporarily_unavailable"
            assert response.headers["retry-after"].isdigit()
            assert elapsed < PROMPT, elapsed
        started = time.monotonic()
        ready = http.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert time.monotonic() - started < PROMPT
        assert http.get("/healthz").status_code == 200

        cluster.start()
        deadline = time.monotonic() + RECOVERY
        statuses: list[int] = []
        while time.monotonic() < deadline:
            statuses = [
                http.get("/readyz").status_code,
                http.post("/token", data=login, auth=client).status_code,
            ]
            if statuses == [200, 200]:
                break
            time.sleep(0.5)
        assert statuses == [200, 200], server.log.read_text(errors="replace")[-3000:]
        refreshed = http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=client,
        )
        assert refreshed.status_code == 200, refreshed.text  # nothing was lost in the crash
    assert server.process.poll() is None  # the same process, never restarted


def _id_and_secret(stdout: str) -> tuple[str, str]:
    created = json.loads(stdout)
    return created["client_id"], created["client_secret"]
