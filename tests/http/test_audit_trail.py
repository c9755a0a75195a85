"""The audit trail over HTTP: every password login attempt, every refused refresh that matters
(reuse, another client's token) and every revocation that took effect — who, which client, from
which IP, with what outcome, and never a password or a token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from authserver.observability.audit import AuditEvent
from authserver.services import Services
from authserver.store import audit as audit_store
from authserver.store.audit import AuditRecord
from authserver.tokens.opaque import token_digest
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import password_login, refresh

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]
CLIENT_IP = "203.0.113.7"  # the test transport's peer address


async def events(services: Services) -> list[AuditRecord]:
    return await audit_store.latest(services.db, 100)


async def test_a_successful_login_is_recorded_with_user_client_and_ip(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    user_id = await make_user()
    client = await make_client()
    response = await password_login(http, client)
    assert response.status_code == 200
    [event] = await events(services)
    assert (event.event, event.outcome, event.actor) == ("login.success", "success", "alice")
    assert (event.client_id, event.ip, event.subject) == (client.client_id, CLIENT_IP, user_id)
    assert set(event.detail) == {"sid"}


async def test_failed_logins_record_the_reason_for_operators_only(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await make_client()
    wrong = await password_login(http, client, password="not the password")
    unknown = await password_login(http, client, username="mallory")
    assert wrong.json() == unknown.json()  # the client cannot tell the two apart
    recorded = await events(services)
    assert [(e.event, e.outcome, e.actor, e.detail["reason"]) for e in recorded] == [
        ("login.failure", "failure", "alice", "password"),
        ("login.failure", "failure", "mallory", "unknown_user"),
    ]
    for event in recorded:
        assert "not the password" not in repr(event)
        assert PASSWORD not in repr(event)


def test_an_unknown_event_name_or_outcome_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown audit event"):
        AuditEvent("login.maybe", "success")
    with pytest.raises(ValueError, match="unknown audit outcome"):
        AuditEvent("login.success", "meh")


async def login_tokens(http: httpx.AsyncClient, client: RegisteredClient) -> dict[str, str]:
    response = await password_login(http, client)
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


def assert_no_token_in(recorded: list[AuditRecord], *tokens: str) -> None:
    for event in recorded:
        for token in tokens:
            assert token not in repr(event)
            assert token_digest(token).hex() not in repr(event)


async def test_refresh_reuse_is_recorded_with_the_revoked_family(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await make_client()
    first = await login_tokens(http, client)
    assert (await refresh(http, client, first["refresh_token"])).status_code == 200
    reused = await refresh(http, client, first["refresh_token"])
    assert reused.status_code == 400
    recorded = await events(services)
    last = recorded[-1]
    assert (last.event, last.outcome, last.client_id, last.ip) == (
        "refresh.reuse_detected",
        "denied",
        client.client_id,
        CLIENT_IP,
    )
    assert last.detail == {"family_revoked": True}
    assert last.subject is not None
    assert_no_token_in(recorded, first["refresh_token"])


async def test_another_clients_refresh_token_is_recorded_and_revokes_nothing(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    owner = await make_client("owner")
    thief = await make_client("thief")
    tokens = await login_tokens(http, owner)
    assert (await refresh(http, thief, tokens["refresh_token"])).status_code == 400
    last = (await events(services))[-1]
    assert (last.event, last.client_id) == ("refresh.wrong_client", thief.client_id)
    assert last.detail == {"owner_client_id": owner.client_id}
    assert (await refresh(http, owner, tokens["refresh_token"])).status_code == 200


async def test_a_revocation_that_took_effect_is_recorded_and_a_probe_is_not(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await make_client()
    tokens = await login_tokens(http, client)
    probe = await http.post("/revoke", data={"token": "asrt_made_up"}, auth=client.basic)
    assert probe.status_code == 200
    revoked = await http.post("/revoke", data={"token": tokens["refresh_token"]}, auth=client.basic)
    assert revoked.status_code == 200
    recorded = await events(services)
    assert [event.event for event in recorded] == ["login.success", "token.revoked"]
    last = recorded[-1]
    assert (last.client_id, last.ip, last.detail) == (
        client.client_id,
        CLIENT_IP,
        {"kind": "refresh_token"},
    )
    assert last.subject == recorded[0].detail["sid"]  # the family of that login
    assert_no_token_in(recorded, tokens["refresh_token"], tokens["access_token"])
