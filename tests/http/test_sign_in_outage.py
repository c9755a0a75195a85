"""Sign-in through /authorize while the database is away (PostgreSQL only, through the TCP proxy
of test_database_outage.py): the pages answer 503 with Retry-After, never a 500, and everything
works again once the database is back, without a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from authserver import admin
from authserver.services import Services
from tests.conftest import PASSWORD, RegisteredClient
from tests.http.test_database_outage import (  # noqa: F401  (fixtures)
    TcpProxy,
    proxied_app,
    proxied_http,
    proxy,
)
from tests.sign_in import REDIRECT_URI, answer, authorize_params, pkce, sign_in

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
async def web_app(proxied_app: Starlette) -> RegisteredClient:  # noqa: F811
    svc: Services = proxied_app.state.services
    now = datetime.now(UTC)
    created = await admin.create_client(
        svc.db,
        svc.settings,
        name="Example App",
        public=True,
        grant_types=("authorization_code",),
        scopes=("read",),
        audiences=(),
        can_introspect=False,
        access_token_ttl=None,
        now=now,
        redirect_uris=(REDIRECT_URI,),
    )
    await admin.create_user(svc.db, svc.passwords, "alice", PASSWORD, now)
    return RegisteredClient(created.client.client_id, None)


def assert_unavailable_page(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-frame-options"] == "DENY"
    assert "Sign-in is unavailable right now" in response.text


async def test_the_pages_answer_503_while_the_database_is_away_and_recover(
    proxied_http: httpx.AsyncClient,  # noqa: F811
    proxy: TcpProxy,  # noqa: F811
    web_app: RegisteredClient,
) -> None:
    http = proxied_http
    pending_page = await http.get("/authorize", params=authorize_params(web_app, pkce()))
    assert pending_page.status_code == 200
    signed_in_page = await http.get("/authorize", params=authorize_params(web_app, pkce()))
    assert answer(await sign_in(http, signed_in_page))["code"]

    await proxy.stop()
    assert_unavailable_page(await http.get("/authorize", params=authorize_params(web_app, pkce())))
    assert_unavailable_page(await sign_in(http, pending_page))
    assert_unavailable_page(await http.get("/logout"))

    await proxy.start()
    reused = await http.get("/authorize", params=authorize_params(web_app, pkce()))
    assert answer(reused)["code"]
