"""The grants a client may be registered for (a module of its own, with no imports, so that the
CLI can offer them as choices without loading the settings)."""

from __future__ import annotations

GRANT_TYPES = ("password", "refresh_token", "client_credentials", "authorization_code")
DEFAULT_GRANT_TYPES = ("password", "refresh_token")
