"""`authserver clients …` as an operator runs it: real processes in one shared working directory.

The module plays one scenario (independent commands at the same time, then the listings and the
deletions) and each test checks one behaviour of what it recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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

ONLY_READ = {"AUTHSERVER_SCOPES": '["read"]'}
PRIVATE_FIELDS = {"secret", "client_secret", "secret_hash"}
SIGN_IN = ("--grant", "authorization_code", "--grant", "refresh_token")
REDIRECT_URIS = ["http://127.0.0.1:8001/callback", "com.example.app:/callback"]
SIGN_IN_URIS = tuple(arg for uri in REDIRECT_URIS for arg in ("--redirect-uri", uri))
BAD_URI = "https://app.example/callback#fragment"


@dataclass(frozen=True)
class Scenario:
    created_text: CliResult
    created_json: CliResult
    public_text: CliResult
    public_json: CliResult
    public_client_credentials: CliResult
    unknown_grant: CliResult
    scope_with_space: CliResult
    scope_with_quote: CliResult
    unconfigured_scope: CliResult
    configured_scope: CliResult
    sign_in: CliResult
    sign_in_without_uri: CliResult
    sign_in_bad_uri: CliResult
    to_delete: CliResult
    deleted: CliResult
    deleted_again: CliResult
    listed_table: CliResult
    listed_json: CliResult

    @property
    def clients(self) -> dict[str, dict[str, Any]]:
        assert_ok(self.listed_json)
        rows: list[dict[str, Any]] = json.loads(self.listed_json.stdout)
        return {row["client_id"]: row for row in rows}


def json_object(result: CliResult) -> dict[str, Any]:
    assert_ok(result)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # one JSON object, nothing else
    value: dict[str, Any] = json.loads(lines[0])
    return value


def text_fields(result: CliResult) -> dict[str, str]:
    """`name: value` lines of `clients create` (without --json)."""
    assert_ok(result)
    fields = {}
    for line in result.stdout.strip().splitlines():
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    home = tmp_path_factory.mktemp("clients-home")  # the embedded SQLite default, created here:
    assert_ok(run_authserver(["db", "upgrade"], home))

    def create(*args: str, env: dict[str, str] | None = None) -> Invocation:
        return Invocation(["clients", "create", *args], home, env)

    (
        created_text,
        created_json,
        public_text,
        public_json,
        public_client_credentials,
        unknown_grant,
        scope_with_space,
        scope_with_quote,
        unconfigured_scope,
        configured_scope,
        sign_in,
        sign_in_without_uri,
        sign_in_bad_uri,
        to_delete,
    ) = run_concurrently(
        create("web"),
        create("api", "--json"),
        create("mobile", "--public"),
        create("spa", "--public", "--json"),
        create("bad", "--public", "--grant", "client_credentials"),
        create("bad", "--grant", "implicit"),
        create("bad", "--scope", "a b"),
        create("bad", "--scope", 'x"y'),
        create("bad", "--scope", "write", env=ONLY_READ),
        create("reader", "--scope", "read", "--json", env=ONLY_READ),
        create("webapp", "--public", "--json", *SIGN_IN, *SIGN_IN_URIS, "--consent"),
        create("bad", *SIGN_IN),
        create("bad", *SIGN_IN, "--redirect-uri", BAD_URI),
        create("doomed", "--json"),
    )
    doomed = json_object(to_delete)["client_id"]
    deleted = run_concurrently(Invocation(["clients", "delete", doomed], home))[0]
    deleted_again, listed_table, listed_json = run_concurrently(
        Invocation(["clients", "delete", doomed], home),
        Invocation(["clients", "list"], home),
        Invocation(["clients", "list", "--json"], home),
    )
    return Scenario(
        created_text=created_text,
        created_json=created_json,
        public_text=public_text,
        public_json=public_json,
        public_client_credentials=public_client_credentials,
        unknown_grant=unknown_grant,
        scope_with_space=scope_with_space,
        scope_with_quote=scope_with_quote,
        unconfigured_scope=unconfigured_scope,
        configured_scope=configured_scope,
        sign_in=sign_in,
        sign_in_without_uri=sign_in_without_uri,
        sign_in_bad_uri=sign_in_bad_uri,
        to_delete=to_delete,
        deleted=deleted,
        deleted_again=deleted_again,
        listed_table=listed_table,
        listed_json=listed_json,
    )


def test_create_prints_the_client_id_and_secret(scenario: Scenario) -> None:
    fields = text_fields(scenario.created_text)
    assert set(fields) == {"client_id", "client_secret"}
    assert fields["client_id"] in scenario.clients
    assert len(fields["client_secret"]) >= 43  # 256 bits, base64url
    assert fields["client_secret"] != fields["client_id"]


def test_create_json_prints_one_object_with_id_and_secret(scenario: Scenario) -> None:
    created = json_object(scenario.created_json)
    assert set(created) == {"client_id", "client_secret"}
    assert isinstance(created["client_secret"], str)
    assert len(created["client_secret"]) >= 43
    assert scenario.clients[created["client_id"]]["public"] is False


def test_public_client_gets_no_secret(scenario: Scenario) -> None:
    fields = text_fields(scenario.public_text)
    assert set(fields) == {"client_id"}
    created = json_object(scenario.public_json)
    assert created["client_secret"] is None
    for client_id in (fields["client_id"], created["client_id"]):
        assert scenario.clients[client_id]["public"] is True


def test_default_grants_are_password_and_refresh_token(scenario: Scenario) -> None:
    client_id = text_fields(scenario.created_text)["client_id"]
    row = scenario.clients[client_id]
    assert sorted(row["grants"]) == ["password", "refresh_token"]
    assert row["name"] == "web"
    assert_recent_iso_utc(row["created_at"])


def test_public_client_with_client_credentials_is_refused(scenario: Scenario) -> None:
    assert_one_line_error(scenario.public_client_credentials, "public", "client_credentials")


def test_unknown_grant_is_refused(scenario: Scenario) -> None:
    assert_one_line_error(scenario.unknown_grant, "implicit")


def test_malformed_scopes_are_refused(scenario: Scenario) -> None:
    assert_one_line_error(scenario.scope_with_space, "scope", "a b")
    assert_one_line_error(scenario.scope_with_quote, "scope")


def test_scope_outside_configured_scopes_is_refused(scenario: Scenario) -> None:
    assert_one_line_error(scenario.unconfigured_scope, "write", "scopes")
    reader = json_object(scenario.configured_scope)
    assert scenario.clients[reader["client_id"]]["scopes"] == ["read"]


def test_refused_creations_register_nothing(scenario: Scenario) -> None:
    names = sorted(row["name"] for row in scenario.clients.values())
    assert names == ["api", "mobile", "reader", "spa", "web", "webapp"]


def test_clients_list_never_shows_a_secret(scenario: Scenario) -> None:
    secrets = [
        text_fields(scenario.created_text)["client_secret"],
        json_object(scenario.created_json)["client_secret"],
        json_object(scenario.configured_scope)["client_secret"],
    ]
    for listing in (scenario.listed_table, scenario.listed_json):
        assert_ok(listing)
        for secret in secrets:
            assert secret not in listing.output
    for row in scenario.clients.values():
        assert not PRIVATE_FIELDS & set(row), row
    assert scenario.listed_table.stdout.splitlines()[0].split()[:2] == ["CLIENT_ID", "NAME"]


def test_delete_removes_the_client_and_a_second_delete_is_an_error(scenario: Scenario) -> None:
    doomed = json_object(scenario.to_delete)["client_id"]
    assert_ok(scenario.deleted)
    assert doomed in scenario.deleted.stdout
    assert doomed not in scenario.clients
    assert_one_line_error(scenario.deleted_again, doomed)


def test_a_sign_in_client_is_listed_with_its_redirect_uris_and_consent(scenario: Scenario) -> None:
    created = json_object(scenario.sign_in)
    assert created["client_secret"] is None
    row = scenario.clients[created["client_id"]]
    assert row["redirect_uris"] == REDIRECT_URIS
    assert row["consent"] is True
    assert sorted(row["grants"]) == ["authorization_code", "refresh_token"]
    assert_ok(scenario.listed_table)
    header = scenario.listed_table.stdout.splitlines()[0].split()
    assert "REDIRECT_URIS" in header
    assert ",".join(REDIRECT_URIS) in scenario.listed_table.stdout


def test_authorization_code_without_a_redirect_uri_is_refused(scenario: Scenario) -> None:
    assert_one_line_error(scenario.sign_in_without_uri, "authorization_code", "--redirect-uri")


def test_a_redirect_uri_that_breaks_the_rules_is_refused_naming_it(scenario: Scenario) -> None:
    assert_one_line_error(scenario.sign_in_bad_uri, BAD_URI, "fragment")
