"""`authserver db upgrade` and `authserver keys list`, the key-encryption key, bad configuration,
and PostgreSQL schema handling, as an operator meets them: real processes."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    Cli,
    CliResult,
    Invocation,
    ServeFactory,
    assert_ok,
    assert_one_line_error,
    assert_recent_iso_utc,
    free_port,
    run_authserver,
    run_concurrently,
)

pytestmark = pytest.mark.e2e

KEY_FIELDS = {"kid", "state", "alg", "size", "created_at", "activated_at", "retired_at"}
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
# A command that starts and keeps running (a `serve` that should have refused) is killed after
# this long and its result marked as timed out.
REFUSAL_TIMEOUT = 90.0


def new_kek() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def keys_of(result: CliResult) -> list[dict[str, Any]]:
    assert_ok(result)
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def assert_one_current_and_one_next(rows: list[dict[str, Any]]) -> None:
    assert sorted(row["state"] for row in rows) == ["current", "next"], rows
    assert len({row["kid"] for row in rows}) == 2


def serve_args() -> list[str]:
    return ["serve", "--port", str(free_port())]


# --- SQLite: db upgrade, keys list, the KEK file, a wrong KEK ---------------------------------


@dataclass(frozen=True)
class SqliteHome:
    path: Path
    upgraded: CliResult
    listed_json: CliResult
    listed_table: CliResult


@pytest.fixture(scope="module")
def sqlite_home(tmp_path_factory: pytest.TempPathFactory) -> SqliteHome:
    path = tmp_path_factory.mktemp("keys-home")  # empty: the embedded SQLite default
    upgraded = run_authserver(["db", "upgrade"], path)
    listed_json, listed_table = run_concurrently(
        Invocation(["keys", "list", "--json"], path), Invocation(["keys", "list"], path)
    )
    return SqliteHome(path, upgraded, listed_json, listed_table)


def test_db_upgrade_on_sqlite_creates_one_current_and_one_next_key(
    sqlite_home: SqliteHome,
) -> None:
    assert_ok(sqlite_home.upgraded)
    assert (sqlite_home.path / "var" / "authserver.db").is_file()
    rows = keys_of(sqlite_home.listed_json)
    assert_one_current_and_one_next(rows)
    for row in rows:
        assert set(row) == KEY_FIELDS, row
        assert row["alg"] == "RS256"
        assert row["size"] == 2048
        assert isinstance(row["kid"], str)
        assert len(row["kid"]) == 43  # RFC 7638 thumbprint: base64url of SHA-256
        assert_recent_iso_utc(row["created_at"])
        assert row["retired_at"] is None
    by_state = {row["state"]: row for row in rows}
    assert_recent_iso_utc(by_state["current"]["activated_at"])
    assert by_state["next"]["activated_at"] is None


def test_keys_list_never_prints_private_material(sqlite_home: SqliteHome) -> None:
    for result in (sqlite_home.upgraded, sqlite_home.listed_json, sqlite_home.listed_table):
        assert_ok(result)
        assert "PRIVATE KEY" not in result.output
        assert "BEGIN" not in result.output
    for row in keys_of(sqlite_home.listed_json):
        assert not PRIVATE_JWK_MEMBERS & set(row), row
    header, *lines = sqlite_home.listed_table.stdout.splitlines()
    assert header.split()[:3] == ["KID", "STATE", "ALG"]
    kids = {row["kid"] for row in keys_of(sqlite_home.listed_json)}
    assert {line.split()[0] for line in lines} == kids


def test_kek_file_is_created_with_mode_0600(sqlite_home: SqliteHome) -> None:
    kek = sqlite_home.path / "keys" / "kek"
    assert kek.is_file()
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    raw = base64.urlsafe_b64decode(kek.read_text().strip() + "==")
    assert len(raw) == 32
    for result in (sqlite_home.upgraded, sqlite_home.listed_json, sqlite_home.listed_table):
        assert kek.read_text().strip() not in result.output


def test_a_different_kek_stops_serve_and_db_upgrade_and_keeps_the_keys(
    sqlite_home: SqliteHome,
) -> None:
    before = {row["kid"]: row for row in keys_of(sqlite_home.listed_json)}
    other = {"AUTHSERVER_KEY_ENCRYPTION_KEY": new_kek()}
    served, upgraded = run_concurrently(
        Invocation(serve_args(), sqlite_home.path, other),
        Invocation(["db", "upgrade"], sqlite_home.path, other),
        timeout=REFUSAL_TIMEOUT,
    )
    for result in (served, upgraded):
        assert_one_line_error(result, "key_encryption_key")
        assert other["AUTHSERVER_KEY_ENCRYPTION_KEY"] not in result.output
    after = run_authserver(["keys", "list", "--json"], sqlite_home.path)  # the right KEK (file)
    assert {row["kid"]: row for row in keys_of(after)} == before


# --- refused configuration: each in its own empty directory, all at once ----------------------


@dataclass(frozen=True)
class BadStart:
    """One way to start with unusable configuration, and what the line must name."""

    args: list[str]
    env: dict[str, str]
    mentions: tuple[str, ...]
    files: dict[str, str]  # path relative to the working directory -> content (mode 0600)
    secret: str | None = None  # must not be echoed
    modes: dict[str, int] = field(default_factory=dict)  # another mode for some of the files


MALFORMED_KEK = "this is not a key!"
SHORT_KEK = base64.urlsafe_b64encode(b"0123456789abcdef").decode()  # 16 bytes, not 32

BAD_STARTS: dict[str, BadStart] = {
    "env_value_not_an_integer": BadStart(
        serve_args(), {"AUTHSERVER_ACCESS_TOKEN_TTL": "abc"}, ("access_token_ttl",), {}
    ),
    "env_list_not_json": BadStart(
        ["clients", "create", "x"], {"AUTHSERVER_SCOPES": "read write"}, ("scopes",), {}
    ),
    "env_database_url_unsupported": BadStart(
        serve_args(), {"AUTHSERVER_DATABASE_URL": "mysql://db/auth"}, ("database_url",), {}
    ),
    "toml_unknown_key": BadStart(
        ["db", "upgrade"],
        {"AUTHSERVER_CONFIG": "conf/custom.toml"},
        ("frobnicate",),
        {"conf/custom.toml": "frobnicate = 1\n"},
    ),
    "toml_bad_value": BadStart(
        ["users", "list"],
        {"AUTHSERVER_CONFIG": "conf/custom.toml"},
        ("access_token_ttl",),
        {"conf/custom.toml": 'access_token_ttl = "soon"\n'},
    ),
    "toml_default_path_bad_value": BadStart(
        serve_args(), {}, ("jwks_max_age",), {"config/authserver.toml": "jwks_max_age = -1\n"}
    ),
    "toml_config_file_missing": BadStart(
        serve_args(), {"AUTHSERVER_CONFIG": "missing.toml"}, ("AUTHSERVER_CONFIG",), {}
    ),
    "kek_env_malformed": BadStart(
        ["db", "upgrade"],
        {"AUTHSERVER_KEY_ENCRYPTION_KEY": MALFORMED_KEK},
        ("key_encryption_key",),
        {},
        secret=MALFORMED_KEK,
    ),
    "kek_env_too_short": BadStart(
        serve_args(),
        {"AUTHSERVER_KEY_ENCRYPTION_KEY": SHORT_KEK},
        ("key_encryption_key",),
        {},
        secret=SHORT_KEK,
    ),
    "kek_file_malformed": BadStart(
        ["db", "upgrade"], {}, ("key_encryption_key",), {"keys/kek": "garbage\n"}
    ),
    "previous_kek_malformed": BadStart(
        ["keys", "rekey"],
        {"AUTHSERVER_PREVIOUS_KEY_ENCRYPTION_KEYS": f'["{new_kek()}", "{SHORT_KEK}"]'},
        ("previous_key_encryption_keys[1]",),
        {"keys/kek": f"{new_kek()}\n"},
        secret=SHORT_KEK,
    ),
    "previous_kek_not_a_json_list": BadStart(
        ["keys", "rekey"],
        {"AUTHSERVER_PREVIOUS_KEY_ENCRYPTION_KEYS": MALFORMED_KEK},
        ("previous_key_encryption_keys",),
        {},
        secret=MALFORMED_KEK,
    ),
    # Review finding 8: OpenSSH refuses a private key others can read; so does serve a KEK.
    "kek_file_readable_by_others": BadStart(
        serve_args(),
        {},
        ("keys/kek", "0644", "chmod 600"),
        {"keys/kek": f"{new_kek()}\n"},
        modes={"keys/kek": 0o644},
    ),
}


@pytest.fixture(scope="module")
def bad_starts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliResult]:
    invocations = []
    for name, case in BAD_STARTS.items():
        home = tmp_path_factory.mktemp(name)
        for relative, content in case.files.items():
            (home / relative).parent.mkdir(parents=True, exist_ok=True)
            (home / relative).write_text(content)
            (home / relative).chmod(case.modes.get(relative, 0o600))
        invocations.append(Invocation(case.args, home, case.env))
    results = run_concurrently(*invocations, timeout=REFUSAL_TIMEOUT)
    return dict(zip(BAD_STARTS, results, strict=True))


@pytest.mark.parametrize("case", list(BAD_STARTS))
def test_unusable_configuration_stops_with_one_line_naming_the_setting(
    case: str, bad_starts: dict[str, CliResult]
) -> None:
    result = bad_starts[case]
    assert_one_line_error(result, *BAD_STARTS[case].mentions)
    secret = BAD_STARTS[case].secret
    if secret is not None:
        assert secret not in result.output


# --- PostgreSQL -------------------------------------------------------------------------------


def test_unmigrated_postgresql_is_refused_until_db_upgrade(
    postgres_database_url: str, tmp_path: Path, cli: Cli
) -> None:
    env = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    served, listed = run_concurrently(
        Invocation(serve_args(), tmp_path, env),
        Invocation(["users", "list"], tmp_path, env),
        timeout=REFUSAL_TIMEOUT,
    )
    for result in (served, listed):
        assert_one_line_error(result, "authserver db upgrade")

    assert_ok(cli("db", "upgrade", env=env))
    assert_ok(cli("db", "upgrade", env=env))  # idempotent

    users, keys = run_concurrently(
        Invocation(["users", "list", "--json"], tmp_path, env),
        Invocation(["keys", "list", "--json"], tmp_path, env),
    )
    assert_ok(users)
    assert json.loads(users.stdout) == []
    rows = keys_of(keys)
    assert_one_current_and_one_next(rows)
    assert {row["size"] for row in rows} == {2048}
    assert not (tmp_path / "var").exists()  # nothing went to the embedded SQLite default


def test_two_db_upgrades_at_once_on_empty_postgresql_leave_one_current_and_one_next(
    postgres_database_url: str, tmp_path: Path, cli: Cli
) -> None:
    env = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    results = run_concurrently(
        Invocation(["db", "upgrade"], tmp_path, env), Invocation(["db", "upgrade"], tmp_path, env)
    )
    for result in results:
        assert_ok(result)
    assert_one_current_and_one_next(keys_of(cli("keys", "list", "--json", env=env)))


# --- file modes (review finding 8) ------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a plain open() makes files every user can read."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def file_modes(home: Path) -> dict[str, int]:
    names = ["var/authserver.db", "var/authserver.db-wal", "var/authserver.db-shm", "keys/kek"]
    return {name: stat.S_IMODE((home / name).stat().st_mode) for name in names}


@pytest.mark.usefixtures("umask_022")
def test_first_serve_creates_the_database_and_kek_readable_by_their_owner_only(
    tmp_path: Path, serve: ServeFactory
) -> None:
    server = serve(tmp_path)
    assert httpx.get(f"{server.base_url}/.well-known/jwks.json", timeout=10).status_code == 200
    assert file_modes(tmp_path) == dict.fromkeys(file_modes(tmp_path), 0o600)
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700


@pytest.mark.usefixtures("umask_022")
def test_serve_warns_about_an_existing_database_other_users_can_read(
    tmp_path: Path, cli: Cli, serve: ServeFactory
) -> None:
    """An older version created it 0644: serve says so (and how to fix it) but still starts;
    changing the mode of the operator's file is theirs to do."""
    assert_ok(cli("db", "upgrade"))
    database = tmp_path / "var" / "authserver.db"
    database.chmod(0o644)
    server = serve(tmp_path)
    warnings = [
        line for line in server.log.read_text().splitlines() if "accessible by other users" in line
    ]
    assert len(warnings) == 1, server.log.read_text()
    assert "var/authserver.db" in warnings[0]
    assert "0644" in warnings[0]
    assert "chmod 600" in warnings[0]
    assert stat.S_IMODE(database.stat().st_mode) == 0o644
