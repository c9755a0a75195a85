"""`serve` with a METRICS_PORT that is already taken stops at once with one line naming the
setting, whether one process serves the port (one worker) or the supervisor does (several)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, assert_one_line_error, free_port

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
