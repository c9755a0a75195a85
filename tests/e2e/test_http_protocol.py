"""The real `serve`'s HTTP protocol (http/protocol.py) with each response's head and body in one
write (http/paired_writes.py): a 100 Continue still leaves before the body arrives, pipelined
requests are answered whole and in order, and a request the parser refuses is answered."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.e2e.conftest import ServeFactory, Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(serve: ServeFactory, tmp_path: Path) -> Server:
    return serve(tmp_path)


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_until(sock: socket.socket, done: bytes, count: int = 1) -> bytes:
    """Bytes from `sock` until `done` has been seen `count` times and the data ends with it (or
    the 10 s timeout)."""
    data = b""
    while data.count(done) < count or not data.endswith(done):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_100_continue_is_sent_before_the_body_arrives(server: Server) -> None:
    """The interim response is a write of its own, with no response write after it to pair
    with until the client sends the body: it must leave at once."""
    body = b"grant_type=refresh_token&refresh_token=rt_x&client_id=nobody"
    head = (
        b"POST /token HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(head)
        interim = read_until(sock, b"\r\n\r\n")  # raises TimeoutError if it was held
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = read_until(sock, b"}")
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 401 Unauthorized"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"] == "invalid_client"


def test_pipelined_requests_are_answered_whole_and_in_order(server: Server) -> None:
    request = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n"
    probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: second\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(request + probe + request)
        replies = read_until(sock, b"}]}", 2)
    first, second, third = replies.split(b"HTTP/1.1 200 OK")[1:]
    assert b'"keys"' in first
    assert b'"keys"' in third
    assert b"x-request-id: second" in second
    for reply in (first, third):
        head, _, body = reply.partition(b"\r\n\r\n")
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        assert len(body) == length
        json.loads(body)


def test_a_malformed_request_is_answered_400_and_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        reply = read_until(sock, b"Invalid HTTP request")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
