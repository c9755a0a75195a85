"""The operator's view: every CLI command through the real console script, and a real `serve`
answering the whole flow, on PostgreSQL. No output, no error message and no server log line
contains a password, a refresh token, a client secret, a private key or the KEK; the one
exception is the output of `clients create`, which shows the new secret exactly once (SPEC).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path

import httpx
import pytest

from authserver.keys.kek import key_encryption_keys
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import open_database
from tests.e2e.conftest import Cli, CliResult, ServeFactory, assert_ok
from tests.secret_material import Secrets

pytestmark = pytest.mark.e2e


def secret_of(result: CliResult) -> tuple[str, str]:
    """(client_id, client_secret) from the plain-text output of `clients create`."""
    client_id = re.search(r"client_id:\s*(\S+)", result.stdout)
    secret = re.search(r"client_secret:\s*(\S+)", result.stdout)
    assert client_id, result.stdout
    assert secret, result.stdout
    return client_id.group(1), secret.group(1)


async def test_no_command_and_no_server_log_shows_a_secret(
    cli: Cli, serve: ServeFactory, postgres_database_url: str, tmp_path: Path
) -> None:
    kek = secrets.token_bytes(32)
    kek_text = base64.urlsafe_b64encode(kek).decode().rstrip("=")
    env = {
        "AUTHSERVER_DATABASE_URL": postgres_database_url,
        "AUTHSERVER_KEY_ENCRYPTION_KEY": kek_text,
        "AUTHSERVER_LOG_FORMAT": "text",
    }
    password = "pw-" + secrets.token_urlsafe(16)
    new_password = "pw-" + secrets.token_urlsafe(16)
    found = Secrets()
    found.add("password", password)
    found.add("new password", new_password)
    found.add_kek(kek_text, kek)
    outputs: dict[str, CliResult] = {}

    def run(label: str, *args: str, stdin: str | None = None, ok: bool = True) -> CliResult:
        result = cli(*args, env=env, stdin=stdin)
        if ok:
            assert_ok(result)
        else:
            assert result.returncode != 0, result
            assert "Traceback" not in result.output, result.output
        outputs[label] = result
        return result

    run("db upgrade", "db", "upgrade")
    run("users create", "users", "create", "alice", "--password-stdin", stdin=f"{password}\n")
    created = run(
        "clients create",
        "clients", "create", "app", "--grant", "password", "--grant", "refresh_token",
        "--grant", "client_credentials", "--scope", "read",
    )  # fmt: skip
    client_id, client_secret = secret_of(created)
    as_json = run("clients create --json", "clients", "create", "auditor", "--introspect", "--json")
    auditor = json.loads(as_json.stdout)
    found.add("client secret (app)", client_secret)
    found.add("client secret (auditor)", auditor["client_secret"])
    run("clients create --public", "clients", "create", "spa", "--public")
    for args in (
        ("users", "list"),
        ("users", "list", "--json"),
        ("clients", "list"),
        ("clients", "list", "--json"),
        ("keys", "list"),
        ("keys", "list", "--json"),
        ("keys", "export-jwks"),
    ):
        run(" ".join(args), *args)
    run("keys rotate", "keys", "rotate", ok=False)  # refused: `next` not published long enough
    run("keys rotate --now", "keys", "rotate", "--now")
    # Bad input that carries a secret: the error must not echo it.
    run("set-password unknown", "users", "set-password", "nobody", "--password-stdin",
        stdin=f"{password}\n", ok=False)  # fmt: skip
    run("users create duplicate", "users", "create", "alice", "--password-stdin",
        stdin=f"{password}\n", ok=False)  # fmt: skip

    server = serve(tmp_path, env=env)
    tokens: list[str] = []
    error_bodies: list[str] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        app_auth = (client_id, client_secret)
        login_data = {"grant_type": "password", "username": "alice", "password": password}
        login = await http.post("/token", data=login_data, auth=app_auth)
        assert login.status_code == 200, login.text
        tokens.append(login.json()["refresh_token"])
        rotated = await http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens[0]},
            auth=app_auth,
        )
        assert rotated.status_code == 200, rotated.text
        tokens.append(rotated.json()["refresh_token"])
        attempts = [
            ({"grant_type": "refresh_token", "refresh_token": tokens[0]}, app_auth),  # reuse
            ({**login_data, "password": password + "x"}, app_auth),
            ({**login_data, "username": "mallory"}, app_auth),
            (login_data, (client_id, client_secret + "x")),
            ({"grant_type": "client_credentials"}, (client_id, client_secret[:-1])),
            ({"grant_type": "refresh_token", "refresh_token": tokens[1]}, app_auth),
        ]
        for data, auth in attempts:
            response = await http.post("/token", data=data, auth=auth)
            assert response.status_code >= 400, response.text
            error_bodies.append(response.text)
        cc = await http.post("/token", data={"grant_type": "client_credentials"}, auth=app_auth)
        assert cc.status_code == 200, cc.text
        introspected = await http.post(
            "/introspect",
            data={"token": tokens[1]},
            auth=(auditor["client_id"], auditor["client_secret"]),
        )
        assert introspected.status_code == 200, introspected.text
        error_bodies.append(introspected.text)
        revoked = await http.post("/revoke", data={"token": tokens[1]}, auth=app_auth)
        error_bodies.append(revoked.text)

    run("set-password", "users", "set-password", "alice", "--password-stdin",
        stdin=f"{new_password}\n")  # fmt: skip
    run("tokens revoke", "tokens", "revoke", "--user", "alice")
    run("tokens purge", "tokens", "purge")
    run("users disable", "users", "disable", "alice")

    for index, token in enumerate(tokens):
        found.add(f"refresh token #{index}", token)
    db = open_database(Settings(database_url=postgres_database_url))
    try:
        found.add_signing_keys(await key_store.list_keys(db), key_encryption_keys(kek))
    finally:
        await db.dispose()

    for label, result in outputs.items():
        if label == "clients create":
            assert result.stdout.count(client_secret) == 1, result.stdout
            leaks = found.found_in(result.stdout.replace(client_secret, "")) + found.found_in(
                result.stderr
            )
        elif label == "clients create --json":
            assert result.stdout.count(auditor["client_secret"]) == 1, result.stdout
            cleaned = result.stdout.replace(auditor["client_secret"], "")
            leaks = found.found_in(cleaned) + found.found_in(result.stderr)
        else:
            leaks = found.found_in(result.output)
        assert not leaks, (label, leaks)
    server_log = server.log.read_text(errors="replace")
    assert "reuse" in server_log  # the log did record the flow
    assert not found.found_in(server_log)
    assert not [found.found_in(body) for body in error_bodies if found.found_in(body)]
