"""Which address the per-IP login limit counts against (TRUSTED_PROXIES, X-Forwarded-For).

Written as an attacker would: every header value the client controls is tried as a way to pick
somebody else's address, or to get a fresh budget per request.
"""

from __future__ import annotations

import pytest
from starlette.requests import Request

from authserver.http.client_ip import client_ip

PROXIES = ["10.0.0.0/8", "2001:db8::/32"]


def request(peer: str | None, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/token",
        "headers": headers,
        "client": None if peer is None else (peer, 50000),
    }
    return Request(scope)


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_ip(request("198.51.100.9", "203.0.113.1"), []) == "198.51.100.9"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_choose_its_address() -> None:
    assert client_ip(request("198.51.100.9", "203.0.113.1"), PROXIES) == "198.51.100.9"


def test_behind_a_trusted_proxy_the_client_is_the_address_it_appended() -> None:
    assert client_ip(request("10.1.2.3", "203.0.113.1"), PROXIES) == "203.0.113.1"


def test_addresses_the_client_wrote_left_of_the_proxys_entry_are_never_read() -> None:
    spoofed = request("10.1.2.3", "192.0.2.66, 10.9.9.9, 203.0.113.1")
    assert client_ip(spoofed, PROXIES) == "203.0.113.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    chained = request("10.1.2.3", "192.0.2.66, 203.0.113.1, 10.0.0.7", "10.0.0.8")
    assert client_ip(chained, PROXIES) == "203.0.113.1"


def test_when_every_hop_is_trusted_the_left_most_one_is_the_client() -> None:
    assert client_ip(request("10.1.2.3", "10.0.0.5, 10.0.0.6"), PROXIES) == "10.0.0.5"


def test_a_trusted_proxy_without_the_header_is_itself_the_client() -> None:
    assert client_ip(request("10.1.2.3"), PROXIES) == "10.1.2.3"


@pytest.mark.parametrize(
    "header",
    ["not-an-ip", "", " , ", "203.0.113.1\x00", "a" * 5000, "203.0.113.999", "unknown"],
)
def test_a_malformed_entry_stops_at_the_last_good_hop(header: str) -> None:
    """Garbage never becomes a rate-limit key (the key column holds 64 characters)."""
    assert client_ip(request("10.1.2.3", header), PROXIES) == "10.1.2.3"
    assert client_ip(request("10.1.2.3", f"203.0.113.1, {header}"), PROXIES) == "10.1.2.3"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("203.0.113.1:4711", "203.0.113.1"),
        ("[2001:db9::1]:443", "2001:db9::1"),
        ("2001:DB9:0::1", "2001:db9::1"),
        ("::ffff:203.0.113.1", "203.0.113.1"),
        ("fe80::1%eth0-with-a-very-long-zone-name-that-goes-on-and-on", "fe80::1"),
    ],
)
def test_entries_are_normalised_so_one_client_is_one_key(entry: str, expected: str) -> None:
    assert client_ip(request("10.1.2.3", entry), PROXIES) == expected


def test_ipv6_proxies_and_mapped_peers_are_recognised() -> None:
    assert client_ip(request("2001:db8::5", "203.0.113.1"), PROXIES) == "203.0.113.1"
    assert client_ip(request("::ffff:10.1.2.3", "203.0.113.1"), PROXIES) == "203.0.113.1"


def test_an_unknown_peer_is_one_shared_key() -> None:
    assert client_ip(request(None, "203.0.113.1"), PROXIES) == "unknown"
    assert client_ip(request("unix-socket", "203.0.113.1"), PROXIES) == "unknown"
