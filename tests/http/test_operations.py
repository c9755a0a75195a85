"""GET /healthz, /readyz and /metrics (SPEC "Operations")."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authserver.services import Services
from authserver.settings import Settings
from authserver.store.db import open_database
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import assert_oauth_error, metric_value, password_login, refresh

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

REQUESTS = "authserver_token_requests_total"
DURATION_COUNT = "authserver_token_request_duration_seconds_count"
UNREACHABLE_POSTGRES = "postgresql+asyncpg://nobody@127.0.0.1:1/nowhere"


@pytest.fixture
async def database_down(services: Services) -> AsyncIterator[None]:
    """Point the running app at a database that refuses connections, then put it back."""
    working = services.db
    broken = open_database(Settings(database_url=UNREACHABLE_POSTGRES, database_connect_timeout=1))
    services.db = broken
    try:
        yield
    finally:
        services.db = working
        await broken.dispose()


async def metric_families(http: httpx.AsyncClient) -> dict[str, str]:
    """{family name: type} of everything /metrics exposes."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    return {family.name: family.type for family in text_string_to_metric_families(response.text)}


# --- health -------------------------------------------------------------------------------------


async def test_healthz_answers_200_json(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.json()["status"] == "ok"


async def test_readyz_reports_the_database_and_the_signing_kid(
    http: httpx.AsyncClient, services: Services
) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert body["database"] == "ok"
    assert body["signing_key"] == services.keys.kid


@pytest.mark.usefixtures("database_down")
async def test_readyz_is_503_when_the_database_is_unreachable_while_healthz_stays_200(
    http: httpx.AsyncClient,
) -> None:
    ready = await http.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.headers["content-type"].split(";")[0] == "application/json"
    assert ready.headers["retry-after"].isdigit()
    assert "Traceback" not in ready.text

    alive = await http.get("/healthz")
    assert alive.status_code == 200


# --- metrics ------------------------------------------------------------------------------------


async def test_metrics_is_prometheus_text_with_the_spec_metrics(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = await metric_families(http)
    assert families["authserver_token_requests"] == "counter"
    assert families["authserver_token_request_duration_seconds"] == "histogram"
    assert families["authserver_refresh_reuse_detected"] == "counter"
    assert families["authserver_signing_key_age_seconds"] == "gauge"
    reuse = [
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "authserver_refresh_reuse_detected_total"
    ]
    assert reuse == [0.0]  # exposed before the first reuse, so alerts can use rate()


async def test_token_requests_are_counted_by_grant_and_outcome(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    login = await password_login(http, client)
    assert login.status_code == 200
    assert (await refresh(http, client, login.json()["refresh_token"])).status_code == 200
    assert_oauth_error(await password_login(http, client, password="wrong"), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, "unknown"), 400, "invalid_grant")

    expected = {
        ("password", "success"): 1,
        ("password", "invalid_grant"): 1,
        ("refresh_token", "success"): 1,
        ("refresh_token", "invalid_grant"): 1,
    }
    for (grant, outcome), count in expected.items():
        labels = {"grant": grant, "outcome": outcome}
        assert await metric_value(http, REQUESTS, labels) == count, labels
    assert await metric_value(http, DURATION_COUNT, {"grant": "password"}) == 2
    assert await metric_value(http, DURATION_COUNT, {"grant": "refresh_token"}) == 2


async def test_unknown_grant_types_do_not_create_new_metric_labels(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """An attacker must not be able to grow the metrics' label cardinality at will."""
    client = await make_client()
    invented = [f"urn:x-evil:{secrets.token_hex(4)}" for _ in range(3)]
    for grant in invented:
        response = await http.post("/token", data={"grant_type": grant}, auth=client.basic)
        assert_oauth_error(response, 400, "unsupported_grant_type")

    response = await http.get("/metrics")
    assert not any(grant in response.text for grant in invented)
    grant_labels = {
        sample.labels["grant"]
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == REQUESTS
    }
    assert grant_labels <= {"password", "refresh_token", "client_credentials", "invalid"}
    total = await metric_value(http, REQUESTS, {"outcome": "unsupported_grant_type"})
    assert total == len(invented)


async def test_signing_key_age_is_a_non_negative_number_of_seconds(
    http: httpx.AsyncClient,
) -> None:
    age = await metric_value(http, "authserver_signing_key_age_seconds")
    assert 0 <= age < 10 * 365 * 86_400


async def test_metrics_never_expose_credentials_or_tokens(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    login = await password_login(http, client)
    assert login.status_code == 200
    text = (await http.get("/metrics")).text
    assert client.secret is not None
    for secret in (
        client.secret,
        client.client_id,
        PASSWORD,
        "alice",
        login.json()["refresh_token"],
        login.json()["access_token"],
    ):
        assert secret not in text
