"""A tiny Starlette app that serves every page with sample (and hostile) values, plus the
stylesheet: the page tests look at each template in every state (an error, a lock, a hostile
client name) without driving the real endpoints there, and the browser test of CSP
form-action needs two origins of its own. The real endpoints are tested in tests/http and
tests/browser/test_sign_in_end_to_end.py.

`/page/sign-in?error=locked`, `/page/consent`, ... render one page each; every form posts to
`/submit`, which stands for the POST that ends in a 303 to the app (`redirect_to`), so a browser
test can check that the page's Content-Security-Policy lets that redirect through.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from authserver.authorize.wording import describe_scopes
from authserver.http.pages import STATIC_DIR, Pages, create_pages

HOSTILE_NAME = "<script>alert('x')</script> & \"Bob's\" App"
HOSTILE_SCOPE = "<b>bold</b>"
LONG_NAME = "The Extraordinarily Long Name Of A Customer Relationship Management Suite"


def sample_contexts(client_name: str) -> dict[str, dict[str, object]]:
    form = {"authorization_request": "h4ndle", "csrf_token": "t0ken"}
    return {
        "sign_in.html": {"client_name": client_name, "form_action": "/submit", **form},
        "consent.html": {
            "client_name": client_name,
            "scopes": describe_scopes(
                ["profile:read", "orders.write", "offline_access", HOSTILE_SCOPE]
            ),
            "username": "alice",
            "redirect_origin": "https://app.example",
            "form_action": "/submit",
            **form,
        },
        "logout.html": {"username": "alice", "form_action": "/submit", "csrf_token": "t0ken"},
        "logged_out.html": {},
        "error.html": {
            "title": "This sign-in link is not valid",
            "message": "The app that sent you here is not registered with this server.",
        },
    }


def sample_app(
    pages: Pages | None = None,
    *,
    redirect_to: str = "/landed",
    redirect_sources: tuple[str, ...] = (),
) -> Starlette:
    """Serve the pages; `redirect_sources` go into each page's CSP form-action."""
    pages = pages or create_pages(None)

    async def page(request: Request) -> Response:
        name = request.path_params["name"].replace("-", "_") + ".html"
        client_name = request.query_params.get("client_name", HOSTILE_NAME)
        context = dict(sample_contexts(client_name)[name])
        if request.query_params.get("error"):
            context.update(error=request.query_params["error"], username="alice", retry_minutes=15)
        status = 400 if name == "error.html" else 200
        return pages.render(request, name, context, status=status, form_action=redirect_sources)

    async def submit(request: Request) -> Response:
        return RedirectResponse(redirect_to, status_code=303)

    async def landed(request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>landed</title><h1>landed</h1>")

    return Starlette(
        routes=[
            Route("/page/{name}", page),
            Route("/submit", submit, methods=["POST"]),
            Route("/landed", landed),
            Mount("/static", StaticFiles(directory=Path(STATIC_DIR)), name="static"),
        ]
    )
