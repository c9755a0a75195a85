"""METRICS_PORT with real `serve` processes: the metrics are there and not on the public port,
whether one process serves the port (one worker) or the supervisor does (several); a port that
is already taken stops `serve` at once with one line naming the setting."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Cli, ServeFactory, assert_one_line_error, free_port

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_metrics_port_stops_serve_with_one_line(
    tmp_path: Path, cli: Cli, workers: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(
            "serve",
            "--port",
            str(free_port()),
            "--workers",
            workers,
            env={"AUTHSERVER_METRICS_PORT": str(port)},
            timeout=60,
        )
    assert_one_line_error(result, "metrics_port", str(port))


@pytest.mark.parametrize("workers", [1, 2])
def test_the_metrics_are_on_the_metrics_port_and_not_on_the_public_one(
    tmp_path: Path, serve: ServeFactory, workers: int
) -> None:
    port = free_port()
    server = serve(tmp_path, env={"AUTHSERVER_METRICS_PORT": str(port)}, workers=workers)
    public = httpx.get(f"{server.base_url}/metrics", timeout=10)
    assert public.status_code == 404
    assert public.json()["error"] == "not_found"
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert 'authserver_http_request_duration_seconds_count{method="GET",path="/metrics"' in (
        scraped.text
    )  # the public port's 404 above, counted
