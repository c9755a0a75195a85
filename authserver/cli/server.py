"""`serve` and `db upgrade`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType

import click
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from authserver.cli import common
from authserver.keys.bootstrap import ensure_signing_keys
from authserver.keys.kek import load_keks
from authserver.observability.logs import logging_config
from authserver.observability.metrics import (
    MULTIPROCESS_ENV,
    MetricsServer,
    multiprocess_registry,
    start_metrics_server,
)
from authserver.services import utc_now
from authserver.settings import Settings
from authserver.store.db import Database
from authserver.store.migrate import upgrade

# Seconds SIGTERM waits for requests in flight before cancelling them (then the pool is closed).
GRACEFUL_SHUTDOWN_SECONDS = 10


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (uvicorn); one per core.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve HTTP. The embedded SQLite default migrates itself; PostgreSQL must be upgraded.

    Makes sure a `current` and a `next` signing key exist before serving. The access log never
    has a query string, token or secret.

    SIGTERM (or Ctrl-C) stops accepting connections, lets the requests in flight finish (up to
    10 s), closes the database pool and exits 0.
    """
    import uvicorn

    settings = common.load()
    _ensure_signing_keys(settings)
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
            http="authserver.http.header_limit:HeaderLimitedHttpTools",  # 431 past 16 KiB
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


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to the latest revision and make sure signing keys exist.

    Decrypts every stored signing key first, so a wrong KEY_ENCRYPTION_KEY stops it before
    anything is written. Concurrent runs take turns (a PostgreSQL advisory lock, a file lock on
    SQLite). Prints `database schema is up to date`.
    """
    settings = common.load()
    with common.one_line_errors():
        upgrade(settings.database_url)
    _ensure_signing_keys(settings)
    click.echo("database schema is up to date")


def _ensure_signing_keys(settings: Settings) -> None:
    """SPEC: `db upgrade` and `serve` each make sure a `current` and a `next` key exist (and a
    wrong KEY_ENCRYPTION_KEY stops them before anything is served)."""

    async def ensure(db: Database) -> None:
        await ensure_signing_keys(db, settings, load_keks(settings), utc_now())

    common.run(settings, ensure)
