"""The access log: one JSON-ready record per request on `authserver.access`, an X-Request-ID
taken from the caller when safe and echoed back, and never a token, secret or query string."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from authserver.observability.logs import JsonFormatter, logging_config, request_id_var
from tests.conftest import ISSUER, PASSWORD, RegisteredClient
from tests.helpers import password_login, refresh

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

FIELDS = {"method", "path", "status", "duration_ms", "request_id", "client_id", "client_ip"}


def access_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "authserver.access"
    ]


def json_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = JsonFormatter()
    return [formatter.format(r) for r in caplog.records if r.name == "authserver.access"]


@pytest.fixture(autouse=True)
def _capture_access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="authserver.access")


async def test_each_request_logs_one_line_with_the_documented_fields(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    (record,) = access_records(caplog)
    assert set(record) == FIELDS
    assert record["method"] == "GET"
    assert record["path"] == "/healthz"
    assert record["status"] == 200
    assert isinstance(record["duration_ms"], float)
    assert record["duration_ms"] >= 0
    assert record["client_ip"] == "203.0.113.7"
    assert record["client_id"] is None  # no client authenticated on /healthz
    assert record["request_id"] == response.headers["x-request-id"]

    (line,) = json_lines(caplog)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["logger"] == "authserver.access"
    assert parsed["level"] == "info"
    assert parsed["ts"].endswith("Z")
    assert {key: parsed[key] for key in FIELDS} == record


async def test_a_safe_incoming_request_id_is_kept_and_echoed(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    incoming = "lb-7f3a.9_c-" + "x" * 100
    response = await http.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert access_records(caplog)[0]["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "x" * 129,  # too long
        "",
        "has space",
        "new\\nline",
        "<script>",
        'quote"',
        "ünïcode",
    ],
)
async def test_an_unsafe_incoming_request_id_is_replaced_by_a_uuid(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, incoming: str
) -> None:
    response = await http.get("/healthz", headers=[(b"x-request-id", incoming.encode())])
    echoed = response.headers["x-request-id"]
    assert echoed != incoming
    assert uuid.UUID(echoed).version == 4
    assert access_records(caplog)[0]["request_id"] == echoed


async def test_without_an_incoming_id_every_request_gets_a_new_one(
    http: httpx.AsyncClient,
) -> None:
    first = (await http.get("/healthz")).headers["x-request-id"]
    second = (await http.get("/healthz")).headers["x-request-id"]
    assert first != second
    assert uuid.UUID(first).version == uuid.UUID(second).version == 4


async def test_error_responses_are_logged_with_their_status_and_carry_the_id(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    missing = await http.get("/no/such/path")
    wrong_method = await http.get("/token")
    too_large = await http.post(
        "/token",
        content=b"a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    statuses = [record["status"] for record in access_records(caplog)]
    assert statuses == [404, 405, 413]
    for response in (missing, wrong_method, too_large):
        assert response.headers["x-request-id"]


async def test_token_requests_log_the_authenticated_client_but_no_secret_or_token(
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    make_client: MakeClient,
    make_user: MakeUser,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything any logger says during these requests
    client = await make_client()
    await make_user()
    login = await password_login(http, client)
    assert login.status_code == 200
    tokens = login.json()
    renewed = await refresh(http, client, tokens["refresh_token"])
    assert renewed.status_code == 200
    # A token in the query string (a misbehaving client) must not reach the log either.
    await http.post(f"/token?refresh_token={tokens['refresh_token']}&password={PASSWORD}")
    # Failed client authentication: the attempted client_id is not logged as authenticated.
    bad = httpx.BasicAuth(client.client_id, "wrong-secret")
    unauthenticated = await http.post("/token", data={"grant_type": "password"}, auth=bad)
    assert unauthenticated.status_code == 401

    records = access_records(caplog)
    assert [r["client_id"] for r in records] == [client.client_id, client.client_id, None, None]
    assert all(r["path"] == "/token" for r in records)

    everything = "\n".join(
        [
            *json_lines(caplog),
            *(r.getMessage() for r in caplog.records if r.name.startswith("authserver")),
        ]
    )
    assert client.secret is not None
    for secret in (
        client.secret,
        PASSWORD,
        tokens["refresh_token"],
        tokens["access_token"],
        renewed.json()["refresh_token"],
        renewed.json()["access_token"],
        "refresh_token=",
    ):
        assert secret not in everything


async def test_percent_encoded_control_characters_cannot_forge_log_lines(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await http.get("/x%0A%7B%22forged%22:1%7D")
    (record,) = access_records(caplog)
    assert "\n" not in record["path"]
    message = caplog.records[-1].getMessage()
    assert "\n" not in message
    (line,) = json_lines(caplog)
    assert "forged" not in json.loads(line)  # still one object with the documented fields


async def test_other_log_lines_of_a_request_carry_its_request_id(
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    make_client: MakeClient,
    make_user: MakeUser,
) -> None:
    """The reuse warning, logged by the grant, is tied to the request that caused it."""
    caplog.set_level(logging.INFO)
    client = await make_client()
    await make_user()
    first = (await password_login(http, client)).json()["refresh_token"]
    assert (await refresh(http, client, first)).status_code == 200
    captured: list[tuple[str, str | None]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "reuse" in record.getMessage():
                captured.append((JsonFormatter().format(record), request_id_var.get()))

    handler = Capture()
    logging.getLogger("authserver").addHandler(handler)
    try:
        reuse = await refresh(http, client, first)
    finally:
        logging.getLogger("authserver").removeHandler(handler)
    assert reuse.status_code == 400
    assert captured, "no reuse warning was logged"
    line, _ = captured[0]
    assert json.loads(line)["request_id"] == reuse.headers["x-request-id"]


def test_json_formatter_writes_one_object_with_the_exception() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "authserver", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    line = formatter.format(record)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["message"] == "failed x"
    assert parsed["level"] == "error"
    assert "ValueError: boom" in parsed["exc_info"]
    assert "request_id" not in parsed  # not inside a request


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_logging_config_is_valid_for_both_formats(log_format: str) -> None:
    config = logging_config(log_format)
    logging.config.dictConfig(config)
    try:
        access = logging.getLogger("authserver.access")
        assert access.isEnabledFor(logging.INFO)
        assert not access.propagate
    finally:
        # Leave the test session's logging as it was: caplog needs propagation.
        for name in (
            "uvicorn",
            "uvicorn.error",
            "uvicorn.access",
            "authserver",
            "authserver.access",
        ):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


async def test_an_unexpected_error_is_a_json_500_that_still_carries_the_request_id(
    app: Starlette, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette answers an unhandled exception outside every middleware of ours; the 500 must
    still carry the id that ties it to the access line and to the logged traceback."""

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("an internal detail the client must not see")

    monkeypatch.setattr("authserver.http.token.authenticate_client", broken)
    transport = httpx.ASGITransport(
        app=app, raise_app_exceptions=False, client=("203.0.113.7", 50000)
    )
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        response = await client.post(
            "/token", data={"grant_type": "password"}, headers={"X-Request-ID": "trace-500"}
        )
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "internal detail" not in response.text
    assert response.headers["x-request-id"] == "trace-500"
    (record,) = access_records(caplog)
    assert (record["status"], record["request_id"]) == (500, "trace-500")


# --- the line as `serve` writes it: logging_config's handler on stdout -------------------------

_SERVE_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "authserver", "authserver.access")
_TS = {
    "json": re.compile(r'^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",'),
    "text": re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "),
}


@pytest.fixture(params=["json", "text"])
def serve_logging(request: pytest.FixtureRequest) -> Iterator[tuple[str, io.StringIO]]:
    """`serve`'s logging (LOG_FORMAT json, then text), the access lines into a StringIO."""
    logging.config.dictConfig(logging_config(request.param))
    (handler,) = logging.getLogger("authserver.access").handlers
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield request.param, stream
    finally:
        for name in _SERVE_LOGGERS:  # caplog, in the other tests, needs propagation
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.filters.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
            logger.disabled = False


class _Pass(logging.Filter):
    """A filter that lets every record through: the line then goes through a LogRecord."""


async def test_serve_writes_the_line_the_logging_path_writes(
    http: httpx.AsyncClient, serve_logging: tuple[str, io.StringIO]
) -> None:
    """The direct write (serve's own handler alone) and a LogRecord through `logging` (here
    because of a filter) give the same bytes, apart from the time and the duration."""
    log_format, stream = serve_logging
    headers = {"X-Request-ID": "same-id"}
    await http.get("/x%0A%7B%22forged%22:1%7D?token=secret", headers=headers)
    logging.getLogger("authserver.access").addFilter(_Pass())
    await http.get("/x%0A%7B%22forged%22:1%7D?token=secret", headers=headers)
    direct, through_logging = stream.getvalue().splitlines(keepends=True)
    for line in (direct, through_logging):
        assert _TS[log_format].match(line), line
        assert line.endswith("\n")
        assert line.count("\n") == 1
        assert "secret" not in line
    assert _timeless(direct) == _timeless(through_logging)
    if log_format == "json":
        assert set(json.loads(direct)) == {"ts", "level", "logger", *FIELDS}
        assert json.loads(direct)["path"] == "/x%0A%7B%22forged%22:1%7D"
    else:
        assert " INFO authserver.access: GET /x%0A%7B%22forged%22:1%7D 404 " in direct


def _timeless(line: str) -> str:
    for pattern in _TS.values():
        line = pattern.sub("", line)
    return re.sub(r'(duration_ms":|404 )[0-9.]+', r"\1", line)


@pytest.mark.parametrize(
    "configure",
    [
        lambda access: access.setLevel(logging.WARNING),
        lambda access: setattr(access, "disabled", True),
        lambda access: access.handlers[0].setLevel(logging.WARNING),
        lambda access: access.addFilter(lambda _record: False),
    ],
    ids=["logger level", "logger disabled", "handler level", "logger filter"],
)
async def test_serve_writes_no_line_when_the_logging_configuration_says_so(
    http: httpx.AsyncClient,
    serve_logging: tuple[str, io.StringIO],
    configure: Callable[[logging.Logger], None],
) -> None:
    _, stream = serve_logging
    configure(logging.getLogger("authserver.access"))
    assert (await http.get("/healthz")).status_code == 200
    assert stream.getvalue() == ""


async def test_another_handler_beside_serves_gets_the_record_too(
    http: httpx.AsyncClient, serve_logging: tuple[str, io.StringIO]
) -> None:
    _, stream = serve_logging
    access = logging.getLogger("authserver.access")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    access.addHandler(Keep())
    await http.get("/healthz")
    (record,) = records
    assert record.fields["path"] == "/healthz"  # type: ignore[attr-defined]
    assert len(stream.getvalue().splitlines()) == 1


async def test_a_failed_write_is_reported_as_logging_reports_it(
    http: httpx.AsyncClient,
    serve_logging: tuple[str, io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As `StreamHandler.emit`: `handleError` prints the error and the record on stderr, and
    the request is answered."""
    _, stream = serve_logging
    stream.close()
    assert (await http.get("/healthz")).status_code == 200
    stderr = capsys.readouterr().err
    assert "--- Logging error ---" in stderr
    assert "I/O operation on closed file" in stderr
