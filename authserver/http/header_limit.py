"""A cap on the request line plus headers (16 KiB), answered 431 with an RFC error body.

uvicorn's httptools protocol (the fast parser `serve` uses) has no such limit: it buffers a
header of any size, 20 MB included, before the application sees the request. This subclass
counts the bytes received while a request's headers are incomplete and closes the connection
with 431 once they pass MAX_HEADER_BYTES, so one connection can hold at most that much (plus
one network read) in memory. `serve` selects it with uvicorn's `http=` option.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 16 * 1024

_BODY = json.dumps(
    {"error": "invalid_request", "error_description": "The request headers are too large."}
).encode()
RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"cache-control: no-store\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _BODY
)


class HeaderLimitedHttpTools(HttpToolsProtocol):
    _awaiting_headers = True
    _header_bytes = 0
    _too_large = False

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self._headers_may_end_in(data):
                self._reject()
                return
        try:
            super().data_received(data)
        finally:
            if self._too_large:
                self._reject()

    def _headers_may_end_in(self, data: bytes) -> bool:
        """Whether this read may complete the headers (then on_headers_complete measures them
        exactly); otherwise more than MAX_HEADER_BYTES are already pending."""
        return b"\r\n\r\n" in data or b"\n\n" in data

    def on_headers_complete(self) -> None:
        size = len(self.url)
        for name, value in self.headers:  # a loop: cheaper than sum() of a generator
            size += len(name) + len(value) + 4
        if size > MAX_HEADER_BYTES:
            self._too_large = True
            raise ValueError("request headers too large")  # stops the parser; see data_received
        self._awaiting_headers = False
        self._header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:  # the parser error we caused ourselves is answered 431 instead
            super().send_400_response(msg)

    def _reject(self) -> None:
        if not self.transport.is_closing():
            self.logger.warning("request headers over %d bytes: closed", MAX_HEADER_BYTES)
            self.transport.write(RESPONSE_431)
            self.transport.close()
