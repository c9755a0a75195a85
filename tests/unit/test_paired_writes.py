"""PairedWriteTransport (http/paired_writes.py): a response's head and body leave in one write
to the socket's transport, and nothing it holds waits past the current turn of the loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from authserver.http.paired_writes import PairedWriteTransport


class RecordingTransport(asyncio.Transport):
    """What reached the socket's transport, in order, as ("write", bytes) or the call's name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []
        self.closing = False
        self.buffered = 7

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))
        if self.closing:  # as uvloop's stream does once its handle is closed
            raise RuntimeError("unable to perform operation; the handler is closed")

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append("write_eof")

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name, default)


def paired() -> tuple[PairedWriteTransport, RecordingTransport]:
    inner = RecordingTransport()
    return PairedWriteTransport(inner, asyncio.get_running_loop()), inner


async def test_a_head_and_its_body_reach_the_transport_in_one_write() -> None:
    transport, inner = paired()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert inner.calls == []
    transport.write(b"{}")
    assert inner.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]
    await asyncio.sleep(0)  # the end-of-turn flush finds nothing left
    assert inner.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]


async def test_a_lone_write_leaves_when_the_loop_turns() -> None:
    """A 100 Continue, or a chunk after which the response pauses: no second write comes."""
    transport, inner = paired()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert inner.calls == [("write", b"HTTP/1.1 100 Continue\r\n\r\n")]


async def test_writes_keep_their_order_across_pairs() -> None:
    transport, inner = paired()
    for chunk in (b"a", b"b", b"c"):
        transport.write(chunk)
    await asyncio.sleep(0)
    transport.writelines([b"d", b"e"])
    transport.write(memoryview(b"f"))
    assert inner.calls == [("write", b"ab"), ("write", b"c"), ("write", b"def")]


async def test_close_and_write_eof_send_what_is_held_first() -> None:
    transport, inner = paired()
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert inner.calls == [("write", b"HTTP/1.1 400 Bad Request\r\n\r\n"), "close"]
    transport, inner = paired()
    transport.write(b"last")
    transport.write_eof()
    assert inner.calls == [("write", b"last"), "write_eof"]


async def test_abort_drops_what_is_held_as_it_drops_the_transports_buffer() -> None:
    transport, inner = paired()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.calls == ["abort"]


async def test_the_rest_is_the_wrapped_transports() -> None:
    transport, inner = paired()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5000)
    assert transport.is_closing() is False
    transport.write(b"12345")
    assert transport.get_write_buffer_size() == 7 + 5
    inner.closing = True
    assert transport.is_closing() is True


async def test_what_is_held_is_dropped_if_the_connection_closed_under_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """uvloop closes a transport itself on a socket error; the end-of-turn flush then has
    nowhere to send, and must not raise in the loop's callback (a logged traceback)."""
    transport, inner = paired()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    inner.closing = True
    await asyncio.sleep(0)
    assert inner.calls == []
    assert "Exception in callback" not in caplog.text
