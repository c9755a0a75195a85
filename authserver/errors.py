"""The one error type: an OAuth 2.0 error response (RFC 6749 §5.2, RFC 7009, RFC 7662).

Descriptions are fixed strings chosen by the code, never built from request input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="authserver"'}


@dataclass
class OAuthError(Exception):
    error: str
    description: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str = "Client authentication failed.") -> OAuthError:
    return OAuthError("invalid_client", description, 401, dict(BASIC_CHALLENGE))


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


def unauthorized_client(description: str) -> OAuthError:
    return OAuthError("unauthorized_client", description)


def too_many_attempts(retry_after: int) -> OAuthError:
    return OAuthError(
        "invalid_request",
        "Too many failed login attempts; try again later.",
        429,
        {"Retry-After": str(max(1, retry_after))},
    )


def temporarily_unavailable(retry_after: int = 5) -> OAuthError:
    return OAuthError(
        "temporarily_unavailable",
        "The service is temporarily unavailable; try again later.",
        503,
        {"Retry-After": str(retry_after)},
    )
