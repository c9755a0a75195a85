"""The floor of the chosen stack under the refresh scenario: what uvicorn, the event loop, one
asyncpg round trip and one RS256 signature cost per request when nothing else runs.

Issue 13 set the refresh target as a ratio to `openssl speed rsa2048`'s sign rate (0.62). This
measures the least any server built on the chosen stack (uvicorn with uvloop and httptools,
asyncpg, `cryptography` through joserfc) can spend on a refresh, with the same load generator
(`bench/load.py`, refresh scenario, 16 chains) on the other core. The server here is one pure
ASGI function with none of authserver: no Starlette, no SQLAlchemy, no form parsing, no client
authentication, no logging, no metrics. Each POST reads its body, runs one statement on a pooled
asyncpg connection (an UPDATE … RETURNING of one row of a one-row temporary table: a write, as a
rotation is), signs a JWT-sized payload with joserfc's RS256 and the same 2048-bit key size, and
answers a token response with a fresh refresh token.

    .venv/bin/python bench/floor.py                 # server on CPU 0, load on CPU 1

It prints the floor's refreshes per server-CPU-s, openssl's sign rate on the same core, and their
ratio. A ratio below the target means no server on this stack reaches it on this machine.

    .venv/bin/python bench/floor.py --rules         # the floor plus the rules issue 13 keeps

`--rules` adds to every request what issue 13 says every optimisation must keep, done by
authserver's own code for each: the X-Request-ID (`RequestIds`, echoed in the response), the
REQUEST_TIMEOUT deadline (`Deadlines`), the latency histogram and, for a refresh, the token
request counter and histogram (`Metrics`), and the JSON access line on stdout (`AccessLog`, with
logging configured as `serve` configures it; stdout goes to a file, as in `bench/run.py`). Still
nothing of routing, Starlette, SQLAlchemy, forms or client authentication.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cpu import openssl_rsa2048_signs, process_tree_cpu  # noqa: E402
from server import free_port  # noqa: E402

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


RULES = ("id", "deadline", "metrics", "line")


def app_factory() -> Any:
    """The ASGI app (built in the server process: uvicorn's --factory)."""
    bare = bare_app()
    rules = os.environ.get("FLOOR_RULES")
    if rules is None:
        return bare
    return with_rules(bare, set(filter(None, rules.split(","))))


def with_rules(app: Any, rules: set[str]) -> Any:
    """`app` with the per-request rules of issue 13 named in `rules`, by authserver's own code
    (see --rules). With none named, authserver's modules are still imported (and their objects
    built), which measures what their mere presence in the process costs."""
    import logging.config

    from authserver.http.request_log import AccessLog, RequestIds
    from authserver.http.timeout import Deadlines
    from authserver.observability.logs import logging_config
    from authserver.observability.metrics import make_metrics

    logging.config.dictConfig(logging_config("json"))
    request_ids, deadlines, metrics, access_log = (
        RequestIds(),
        Deadlines(5.0),
        make_metrics(),
        AccessLog(),
    )
    with_id, with_deadline = "id" in rules, "deadline" in rules
    with_metrics, with_line = "metrics" in rules, "line" in rules

    async def ruled(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = ""
        status = 0
        if with_id:
            incoming = next((v for n, v in scope["headers"] if n == b"x-request-id"), None)
            request_id = request_ids.for_request(incoming)
            echoed = [(b"x-request-id", request_id.encode("ascii"))]
        else:
            echoed = []

        async def send_with_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message["headers"], *echoed]}
            await send(message)

        deadline = deadlines.start() if with_deadline else None
        try:
            await app(scope, receive, send_with_status)
        finally:
            if deadline is not None:
                deadlines.finish(deadline)
            seconds = time.perf_counter() - began
            if with_metrics:
                if scope["method"] == "POST":
                    metrics.observe_token_request("refresh_token", "success", seconds)
                metrics.observe_http_request(scope["method"], scope["path"], status, seconds)
            if with_line:
                access_log.record(scope, status, seconds, request_id)

    return ruled


def bare_app() -> Any:
    """The stack alone: one statement and one signature per refresh, the prepared JWKS."""
    import asyncpg
    import orjson
    from joserfc.jwk import RSAKey
    from joserfc.jws import JWSRegistry
    from joserfc.util import json_b64encode, urlsafe_b64encode

    key = RSAKey.generate_key(2048)
    alg = JWSRegistry(algorithms=["RS256"]).get_alg("RS256")
    header = json_b64encode({"alg": "RS256", "typ": "at+jwt", "kid": "floor"}) + b"."
    state: dict[str, Any] = {}
    fixed_headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    jwks = orjson.dumps({"keys": [key.as_dict(private=False, kid="floor", use="sig", alg="RS256")]})
    jwks_start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"cache-control", b"public, max-age=300"),
            (b"etag", b'"floor"'),
            (b"content-length", str(len(jwks)).encode()),
        ],
    }
    jwks_body = {"type": "http.response.body", "body": jwks}

    async def one_row_table(conn: Any) -> None:  # per connection: nothing left behind
        await conn.execute("CREATE TEMP TABLE bench_floor (id int PRIMARY KEY, n bigint)")
        await conn.execute("INSERT INTO bench_floor VALUES (1, 0)")

    async def startup() -> None:
        state["pool"] = await asyncpg.create_pool(
            POSTGRES, min_size=8, max_size=8, init=one_row_table
        )

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["pool"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":  # the JWKS scenario: a prepared document, nothing else
            await send(jwks_start)
            await send(jwks_body)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        async with state["pool"].acquire() as conn:
            row = await conn.fetchrow(
                "UPDATE bench_floor SET n = n + 1 WHERE id = $1 RETURNING n", 1
            )
        now = int(time.time())
        claims = {
            "iss": "http://127.0.0.1",
            "sub": str(row["n"]),
            "iat": now,
            "exp": now + 900,
            "jti": secrets.token_urlsafe(16),
            "scope": "read write",
        }
        signing_input = header + urlsafe_b64encode(orjson.dumps(claims))
        token = signing_input + b"." + urlsafe_b64encode(alg.sign(signing_input, key))
        answer = orjson.dumps(
            {
                "access_token": token.decode(),
                "token_type": "Bearer",
                "expires_in": 900,
                "refresh_token": "rt_" + secrets.token_urlsafe(32),
                "scope": "read write",
            }
        )
        length = (b"content-length", str(len(answer)).encode())
        start = {"type": "http.response.start", "status": 200, "headers": [*fixed_headers, length]}
        await send(start)
        await send({"type": "http.response.body", "body": answer})

    return app


def wait_listening(port: int, limit: float = 60.0) -> None:
    """Until the server accepts connections (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"floor: the server did not listen on {port} within {limit} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", choices=["refresh", "jwks"], default="refresh")
    parser.add_argument(
        "--rules",
        nargs="?",
        const=",".join(RULES),
        help=f"add issue 13's per-request rules: all, or some of {','.join(RULES)} "
        "(an empty value: none, but authserver imported)",
    )
    options = parser.parse_args()
    unknown = set(filter(None, (options.rules or "").split(","))) - set(RULES)
    if unknown:
        parser.error(
            f"--rules: no such rule {', '.join(sorted(unknown))} (rules: {', '.join(RULES)})"
        )
    signs = openssl_rsa2048_signs(0)
    port = free_port()
    access_lines = tempfile.TemporaryFile()  # noqa: SIM115  # closed with the server, below
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "floor:app_factory",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=HERE,
        env={
            **os.environ,
            **({} if options.rules is None else {"FLOOR_RULES": options.rules}),
        },
        stdout=access_lines,
    )
    try:
        wait_listening(port)
        config = {
            "host": "127.0.0.1",
            "port": port,
            "client_id": "x",
            "client_secret": "y",
            "usernames": ["u"],
            "password": "p",
        }
        rates = []
        for _ in range(options.runs):
            load = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "1",
                    sys.executable,
                    str(HERE / "load.py"),
                    "--scenario",
                    options.scenario,
                    "--duration",
                    str(options.duration),
                    "--warmup",
                    str(options.warmup),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert load.stdin is not None
            assert load.stdout is not None
            load.stdin.write(json.dumps(config) + "\n")
            load.stdin.flush()
            cpu_start = cpu_end = 0.0
            result: dict[str, Any] = {}
            for line in load.stdout:
                if line.startswith("start"):
                    cpu_start = process_tree_cpu(server.pid)
                elif line.startswith("end"):
                    cpu_end = process_tree_cpu(server.pid)
                elif line.startswith("result "):
                    result = json.loads(line[len("result ") :])
            load.wait()
            print(json.dumps(result)[:300], file=sys.stderr)
            count = result["completed"]
            rates.append(count / (cpu_end - cpu_start))
        rates.sort()
        median = rates[len(rates) // 2]
        runs = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"floor, {options.scenario}: {median:,.0f} per server-CPU-s (runs: {runs})")
        if signs:
            print(f"openssl: {signs:,.0f} sign/s; floor / sign/s = {median / signs:.2f}")
    finally:
        server.terminate()
        server.wait()
        access_lines.close()


if __name__ == "__main__":
    main()
