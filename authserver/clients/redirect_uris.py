"""Redirect URIs: what may be registered for a client, and which registered URI a request means.

Registration (SPEC "GET /authorize", RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1): absolute, no
fragment, no user-info, and one of
- `https://host[:port]/...` with a lower-case host;
- `http://127.0.0.1[:port]/...` or `http://[::1][:port]/...` (loopback, RFC 8252 §7.3). `localhost`
  is refused: RFC 8252 §8.3 says it is NOT RECOMMENDED (a name can resolve off the machine), and
  SPEC's loopback rule names only the IP literals;
- a private-use scheme named after a reverse domain, `com.example.app:/cb` (RFC 8252 §7.1; the dot
  requirement also keeps out `javascript:`, `data:`, `file:` and their kind).
Paths may not hold dot-segments or percent-encoded `.`, `/`, `\\` or control characters (the
tricks behind Keycloak's redirect-URI bypasses), and the query may not use the names the server
adds to it (`code`, `state`, `iss`, `error`, ...), so the response appends without a clash.

Matching is exact, character for character (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), with one
exception: a registered loopback URI matches the same URI with any port (RFC 8252 §7.3).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit

MAX_LENGTH = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
RESPONSE_PARAMETERS = frozenset(
    {"code", "state", "iss", "error", "error_description", "error_uri", "session_state"}
)

# RFC 3986 §2: unreserved, reserved and "%" (checked further below); nothing else may appear.
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_SCHEME = re.compile(r"[a-z][a-z0-9+\-.]*")
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Encoded ".", "/", "\" or a control character: never needed in a callback path, and the raw
# material of path-confusion tricks.
_ODD_ENCODING = re.compile(r"%(?:2[eEfF]|5[cC]|[01][0-9A-Fa-f]|7[fF])")
# http://127.0.0.1[:port] or http://[::1][:port], then "/", "?" or the end: the port is what the
# loopback rule ignores.
_LOOPBACK = re.compile(r"(http://(?:127\.0\.0\.1|\[::1\]))(?::[1-9][0-9]{0,4})?(?=[/?]|$)")


def redirect_uri_problem(uri: str) -> str | None:
    """None when `uri` may be registered; otherwise one line naming the problem (no echo)."""
    if not uri:
        return "a redirect URI must not be empty"
    if len(uri) > MAX_LENGTH:
        return f"a redirect URI must be at most {MAX_LENGTH} characters"
    if not _URI_CHARACTERS.fullmatch(uri):
        return "a redirect URI may hold only URI characters (no spaces; encode the rest with %XX)"
    if "#" in uri:
        return "a redirect URI must not have a fragment (#)"
    if _PERCENT.search(uri):
        return "a redirect URI has a '%' that is not followed by two hex digits"
    scheme, colon, _ = uri.partition(":")
    if not colon or not scheme:
        return "a redirect URI must be absolute (start with https://, http://127.0.0.1 or a scheme)"
    if not _SCHEME.fullmatch(scheme):
        return "the scheme of a redirect URI must be lower case letters, digits, '+', '-' or '.'"
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed "[" in the host
        return "a redirect URI is not a valid URI"
    if scheme in ("https", "http"):
        problem = _web_problem(scheme, uri, parts.netloc)
    else:
        problem = _private_use_problem(scheme, parts.netloc, parts.path)
    return problem or _path_and_query_problem(parts.path, parts.query)


def _web_problem(scheme: str, uri: str, authority: str) -> str | None:
    if not uri.startswith(f"{scheme}://") or not authority:
        return f"an {scheme} redirect URI needs a host: {scheme}://host/path"
    if "@" in authority:
        return "a redirect URI must not carry a user name or password (user-info)"
    host, port = _split_authority(authority)
    if port is not None and not (_PORT.fullmatch(port) and int(port) <= 65535):
        return "the port of a redirect URI must be a number from 1 to 65535, without leading 0"
    if scheme == "http":
        if host in LOOPBACK_HOSTS:
            return None
        if host.lower() == "localhost":
            return "use http://127.0.0.1 or http://[::1] instead of localhost (RFC 8252 §8.3)"
        return "http is allowed only on the loopback hosts 127.0.0.1 and [::1]; use https"
    if host != host.lower():
        return "the host of a redirect URI must be lower case"
    if host.startswith("["):
        return _ipv6_problem(host)
    if not _HOST_NAME.fullmatch(host):
        return "the host of a redirect URI is not a valid host name (use punycode for IDNs)"
    return None


def _ipv6_problem(host: str) -> str | None:
    try:
        ipaddress.IPv6Address(host[1:-1] if host.endswith("]") else "bad")
    except ValueError:
        return "the host of a redirect URI is not a valid IPv6 address"
    return None


def _private_use_problem(scheme: str, authority: str, path: str) -> str | None:
    if "." not in scheme.strip("."):
        return (
            "a private-use scheme must be a reverse domain name such as com.example.app "
            "(RFC 8252 §7.1)"
        )
    if "@" in authority:
        return "a redirect URI must not carry a user name or password (user-info)"
    if not path.startswith("/"):
        return "a private-use redirect URI needs a path, e.g. com.example.app:/callback"
    return None


def _path_and_query_problem(path: str, query: str) -> str | None:
    segments = path.split("/")
    if "." in segments or ".." in segments:
        return "the path of a redirect URI must not contain '.' or '..' segments"
    if _ODD_ENCODING.search(path):
        return "the path of a redirect URI must not encode '.', '/', '\\' or control characters"
    names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    clash = sorted(names & RESPONSE_PARAMETERS)
    if clash:
        return f"the query of a redirect URI must not use {clash[0]!r}: the server adds it"
    return None


def _split_authority(authority: str) -> tuple[str, str | None]:
    """(host, port as written or None): `[::1]:8080` -> ("[::1]", "8080")."""
    if authority.startswith("["):
        host, bracket, rest = authority.partition("]")
        host += bracket
    else:
        host, colon, rest = authority.partition(":")
        rest = colon + rest
    if not rest:
        return host, None
    return host, rest[1:] if rest.startswith(":") else rest


def _without_loopback_port(uri: str) -> str | None:
    found = _LOOPBACK.match(uri)
    if found is None:
        return None
    port = found.group(0)[len(found.group(1)) + 1 :]
    if port and int(port) > 65535:
        return None
    return found.group(1) + uri[found.end() :]


def match_redirect_uri(requested: str | None, registered: Sequence[str]) -> str | None:
    """The redirect URI to send the answer to, or None when the request names no registered one.

    - No `redirect_uri` in the request: the client's only registered URI (none if it has several
      or none; RFC 6749 §3.1.2.3).
    - Otherwise the requested URI itself when it equals a registered one character for character,
      or when both are loopback URIs that differ only in the port (RFC 8252 §7.3): the answer then
      goes to the port the app is listening on.
    """
    if requested is None:
        return registered[0] if len(registered) == 1 else None
    if requested in registered:
        return requested
    stripped = _without_loopback_port(requested)
    if stripped is None:
        return None
    for uri in registered:
        if _without_loopback_port(uri) == stripped:
            return requested
    return None
