"""Scopes in words an end user understands, for the consent page (SPEC: "lists ... the requested
scopes").

Precedence: the operator's own description of a scope (the proposed SCOPE_DESCRIPTIONS setting,
passed in as `descriptions`), then the common names below, then the `resource:action` shapes
APIs use (`profile:read`, Auth0's `read:orders`, Google's and Azure's `orders.read`), and last
"Use the permission", which the page follows with the scope's own name: no scope is ever hidden
from the person, and none is described as something it is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COMMON_SCOPES = {
    "openid": "Know who you are on this server (your user ID)",
    "profile": "See your basic profile",
    "email": "See your email address",
    "offline_access": "Stay connected to your account when you are not using the app",
    "read": "See your data",
    "write": "Change your data",
}
# action -> sentence about a resource
ACTIONS = {
    "read": "See your {}",
    "view": "See your {}",
    "write": "Change your {}",
    "edit": "Change your {}",
    "update": "Change your {}",
    "create": "Add new {}",
    "delete": "Delete your {}",
    "manage": "Manage your {}",
    "admin": "Manage your {}",
}
FALLBACK = "Use the permission"  # the page shows the scope token right after it
_SHAPE = re.compile(r"([a-z][a-z0-9_\-]*)[:.]([a-z][a-z0-9_\-]*)")


@dataclass(frozen=True, slots=True)
class ScopeWording:
    scope: str  # the scope token, shown small next to the words
    text: str  # the words a person reads


def describe_scopes(
    scopes: Sequence[str], descriptions: Mapping[str, str] | None = None
) -> list[ScopeWording]:
    """Each scope with its words, in the order requested."""
    return [ScopeWording(scope, describe_scope(scope, descriptions)) for scope in scopes]


def describe_scope(scope: str, descriptions: Mapping[str, str] | None = None) -> str:
    if descriptions and scope in descriptions:
        return descriptions[scope]
    if scope in COMMON_SCOPES:
        return COMMON_SCOPES[scope]
    shaped = _SHAPE.fullmatch(scope.lower())
    if shaped:
        first, second = shaped.groups()
        if second in ACTIONS:
            return ACTIONS[second].format(_words(first))
        if first in ACTIONS:
            return ACTIONS[first].format(_words(second))
    return FALLBACK


def _words(name: str) -> str:
    return name.replace("_", " ").replace("-", " ")
