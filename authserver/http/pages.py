"""The HTML pages of /authorize and /logout: Jinja2 templates (Starlette's `Jinja2Templates`),
always sent with SPEC's security headers.

Templates are looked up first in TEMPLATES_DIR (an operator's folder, when set), then among the
built-in ones under `authserver/templates/`, so an operator replaces any page by giving a file
of the same name; `builtin/NAME` always names the built-in one (an operator's base.html can
extend "builtin/base.html" and change a single block). Autoescaping is on for every template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.templating import Jinja2Templates

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STYLESHEET_URL = "/static/authserver.css"
STYLESHEET_MAX_AGE = 86_400  # one day: a new release's stylesheet reaches browsers within it
PAGE_NAMES = ("sign_in.html", "consent.html", "logout.html", "logged_out.html", "error.html")


def content_security_policy(form_action: Sequence[str] = ()) -> str:
    """A policy that allows the one stylesheet and forms posting to this server.

    `form_action` adds the sources a form's POST may be redirected to (the app's redirect URI,
    `authserver.authorize.response.form_action_source`): Chromium applies form-action to the
    redirect that follows a POST, so without it the sign-in would stop at the last step.
    """
    sources = " ".join(("'self'", *form_action))
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {sources}; frame-ancestors 'none'; base-uri 'none'"
    )


def security_headers(form_action: Sequence[str] = ()) -> dict[str, str]:
    """SPEC "Every HTML page": no caching, no framing, no referrer; nothing sniffed."""
    return {
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Content-Security-Policy": content_security_policy(form_action),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


@dataclass(frozen=True)
class Pages:
    """Renders the pages; one per app (built by `create_pages`, kept on the app's services)."""

    templates: Jinja2Templates

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        form_action: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The page `name` with `context`, `status` and the security headers (plus `headers`,
        e.g. Set-Cookie or Retry-After)."""
        values = {"stylesheet_url": STYLESHEET_URL, **(context or {})}
        all_headers = {**security_headers(form_action), **(headers or {})}
        return self.templates.TemplateResponse(
            request, name, values, status_code=status, headers=all_headers
        )


def create_pages(templates_dir: Path | None) -> Pages:
    """Pages from TEMPLATES_DIR (when set), falling back to the built-in templates by name."""
    builtin = jinja2.FileSystemLoader(BUILTIN_TEMPLATES)
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders += [builtin, jinja2.PrefixLoader({"builtin": builtin})]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Pages(Jinja2Templates(env=env))


async def stylesheet_endpoint(_request: Request) -> Response:
    """GET /static/authserver.css: the one stylesheet of the built-in pages (the only static
    file; an operator's templates may link their own). Cached by browsers for a day."""
    return FileResponse(
        STATIC_DIR / "authserver.css",
        media_type="text/css",
        headers={
            "Cache-Control": f"public, max-age={STYLESHEET_MAX_AGE}",
            "X-Content-Type-Options": "nosniff",
        },
    )
