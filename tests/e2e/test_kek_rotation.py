"""KEK rotation across running `serve` processes (operator guard rail 3): `keys rekey` moves every
private key to a new KEY_ENCRYPTION_KEY while servers started with the old KEK, and servers
started with the new one (the old one as previous), keep signing and serving the JWKS; once the
old KEK is gone, servers that hold the new one follow key changes as before. With the KEK file,
a server re-reads the file and needs no restart at all; a server given its KEK through the
environment can only learn a new one by a restart, which it needs before the next key change."""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from authserver.keys.kek import kek_id, key_encryption_keys
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import open_database
from tests.e2e.conftest import Cli, CliResult, ServeFactory, Server, assert_ok
from tests.e2e.test_key_rotation import keys_by_state, rotation_kids, wait_until_signing_with
from tests.e2e.test_serve import Home, prepare
from tests.secret_material import Secrets

pytestmark = pytest.mark.e2e


def new_kek() -> tuple[str, bytes]:
    raw = secrets.token_bytes(32)
    return base64.urlsafe_b64encode(raw).decode().rstrip("="), raw


def jwks_of(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/.well-known/jwks.json", timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def assert_signs_verifiable_tokens(server: Server, home: Home, kid: str) -> None:
    """A token from `server`, signed with `kid`, verifies against `server`'s own JWKS."""
    response = httpx.post(
        f"{server.base_url}/token",
        data={"grant_type": "password", "username": "alice", "password": "e2e-serve-password-1"},
        auth=home.basic,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == kid
    key = jwt.PyJWKClient(f"{server.base_url}/.well-known/jwks.json").get_signing_key_from_jwt(
        token
    )
    jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})


def wait_for(condition: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def assert_no_secret(results: list[CliResult], found: Secrets) -> None:
    for result in results:
        assert found.found_in(result.output) == [], result.output
        assert "PRIVATE KEY" not in result.output


async def secrets_of(database_url: str, keks_text: list[str], raw: list[bytes]) -> Secrets:
    """Both KEKs, in every encoding, and every private key the database holds."""
    found = Secrets()
    for text, key in zip(keks_text, raw, strict=True):
        found.add(f"KEK {kek_id(key)}", text)
        found.add(f"KEK {kek_id(key)} (standard base64)", base64.b64encode(key).decode())
        found.add(f"KEK {kek_id(key)} (hex)", key.hex())
    db = open_database(Settings(database_url=database_url))
    try:
        found.add_signing_keys(await key_store.list_keys(db), key_encryption_keys(*raw))
    finally:
        await db.dispose()
    return found


async def test_rekey_with_servers_on_the_old_and_the_new_kek_running_on_postgresql(
    postgres_database_url: str, tmp_path: Path, cli: Cli, serve: ServeFactory
) -> None:
    old_text, old = new_kek()
    new_text, new = new_kek()
    database = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    on_old = {**database, "AUTHSERVER_KEY_ENCRYPTION_KEY": old_text}
    rolled_out = {
        **database,
        "AUTHSERVER_KEY_ENCRYPTION_KEY": new_text,
        "AUTHSERVER_PREVIOUS_KEY_ENCRYPTION_KEYS": json.dumps([old_text]),
    }
    on_new = {**database, "AUTHSERVER_KEY_ENCRYPTION_KEY": new_text}
    fast = {"AUTHSERVER_KEYS_REFRESH_INTERVAL": "0.5"}
    assert_ok(cli("db", "upgrade", env=on_old))
    home = prepare(tmp_path, on_old)
    current = keys_by_state(cli, on_old)["current"][0]

    # 1. The new setting is rolled out: one server still runs on the old KEK alone, one was
    # (re)started with the new KEK and the old one as previous.
    old_server = serve(home.path, env={**on_old, **fast})
    new_server = serve(home.path, env={**rolled_out, **fast})
    published = jwks_of(old_server)
    assert jwks_of(new_server) == published
    # Each server names its KEKs by id at start: how an operator checks the rollout.
    assert f"KEY_ENCRYPTION_KEY is KEK {kek_id(old)}; previous KEKs: none" in (
        old_server.log.read_text()
    )
    assert f"KEY_ENCRYPTION_KEY is KEK {kek_id(new)}; previous KEKs: {kek_id(old)}" in (
        new_server.log.read_text()
    )
    found = await secrets_of(postgres_database_url, [old_text, new_text], [old, new])

    # 2. Rekey: every key moves to the new KEK; both servers go on as they were.
    rekeyed = cli("keys", "rekey", env=rolled_out)
    assert_ok(rekeyed)
    assert f"re-encrypted 2 of 2 signing keys under KEK {kek_id(new)}" in rekeyed.stdout
    assert f"they were sealed under KEK {kek_id(old)}" in rekeyed.stdout
    for server in (old_server, new_server):
        assert_signs_verifiable_tokens(server, home, current)
        assert jwks_of(server) == published
    again = cli("keys", "rekey", env=rolled_out)
    assert_ok(again)
    assert f"already sealed under KEK {kek_id(new)}" in again.stdout
    refused = cli("keys", "rekey", env=on_old)  # the old KEK alone opens nothing any more
    assert refused.returncode == 1
    assert kek_id(new) in refused.stderr
    audit = cli("audit", "tail", "--json", env=on_new)
    assert_ok(audit)
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [e["subject"] for e in events if e["event"] == "key.rekeyed"] == [kek_id(new)]

    # 3. The old KEK is removed: a server started with the new KEK alone works, and a key
    # rotation reaches every server that holds the new KEK, without a restart.
    third_server = serve(home.path, env={**on_new, **fast})
    assert_signs_verifiable_tokens(third_server, home, current)
    rotated = cli("keys", "rotate", "--now", env=on_new)
    kids = rotation_kids(rotated)
    wait_until_signing_with([new_server, third_server], home, kids["current"], limit=20)
    for server in (new_server, third_server):
        assert_signs_verifiable_tokens(server, home, kids["current"])

    # 4. The server on the old KEK alone cannot open the new keys: it keeps signing with the
    # key it has (still published, as retired, for ACCESS_TOKEN_TTL and a little more) and says
    # why in its log, until it is restarted with the new KEK.
    wait_for(lambda: kek_id(new) in old_server.log.read_text(), 20, "no complaint in the log")
    complaint = next(
        line for line in old_server.log.read_text().splitlines() if kek_id(new) in line
    )
    assert "restart" in complaint
    assert "Traceback" not in old_server.log.read_text()
    assert_signs_verifiable_tokens(old_server, home, current)
    assert current in {key["kid"] for key in jwks_of(third_server)["keys"]}
    restarted = serve(home.path, env={**on_new, **fast})
    assert_signs_verifiable_tokens(restarted, home, kids["current"])

    assert_no_secret([rekeyed, again, refused, rotated], found)
    for server in (old_server, new_server, third_server, restarted):
        assert found.found_in(server.log.read_text()) == []


def write_kek_file(path: Path, lines: list[str]) -> None:
    """What an operator does with `install -m 600`: a new file, then renamed over the old one."""
    staged = path.with_name("kek.new")
    staged.write_text("".join(f"{line}\n" for line in lines))
    staged.chmod(0o600)
    os.replace(staged, path)


def test_rekey_with_the_kek_file_needs_no_restart(
    tmp_path: Path, cli: Cli, serve: ServeFactory
) -> None:
    """SQLite and the default `keys/kek`: the new KEK goes first in the file, the old one after
    it; after the rekey the old line goes. The running servers re-read the file when a key
    change names a KEK they do not hold."""
    home = prepare(tmp_path)
    fast = {"AUTHSERVER_KEYS_REFRESH_INTERVAL": "0.5"}
    servers = [serve(tmp_path, env=fast), serve(tmp_path, env=fast)]
    current = keys_by_state(cli)["current"][0]
    kek_file = tmp_path / "keys" / "kek"
    old_text = kek_file.read_text().strip()
    new_text, new = new_kek()

    write_kek_file(kek_file, [new_text, old_text])
    rekeyed = cli("keys", "rekey")
    assert_ok(rekeyed)
    assert f"under KEK {kek_id(new)}" in rekeyed.stdout
    for server in servers:
        assert_signs_verifiable_tokens(server, home, current)

    write_kek_file(kek_file, [new_text])
    kids = rotation_kids(cli("keys", "rotate", "--now"))
    wait_until_signing_with(servers, home, kids["current"], limit=20)
    for server in servers:
        assert_signs_verifiable_tokens(server, home, kids["current"])
    for output in (rekeyed.output, *(server.log.read_text() for server in servers)):
        assert old_text not in output
        assert new_text not in output
