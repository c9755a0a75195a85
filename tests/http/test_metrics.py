"""The operational metrics beyond SPEC's four (see test_operations.py for those): database pool,
password hashing, HTTP latency; METRICS_ENABLED and METRICS_PORT."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from authserver.app import create_app
from authserver.services import Services
from authserver.settings import Settings
from tests.conftest import RegisteredClient
from tests.e2e.conftest import free_port
from tests.helpers import assert_oauth_error, metric_value, password_login, refresh

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

HTTP_COUNT = "authserver_http_request_duration_seconds_count"


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def test_pool_gauges_show_the_size_and_the_connections_in_use(
    http: httpx.AsyncClient, services: Services
) -> None:
    expected_size = (
        1 if services.db.dialect.name == "sqlite" else services.settings.database_pool_size
    )
    assert await metric_value(http, "authserver_database_pool_size") == expected_size
    assert await metric_value(http, "authserver_database_pool_checked_out") == 0
    async with services.db.statement():  # a request holding a connection
        assert await metric_value(http, "authserver_database_pool_checked_out") == 1
    assert await metric_value(http, "authserver_database_pool_checked_out") == 0
    assert await metric_value(http, "authserver_database_pool_overflow") == 0


async def test_signing_key_age_is_read_at_scrape_time(http: httpx.AsyncClient) -> None:
    before = await metric_value(http, "authserver_signing_key_age_seconds")
    await asyncio.sleep(1.1)
    after = await metric_value(http, "authserver_signing_key_age_seconds")
    assert after - before >= 1.0


async def test_password_checks_are_timed_for_good_and_bad_passwords(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    assert (await password_login(http, client)).status_code == 200
    assert_oauth_error(await password_login(http, client, password="wrong"), 400, "invalid_grant")
    assert_oauth_error(await password_login(http, client, username="nobody"), 400, "invalid_grant")
    assert await metric_value(http, "authserver_password_hash_seconds_count") == 3
    assert await metric_value(http, "authserver_password_hash_seconds_sum") > 0


async def test_refresh_reuse_detections_are_counted(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    first = (await password_login(http, client)).json()["refresh_token"]
    assert (await refresh(http, client, first)).status_code == 200
    assert_oauth_error(await refresh(http, client, first), 400, "invalid_grant")
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1


async def test_http_latency_is_observed_per_route_with_bounded_labels(
    http: httpx.AsyncClient,
) -> None:
    await http.get("/healthz")
    await http.get("/healthz")
    for index in range(3):
        await http.get(f"/probe-{index}")  # a scanner: must not create a series per path
    await http.request("BREW", "/healthz")  # an invented method

    labels = {"method": "GET", "path": "/healthz", "status": "200"}
    assert await metric_value(http, HTTP_COUNT, labels) == 2
    other = {"method": "GET", "path": "other", "status": "404"}
    assert await metric_value(http, HTTP_COUNT, other) == 3
    text = (await http.get("/metrics")).text
    assert "probe-" not in text
    assert "BREW" not in text
    paths = {labels["path"] for labels, _ in samples(text, HTTP_COUNT)}
    assert paths <= {"/healthz", "/metrics", "other"}


async def test_metrics_port_0_serves_metrics_on_the_main_port(
    http: httpx.AsyncClient, services: Services
) -> None:
    assert services.settings.metrics_port == 0  # tests/conftest.py's settings
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert samples(response.text, "authserver_database_pool_size")


@pytest.mark.parametrize("settings_overrides", [{"metrics_enabled": False}], indirect=True)
async def test_metrics_can_be_turned_off(http: httpx.AsyncClient) -> None:
    assert_oauth_error(await http.get("/metrics"), 404, "not_found")
    assert (await http.get("/healthz")).status_code == 200


METRICS_PORT = free_port()


@pytest.mark.parametrize("settings_overrides", [{"metrics_port": METRICS_PORT}], indirect=True)
async def test_a_separate_metrics_port_serves_metrics_and_the_main_port_does_not(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    assert services.settings.metrics_host == "127.0.0.1"
    assert_oauth_error(await http.get("/metrics"), 404, "not_found")
    client = await make_client()
    await make_user()
    assert (await password_login(http, client)).status_code == 200

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{METRICS_PORT}") as scraper:
        response = await scraper.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    requests = samples(response.text, "authserver_token_requests_total")
    assert ({"grant": "password", "outcome": "success"}, 1.0) in requests
    assert samples(response.text, "authserver_database_pool_size")  # refreshed by the sampler
    assert samples(response.text, "authserver_signing_key_age_seconds")


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_the_metrics_port_lives_and_dies_with_the_app(settings: Settings) -> None:
    port = free_port()
    app = create_app(settings.model_copy(update={"metrics_port": port}))
    assert not port_open(port)
    async with LifespanManager(app):
        assert await asyncio.to_thread(port_open, port)
    assert not await asyncio.to_thread(port_open, port)
