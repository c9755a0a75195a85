"""`authserver audit tail [--follow]`: every operator action is in the audit trail, with the
operating-system user who ran it, and no secret ever is."""

from __future__ import annotations

import getpass
import json
import queue
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cli, assert_ok, start_authserver

pytestmark = pytest.mark.e2e

PASSWORD = "audit-e2e-password-1"
NEW_PASSWORD = "audit-e2e-password-2"


def tail(cli: Cli, *args: str) -> list[dict[str, Any]]:
    result = cli("audit", "tail", "--json", *args)
    assert_ok(result)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_operator_actions_are_recorded_without_secrets(tmp_path: Path, cli: Cli) -> None:
    assert_ok(cli("db", "upgrade"))  # creates the signing keys and keys/kek
    assert_ok(cli("users", "create", "alice", "--password-stdin", stdin=PASSWORD))
    created = cli("clients", "create", "web", "--json")
    assert_ok(created)
    client = json.loads(created.stdout)
    assert_ok(cli("users", "set-password", "alice", "--password-stdin", stdin=NEW_PASSWORD))
    assert_ok(cli("tokens", "revoke", "--user", "alice"))  # no sessions: nothing to record
    assert_ok(cli("users", "disable", "alice"))
    assert_ok(cli("clients", "delete", client["client_id"]))
    assert_ok(cli("keys", "rotate", "--now"))
    revoked_kid = json.loads(cli("keys", "list", "--json").stdout)[0]["kid"]
    assert_ok(cli("keys", "revoke", revoked_kid))
    assert_ok(cli("tokens", "purge"))

    result = cli("audit", "tail", "--json", "-n", "100")
    assert_ok(result)
    for secret in (PASSWORD, NEW_PASSWORD, client["client_secret"]):
        assert secret not in result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [event["event"] for event in events] == [
        "user.created",
        "client.created",
        "user.password_changed",
        "user.disabled",
        "client.deleted",
        "key.rotated",
        "key.revoked",
        "tokens.purged",
    ]
    assert {event["actor"] for event in events} == {f"cli:{getpass.getuser()}"}
    assert {event["outcome"] for event in events} == {"success"}
    assert events[1]["client_id"] == client["client_id"]
    assert events[6]["subject"] == revoked_kid
    assert events == sorted(events, key=lambda event: event["id"])

    # Plain text: one line per event, the last N only.
    text = cli("audit", "tail", "-n", "2")
    assert_ok(text)
    lines = text.stdout.splitlines()
    assert len(lines) == 2
    assert " key.revoked success " in lines[0]
    assert " tokens.purged success " in lines[1]


def test_follow_prints_new_events_as_they_happen(tmp_path: Path, cli: Cli) -> None:
    assert_ok(cli("db", "upgrade"))
    assert_ok(cli("users", "create", "bob", "--password-stdin", stdin=PASSWORD))
    follower = start_authserver(["audit", "tail", "--json", "--follow", "-n", "1"], tmp_path)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        first = json.loads(lines.get(timeout=30))
        assert first["event"] == "user.created"
        assert_ok(cli("users", "disable", "bob"))
        followed = json.loads(lines.get(timeout=15))
        assert followed["event"] == "user.disabled"
        assert followed["id"] > first["id"]
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=15)
        reader.join(timeout=5)  # it stops at the end of the output
        assert follower.stdin is not None
        assert follower.stdout is not None
        assert follower.stderr is not None
        stderr = follower.stderr.read()
        for stream in (follower.stdin, follower.stdout, follower.stderr):
            stream.close()
    assert follower.returncode == 0, stderr
    assert "Traceback" not in stderr
