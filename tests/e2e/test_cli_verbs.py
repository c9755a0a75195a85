"""The CLI's complete verbs and uniform output (issue 15, guard rail 5), as an operator meets
them: `users enable | delete | show | unlock`, `clients show | update | rotate-secret`, `--json`
everywhere with errors as one JSON object on stderr, the documented exit statuses (1 error,
2 usage, 3 not found, 4 already exists), and one `Error:` line on a closed standard input.

One scenario in one working directory (commands that do not depend on each other run at the
same time); each test checks one behaviour of what it recorded.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    AUTHSERVER,
    CliResult,
    Invocation,
    assert_ok,
    assert_one_line_error,
    clean_env,
    error_lines,
    run_authserver,
    run_concurrently,
)

pytestmark = pytest.mark.e2e

PASSWORD = "verbs-password-1\n"


@dataclass(frozen=True)
class Scenario:
    home: Path
    web: dict[str, Any]  # clients create --json of the confidential client
    results: dict[str, CliResult]
    audit: list[dict[str, Any]]

    def __getitem__(self, name: str) -> CliResult:
        return self.results[name]


def _cli(home: Path, *args: str, stdin: str = "") -> Invocation:
    return Invocation(list(args), home, None, stdin)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    home = tmp_path_factory.mktemp("verbs-home")
    assert_ok(run_authserver(["db", "upgrade"], home))
    created = run_concurrently(
        _cli(home, "users", "create", "alice", "--password-stdin", stdin=PASSWORD),
        _cli(home, "users", "create", "bob", "--password-stdin", stdin=PASSWORD),
        _cli(home, "users", "create", "carol", "--password-stdin", "--json", stdin=PASSWORD),
        _cli(home, "clients", "create", "web", "--scope", "read", "--scope", "write", "--json"),
        _cli(home, "clients", "create", "spa", "--public", "--json"),
    )
    for result in created:
        assert_ok(result)
    web = json.loads(created[3].stdout)
    spa = json.loads(created[4].stdout)
    names = [
        "duplicate_user",
        "show_alice",
        "show_alice_json",
        "show_ghost",
        "show_ghost_json",
        "disable_bob",
        "unlock_alice",
        "unlock_ghost",
        "show_web",
        "show_nope",
        "update_web",
        "update_nothing",
        "update_public_introspect",
        "rotate_web",
        "rotate_spa",
        "rotate_nope",
        "delete_nope",
        "revoke_ghost",
        "revoke_kid",
        "usage_json",
        "closed_stdin",
        "carol_created",
    ]
    results = run_concurrently(
        _cli(home, "users", "create", "alice", "--password-stdin", stdin=PASSWORD),
        _cli(home, "users", "show", "alice"),
        _cli(home, "users", "show", "alice", "--json"),
        _cli(home, "users", "show", "ghost"),
        _cli(home, "users", "show", "ghost", "--json"),
        _cli(home, "users", "disable", "bob", "--json"),
        _cli(home, "users", "unlock", "alice"),
        _cli(home, "users", "unlock", "ghost"),
        _cli(home, "clients", "show", web["client_id"], "--json"),
        _cli(home, "clients", "show", "nope"),
        _cli(home, "clients", "update", web["client_id"], "--name", "Web 2", "--scope", "read"),
        _cli(home, "clients", "update", web["client_id"]),
        _cli(home, "clients", "update", spa["client_id"], "--introspect"),
        _cli(home, "clients", "rotate-secret", web["client_id"], "--json"),
        _cli(home, "clients", "rotate-secret", spa["client_id"]),
        _cli(home, "clients", "rotate-secret", "nope"),
        _cli(home, "clients", "delete", "nope", "--json"),
        _cli(home, "tokens", "revoke", "--user", "ghost"),
        _cli(home, "keys", "revoke", "no-such-kid"),
        _cli(home, "users", "create", "--json"),
        _cli(home, "users", "create", "dave"),  # no --password-stdin, and nothing on stdin
    )
    results.append(created[2])
    after = run_concurrently(
        _cli(home, "users", "enable", "bob"),
        _cli(home, "users", "delete", "carol", "--json"),
    )
    after.append(run_authserver(["users", "list", "--json"], home))
    audit = run_authserver(["audit", "tail", "-n", "100", "--json"], home)
    assert_ok(audit)
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    named = dict(zip(names, results, strict=True))
    named.update(zip(["enable_bob", "delete_carol", "listed"], after, strict=True))
    return Scenario(home, web, named, events)


def stderr_object(result: CliResult) -> dict[str, Any]:
    """--json: stderr is exactly one JSON object."""
    value: dict[str, Any] = json.loads(result.stderr)
    return value


# --- exit statuses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("duplicate_user", 4),
        ("show_ghost", 3),
        ("show_ghost_json", 3),
        ("unlock_ghost", 3),
        ("show_nope", 3),
        ("rotate_nope", 3),
        ("delete_nope", 3),
        ("revoke_ghost", 3),
        ("revoke_kid", 3),
        ("usage_json", 2),
        ("update_nothing", 2),
        ("update_public_introspect", 1),
        ("rotate_spa", 1),
        ("closed_stdin", 1),
    ],
)
def test_each_failure_exits_with_its_documented_status(
    scenario: Scenario, name: str, status: int
) -> None:
    result = scenario[name]
    assert result.returncode == status, result
    assert "Traceback" not in result.output


def test_not_found_and_exists_are_one_line_naming_what(scenario: Scenario) -> None:
    assert_one_line_error(scenario["duplicate_user"], "alice", "exists")
    assert_one_line_error(scenario["show_ghost"], "ghost")
    assert_one_line_error(scenario["show_nope"], "nope")
    assert_one_line_error(scenario["rotate_spa"], "public")


# --- --json and JSON errors ---------------------------------------------------------------------


def test_an_error_with_json_is_one_json_object_on_stderr(scenario: Scenario) -> None:
    result = scenario["show_ghost_json"]
    assert result.stdout == ""
    error = stderr_object(result)
    assert error["error"] == "no such user: 'ghost'"
    assert error["exit_code"] == 3
    assert error["database"].endswith("/var/authserver.db")
    assert error["issuer"] == "http://127.0.0.1:8000"


def test_a_usage_error_with_json_is_one_json_object_too(scenario: Scenario) -> None:
    error = stderr_object(scenario["usage_json"])
    assert error["exit_code"] == 2
    assert "NAME" in error["error"]


def test_a_success_with_json_has_only_json_on_both_streams(scenario: Scenario) -> None:
    for name in ("show_alice_json", "disable_bob", "rotate_web", "delete_carol", "carol_created"):
        result = scenario[name]
        assert_ok(result)
        json.loads(result.stdout)
        assert set(stderr_object(result)) == {"database", "issuer"}, name


# --- users ----------------------------------------------------------------------------------------


def test_users_show_prints_the_user_and_their_login_state(scenario: Scenario) -> None:
    shown = json.loads(scenario["show_alice_json"].stdout)
    assert set(shown) == {
        "username",
        "id",
        "disabled",
        "created_at",
        "password_changed_at",
        "sessions",
        "locked_until",
        "locked_known_ips",
    }
    assert (shown["username"], shown["disabled"], shown["sessions"]) == ("alice", False, 0)
    assert shown["locked_until"] is None
    text = scenario["show_alice"]
    assert_ok(text)
    assert f"id:                  {shown['id']}" in text.stdout
    assert "locked_until:        -" in text.stdout


def test_disable_then_enable_lets_the_user_log_in_again(scenario: Scenario) -> None:
    assert json.loads(scenario["disable_bob"].stdout)["disabled"] is True
    assert_ok(scenario["enable_bob"])
    listed = {row["username"]: row for row in json.loads(scenario["listed"].stdout)}
    assert listed["bob"]["disabled"] is False


def test_delete_removes_the_user(scenario: Scenario) -> None:
    deleted = json.loads(scenario["delete_carol"].stdout)
    assert deleted == {
        "username": "carol",
        "id": json.loads(scenario["carol_created"].stdout)["id"],
        "deleted": True,
    }
    listed = {row["username"] for row in json.loads(scenario["listed"].stdout)}
    assert listed == {"alice", "bob"}


def test_unlock_of_a_user_with_no_failures_says_there_was_nothing(scenario: Scenario) -> None:
    assert_ok(scenario["unlock_alice"])
    assert "unlocked user alice" in scenario["unlock_alice"].stdout


def test_a_closed_stdin_is_one_error_line_without_a_warning(scenario: Scenario) -> None:
    result = scenario["closed_stdin"]
    assert_one_line_error(result, "no password on standard input")
    assert "Warning" not in result.output
    assert "Password" not in result.output  # no prompt into a pipe nobody reads


def test_a_really_closed_stdin_is_one_error_line_too(scenario: Scenario) -> None:
    """`<&-`: no standard input at all (sys.stdin is None), with and without --password-stdin."""
    for args in ("", " --password-stdin"):
        result = subprocess.run(
            ["bash", "-c", f"{AUTHSERVER} users create erin{args} <&-"],
            cwd=scenario.home,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        lines = error_lines(CliResult(result.returncode, result.stdout, result.stderr))
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: no password"), result.stderr


# --- clients --------------------------------------------------------------------------------------


def test_clients_show_never_shows_a_secret(scenario: Scenario) -> None:
    shown = json.loads(scenario["show_web"].stdout)
    assert shown["client_id"] == scenario.web["client_id"]
    assert scenario.web["client_secret"] not in scenario["show_web"].output
    assert not {"secret", "client_secret", "secret_hash"} & set(shown)


def test_clients_update_changes_only_the_fields_given(scenario: Scenario) -> None:
    assert_ok(scenario["update_web"])
    assert "name, scopes" in scenario["update_web"].stdout
    shown = run_authserver(["clients", "show", scenario.web["client_id"], "--json"], scenario.home)
    client = json.loads(shown.stdout)
    assert (client["name"], client["scopes"]) == ("Web 2", ["read"])
    assert client["grants"] == ["password", "refresh_token"]  # untouched


def test_rotate_secret_prints_a_new_secret_once(scenario: Scenario) -> None:
    rotated = json.loads(scenario["rotate_web"].stdout)
    assert rotated["client_id"] == scenario.web["client_id"]
    assert rotated["client_secret"] not in (None, scenario.web["client_secret"])
    assert rotated["sessions_revoked"] == 0


# --- the audit trail ------------------------------------------------------------------------------


def test_every_mutating_command_writes_its_audit_event(scenario: Scenario) -> None:
    events = {event["event"] for event in scenario.audit if event["actor"].startswith("cli:")}
    assert {
        "user.disabled",
        "user.enabled",
        "user.deleted",
        "user.unlocked",
        "client.updated",
        "client.secret_rotated",
    } <= events
    updated = next(e for e in scenario.audit if e["event"] == "client.updated")
    assert updated["detail"] == {"name": "Web 2", "scopes": "read"}
    deleted = next(e for e in scenario.audit if e["event"] == "user.deleted")
    assert deleted["detail"] == {"username": "carol"}


def test_no_audit_event_holds_a_secret(scenario: Scenario) -> None:
    rotated = json.loads(scenario["rotate_web"].stdout)["client_secret"]
    text = json.dumps(scenario.audit)
    for secret in (rotated, scenario.web["client_secret"], PASSWORD.strip()):
        assert secret not in text
