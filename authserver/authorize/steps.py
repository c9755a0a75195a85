"""What the person must do before the app gets a code (SPEC "GET /authorize": prompt, sign-in
page, consent page), and the consent remembered per user and client.

Keycloak and Hydra decide the same way: sign in first when there is no live login session (or
the app sent prompt=login), then ask for consent when the client needs it and the remembered
approval does not cover the request; prompt=none turns each page into an error.
"""

from __future__ import annotations

from typing import Literal

from authserver.authorize.request import AuthorizationError, AuthorizationRequest

Step = Literal["sign_in", "consent", "issue_code"]
# "none": no live login session in this browser; "live": one from before this request;
# "fresh": the person signed in while answering this very request (prompt=login is satisfied).
SessionState = Literal["none", "live", "fresh"]


def next_step(
    request: AuthorizationRequest, *, session: SessionState, consent_needed: bool
) -> Step | AuthorizationError:
    """The page to show next, "issue_code", or the error prompt=none calls for (redirected)."""
    if session == "none" or (session == "live" and request.prompt == "login"):
        if request.prompt == "none":
            return _redirected_error(request, "login_required", "The user is not signed in.")
        return "sign_in"
    if consent_needed:
        if request.prompt == "none":
            return _redirected_error(
                request, "consent_required", "The user has not approved this app's access."
            )
        return "consent"
    return "issue_code"


def consent_needed(client_asks_consent: bool, remembered: str | None, scope: str) -> bool:
    """True when the consent page must be shown: the client was registered with --consent and
    the user has not approved it yet (`remembered` None) or not for every scope of `scope`."""
    if not client_asks_consent:
        return False
    if remembered is None:
        return True
    return not set(scope.split()) <= set(remembered.split())


def widened_consent(remembered: str | None, approved: str) -> str:
    """The scopes to remember after an approval: what was remembered, plus what was approved
    now (Keycloak keeps the union per user and client the same way)."""
    scopes = (remembered or "").split() + approved.split()
    return " ".join(dict.fromkeys(scopes))


def _redirected_error(
    request: AuthorizationRequest, error: str, description: str
) -> AuthorizationError:
    return AuthorizationError(error, description, request.redirect_uri, request.state)
