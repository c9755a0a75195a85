"""The server under test: its data set up through the authserver CLI, then `authserver serve`.

Every command runs in a scratch directory with an empty config file and a fresh
KEY_ENCRYPTION_KEY, so that no AUTHSERVER_* setting of the developer's shell leaks in.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console import BenchError, log
from database import sqlalchemy_url
from options import HOST, Options
from processes import die_with_parent, pinned, tail

PASSWORD = "bench-" + secrets.token_urlsafe(12)


@dataclass
class Cli:
    """authserver commands, run with the benchmark's environment and working directory."""

    options: Options
    workdir: Path
    env: dict[str, str]
    port: int

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        done = subprocess.run(
            [*self.options.authserver, *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise BenchError(f"`authserver {' '.join(args)}` failed: {message[-1:]}")
        return done.stdout


def populate(options: Options, workdir: Path, database: str) -> tuple[Cli, dict[str, Any]]:
    """Schema, one client and the users in `database`. Returns the CLI bound to a free port,
    and the configuration the load generator needs (client secret and password included)."""
    port = free_port()
    env = server_environment(options, sqlalchemy_url(options.postgres, database), workdir, port)
    cli = Cli(options, workdir, env, port)
    log(f"database {database}: db upgrade, one client, {options.users} users")
    cli("db", "upgrade")
    client, usernames = create_client_and_users(cli)
    load_config = {
        "host": HOST,
        "port": port,
        **client,
        "usernames": usernames,
        "password": PASSWORD,
    }
    return cli, load_config


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(
    options: Options, database_url: str, workdir: Path, port: int
) -> dict[str, str]:
    """The environment of every authserver command: nothing inherited from a developer's shell."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}
    empty_config = workdir / "empty.toml"
    empty_config.write_text("")
    env.update(
        AUTHSERVER_CONFIG=str(empty_config),
        AUTHSERVER_DATABASE_URL=database_url,
        AUTHSERVER_ISSUER=f"http://{HOST}:{port}",
        # A free port of its own, not 9464: another benchmark or test may be serving there.
        AUTHSERVER_METRICS_PORT=str(free_port()),
        AUTHSERVER_KEY_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32))
        .decode()
        .rstrip("="),
    )
    if options.cheap_hash:
        env.update(AUTHSERVER_ARGON2_TIME_COST="1", AUTHSERVER_ARGON2_MEMORY_COST="1024")
    return env


def create_client_and_users(cli: Cli) -> tuple[dict[str, str], list[str]]:
    created = json.loads(
        cli("clients", "create", "bench", "--scope", "read", "--scope", "write", "--json")
        .strip()
        .splitlines()[-1]
    )
    client = {
        "client_id": str(created["client_id"]),
        "client_secret": str(created["client_secret"]),
    }
    usernames = [f"bench-user-{i}" for i in range(cli.options.users)]
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        outputs = pool.map(
            lambda name: cli("users", "create", name, "--password-stdin", stdin=PASSWORD + "\n"),
            usernames,
        )
        list(outputs)  # raise the first failure
    return client, usernames


def start_server(cli: Cli, log_path: Path) -> subprocess.Popen[bytes]:
    """`authserver serve`, pinned, in a session of its own, logging to `log_path`."""
    options = cli.options
    command = pinned(
        options.server_cpu,
        [
            *options.authserver,
            "serve",
            "--host",
            HOST,
            "--port",
            str(cli.port),
            "--workers",
            str(options.workers),
        ],
    )
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=cli.workdir,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only run.py, which stops it in order
            preexec_fn=die_with_parent,  # no other thread runs now
        )


def wait_ready(
    server: subprocess.Popen[bytes],
    port: int,
    log_path: Path,
    timeout: float = 60,
    path: str = "/readyz",
) -> None:
    """Until GET `path` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"the server exited ({server.returncode}):\n{tail(log_path)}")
        connection = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise BenchError(f"the server was not ready within {timeout:.0f} s:\n{tail(log_path)}")
