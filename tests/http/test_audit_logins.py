"""The audit trail records every password login attempt (issue: audit trail): who, which client,
from which IP, with what outcome — and never the password."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from authserver.audit import AuditEvent
from authserver.services import Services
from authserver.store import audit as audit_store
from authserver.store.audit import AuditRecord
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import password_login

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


@pytest.mark.parametrize("settings_overrides", [{"login_max_failures": 2}], indirect=True)
async def test_a_locked_out_attempt_is_recorded_as_denied(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await make_client()
    for _ in range(2):
        await password_login(http, client, password="wrong-guess")
    locked = await password_login(http, client)
    assert locked.status_code == 429
    last = (await events(services))[-1]
    assert (last.event, last.outcome, last.actor) == ("login.locked", "denied", "alice")
    assert int(str(last.detail["retry_after"])) > 0


def test_an_unknown_event_name_or_outcome_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown audit event"):
        AuditEvent("login.maybe", "success")
    with pytest.raises(ValueError, match="unknown audit outcome"):
        AuditEvent("login.success", "meh")
