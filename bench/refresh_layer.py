"""CPU time per refresh grant of authserver's own ASGI application on PostgreSQL, without uvicorn
or a socket: 16 chains rotating their refresh tokens, sent straight to `create_app`'s app in one
process on uvloop, as `serve` runs it. What is measured is our code, SQLAlchemy's pool, asyncpg
and the signature (PostgreSQL's own CPU is another process's); the request is built once per
chain, so the driver adds next to nothing. CPU time (`time.process_time`) moves much less than
wall time on a shared machine, which makes this the A/B tool for the hot path: run it on two
commits one after the other.

    .venv/bin/python bench/refresh_layer.py                      # this checkout
    PYTHONPATH=/tmp/before .venv/bin/python bench/refresh_layer.py   # another commit's authserver/

Uses a throwaway PostgreSQL database (dropped at the end), set up with the CLI as `bench/run.py`
does, and logging configured as `serve` configures it, with the access lines going to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import logging.config
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from typing import Any
from urllib.parse import urlencode

import uvloop
from asgi_lifespan import LifespanManager

import authserver
from authserver.app import create_app
from authserver.observability.logs import logging_config
from authserver.settings import Settings

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "bench-" + secrets.token_urlsafe(12)


def authserver_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    command = [sys.executable, "-m", "authserver", *args]
    done = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, check=True)
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepare(database: str, chains: int) -> tuple[Settings, dict[str, str]]:
    """Schema, one client and `chains` users; `serve`'s logging, access lines to /dev/null."""
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    directory = tempfile.mkdtemp(prefix="refresh-bench-")
    config = os.path.join(directory, "empty.toml")
    open(config, "w").close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")},
        "AUTHSERVER_CONFIG": config,
        "AUTHSERVER_DATABASE_URL": f"{base}/{database}",
        "AUTHSERVER_ISSUER": "http://127.0.0.1:8000",
        "AUTHSERVER_METRICS_PORT": str(free_port()),  # not 9464: another run may be serving
        "AUTHSERVER_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32))
        .decode()
        .rstrip("="),
        "AUTHSERVER_ARGON2_TIME_COST": "1",
        "AUTHSERVER_ARGON2_MEMORY_COST": "1024",
        # Generous, so that a run under valgrind (`--instructions`), 50 times slower, is not
        # cut short; neither changes the work a request does.
        "AUTHSERVER_REQUEST_TIMEOUT": "300",
        "AUTHSERVER_DATABASE_CONNECT_TIMEOUT": "120",
    }
    authserver_cli(env, "db", "upgrade")
    created = authserver_cli(
        env, "clients", "create", "bench", "--scope", "read", "--scope", "write", "--json"
    )
    client = json.loads(created.strip().splitlines()[-1])
    for i in range(chains):
        authserver_cli(env, "users", "create", f"u{i}", "--password-stdin", stdin=PASSWORD + "\n")
    os.environ.update(env)
    logging.config.dictConfig(logging_config("json"))
    (handler,) = logging.getLogger("authserver.access").handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    return Settings(), {"id": str(client["client_id"]), "secret": str(client["client_secret"])}


def token_scope(authorization: bytes, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/token",
        "raw_path": b"/token",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", authorization),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def post_token(app: Any, authorization: bytes, form: dict[str, str]) -> dict[str, Any]:
    body = urlencode(form).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(token_scope(authorization, body), receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"/token answered {sent[0]['status']}: {sent[1]['body']!r}")
    answer: dict[str, Any] = json.loads(sent[1]["body"])
    return answer


async def chain(app: Any, authorization: bytes, refresh_token: str, count: int) -> str:
    for _ in range(count):
        answer = await post_token(
            app, authorization, {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        refresh_token = answer["refresh_token"]
    return refresh_token


async def measure(settings: Settings, client: dict[str, str], options: argparse.Namespace) -> None:
    app = create_app(settings)
    secret = f"{client['id']}:{client['secret']}".encode()
    authorization = b"Basic " + base64.b64encode(secret)
    print(f"authserver from {os.path.dirname(authserver.__file__)}")
    async with LifespanManager(app):
        tokens = []
        for i in range(options.chains):
            form = {"grant_type": "password", "username": f"u{i}", "password": PASSWORD}
            tokens.append((await post_token(app, authorization, form))["refresh_token"])
        per_chain = options.requests // options.chains
        count = per_chain * options.chains
        per_request: list[tuple[float, float, float]] = []  # CPU, of it user, of it system
        for round_ in range(options.rounds + 1):
            began = os.times()
            tokens = await asyncio.gather(
                *(chain(app, authorization, token, per_chain) for token in tokens)
            )
            ended = os.times()
            if round_:  # the first round is the warm-up
                user = (ended.user - began.user) / count * 1e6
                system = (ended.system - began.system) / count * 1e6
                per_request.append((user + system, user, system))
        per_request.sort()
        best, median = per_request[0], per_request[len(per_request) // 2]
        print(
            f"refresh: {best[0]:.1f} µs CPU per request (best of {options.rounds} x {count}; "
            f"user {best[1]:.1f}, system {best[2]:.1f}), median {median[0]:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chains", type=int, default=16)
    options = parser.parse_args()
    database = f"authserver_refresh_bench_{os.getpid()}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    try:
        settings, client = prepare(database, options.chains)
        uvloop.run(measure(settings, client, options))
    finally:
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", database], check=False
        )


if __name__ == "__main__":
    main()
