"""The pages as a person sees them, in a real Chromium with JavaScript off, on a phone-sized and
a desktop screen: nothing scrolls sideways, every input has its label, the buttons are on
screen, the app's name shows, errors are announced, and the keyboard focus is visible.
Screenshots land in the artifacts folder (tests/browser/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from authserver.http.pages import PAGE_NAMES
from tests.browser.conftest import CHROMIUM_ARGS, serve
from tests.pages.sample_app import HOSTILE_NAME, LONG_NAME, sample_app

PAGES = [name.removesuffix(".html").replace("_", "-") for name in PAGE_NAMES]


@pytest.fixture(scope="module")
def pages_url() -> Iterator[str]:
    with serve(sample_app()) as url:
        yield url


async def no_sideways_scroll(page: Page) -> bool:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width <= page.viewport_size["width"]  # type: ignore[index]


async def fully_on_screen_horizontally(page: Page, selector: str) -> None:
    box = await page.locator(selector).first.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= page.viewport_size["width"]  # type: ignore[index]


@pytest.mark.parametrize("name", PAGES)
async def test_each_page_fits_the_screen_and_is_saved_for_review(
    page: Page, pages_url: str, screen: str, name: str, artifacts_dir: Path
) -> None:
    response = await page.goto(f"{pages_url}/page/{name}?client_name={LONG_NAME}")
    assert response is not None
    assert response.headers["x-frame-options"] == "DENY"
    await expect(page.locator("h1")).to_be_visible()
    assert await no_sideways_scroll(page)
    for button in await page.get_by_role("button").all():
        await expect(button).to_be_visible()
    await page.screenshot(path=artifacts_dir / f"{name}-{screen}.png", full_page=True)


async def test_sign_in_shows_the_app_and_labelled_fields(
    page: Page, pages_url: str, screen: str
) -> None:
    await page.goto(f"{pages_url}/page/sign-in")
    await expect(page.get_by_text(HOSTILE_NAME)).to_be_visible()  # shown as text, not run
    username = page.get_by_label("Username")
    password = page.get_by_label("Password")
    await expect(username).to_be_editable()
    await expect(password).to_have_attribute("type", "password")
    await expect(username).to_be_focused()  # autofocus: type straight away
    await username.fill("alice")
    await password.fill("secret")
    sign_in = page.get_by_role("button", name="Sign in")
    await expect(sign_in).to_be_in_viewport()
    await fully_on_screen_horizontally(page, "button")


@pytest.mark.parametrize(
    ("error", "message"),
    [("invalid_credentials", "Wrong username or password"), ("locked", "Too many failed")],
)
async def test_a_failed_sign_in_is_announced_and_keeps_the_username(
    page: Page, pages_url: str, screen: str, error: str, message: str, artifacts_dir: Path
) -> None:
    await page.goto(f"{pages_url}/page/sign-in?error={error}")
    await expect(page.get_by_role("alert")).to_contain_text(message)
    await expect(page.get_by_label("Username")).to_have_value("alice")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.screenshot(path=artifacts_dir / f"sign-in-{error}-{screen}.png", full_page=True)


async def test_consent_lists_the_scopes_in_words_with_both_answers_on_screen(
    page: Page, pages_url: str, screen: str
) -> None:
    await page.goto(f"{pages_url}/page/consent")
    await expect(page.get_by_text("See your profile")).to_be_visible()
    await expect(page.get_by_text("Change your orders")).to_be_visible()
    await expect(page.get_by_text("<b>bold</b>")).to_be_visible()  # the token, as text
    for name in ("Allow", "Deny"):
        await expect(page.get_by_role("button", name=name)).to_be_in_viewport()
    await fully_on_screen_horizontally(page, "button >> nth=1")


async def test_keyboard_focus_is_visible(page: Page, pages_url: str, screen: str) -> None:
    await page.goto(f"{pages_url}/page/logout")
    await page.keyboard.press("Tab")
    button = page.get_by_role("button", name="Sign out")
    await expect(button).to_be_focused()
    await expect(button).to_have_css("outline-style", "solid")


async def test_the_form_reaches_the_app_only_when_the_policy_names_its_origin(
    browser: Browser,
) -> None:
    """Chromium applies CSP form-action to the redirect after a POST: the sign-in page must list
    the app's origin (authserver.authorize.response.form_action_source), or the person is
    stuck on the last step. Two servers, two origins, as in real life."""
    with serve(sample_app()) as app_url:
        landing = f"{app_url}/landed"
        allowed = sample_app(redirect_to=landing, redirect_sources=(app_url,))
        strict = sample_app(redirect_to=landing)
        with serve(allowed) as allowed_url, serve(strict) as strict_url:
            context = await browser.new_context(java_script_enabled=False)
            try:
                page = await context.new_page()
                await sign_in_on(page, f"{allowed_url}/page/sign-in")
                await expect(page).to_have_url(landing)

                await sign_in_on(page, f"{strict_url}/page/sign-in", submit=False)
                async with page.expect_event(
                    "console", lambda message: "form-action" in message.text
                ):
                    await page.get_by_role("button", name="Sign in").click()
                assert not page.url.startswith(app_url)
            finally:
                await context.close()


async def sign_in_on(page: Page, url: str, *, submit: bool = True) -> None:
    await page.goto(url)
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill("secret")
    if submit:
        await page.get_by_role("button", name="Sign in").click()


def test_chromium_runs_with_the_flags_this_machine_needs() -> None:
    assert "--disable-background-networking" in CHROMIUM_ARGS
    assert not any(arg.startswith("--user-data-dir") for arg in CHROMIUM_ARGS)
