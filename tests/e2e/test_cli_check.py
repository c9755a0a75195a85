"""The key-encryption key is checked everywhere (issue 15, guard rail 2): `keys list` and `keys
export-jwks` refuse a wrong, malformed or missing KEK as `serve` does; `authserver check` tells
a deploy pipeline, one line per check, whether this host can serve, and exits non-zero if not.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    Cli,
    CliResult,
    Invocation,
    assert_ok,
    assert_one_line_error,
    run_authserver,
    run_concurrently,
)

pytestmark = pytest.mark.e2e

MALFORMED_KEK = "not-a-key"


def new_kek() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("check-home")
    assert_ok(run_authserver(["db", "upgrade"], path))
    return path


# --- keys list and keys export-jwks ---------------------------------------------------------------


@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "export-jwks"]])
def test_key_commands_refuse_a_kek_that_does_not_decrypt_the_keys(
    home: Path, command: list[str]
) -> None:
    wrong = new_kek()
    malformed, wrong_key, right = run_concurrently(
        Invocation(command, home, {"AUTHSERVER_KEY_ENCRYPTION_KEY": MALFORMED_KEK}),
        Invocation(command, home, {"AUTHSERVER_KEY_ENCRYPTION_KEY": wrong}),
        Invocation(command, home),  # the right KEK, from keys/kek
    )
    assert_one_line_error(malformed, "key_encryption_key", "base64")
    assert_one_line_error(wrong_key, "2 of 2 stored keys do not open", "KEY_ENCRYPTION_KEY")
    assert wrong not in wrong_key.output
    assert_ok(right)


def test_key_commands_refuse_to_run_without_the_kek_file_and_create_none(
    home: Path, tmp_path: Path, cli: Cli
) -> None:
    url = f"sqlite+aiosqlite:///{home / 'var' / 'authserver.db'}"
    result = cli("--database-url", url, "keys", "list", cwd=tmp_path)
    assert_one_line_error(result, "keys/kek", "does not exist")
    assert not (tmp_path / "keys").exists()


# --- authserver check ---------------------------------------------------------------------------


def lines_of(result: CliResult) -> dict[str, tuple[str, str]]:
    """{check: (status, detail)} from the text output."""
    found = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition("  ")
        name, _, detail = rest.strip().partition(": ")
        found[name] = (status.strip(), detail)
    return found


def test_check_passes_on_a_host_that_can_serve(home: Path, cli: Cli) -> None:
    result = cli("check", cwd=home)
    assert_ok(result)
    checks = lines_of(result)
    assert list(checks) == ["settings", "issuer", "database", "signing keys"]
    assert {status for status, _ in checks.values()} == {"ok"}
    assert "revision" in checks["database"][1]
    assert "decrypts all 2 stored keys" in checks["signing keys"][1]


def test_check_json_is_one_object_with_every_check(home: Path, cli: Cli) -> None:
    result = cli("check", "--json", cwd=home)
    assert_ok(result)
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]] == [
        "settings",
        "issuer",
        "database",
        "signing keys",
    ]
    assert {c["status"] for c in report["checks"]} == {"ok"}
    assert set(json.loads(result.stderr)) == {"database", "issuer"}


@pytest.mark.parametrize(
    ("env", "failed", "skipped"),
    [
        ({"AUTHSERVER_KEY_ENCRYPTION_KEY": "WRONG"}, "signing keys", []),
        ({"AUTHSERVER_KEY_ENCRYPTION_KEY": MALFORMED_KEK}, "signing keys", []),
        ({"AUTHSERVER_ISSUER": "http://auth.example.com"}, "issuer", []),
        ({"AUTHSERVER_ACCESS_TOKEN_TTL": "0"}, "settings", ["issuer", "database", "signing keys"]),
        ({"AUTHSERVER_ACESS_TOKEN_TTL": "60"}, "settings", ["issuer", "database", "signing keys"]),
    ],
    ids=["wrong-kek", "malformed-kek", "http-issuer", "bad-setting", "unknown-variable"],
)
def test_check_fails_with_one_line_per_check_and_exit_1(
    home: Path, cli: Cli, env: dict[str, str], failed: str, skipped: list[str]
) -> None:
    if env.get("AUTHSERVER_KEY_ENCRYPTION_KEY") == "WRONG":
        env = {"AUTHSERVER_KEY_ENCRYPTION_KEY": new_kek()}
    result = cli("check", cwd=home, env=env)
    assert result.returncode == 1, result
    assert "Traceback" not in result.output
    checks = lines_of(result)
    assert checks[failed][0] == "FAIL", result.stdout
    for name in skipped:
        assert checks[name][0] == "skip", result.stdout
    others = set(checks) - {failed, *skipped}
    assert {checks[name][0] for name in others} <= {"ok"}, result.stdout
    assert "Error: 1 of 4 checks" in result.stderr or skipped


def test_check_in_an_empty_directory_fails_and_creates_nothing(tmp_path: Path, cli: Cli) -> None:
    result = cli("check")
    assert result.returncode == 1, result
    checks = lines_of(result)
    assert checks["database"][0] == "FAIL"
    assert "does not exist" in checks["database"][1]
    assert checks["signing keys"][0] == "skip"
    assert list(tmp_path.iterdir()) == []


def test_check_reports_an_unmigrated_postgresql_database(
    postgres_database_url: str, cli: Cli
) -> None:
    env = {
        "AUTHSERVER_DATABASE_URL": postgres_database_url,
        "AUTHSERVER_KEY_ENCRYPTION_KEY": new_kek(),
    }
    before = cli("check", "--json", env=env)
    assert before.returncode == 1
    report = json.loads(before.stdout)
    database = next(c for c in report["checks"] if c["check"] == "database")
    assert database["status"] == "fail"
    assert "authserver db upgrade" in database["detail"]
    assert json.loads(before.stderr)["exit_code"] == 1

    assert_ok(cli("db", "upgrade", env=env))
    assert_ok(cli("check", env=env))
