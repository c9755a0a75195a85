"""The audit trail over HTTP: every password login attempt, every refused refresh that matters
(reuse, another client's token) and every revocation that took effect — who, which client, from
which IP, with what outcome, and never a password or a token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from authserver import admin
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
        ("login.failure", "failure", None, "unknown_user"),  # the name tried is not kept
    ]
    for event in recorded:
        assert "not the password" not in repr(event)
        assert PASSWORD not in repr(event)


@pytest.mark.parametrize("settings_overrides", [{"login_max_failures": 2}], indirect=True)
async def test_a_name_that_is_no_users_never_reaches_the_audit_trail(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Security review, finding 7: what a client types as a username is kept only when it names
    a user. A password typed into the username field, or a stranger's e-mail address, would
    otherwise stay in the trail for AUDIT_RETENTION_DAYS; control characters in it would reach
    the operator's terminal. The address, the client and the reason are kept."""
    await make_user()
    client = await make_client()
    tried = "correct horse \u202ebattery"  # C0 controls are refused earlier (http/forms.py)
    for _ in range(3):
        await password_login(http, client, username=tried)
    recorded = await events(services)
    assert [(e.event, e.actor, e.subject) for e in recorded] == [
        ("login.failure", None, None),
        ("login.failure", None, None),
        ("login.locked", None, None),
        # The third attempt was refused by the lock: it writes nothing.
    ]
    assert all(e.ip == "203.0.113.7" and e.client_id == client.client_id for e in recorded)
    assert "horse" not in repr(recorded)


async def test_a_username_with_invisible_or_spacing_characters_cannot_be_created(
    services: Services,
) -> None:
    for name in ("\u202eadmin", "ad\u200bmin", "nbsp\u00a0name", "tab\tname"):
        with pytest.raises(admin.AdminError, match="username"):
            await admin.create_user(
                services.db, services.passwords, name, PASSWORD, datetime.now(UTC)
            )


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
