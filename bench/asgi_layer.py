"""CPU time per request of authserver's own ASGI application, without uvicorn or a socket: GET of
the JWKS and of the server metadata, sent straight to `create_app`'s app in one process. What
is left is the request pipeline, the routing and the endpoint, which is what the HTTP layer
controls; CPU time (`time.process_time`) moves much less than wall time on a shared machine.

    .venv/bin/python bench/asgi_layer.py                      # this checkout
    PYTHONPATH=/tmp/before .venv/bin/python bench/asgi_layer.py   # another commit's authserver/

Uses a throwaway SQLite database (schema by `authserver db upgrade`), SCOPES set so the metadata
needs no query, and logging configured as `serve` configures it (`logging_config`, LOG_FORMAT
json unless `--log-format text`), with the access lines' stream replaced by /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from asgi_lifespan import LifespanManager

import authserver
from authserver.app import create_app
from authserver.observability.logs import logging_config
from authserver.settings import Settings

PATHS = ["/.well-known/jwks.json", "/.well-known/oauth-authorization-server"]


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(_message: Any) -> None:
    return None


def prepare(log_format: str) -> Settings:
    """A migrated throwaway SQLite database, and `serve`'s logging with the access lines going
    to /dev/null."""
    directory = tempfile.mkdtemp(prefix="asgi-bench-")
    env = {
        **os.environ,
        "AUTHSERVER_DATABASE_URL": f"sqlite+aiosqlite:///{directory}/bench.db",
        "AUTHSERVER_ISSUER": "http://127.0.0.1:8000",
        "AUTHSERVER_KEY_ENCRYPTION_KEY": "A" * 43,
    }
    command = [sys.executable, "-m", "authserver", "db", "upgrade"]
    subprocess.run(command, env=env, check=True, capture_output=True)
    os.environ["AUTHSERVER_KEY_ENCRYPTION_KEY"] = env["AUTHSERVER_KEY_ENCRYPTION_KEY"]
    logging.config.dictConfig(logging_config(log_format))
    (handler,) = logging.getLogger("authserver.access").handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    return Settings(
        database_url=env["AUTHSERVER_DATABASE_URL"],
        issuer=env["AUTHSERVER_ISSUER"],
        scopes=["read", "write"],
    )


async def measure(settings: Settings, requests: int, rounds: int) -> None:
    app = create_app(settings)
    print(f"authserver from {os.path.dirname(authserver.__file__)}")
    async with LifespanManager(app):
        for path in PATHS:
            for _ in range(requests // 10):  # warm-up
                await app(scope_for(path), receive, send)
            per_request = []
            for _ in range(rounds):
                began = time.process_time()
                for _ in range(requests):
                    await app(scope_for(path), receive, send)
                per_request.append((time.process_time() - began) / requests * 1e6)
            per_request.sort()
            print(
                f"{path}: {per_request[0]:.1f} µs CPU per request (best of {rounds} x "
                f"{requests}), median {per_request[len(per_request) // 2]:.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log-format", choices=["json", "text"], default="json")
    options = parser.parse_args()
    asyncio.run(measure(prepare(options.log_format), options.requests, options.rounds))


if __name__ == "__main__":
    main()
