"""The HTTP protocol `serve` gives uvicorn (its `http=` option): uvicorn's httptools protocol
with the 16 KiB cap on a request's headers (http/header_limit.py) and each small response sent
in one system call (http/paired_writes.py)."""

from __future__ import annotations

import asyncio

from authserver.http.header_limit import HeaderLimitedHttpTools
from authserver.http.paired_writes import PairedWriteTransport


class ServerHttpProtocol(HeaderLimitedHttpTools):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        paired = PairedWriteTransport(transport, self.loop)
        super().connection_made(paired)  # type: ignore[arg-type]
