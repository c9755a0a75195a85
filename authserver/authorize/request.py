"""Validating an authorization request: the query of GET /authorize (RFC 6749 §4.1.1, RFC 7636
§4.3, SPEC "GET /authorize").

RFC 6749 §4.1.2.1 splits the errors in two. Until the client and its redirect URI are known to
be valid, the answer is a page (400) and never a redirect: sending it anywhere would make the
server an open redirector (RFC 9700 §4.11). After that, every error goes back to the app at its
redirect URI. `AuthorizationError.redirect_uri` is None for the first kind.

Descriptions are fixed strings: nothing from the request is echoed (SPEC "Errors").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from authserver.authorize.pkce import is_valid_pkce_value
from authserver.clients.redirect_uris import MAX_LENGTH as MAX_REDIRECT_URI_LENGTH
from authserver.clients.redirect_uris import match_redirect_uri
from authserver.settings import SCOPE_TOKEN

Prompt = Literal["login", "none"]

# The parameters this endpoint reads; others are ignored (RFC 6749 §3.1).
PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
)
MAX_CLIENT_ID_LENGTH = 255
MAX_VALUE_LENGTH = 2048  # state, scope and the rest; a redirect URI has its own limit
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A request that passed every check: what the code will be bound to."""

    client_id: str
    redirect_uri: str  # where the answer goes (a loopback URI keeps the requested port)
    redirect_uri_sent: bool  # RFC 6749 §4.1.3: /token must then repeat it
    scope: str  # space-separated, what will be granted
    state: str | None
    code_challenge: str  # S256
    prompt: Prompt | None


@dataclass(frozen=True, slots=True)
class AuthorizationError:
    """An error answer: a page when `redirect_uri` is None, else a 303 redirect there."""

    error: str  # RFC 6749 §4.1.2.1 code (a page uses it for the log and audit only)
    description: str
    redirect_uri: str | None = None
    state: str | None = None

    @property
    def shown_as_page(self) -> bool:
        return self.redirect_uri is None


class RegisteredClient(Protocol):
    """What validation needs to know of the client (`authserver.models.Client` is one)."""

    @property
    def client_id(self) -> str: ...

    @property
    def grant_types(self) -> frozenset[str]: ...

    @property
    def redirect_uris(self) -> tuple[str, ...]: ...


def requested_client_id(query: Sequence[tuple[str, str]]) -> str | AuthorizationError:
    """The `client_id` to look up, or the page error when there is none to trust."""
    values, repeated = _collect(query)
    if "client_id" in repeated:
        return _page("invalid_request", "The client_id parameter was given more than once.")
    client_id = values.get("client_id")
    if client_id is None:
        return _page("invalid_request", "The request has no client_id: the app sent no name.")
    if len(client_id) > MAX_CLIENT_ID_LENGTH or _CONTROL.search(client_id):
        return _unknown_client()
    return client_id


def validate_authorization_request(
    query: Sequence[tuple[str, str]],
    client: RegisteredClient | None,
    allowed_scopes: Sequence[str],
) -> AuthorizationRequest | AuthorizationError:
    """Check the query of GET /authorize for `client` (None: no such client is registered).

    `query` holds every (name, value) pair in order, blank values included (parse_qsl with
    keep_blank_values); `allowed_scopes` are the scopes this client may be granted (its own,
    limited to SCOPES when the server declares any).
    """
    client_id = requested_client_id(query)
    if isinstance(client_id, AuthorizationError):
        return client_id
    if client is None or client.client_id != client_id:
        return _unknown_client()
    values, repeated = _collect(query)
    redirect_uri = _trusted_redirect_uri(values, repeated, client)
    if isinstance(redirect_uri, AuthorizationError):
        return redirect_uri

    # From here on the redirect URI is trusted: every error goes back to the app.
    state = values.get("state")
    if "state" in repeated or (state is not None and _bad_value(state)):
        description = "The state parameter is repeated, too long or holds control characters."
        return AuthorizationError("invalid_request", description, redirect_uri)

    def fail(error: str, description: str) -> AuthorizationError:
        return AuthorizationError(error, description, redirect_uri, state)

    for name in PARAMETERS:
        if name in repeated:
            return fail("invalid_request", f"The {name} parameter was given more than once.")
        if name in values and _bad_value(values[name]):
            return fail("invalid_request", f"The {name} parameter is too long or malformed.")
    response_type = values.get("response_type")
    if response_type is None:
        return fail("invalid_request", "The response_type parameter is missing.")
    if response_type != "code":
        return fail("unsupported_response_type", "Only response_type=code is supported.")
    if "authorization_code" not in client.grant_types:
        return fail("unauthorized_client", "This client may not use the authorization code grant.")
    problem = _pkce_problem(values.get("code_challenge"), values.get("code_challenge_method"))
    if problem:
        return fail("invalid_request", problem)
    prompt, problem = _prompt(values.get("prompt"))
    if problem:
        return fail("invalid_request", problem)
    scope = _granted_scope(values.get("scope"), allowed_scopes)
    if scope is None:
        return fail("invalid_scope", "The requested scope is malformed or not allowed.")
    return AuthorizationRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        redirect_uri_sent="redirect_uri" in values,
        scope=scope,
        state=state,
        code_challenge=values["code_challenge"],
        prompt=prompt,
    )


def _collect(query: Sequence[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """The known parameters with a value, and the names given more than once.

    RFC 6749 §3.1: a parameter without a value counts as omitted; none may appear twice.
    """
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in query:
        if name not in PARAMETERS or value == "":
            continue
        if name in values:
            repeated.add(name)
        values[name] = value
    return values, repeated


def _trusted_redirect_uri(
    values: dict[str, str], repeated: set[str], client: RegisteredClient
) -> str | AuthorizationError:
    if "redirect_uri" in repeated:
        return _page("invalid_request", "The redirect_uri parameter was given more than once.")
    requested = values.get("redirect_uri")
    if requested is not None and (
        len(requested) > MAX_REDIRECT_URI_LENGTH or _CONTROL.search(requested)
    ):
        return _page("invalid_request", "The redirect_uri is not one registered for this app.")
    target = match_redirect_uri(requested, client.redirect_uris)
    if target is not None:
        return target
    if requested is None:
        return _page(
            "invalid_request",
            "The request has no redirect_uri, and this app has more than one registered (or "
            "none): it must say which one to use.",
        )
    return _page("invalid_request", "The redirect_uri is not one registered for this app.")


def _bad_value(value: str) -> bool:
    return len(value) > MAX_VALUE_LENGTH or _CONTROL.search(value) is not None


def _pkce_problem(challenge: str | None, method: str | None) -> str | None:
    """RFC 7636 §4.4.1: a missing or unsupported challenge is invalid_request."""
    if challenge is None:
        return "The code_challenge parameter is required (PKCE, RFC 7636)."
    if method is None:
        return "The code_challenge_method parameter is required and must be S256."
    if method != "S256":
        return "Only code_challenge_method=S256 is supported."
    if not is_valid_pkce_value(challenge):
        return "The code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~."
    return None


def _prompt(value: str | None) -> tuple[Prompt | None, str | None]:
    """(prompt, None), or (None, what is wrong). OIDC allows a space-separated list."""
    if value is None:
        return None, None
    prompts = set(value.split(" "))
    if not prompts <= {"login", "none"}:
        return None, "The prompt parameter may be login or none."
    if "none" in prompts:
        if len(prompts) > 1:
            return None, "prompt=none cannot be combined with another value."
        return "none", None
    return "login", None


def _granted_scope(requested: str | None, allowed: Sequence[str]) -> str | None:
    """SPEC: no `scope` means every allowed scope; else a subset of them (RFC 6749 §3.3)."""
    if requested is None:
        return " ".join(allowed)
    tokens = requested.split(" ")
    if not all(SCOPE_TOKEN.match(token) for token in tokens):
        return None
    if not set(tokens) <= set(allowed):
        return None
    return " ".join(dict.fromkeys(tokens))


def _page(error: str, description: str) -> AuthorizationError:
    return AuthorizationError(error, description)


def _unknown_client() -> AuthorizationError:
    return _page("invalid_client", "The app that sent you here is not registered with this server.")
