"""A real headless Chromium for the page tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser download cannot work here (no internet), so it drives the system
browser through `executable_path`. `make test` installs it when missing (`make browser`). A
missing browser fails the run; AUTHSERVER_TEST_BROWSER=off skips these tests on a laptop without
one, and is refused in CI. AUTHSERVER_TEST_BROWSER may also name another Chromium binary.

Screenshots go to $AUTHSERVER_TEST_ARTIFACTS (default var/test-artifacts/), one file per page and
screen width, for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from starlette.types import ASGIApp

BROWSER_ENV = "AUTHSERVER_TEST_BROWSER"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps calling Google's services, which this machine's
# closed network refuses by the dozen; Playwright gives every launch a fresh profile directory.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 800}
SCREENS = {"phone": PHONE, "desktop": DESKTOP}
SERVER_START_TIMEOUT = 30.0  # seconds; the loop below ends as soon as the server listens


def chromium_path() -> str | None:
    """The browser to drive, or None when the developer switched the browser tests off."""
    chosen = os.environ.get(BROWSER_ENV, DEFAULT_CHROMIUM)
    if chosen == "off":
        if os.environ.get("CI") == "true":
            raise pytest.UsageError(f"{BROWSER_ENV}=off is not allowed in CI")
        return None
    found = shutil.which(chosen)
    if found is None:
        pytest.fail(
            f"no Chromium at {chosen}: run `make browser` (apt-get install -y chromium), "
            f"or set {BROWSER_ENV} to a Chromium binary (or to off on a laptop)"
        )
    return found


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("AUTHSERVER_TEST_ARTIFACTS", "var/test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.skip(f"{BROWSER_ENV}=off")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(params=sorted(SCREENS))
async def screen(request: pytest.FixtureRequest) -> str:
    """Run the test once on a phone-sized screen and once on a desktop one."""
    return str(request.param)


@pytest.fixture
async def context(browser: Browser, screen: str) -> AsyncIterator[BrowserContext]:
    created = await browser.new_context(
        viewport=SCREENS[screen],  # type: ignore[arg-type]
        is_mobile=screen == "phone",
        has_touch=screen == "phone",
        device_scale_factor=2 if screen == "phone" else 1,
        java_script_enabled=False,  # the pages need none (Playwright's own checks still run)
    )
    created.set_default_timeout(10_000)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


def free_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    sock = free_port()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            pytest.fail("the test page server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_START_TIMEOUT)
        sock.close()
