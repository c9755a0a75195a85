"""What the CLI imports to start (issue 15, guard rail 6): each command imports only the
libraries it uses, so that `--help` and the everyday commands start fast. The times themselves
are measured by bench/cli_startup.py, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, assert_ok, clean_env

pytestmark = pytest.mark.e2e

# Run the CLI in-process as the console script would, then list the top-level packages loaded.
PROBE = """
import json, sys
from authserver.cli import main
code = main(sys.argv[2:], standalone_mode=False)
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}, out)
"""

# Libraries no command needs merely to parse its arguments and print its help.
NOT_FOR_HELP = {
    "asyncio",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "argon2",
    "joserfc",
    "cryptography",
    "prometheus_client",
    "uvicorn",
    "starlette",
    "httpx",
    "pydantic",
    "pydantic_settings",
}
# Libraries a command that only reads the database has no use for.
NOT_FOR_READING = {
    "alembic",
    "argon2",
    "joserfc",
    "prometheus_client",
    "uvicorn",
    "starlette",
    "httpx",
}


def imported_by(args: list[str], cwd: Path) -> set[str]:
    out = cwd / "imported.json"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["code"] in (0, None), result.stderr
    modules: set[str] = set(report["modules"])
    return modules


@pytest.mark.parametrize(
    "args", [["--help"], ["users", "--help"], ["keys", "rotate", "--help"], ["serve", "--help"]]
)
def test_help_imports_no_database_web_crypto_or_settings_library(
    args: list[str], tmp_path: Path
) -> None:
    assert imported_by(args, tmp_path) & NOT_FOR_HELP == set()


@pytest.mark.parametrize(
    "args",
    [["users", "list"], ["clients", "list", "--json"], ["audit", "tail"], ["tokens", "purge"]],
)
def test_a_command_that_reads_the_database_imports_no_migration_server_or_hashing_library(
    args: list[str], tmp_path: Path, cli: Cli
) -> None:
    assert_ok(cli("db", "upgrade", cwd=tmp_path))
    assert imported_by(args, tmp_path) & NOT_FOR_READING == set()


@pytest.mark.parametrize("args", [["users", "list"], ["keys", "list"], ["audit", "tail"]])
def test_a_command_on_sqlite_does_not_import_the_postgresql_driver(
    args: list[str], tmp_path: Path, cli: Cli
) -> None:
    assert_ok(cli("db", "upgrade", cwd=tmp_path))
    assert "asyncpg" not in imported_by(args, tmp_path)
