"""What `serve` runs: uvicorn with the server's logging, prometheus-client's multiprocess mode
and METRICS_PORT set up around it, and a graceful stop that exits 0. Imported by `serve` only
(it loads uvicorn, prometheus-client and, through the keys, joserfc)."""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType

import click
import uvicorn
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from authserver.observability.logs import logging_config
from authserver.observability.metrics import (
    MULTIPROCESS_ENV,
    MetricsServer,
    multiprocess_registry,
    start_metrics_server,
)
from authserver.settings import Settings

# Seconds SIGTERM waits for requests in flight before cancelling them (then the pool is closed).
GRACEFUL_SHUTDOWN_SECONDS = 10


def announce_in_log(settings: Settings, database: str) -> None:
    """`serve`'s line naming its database and issuer, as its first log line (JSON with
    LOG_FORMAT=json, so that a log pipeline parses every line; the fields `database` and
    `issuer` carry the values)."""
    logging.config.dictConfig(logging_config(settings.log_format))
    message = f"using database {database}, issuer {settings.issuer}"
    fields = {"message": message, "database": database, "issuer": settings.issuer}
    logging.getLogger("authserver").info(message, extra={"fields": fields})


def run_server(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve until SIGTERM or Ctrl-C (the signing keys must exist already)."""
    with _metrics_directory(workers) as metrics_dir, _metrics_port(settings, metrics_dir):
        if workers == 1:
            _exit_zero_after_graceful_stop()
        uvicorn.run(
            "authserver.app:app_from_environment",
            log_config=logging_config(settings.log_format),
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,  # X-Forwarded-For is handled by TRUSTED_PROXIES, not uvicorn
            server_header=False,
            http="authserver.http.protocol:ServerHttpProtocol",  # http/protocol.py
            access_log=False,  # our own access log (authserver.access) never logs query strings
            log_level="info",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            # A worker imports SQLAlchemy, joserfc and cryptography before it can answer the
            # supervisor's ping: about 3 s on a loaded 2-core machine, past uvicorn's default 5 s.
            timeout_worker_healthcheck=30,
        )


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[str | None]:
    """With several workers, prometheus-client's multiprocess mode (see
    authserver.observability.metrics): PROMETHEUS_MULTIPROC_DIR is set here, before uvicorn
    spawns the workers, which inherit it.

    An operator's own PROMETHEUS_MULTIPROC_DIR is used (its old files removed, as
    prometheus-client requires); otherwise a private directory is made and removed at exit.
    """
    given = os.environ.get(MULTIPROCESS_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield given
        return
    if workers == 1:
        yield None
        return
    made = tempfile.mkdtemp(prefix="authserver-metrics-")
    os.environ[MULTIPROCESS_ENV] = made
    try:
        yield made
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(made, ignore_errors=True)


@contextlib.contextmanager
def _metrics_port(settings: Settings, metrics_dir: str | None) -> Iterator[None]:
    """METRICS_PORT in multiprocess mode is served here, by the supervisor, from every worker's
    files (a single process serves it from its app instead: authserver.http.health)."""
    address = settings.metrics_address
    if address is None:
        yield
        return
    if metrics_dir is None:
        # One process: its app opens the port at start-up, where a failure would only be a
        # logged traceback. Try the port here first, for a one-line error in the usual case.
        _try_to_bind(*address)
        yield
        return
    try:
        server: MetricsServer = start_metrics_server(*address, _AggregatedRegistry(metrics_dir))
    except OSError as exc:
        raise _cannot_listen(*address, exc) from None
    try:
        yield
    finally:
        server.close()


def _try_to_bind(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the real server
            probe.bind((host, port))
    except OSError as exc:
        raise _cannot_listen(host, port, exc) from None


def _cannot_listen(host: str, port: int, exc: OSError) -> click.ClickException:
    return click.ClickException(
        f"metrics_port: cannot listen on {host}:{port} ({exc.strerror or exc})"
    )


class _AggregatedRegistry(Collector):
    """What prometheus-client's server collects at each scrape: every worker's files, read
    afresh (a fixed registry would keep the gauges of workers that have since died)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        return multiprocess_registry(self.path).collect()


def _exit_zero_after_graceful_stop() -> None:
    """uvicorn (one worker, no supervisor) re-raises the SIGTERM or SIGINT it handled once it has
    shut down gracefully, with the handler that was installed before it started: by default that
    kills the process with the signal (exit status 143) or raises KeyboardInterrupt. A graceful
    stop is a success, so that previous handler ends the process with status 0. A signal that
    arrives before uvicorn has taken over (while the keys are checked) stops it the same way.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
