"""Issue 12 §8, as a person would do it: a real headless Chromium (JavaScript off) goes from the
example web app (examples/webapp.py) to authserver's sign-in page, signs in, approves the app on
the consent page, lands back in the app, and the app calls the example resource server
(examples/resource_server.py) with the access token. Then a second visit reuses the login
session (no password), and signing out at /logout makes the next visit ask for it again.

Everything runs as it would for a user of the README: `authserver serve`, its CLI to create the
user and the client, and `uvicorn --app-dir examples …` for the two examples, each a process on
its own port of 127.0.0.1. Screenshots of the real pages, at phone and desktop widths, land in
the artifacts folder (tests/browser/conftest.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.e2e.conftest import (
    AUTHSERVER,
    Server,
    assert_ok,
    clean_env,
    free_port,
    run_authserver,
    stop_server,
    wait_until_ready,
)

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
UVICORN = str(Path(sys.executable).with_name("uvicorn"))
PASSWORD = "correct horse battery staple"
START_TIMEOUT = 30.0
USERS = {"desktop": "alice", "phone": "bob"}  # one per screen: each approves the app once


@dataclass(frozen=True)
class Stack:
    issuer: str
    app: str
    resource: str
    client_id: str


def start(
    args: list[str], env: Mapping[str, str], log: Path, cwd: Path = REPOSITORY
) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited before listening:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"not listening within {START_TIMEOUT} s:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("authserver-home")
    logs = tmp_path_factory.mktemp("logs")
    as_port, app_port, resource_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{as_port}"
    app = f"http://127.0.0.1:{app_port}"
    resource = f"http://127.0.0.1:{resource_port}"
    env = {"AUTHSERVER_ISSUER": issuer}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        log = logs / "serve.log"
        # `serve` runs in `home` (its SQLite database and KEK under it), the CLI below too.
        serve = start([AUTHSERVER, "serve", "--port", str(as_port)], env, log, cwd=home)
        processes.append(serve)
        wait_until_ready(Server(issuer, as_port, serve, log))
        for name in USERS.values():
            created = run_authserver(
                ["users", "create", name, "--password-stdin"], home, env=env, stdin=PASSWORD
            )
            assert_ok(created)
        registered = run_authserver(
            [
                *("clients", "create", "Example Web App", "--public", "--json", "--consent"),
                *("--grant", "authorization_code", "--grant", "refresh_token"),
                *("--scope", "profile:read", "--redirect-uri", f"{app}/callback"),
            ],
            home,
            env=env,
        )
        assert_ok(registered)
        client_id = json.loads(registered.stdout)["client_id"]
        examples = [
            ("resource_server:app", resource_port, {"RESOURCE_ISSUER": issuer}),
            (
                "webapp:app",
                app_port,
                {
                    "WEBAPP_CLIENT_ID": client_id,
                    "WEBAPP_ISSUER": issuer,
                    "WEBAPP_REDIRECT_URI": f"{app}/callback",
                    "WEBAPP_RESOURCE_URL": f"{resource}/profile",
                },
            ),
        ]
        for target, port, example_env in examples:
            log = logs / f"{target.split(':')[0]}.log"
            command = [UVICORN, "--app-dir", "examples", target, "--port", str(port)]
            processes.append(start(command, example_env, log))
            wait_for_port(processes[-1], port, log)
        yield Stack(issuer, app, resource, client_id)
    finally:
        for process in processes:
            stop_server(process)


async def test_sign_in_consent_and_an_api_call_then_reuse_then_sign_out(
    context: BrowserContext, stack: Stack, screen: str, artifacts_dir: Path
) -> None:
    page = await context.new_page()
    username = USERS[screen]

    # The app sends the browser to authserver's sign-in page.
    await page.goto(f"{stack.app}/")
    await page.get_by_role("link", name="Sign in").click()
    assert page.url.startswith(f"{stack.issuer}/authorize?")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_text("Example Web App")).to_be_visible()
    await shot(page, artifacts_dir, f"real-sign-in-{screen}")

    # A wrong password first: the message, the username kept, still on the page.
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    await expect(page.get_by_label("Username")).to_have_value(username)

    # The right one: the consent page, in words.
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Allow access?")).to_be_visible()
    await expect(page.get_by_text("See your profile")).to_be_visible()
    await shot(page, artifacts_dir, f"real-consent-{screen}")

    # Allow: back in the app (CSP form-action let the redirect through), then the API call.
    await page.get_by_role("button", name="Allow").click()
    await expect(page).to_have_url(f"{stack.app}/")
    await expect(page.get_by_text("You are signed in.")).to_be_visible()
    await page.get_by_role("link", name="Call the API").click()
    await expect(page.get_by_role("heading", name="API answer")).to_be_visible()
    answer = json.loads(await page.locator("pre").inner_text())
    assert answer["client_id"] == stack.client_id
    assert answer["scope"] == "profile:read"
    await shot(page, artifacts_dir, f"example-api-answer-{screen}", ours=False)

    # Signed out of the app only: the login session at authserver is reused, no page at all.
    await page.goto(f"{stack.app}/")
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("link", name="Sign in").click()
    await expect(page).to_have_url(f"{stack.app}/")
    await expect(page.get_by_text("You are signed in.")).to_be_visible()

    # Signing out at authserver (confirmation page, then its form) ends that session.
    await page.goto(f"{stack.issuer}/logout")
    await expect(page.get_by_text(f"You are signed in as {username}")).to_be_visible()
    await shot(page, artifacts_dir, f"real-logout-{screen}")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    await page.goto(f"{stack.app}/")
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("link", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.url.startswith(f"{stack.issuer}/authorize?")


async def test_an_unregistered_redirect_uri_shows_the_error_page_in_the_browser(
    page: Page, stack: Stack, screen: str, artifacts_dir: Path
) -> None:
    await page.goto(
        f"{stack.issuer}/authorize?response_type=code&client_id={stack.client_id}"
        "&redirect_uri=https%3A%2F%2Fevil.example%2F&code_challenge_method=S256"
        "&code_challenge=" + "a" * 43
    )
    await expect(page.get_by_role("heading", name="This sign-in link is not valid")).to_be_visible()
    assert page.url.startswith(stack.issuer)
    await shot(page, artifacts_dir, f"real-error-{screen}")


async def shot(page: Page, artifacts_dir: Path, name: str, *, ours: bool = True) -> None:
    """A screenshot; authserver's own pages must not scroll sideways (the example app's may)."""
    if ours:
        width: int = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"]  # type: ignore[index]
    await page.screenshot(path=artifacts_dir / f"{name}.png", full_page=True)
