"""A response's status line and headers sent in the same system call as its body.

uvicorn writes a response in two `transport.write` calls, the head when the application sends
`http.response.start` and the body at `http.response.body`; uvloop sends each at once, so a
small response (the JWKS, a token response) costs two `send()` system calls and two TCP segments
where one would do. On loopback, and on any real network, each segment is a pass through the
kernel's TCP stack, which for the JWKS cost more than the application's own work.

`PairedWriteTransport` wraps the connection's transport for uvicorn's protocol: a write made
while nothing is held is held, and the next write sends both in one call. The held bytes go out
at the latest when the event loop next runs its ready callbacks (`call_soon`), so nothing waits
for more than the current turn of the loop: a `100 Continue`, or the one chunk of a response
that then pauses, still goes out at once. `close`, `write_eof` and `abort` send what is held
first (abort drops it, as it drops the transport's own buffer). Everything else is the wrapped
transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any


class PairedWriteTransport:
    """An asyncio transport that sends a held write together with the next one."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        """Send what is held now (the end-of-turn callback; a no-op when nothing is). If the
        transport closed in the meantime (uvloop closes it itself on a socket error), the bytes
        are dropped, as its own buffer's are: a write would raise in the loop's callback."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:  # asked after every response: not through __getattr__
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (0 if held is None else len(held))

    def __getattr__(self, name: str) -> Any:  # get_extra_info, pause_reading, resume_reading…
        return getattr(self._transport, name)
