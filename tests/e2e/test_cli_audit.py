"""`authserver audit tail [--follow]`: every operator action is in the audit trail, with the
operating-system user who ran it, and no secret ever is."""

from __future__ import annotations

import getpass
import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import pytest

from tests.e2e.conftest import AUTHSERVER, Cli, assert_ok, clean_env, is_context_line

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


STOP_TIMEOUT = 30.0  # generous for a loaded machine: a stop that works takes well under 1 s


class Follower:
    """`authserver audit tail --follow` running, its stdout and stderr read as they come."""

    def __init__(self, cwd: Path, *args: str, sigint_ignored: bool = False) -> None:
        self.process = subprocess.Popen(
            [AUTHSERVER, "audit", "tail", "--follow", *args],
            cwd=cwd,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # As a non-interactive shell starts a background job (`make test &`): the process,
            # and Python in it, starts with SIGINT ignored.
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
            if sigint_ignored
            else None,
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.put(line)

    def interrupt(self) -> tuple[int | None, str]:
        """Send SIGINT; the exit status (None if it did not exit in STOP_TIMEOUT: then it is
        killed) and everything it wrote to stderr."""
        self.process.send_signal(signal.SIGINT)
        try:
            returncode: int | None = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            returncode = None
        for reader in self._readers:
            reader.join(timeout=5)  # they stop at the end of the output
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            stream.close()
        stderr = "".join(iter_queue(self.stderr))
        return returncode, stderr


def iter_queue(lines: queue.Queue[str]) -> Iterator[str]:
    while True:
        try:
            yield lines.get_nowait()
        except queue.Empty:
            return


def test_follow_prints_new_events_as_they_happen(tmp_path: Path, cli: Cli) -> None:
    assert_ok(cli("db", "upgrade"))
    assert_ok(cli("users", "create", "bob", "--password-stdin", stdin=PASSWORD))
    follower = Follower(tmp_path, "--json", "-n", "1")
    try:
        first = json.loads(follower.stdout.get(timeout=30))
        assert first["event"] == "user.created"
        assert_ok(cli("users", "disable", "bob"))
        followed = json.loads(follower.stdout.get(timeout=30))
        assert followed["event"] == "user.disabled"
        assert followed["id"] > first["id"]
    finally:
        returncode, stderr = follower.interrupt()
    assert returncode == 0, stderr
    assert "Traceback" not in stderr


def test_follow_stops_on_ctrl_c_even_when_started_with_sigint_ignored(
    tmp_path: Path, cli: Cli
) -> None:
    """Issue 15: run from `make test &`, the suite's follower inherited SIGINT ignored and
    never stopped. Ctrl-C (or kill -INT) is the way to end --follow: it must always work."""
    assert_ok(cli("db", "upgrade"))
    assert_ok(cli("users", "create", "bob", "--password-stdin", stdin=PASSWORD))
    follower = Follower(tmp_path, "--json", "-n", "1", sigint_ignored=True)
    try:
        assert json.loads(follower.stdout.get(timeout=30))["event"] == "user.created"
    finally:
        returncode, stderr = follower.interrupt()
    assert returncode == 0, stderr
    assert "Traceback" not in stderr


# When each follower gets its SIGINT: as soon as it has named its database (settings read, the
# database not opened yet), as soon as it has printed the last event, and at moments spread over
# its first poll cycles (asleep, or in a query).
MOMENTS = ("named", "printed", 0.2, 0.5, 0.8, 1.1, 1.4, 1.7, 2.3)


def test_follow_stops_on_ctrl_c_at_any_moment(tmp_path: Path, cli: Cli) -> None:
    assert_ok(cli("db", "upgrade"))
    assert_ok(cli("users", "create", "bob", "--password-stdin", stdin=PASSWORD))

    def stop_at(moment: str | float) -> tuple[str | float, int | None, str]:
        follower = Follower(tmp_path, "-n", "1")
        try:
            assert is_context_line(follower.stderr.get(timeout=60))
            if moment != "named":
                assert "user.created" in follower.stdout.get(timeout=60)
            if isinstance(moment, float):
                time.sleep(moment)  # not a wait for something: the moment of the signal
        finally:
            returncode, stderr = follower.interrupt()
        return moment, returncode, stderr

    with ThreadPoolExecutor(len(MOMENTS)) as pool:
        results = list(pool.map(stop_at, MOMENTS))
    for moment, returncode, stderr in results:
        assert returncode == 0, (moment, stderr)
        assert [line for line in stderr.splitlines() if not is_context_line(line)] == [], moment
