"""`authserver users …` as an operator runs it: real processes in one shared working directory.

Each subprocess costs about a second, so the module plays one scenario (independent commands run
at the same time, as operators on several terminals would) and each test checks one behaviour of
what it recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    CliResult,
    Invocation,
    assert_ok,
    assert_one_line_error,
    assert_recent_iso_utc,
    run_authserver,
    run_concurrently,
)

pytestmark = pytest.mark.e2e

ALICE_PASSWORD = "alice-e2e-password-1"
DUPLICATE_PASSWORD = "another-password-2"
PROMPTED_PASSWORD = "prompted-password-3"
MISMATCH_FIRST, MISMATCH_SECOND = "mismatch-password-4", "mismatch-password-5"
DAVE_PASSWORD = "dave-password-6"
CHANGED_PASSWORD = "changed-password-7"
GHOST_PASSWORD = "ghost-password-8"
ALL_PASSWORDS = (
    ALICE_PASSWORD,
    DUPLICATE_PASSWORD,
    PROMPTED_PASSWORD,
    MISMATCH_FIRST,
    MISMATCH_SECOND,
    DAVE_PASSWORD,
    CHANGED_PASSWORD,
    GHOST_PASSWORD,
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Scenario:
    created_alice: CliResult
    duplicate: CliResult
    too_short: CliResult
    prompted: CliResult
    mismatched: CliResult
    created_dave: CliResult
    unknown_disable: CliResult
    unknown_set_password: CliResult
    disabled_dave: CliResult
    set_password: CliResult
    short_set_password: CliResult
    listed_json: CliResult
    listed_table: CliResult

    @property
    def every_result(self) -> list[CliResult]:
        return [value for value in vars(self).values() if isinstance(value, CliResult)]

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        assert_ok(self.listed_json)
        rows: list[dict[str, Any]] = json.loads(self.listed_json.stdout)
        return {row["username"]: row for row in rows}


def _create(name: str, cwd: Path, password: str) -> Invocation:
    return Invocation(["users", "create", name, "--password-stdin"], cwd, stdin=f"{password}\n")


def _set_password(name: str, cwd: Path, password: str) -> Invocation:
    return Invocation(
        ["users", "set-password", name, "--password-stdin"], cwd, stdin=f"{password}\n"
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    home = tmp_path_factory.mktemp("users-home")  # the embedded SQLite default, created here:
    assert_ok(run_authserver(["db", "upgrade"], home))
    created_alice = run_authserver(
        ["users", "create", "alice", "--password-stdin"], home, stdin=f"{ALICE_PASSWORD}\n"
    )
    (
        duplicate,
        too_short,
        prompted,
        mismatched,
        created_dave,
        unknown_disable,
        unknown_set_password,
    ) = run_concurrently(
        _create("alice", home, DUPLICATE_PASSWORD),
        _create("shorty", home, "pw"),
        # No --password-stdin, stdin not a terminal: both lines are read, without a prompt.
        Invocation(
            ["users", "create", "bob"], home, stdin=f"{PROMPTED_PASSWORD}\n{PROMPTED_PASSWORD}\n"
        ),
        Invocation(
            ["users", "create", "carol"], home, stdin=f"{MISMATCH_FIRST}\n{MISMATCH_SECOND}\n"
        ),
        _create("dave", home, DAVE_PASSWORD),
        Invocation(["users", "disable", "ghost"], home),
        _set_password("ghost", home, GHOST_PASSWORD),
    )
    disabled_dave, set_password, short_set_password = run_concurrently(
        Invocation(["users", "disable", "dave"], home),
        _set_password("alice", home, CHANGED_PASSWORD),
        _set_password("alice", home, "x"),
    )
    listed_json, listed_table = run_concurrently(
        Invocation(["users", "list", "--json"], home), Invocation(["users", "list"], home)
    )
    return Scenario(
        created_alice=created_alice,
        duplicate=duplicate,
        too_short=too_short,
        prompted=prompted,
        mismatched=mismatched,
        created_dave=created_dave,
        unknown_disable=unknown_disable,
        unknown_set_password=unknown_set_password,
        disabled_dave=disabled_dave,
        set_password=set_password,
        short_set_password=short_set_password,
        listed_json=listed_json,
        listed_table=listed_table,
    )


def test_create_user_reads_the_password_from_stdin_and_prints_the_id(scenario: Scenario) -> None:
    result = scenario.created_alice
    assert_ok(result)
    assert "alice" in result.stdout
    match = UUID.search(result.stdout)
    assert match is not None, result.stdout
    assert scenario.users["alice"]["id"] == match.group()


def test_creating_an_existing_username_fails_with_one_line(scenario: Scenario) -> None:
    assert_one_line_error(scenario.duplicate, "alice", "exists")


def test_too_short_password_is_refused_and_creates_nobody(scenario: Scenario) -> None:
    assert_one_line_error(scenario.too_short, "password")
    assert "shorty" not in scenario.users


def test_without_password_stdin_two_lines_are_read_and_must_match(scenario: Scenario) -> None:
    """At a terminal the password is asked twice, hidden; from a pipe the two lines are read
    as they come, with no prompt (nobody would see it) and no warning about echoing."""
    result = scenario.prompted
    assert_ok(result)
    assert "created user bob" in result.stdout
    assert "Password" not in result.output
    assert "Warning" not in result.output
    assert "bob" in scenario.users


def test_prompt_with_a_mismatched_confirmation_fails_and_creates_nobody(
    scenario: Scenario,
) -> None:
    result = scenario.mismatched
    assert result.returncode != 0, result
    assert "Traceback" not in result.output, result.output
    assert "do not match" in result.output
    assert "carol" not in scenario.users


def test_no_command_ever_prints_a_password(scenario: Scenario) -> None:
    for result in scenario.every_result:
        for password in ALL_PASSWORDS:
            assert password not in result.output, f"password printed by a command: {result!r}"


def test_users_list_json_has_iso_utc_times(scenario: Scenario) -> None:
    users = scenario.users
    assert set(users) == {"alice", "bob", "dave"}
    for row in users.values():
        assert set(row) == {"username", "id", "disabled", "created_at"}
        assert UUID.fullmatch(row["id"]), row
        assert isinstance(row["disabled"], bool)
        assert_recent_iso_utc(row["created_at"])


def test_users_list_prints_a_table(scenario: Scenario) -> None:
    table = scenario.listed_table
    assert_ok(table)
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["USERNAME", "ID", "DISABLED", "CREATED_AT"]
    alice = scenario.users["alice"]
    assert ["alice", alice["id"], "no", alice["created_at"]] in [line.split() for line in lines]
    assert len(lines) == 3


def test_disable_marks_the_user_disabled(scenario: Scenario) -> None:
    assert_ok(scenario.created_dave)
    assert_ok(scenario.disabled_dave)
    assert "dave" in scenario.disabled_dave.stdout
    assert scenario.users["dave"]["disabled"] is True
    assert scenario.users["alice"]["disabled"] is False


def test_set_password_reads_stdin_and_refuses_a_short_password(scenario: Scenario) -> None:
    assert_ok(scenario.set_password)
    assert "alice" in scenario.set_password.stdout
    assert_one_line_error(scenario.short_set_password, "password")


def test_unknown_user_is_reported_in_one_line(scenario: Scenario) -> None:
    assert_one_line_error(scenario.unknown_disable, "ghost")
    assert_one_line_error(scenario.unknown_set_password, "ghost")
