"""The JSON log lines are exactly what `json.dumps(entry, separators=(",", ":"),
default=str)` writes, whichever way they are rendered (observability/logs.py renders the access
lines with orjson when that gives the same text)."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest

from authserver.http.access_lines import BoundedCache, JsonAccessLines
from authserver.http.request_log import RequestIds
from authserver.observability.logs import TEXT_FORMAT, JsonFormatter, TextFormatter

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -5,
    2**70,  # past orjson's 64 bits
    0.0,
    -0.0,
    0.1,
    12.34,
    1.5e-7,  # json.dumps writes 1.5e-07
    1e300,
    float("nan"),
    float("-inf"),
    "é",
    "\x7f",
    "\u2028",
    'tab\tquote"back\\slash',
    ["nested"],
]


def record(fields: dict[str, Any]) -> logging.LogRecord:
    line = logging.LogRecord("authserver.access", logging.INFO, __file__, 1, "x", None, None)
    line.fields = fields
    line.created, line.msecs = 1796400000.25, 250.0
    return line


def expected(line: logging.LogRecord, fields: dict[str, Any]) -> str:
    entry = {"ts": "2026-12-04T16:00:00.250Z", "level": "info", "logger": line.name, **fields}
    return json.dumps(entry, separators=(",", ":"), default=str)


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_an_access_line_with_an_odd_value_is_what_json_dumps_writes(value: Any) -> None:
    fields = {"method": "GET", "path": "/x", "status": 200, "client_id": value}
    line = record(fields)
    assert JsonFormatter().format(line) == expected(line, fields)


def test_random_access_lines_are_what_json_dumps_writes() -> None:
    rng = random.Random(13)
    formatter = JsonFormatter()
    for _ in range(3000):
        fields: dict[str, Any] = {
            f"k{i}": "".join(chr(rng.randrange(0, 0x90)) for _ in range(rng.randrange(0, 6)))
            for i in range(3)
        }
        fields["duration_ms"] = round(rng.random() * rng.choice([1, 100, 10**6]), 2)
        fields["status"] = rng.choice([200, 304, 400, 503])
        line = record(fields)
        assert formatter.format(line) == expected(line, fields)


def test_the_timestamp_is_utc_with_milliseconds() -> None:
    line = logging.LogRecord("authserver", logging.INFO, __file__, 1, "hello", None, None)
    line.created, line.msecs = 1796400000.25, 250.0
    parsed = json.loads(JsonFormatter().format(line))
    assert parsed["ts"] == "2026-12-04T16:00:00.250Z"
    assert parsed["message"] == "hello"


ACCESS_LINE = "%s %s %d %.2fms request_id=%s client_id=%s client_ip=%s"


def access_record(created: float, values: tuple[Any, ...]) -> logging.LogRecord:
    """The record the access log makes when it cannot write directly (`log.handle`)."""
    names = ["method", "path", "status", "duration_ms", "request_id", "client_id", "client_ip"]
    line = logging.LogRecord(
        "authserver.access", logging.INFO, __file__, 0, ACCESS_LINE, values, None
    )
    line.fields = dict(zip(names, values, strict=True))
    line.created, line.msecs = created, int((created - int(created)) * 1000) + 0.0
    return line


@pytest.mark.parametrize("client_id", [*ODD_VALUES[:13], "é", "\x7f"], ids=repr)
@pytest.mark.parametrize("created", [1796400000.25, 1796400000.9999, 1796400059.001, 0.5])
def test_the_access_line_without_a_record_is_the_records_line(
    client_id: Any, created: float
) -> None:
    """The access log's direct write gives what `format` gives for the record the access log
    would otherwise make, for both LOG_FORMATs; text as `logging.Formatter` with TEXT_FORMAT
    (serve's text format before TextFormatter) writes it."""
    values = ("GET", "/x", 200, 1.5, "id-1", client_id, "127.0.0.1")
    line = access_record(created, values)
    json_formatter, text_formatter = JsonFormatter(), TextFormatter()
    direct = JsonAccessLines("authserver.access").line(json_formatter.timestamp(created), values)
    assert direct == json_formatter.format(line)
    stock = logging.Formatter(TEXT_FORMAT).format(line)
    assert text_formatter.access_line("authserver.access", created, ACCESS_LINE, values) == stock
    assert text_formatter.format(line) == stock


def test_random_direct_access_lines_are_the_records_lines() -> None:
    """Values that repeat (served from JsonAccessLines' caches) and values that do not, odd
    characters in the path and the client_id, every kind of request id the server makes."""
    rng = random.Random(7)
    formatter, lines, ids = JsonFormatter(), JsonAccessLines("authserver.access"), RequestIds()

    def text(limit: int) -> str:
        return "".join(
            chr(rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0, 0x3000)]))
            for _ in range(rng.randrange(0, limit))
        )

    paths = ["/token", "/.well-known/jwks.json", *("/" + text(12) for _ in range(40))]
    clients = [None, "web", "é-app", *(text(8) for _ in range(20))]
    for _ in range(5000):
        created = 1796400000 + rng.random() * 120
        values = (
            rng.choice(["GET", "POST", "HEAD", "PROPFIND"]),
            rng.choice(paths),
            rng.choice([200, 304, 400, 401, 404, 503]),
            round(rng.random() * rng.choice([1, 100, 10**6]), 2),
            rng.choice([ids.new(), ids.for_request(b"lb-1._-Z9"), "a" * 128]),
            rng.choice(clients),
            rng.choice(["127.0.0.1", "2001:db8::1", "unknown", None]),
        )
        assert lines.line(formatter.timestamp(created), values) == formatter.format(
            access_record(created, values)
        )


def test_the_caches_start_afresh_past_their_bound() -> None:
    cache = BoundedCache[int, int]()
    for key in range(1024):
        cache.put(key, key)
    assert cache.get(0) == 0
    cache.put(1024, 1024)
    assert cache.get(0) is None
    assert cache.get(1024) == 1024


def test_timestamps_of_lines_in_the_same_millisecond_and_the_next_are_the_records() -> None:
    """JsonFormatter.timestamp keeps the text of the last millisecond: lines in it share it, the
    next millisecond and the next second get their own."""
    formatter = JsonFormatter()
    values = ("GET", "/x", 200, 0.5, "id-1", None, "127.0.0.1")
    lines = JsonAccessLines("authserver.access")
    base = 1796400000
    for created in [base + 0.2501, base + 0.2509, base + 0.2511, base + 0.9999, base + 1.0001]:
        direct = lines.line(formatter.timestamp(created), values)
        assert direct == formatter.format(access_record(created, values))
