"""The access log's JSON line, built from cached fragments (http/request_log.py writes it).

`JsonAccessLines` writes what `JsonFormatter.format` (observability/logs.py) writes for the access
record, without the record. The line is written once per request, so each call it saves shows in
every request's CPU (bench/README.md, "Every request's own work").
"""

from __future__ import annotations

import json
from typing import Generic, TypeVar

# One access line's values, in the order of its JSON fields (FIELDS): method, path, status,
# duration_ms, request_id, client_id, client_ip. A plain tuple: made once per request.
AccessValues = tuple[str, str, int, float, str, str | None, str | None]
FIELDS = ("method", "path", "status", "duration_ms", "request_id", "client_id", "client_ip")


class JsonAccessLines:
    """Access lines as `JsonFormatter.format` writes the access record: `json.dumps` of `ts`,
    `level`, `logger` and the fields, in that order, with separators `,` and `:`.

    Built from the JSON of each value, which is what `json.dumps` of the whole entry consists
    of. Of a request's values, the method, path and status, and the client_id and client_ip,
    repeat request after request, so their JSON is kept (a bounded cache each); only the
    timestamp, the duration and the request id are written each time. The request id needs no
    escaping: it is `[A-Za-z0-9._-]` (RequestIds). The duration is a finite float, whose JSON is
    its `repr`. tests/unit/test_json_log_lines.py checks the lines against `format`'s."""

    def __init__(self, logger: str) -> None:
        self._logger = logger
        self._heads = BoundedCache[tuple[str, str, int], str]()
        self._tails = BoundedCache[tuple[str | None, str | None], str]()

    def line(self, ts: str, values: AccessValues) -> str:
        method, path, status, duration_ms, request_id, client_id, client_ip = values
        head = self._heads.get((method, path, status))
        if head is None:
            head = self._heads.put(
                (method, path, status),
                f'","level":"info","logger":{_json(self._logger)},"method":{_json(method)},'
                f'"path":{_json(path)},"status":{_json(status)},"duration_ms":',
            )
        tail = self._tails.get((client_id, client_ip))
        if tail is None:
            tail = self._tails.put(
                (client_id, client_ip),
                f'","client_id":{_json(client_id)},"client_ip":{_json(client_ip)}}}',
            )
        return f'{{"ts":"{ts}{head}{duration_ms!r},"request_id":"{request_id}{tail}'


K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A dict that starts afresh past 1,024 entries: values that repeat from request to request,
    whose keys a client could also make up without end."""

    _LIMIT = 1024

    def __init__(self) -> None:
        self._entries: dict[K, V] = {}
        self.get = self._entries.get

    def put(self, key: K, value: V) -> V:
        if len(self._entries) >= self._LIMIT:
            self._entries.clear()
        self._entries[key] = value
        return value


def _json(value: object) -> str:
    """`value` as `json.dumps` writes it inside the whole entry (JsonFormatter's `_dumps`)."""
    return json.dumps(value, separators=(",", ":"), default=str)
