"""What the access log keeps between requests (http/request_log.py, AccessLog): the logged path
of a known route is cached, a path no route matched is not, so a token a client put in an
unknown path is not held in the process after its request."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from authserver.http.request_log import AccessLog
from authserver.tokens.opaque import REFRESH_TOKEN_PREFIX


def scope(raw_path: bytes, endpoint: object | None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": raw_path.decode(),
        "raw_path": raw_path,
        "headers": [],
        "client": ("127.0.0.1", 5000),
        "endpoint": endpoint,
    }


@pytest.fixture(autouse=True)
def _access_lines_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="authserver.access")


def cached_paths(access_log: AccessLog) -> list[bytes]:
    return list(access_log._logged_paths._entries)  # the cache itself: nothing else shows it


def test_a_known_routes_path_is_cached() -> None:
    access_log = AccessLog()
    access_log.record(scope(b"/.well-known/jwks.json", endpoint=object()), 200, 0.001, "id-1")
    assert cached_paths(access_log) == [b"/.well-known/jwks.json"]


def test_an_unknown_path_with_a_token_is_not_kept_after_its_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access_log = AccessLog()
    secret = f"/x/{REFRESH_TOKEN_PREFIX}S3cretS3cretS3cret".encode()
    access_log.record(scope(secret, endpoint=None), 404, 0.001, "id-2")
    assert f"{REFRESH_TOKEN_PREFIX}[redacted]" in caplog.text  # the line was written
    assert cached_paths(access_log) == []
