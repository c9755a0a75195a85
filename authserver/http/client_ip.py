"""The client's IP address for the per-IP login limit, believing `X-Forwarded-For` only as far as
TRUSTED_PROXIES allow.

Each proxy appends the address it received the request from, so the header's right end was
written by our own proxies and its left end by whoever sent the request (anything at all). With
the TCP peer a trusted proxy, the client is the right-most entry that is not itself a trusted
proxy; entries left of it are never read. With no trusted proxies (the default), or a peer that
is not one, the header is ignored: anybody can send it.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import Request
from starlette.types import Scope

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"
MAX_HOPS = 32  # entries read from the right; a longer chain is not ours


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The address to count failed logins against (a normalised IP, or "unknown")."""
    return scope_client_ip(request.scope, trusted_proxies)


def scope_client_ip(scope: Scope, trusted_proxies: list[str]) -> str:
    """`client_ip` of an ASGI scope (the access log has no Request)."""
    peer_address = scope.get("client")
    if not peer_address:
        return UNKNOWN
    if not trusted_proxies:  # the default: the TCP peer, whatever the headers say
        return _text(peer_address[0])
    peer = _parse(peer_address[0])
    if peer is None:
        return UNKNOWN
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _trusted(peer, networks):
        return str(peer)
    hops = [
        entry
        for name, value in scope["headers"]
        if name == b"x-forwarded-for"
        for entry in value.decode("latin-1").split(",")
    ][-MAX_HOPS:]
    client = peer
    for entry in reversed(hops):
        address = _parse(entry)
        if address is None:
            break  # a malformed entry from a trusted proxy: stop at the last good hop
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _trusted(address: IpAddress, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


@lru_cache(maxsize=1024)
def _text(peer: str) -> str:
    """The normalised text of a peer's address, or "unknown"."""
    address = _parse(peer)
    return UNKNOWN if address is None else str(address)


@lru_cache(maxsize=1024)  # the same few peers and proxies, request after request
def _parse(text: str) -> IpAddress | None:
    """An IP address, tolerating a port (`1.2.3.4:80`, `[::1]:80`); IPv4-mapped IPv6 becomes
    IPv4 so that one client is one key whichever way the socket reports it. At most 39
    characters (the login_ip_failures key holds 64)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    text = text.partition("%")[0]  # an IPv6 zone is not part of who the client is
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
