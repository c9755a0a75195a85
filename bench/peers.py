"""A peer server measured beside authserver in the same run: `bench/run.py --peer NAME`.

Issue 13's targets are ratios to `openssl speed rsa2048`, and this VM's sign rate moves from day
to day by more than our changes do; the one figure that holds is a peer measured by the same
driver, on the same cores, in the same run. The peer's windows alternate with authserver's
(authserver's refresh run 1, the peer's refresh run 1, authserver's run 2, ...), so that both
meet the machine in the same states.

node-oidc-provider (bench/peers/node-oidc-provider/server.mjs) runs as one process, pinned to
the server's core like `authserver serve`, with its in-memory adapter. Its CPU time is read the
same way (/proc, the process and its threads: libuv's pool signs the JWTs); it has no database,
so its PostgreSQL column reads n/a. The load generator logs each chain in with the server's
bench-only login grant instead of the password grant, and reads the JWKS at `/jwks`.

Before the first window, `check` makes sure the comparison is like for like: the login gives a
refresh token, a refresh rotates it and returns an RS256 JWT access token (RSA-2048) that
authserver.verify accepts against the peer's JWKS, and the old refresh token is then refused.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from console import BenchError, log
from options import HOST, Options
from processes import die_with_parent, pinned
from report import Summary, fmt, table
from server import free_port, wait_ready
from session import Session

from authserver.verify import InvalidToken, TokenVerifier

NODE_PEER = Path(__file__).resolve().parent / "peers" / "node-oidc-provider"
SCENARIOS = ("refresh", "jwks")  # what a peer is measured on; the rest is authserver's alone
LOGIN_GRANT = "urn:authserver:bench:login"  # server.mjs's constants
RESOURCE = "urn:authserver:bench:api"
JWKS_PATH = "/jwks"


class NodeOidcProvider(Session):
    """node-oidc-provider, started by `node server.mjs`, in memory."""

    name = "node-oidc-provider"

    def __init__(self, options: Options, workdir: Path) -> None:
        super().__init__(options, None, workdir)
        self.log_path = workdir / "node-oidc-provider.log"
        self.version = ""

    def prepare(self, database: str = "") -> None:
        """The server, ready and checked. `database` is unused: everything is in its memory."""
        node = shutil.which("node")
        if node is None:
            raise BenchError("--peer node-oidc-provider needs `node` (Node.js 20 or later)")
        package = NODE_PEER / "node_modules" / "oidc-provider" / "package.json"
        if not package.exists():
            raise BenchError(f"oidc-provider is not installed: run `npm ci --prefix {NODE_PEER}`")
        node_version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        oidc_provider = json.loads(package.read_text())["version"]
        self.version = f"oidc-provider {oidc_provider}, node {node_version}"
        port = free_port()
        self.load_config = {
            "host": HOST,
            "port": port,
            "client_id": "bench",
            "client_secret": secrets.token_urlsafe(32),
            "usernames": [f"bench-user-{i}" for i in range(self.options.users)],
            "password": "bench-" + secrets.token_urlsafe(12),
            "login_grant": LOGIN_GRANT,
            "jwks_path": JWKS_PATH,
        }
        env = {
            "PATH": "/usr/bin:/bin",
            "NODE_ENV": "production",
            "BENCH_PORT": str(port),
            "BENCH_CLIENT_ID": self.load_config["client_id"],
            "BENCH_CLIENT_SECRET": self.load_config["client_secret"],
            "BENCH_PASSWORD": self.load_config["password"],
        }
        with self.log_path.open("wb") as log_file:
            self.server = subprocess.Popen(
                pinned(self.options.server_cpu, [node, str(NODE_PEER / "server.mjs")]),
                cwd=NODE_PEER,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        wait_ready(self.server, port, self.log_path, path="/.well-known/openid-configuration")
        for line in check(self.load_config):
            log(f"{self.name}: {line}")
        log(f"{self.name} ({self.version}) pid {self.server.pid} ready on {HOST}:{port}")


def side_by_side(ours: Session, peer: Session, scenario: str, runs: int) -> list[Summary]:
    """The scenario's windows, alternating between the two servers: [ours, the peer's]."""
    windows: dict[str, list[Any]] = {ours.name: [], peer.name: []}
    for run in range(1, runs + 1):
        for session in (ours, peer):
            windows[session.name].append(session.window(scenario, run))
    return [Summary(scenario, windows[ours.name]), Summary(scenario, windows[peer.name])]


def check(config: dict[str, Any]) -> list[str]:
    """Rotation, reuse refused, and an RS256 access token that authserver.verify accepts."""
    issuer = f"http://{config['host']}:{config['port']}"
    connection = http.client.HTTPConnection(config["host"], config["port"], timeout=10)
    credentials = f"{config['client_id']}:{config['client_secret']}".encode()
    headers = {
        "Authorization": "Basic " + base64.b64encode(credentials).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }

    def token(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        connection.request("POST", "/token", urlencode(form), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    try:
        username = config["usernames"][0]
        status, login = token(
            {"grant_type": LOGIN_GRANT, "username": username, "password": config["password"]}
        )
        if status != 200 or "refresh_token" not in login:
            raise BenchError(f"the peer's login grant answered {status}: {login}")
        first = login["refresh_token"]
        status, refreshed = token({"grant_type": "refresh_token", "refresh_token": first})
        if status != 200 or refreshed.get("refresh_token") in (None, first):
            raise BenchError(f"the peer's refresh did not rotate ({status}): {refreshed}")
        if "id_token" in refreshed:
            raise BenchError("the peer signs an ID token with each refresh: two signatures")
        status, reused = token({"grant_type": "refresh_token", "refresh_token": first})
        if status != 400 or reused.get("error") != "invalid_grant":
            raise BenchError(f"the peer accepted a used refresh token ({status}): {reused}")
        connection.request("GET", JWKS_PATH)
        keys = json.loads(connection.getresponse().read())["keys"]
    finally:
        connection.close()
    bits = {len(base64.urlsafe_b64decode(key["n"] + "==")) * 8 for key in keys}
    if bits != {2048}:
        raise BenchError(f"the peer's signing keys are not RSA-2048: {bits}")
    verifier = TokenVerifier(
        issuer, RESOURCE, jwks_uri=issuer + JWKS_PATH, allow_insecure_http=True
    )
    try:
        claims = verifier.verify_sync(refreshed["access_token"])
    except InvalidToken as exc:
        raise BenchError(f"authserver.verify refuses the peer's access token: {exc}") from exc
    if claims.sub != username or claims.scope != "read":
        raise BenchError(f"the peer's access token has sub {claims.sub!r}, scope {claims.scope!r}")
    return [
        "a refresh rotates the refresh token and the used one is refused (invalid_grant)",
        f"its access token is an RS256 JWT (RSA-2048, typ at+jwt) that authserver.verify "
        f"accepts: {sorted(claims.claims)}",
    ]


def peer_report(
    name: str, version: str, ours: list[Summary], theirs: list[Summary], signs: float | None
) -> str:
    """The peer's table, then each shared figure side by side, as multiples of the sign rate."""
    lines = [
        "",
        f"{name} ({version}; in memory, no database), same driver, same run:",
        "",
        table(theirs),
        "",
        f"| figure | authserver | {name} | authserver ÷ {name} |",
        "|---|---:|---:|---:|",
    ]
    by_name = {s.scenario: s.median for s in ours}
    for summary in theirs:
        a, b = by_name[summary.scenario], summary.median
        label = f"{summary.scenario} per server-CPU-s"
        lines.append(
            f"| {label} | {fmt(a['per_server_cpu_s'])} | {fmt(b['per_server_cpu_s'])} "
            f"| {a['per_server_cpu_s'] / b['per_server_cpu_s']:.2f} |"
        )
        if signs:
            lines.append(
                f"| {label} ÷ sign/s | {a['per_server_cpu_s'] / signs:.2f} "
                f"| {b['per_server_cpu_s'] / signs:.2f} | |"
            )
        if a["per_sign"] == a["per_sign"] and b["per_sign"] == b["per_sign"]:
            lines.append(
                f"| {label} ÷ sign/s, each window's own (median) | {a['per_sign']:.2f} "
                f"| {b['per_sign']:.2f} | |"
            )
        lines.append(
            f"| {summary.scenario} p50 / p99 ms | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} "
            f"| {b['p50_ms']:.1f} / {b['p99_ms']:.1f} | |"
        )
    return "\n".join(lines)
