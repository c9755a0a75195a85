"""The CLI cannot silently use the wrong database (issue 15, guard rail 1): only `serve` and
`db upgrade` create a database; every other command refuses, in one line, a database that does
not exist or is not at the head revision; every command says on stderr which database and
issuer it used; `--config FILE` and `--database-url URL` apply to every command, with the
precedence option > environment > file > default."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest
from alembic import command

from authserver.store.migrate import alembic_config
from tests.e2e.conftest import (
    Cli,
    CliResult,
    Invocation,
    assert_ok,
    assert_one_line_error,
    context_line,
    finish,
    free_port,
    run_concurrently,
    start_authserver,
)

pytestmark = pytest.mark.e2e

PASSWORD = "guard-rail-password-1"
# Every command that reads or writes the database, other than `serve` and `db upgrade`.
ORDINARY_COMMANDS = [
    ["users", "create", "alice", "--password-stdin"],
    ["users", "list"],
    ["users", "disable", "alice"],
    ["clients", "create", "my-app"],
    ["clients", "list"],
    ["keys", "list"],
    ["keys", "export-jwks"],
    ["tokens", "purge"],
    ["audit", "tail"],
]


def test_users_create_in_a_directory_without_a_database_refuses_and_creates_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    """The operator is in the wrong directory: nothing is created, and the line says so."""
    result = cli("users", "create", "alice", "--password-stdin", stdin=f"{PASSWORD}\n")
    line = assert_one_line_error(result, "does not exist", "authserver db upgrade")
    assert str(tmp_path / "var" / "authserver.db") in line
    assert result.returncode == 1
    assert list(tmp_path.iterdir()) == []  # no var/, no database, no keys/


def test_every_ordinary_command_refuses_a_missing_database(tmp_path: Path) -> None:
    homes = []
    for index, args in enumerate(ORDINARY_COMMANDS):
        home = tmp_path / f"home-{index}"
        home.mkdir()
        homes.append(Invocation(args, home, stdin=f"{PASSWORD}\n"))
    for invocation, result in zip(homes, run_concurrently(*homes), strict=True):
        assert_one_line_error(result, "does not exist")
        assert list(invocation.cwd.iterdir()) == [], invocation.args


def test_a_missing_postgresql_database_is_refused_in_one_line_without_its_password(
    cli: Cli,
) -> None:
    url = "postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:5432/authserver_no_such_db"
    result = cli("users", "list", env={"AUTHSERVER_DATABASE_URL": url})
    assert_one_line_error(result, "does not exist")
    assert "s3cret-pw" not in result.output
    assert "postgresql+asyncpg://postgres:***@127.0.0.1:5432/authserver_no_such_db" in (
        context_line(result)
    )


def test_an_sqlite_database_behind_the_head_is_refused_until_db_upgrade(
    cli: Cli, tmp_path: Path
) -> None:
    """The embedded default no longer migrates itself on an operator command."""
    database = tmp_path / "var" / "authserver.db"
    database.parent.mkdir()
    command.upgrade(alembic_config(f"sqlite+aiosqlite:///{database}"), "0001")
    assert_one_line_error(cli("users", "list"), "revision 0001", "authserver db upgrade")
    assert_ok(cli("db", "upgrade"))
    assert_ok(cli("users", "list"))


def test_every_command_names_the_database_and_issuer_on_stderr(cli: Cli, tmp_path: Path) -> None:
    """A line in text mode; with --json, stderr is one JSON object with the same two values."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'authserver.db'}"
    upgraded, listed = cli("db", "upgrade"), cli("users", "list")
    expected = f"authserver: using database {database}, issuer http://127.0.0.1:8000"
    for result in (upgraded, listed):
        assert_ok(result)
        assert context_line(result) == expected, result.stderr
    as_json = cli("users", "list", "--json")
    assert_ok(as_json)
    assert json.loads(as_json.stdout) == []  # stdout stays the command's output alone
    assert json.loads(as_json.stderr) == {"database": database, "issuer": "http://127.0.0.1:8000"}


# --- --config and --database-url -------------------------------------------------------------


def issuer_of(result: CliResult) -> str:
    assert_ok(result)
    return context_line(result).rsplit("issuer ", 1)[1]


def database_of(result: CliResult) -> str:
    return context_line(result).split("using database ", 1)[1].rsplit(", issuer ", 1)[0]


def test_settings_precedence_is_option_then_environment_then_file_then_default(
    cli: Cli, tmp_path: Path
) -> None:
    assert_ok(cli("db", "upgrade"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "authserver.toml").write_text(
        'issuer = "https://default-file.example"\n'
    )
    (tmp_path / "env.toml").write_text('issuer = "https://env-file.example"\n')
    (tmp_path / "option.toml").write_text('issuer = "https://option-file.example"\n')
    env_file = {"AUTHSERVER_CONFIG": str(tmp_path / "env.toml")}
    env_issuer = {"AUTHSERVER_ISSUER": "https://env.example"}

    assert issuer_of(cli("users", "list")) == "https://default-file.example"
    assert issuer_of(cli("users", "list", env=env_file)) == "https://env-file.example"
    assert issuer_of(cli("--config", "option.toml", "users", "list", env=env_file)) == (
        "https://option-file.example"
    )
    assert issuer_of(cli("--config", "option.toml", "users", "list", env=env_issuer)) == (
        "https://env.example"  # a variable beats any file, the one named by --config too
    )


def test_database_url_option_beats_the_environment_and_the_file(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "other.db"
    option_url = f"sqlite+aiosqlite:///{other}"
    assert_ok(cli("--database-url", option_url, "db", "upgrade"))
    assert other.is_file()
    assert not (tmp_path / "var").exists()
    env = {"AUTHSERVER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'env.db'}"}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "authserver.toml").write_text(
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "file.db"}"\n'
    )
    result = cli("--database-url", option_url, "users", "list", env=env)
    assert_ok(result)
    assert database_of(result) == option_url
    assert not (tmp_path / "env.db").exists()
    assert not (tmp_path / "file.db").exists()


def test_a_config_option_naming_no_file_is_a_usage_error(cli: Cli) -> None:
    result = cli("--config", "missing.toml", "users", "list")
    assert result.returncode == 2, result
    assert "missing.toml" in result.stderr
    assert "Traceback" not in result.output


def test_serve_workers_use_the_database_url_option(tmp_path: Path) -> None:
    """`serve --workers 2` re-reads the settings in each worker: the option must reach them."""
    database = tmp_path / "chosen.db"
    port = free_port()
    args = ["--database-url", f"sqlite+aiosqlite:///{database}", "serve", "--port", str(port)]
    process = start_authserver([*args, "--workers", "2"], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        assert ready.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        finish(process, timeout=30)
    assert database.is_file()
    assert not (tmp_path / "var").exists()
