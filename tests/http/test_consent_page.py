"""The consent page (SPEC "Consent page"), for clients registered with --consent, over HTTP on
both backends: the scopes in words, allow and deny, approvals remembered per user, client and
scopes (a wider request asks again), CSRF, and prompt=none."""

from __future__ import annotations

import httpx

from authserver.services import Services
from authserver.store import audit as audit_store
from tests.conftest import ISSUER
from tests.sign_in import (
    MakeClient,
    MakeUser,
    answer,
    authorize_params,
    hidden_inputs,
    new_browser,
    pkce,
    row_counts,
    sign_in,
    submit,
    web_client,
)

SCOPES = ("profile:read", "orders:write")


async def consent_page(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, **extra: str | None
) -> httpx.Response:
    await make_user()
    client = await web_client(make_client, consent=True, scopes=SCOPES)
    page = await http.get("/authorize", params=authorize_params(client, pkce(), **extra))
    return await sign_in(http, page)


async def test_after_sign_in_a_consent_client_shows_its_name_and_scopes_in_words(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    page = await consent_page(http, make_client, make_user)
    assert page.status_code == 200, page.text
    assert "authserver_session=" in page.headers["set-cookie"]  # signed in already
    assert "Example App" in page.text
    assert "See your profile" in page.text
    assert "Change your orders" in page.text
    assert '<code class="scope">profile:read</code>' in page.text
    assert 'name="decision" value="allow"' in page.text
    assert 'name="decision" value="deny"' in page.text
    assert "https://app.example" in page.text  # where the person goes back to
    assert "form-action 'self' https://app.example;" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_allow_answers_with_a_code_and_is_remembered(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    page = await consent_page(http, make_client, make_user)
    values = answer(await submit(http, page, decision="allow"))
    assert (values["state"], values["iss"]) == ("af0ifjsldkj", ISSUER)
    assert "code" in values
    events = [e.event for e in await audit_store.latest(services.db, 10)]
    assert "consent.granted" in events
    assert "code.issued" in events


async def test_a_remembered_approval_is_not_asked_again_but_a_wider_request_is(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await web_client(make_client, consent=True, scopes=SCOPES)
    first = await http.get(
        "/authorize", params=authorize_params(client, pkce(), scope="profile:read")
    )
    answer(await submit(http, await sign_in(http, first), decision="allow"))
    same = await http.get(
        "/authorize", params=authorize_params(client, pkce(), scope="profile:read")
    )
    assert "code" in answer(same)  # no page
    wider = await http.get("/authorize", params=authorize_params(client, pkce()))
    assert wider.status_code == 200
    assert "Change your orders" in wider.text
    answer(await submit(http, wider, decision="allow"))
    everything = await http.get("/authorize", params=authorize_params(client, pkce()))
    assert "code" in answer(everything)


async def test_deny_answers_access_denied_and_remembers_nothing(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    page = await consent_page(http, make_client, make_user)
    values = answer(await submit(http, page, decision="deny"))
    assert values["error"] == "access_denied"
    assert (values["state"], values["iss"]) == ("af0ifjsldkj", ISSUER)
    counts = await row_counts(services)
    assert (counts["consents"], counts["authorization_codes"]) == (0, 0)
    assert "consent.denied" in [e.event for e in await audit_store.latest(services.db, 10)]


async def test_prompt_none_is_consent_required_while_consent_is_missing(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await web_client(make_client, consent=True, scopes=SCOPES)
    page = await http.get("/authorize", params=authorize_params(client, pkce()))
    assert (await sign_in(http, page)).status_code == 200  # signed in, consent page shown
    silent = await http.get("/authorize", params=authorize_params(client, pkce(), prompt="none"))
    assert answer(silent)["error"] == "consent_required"


async def test_a_consent_post_without_the_pages_csrf_token_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    page = await consent_page(http, make_client, make_user)
    fields = {**hidden_inputs(page), "decision": "allow"}
    before = await row_counts(services)
    refused = await http.post("/authorize/consent", data={**fields, "csrf_token": "forged"})
    assert refused.status_code == 400
    async with new_browser(http) as attacker:
        assert (await attacker.post("/authorize/consent", data=fields)).status_code == 400
    assert await row_counts(services) == before
    assert "code" in answer(await submit(http, page, decision="allow"))  # still answerable


async def test_a_decision_after_signing_out_is_refused(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    page = await consent_page(http, make_client, make_user)
    logout = await http.get("/logout")
    await submit(http, logout)
    refused = await submit(http, page, decision="allow")
    assert refused.status_code == 400
    assert "no longer signed in" in refused.text
    assert (await row_counts(services))["authorization_codes"] == 0


async def test_a_double_click_on_allow_answers_once(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    page = await consent_page(http, make_client, make_user)
    assert (await submit(http, page, decision="allow")).status_code == 303
    again = await submit(http, page, decision="allow")
    assert again.status_code == 400
    assert "expired" in again.text


async def test_a_decision_other_than_allow_or_deny_is_refused(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    page = await consent_page(http, make_client, make_user)
    assert (await submit(http, page, decision="maybe")).status_code == 400
    assert (await submit(http, page)).status_code == 400
