"""Prometheus metrics, in a registry owned by the app (SPEC "Operations").

With several uvicorn workers (`serve --workers N`) every worker is its own process with its own
counters. `serve` then runs prometheus-client's multiprocess mode: it points
PROMETHEUS_MULTIPROC_DIR at a private directory before the workers start, each worker writes its
values to memory-mapped files there, and a scrape (answered by whichever worker, or by `serve`'s
own process on METRICS_PORT) adds them up. So `/metrics` shows the numbers of the whole `serve`,
not of the worker that happened to answer. Gauges say how they combine: the pool gauges are summed
over the live workers, the signing-key age is the most recently written value.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from authserver.store.db import PoolStats

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Files of gauges that only count while their process lives: gauge_livesum_<pid>.db, ...
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    token_requests: Counter
    token_duration: Histogram
    refresh_reuse: Counter
    login_refused: Counter
    signing_key_age: Gauge
    password_hash_seconds: Histogram
    http_duration: Histogram
    pool_size: Gauge
    pool_checked_out: Gauge
    pool_overflow: Gauge
    multiprocess_dir: str | None  # set: values live in files shared by every worker
    # Labelled children by (metric, label values): prometheus-client's `labels()` validates the
    # values, builds a key and takes a lock on every call. Callers pass bounded label values;
    # the bound below only keeps a mistake from growing the cache for ever.
    _children: dict[tuple[object, ...], Any] = field(
        default_factory=dict, repr=False, compare=False
    )

    def observe_token_request(self, grant: str, outcome: str, seconds: float) -> None:
        """One token endpoint request: counted by grant and outcome, timed by grant (the
        known grants or "invalid"; OAuth error codes, fixed strings of ours)."""
        self._child(self.token_requests, grant, outcome).inc()
        self._child(self.token_duration, grant).observe(seconds)

    def observe_http_request(self, method: str, path: str, status: int, seconds: float) -> None:
        """One answered HTTP request's latency; `method` and `path` already bounded by the
        caller (http/request_log.py)."""
        self._child(self.http_duration, method, path, status).observe(seconds)

    def _child(self, metric: Any, *values: object) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= _MAX_CHILDREN:
                self._children.clear()
            child = self._children[key] = metric.labels(*(str(value) for value in values))
        return child


_MAX_CHILDREN = 1024  # far above the label combinations the server produces


def multiprocess_dir() -> str | None:
    """The multiprocess directory of this process, if prometheus-client runs in that mode.

    prometheus-client reads the variable once, when it is first imported, so it must be set
    before the process starts (as `serve` does for its workers).
    """
    return os.environ.get(MULTIPROCESS_ENV) or None


def make_metrics() -> Metrics:
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=registry,
        token_requests=Counter(
            "authserver_token_requests",
            "Token endpoint requests by grant type and outcome (success or the OAuth error code).",
            ["grant", "outcome"],
            registry=registry,
        ),
        token_duration=Histogram(
            "authserver_token_request_duration_seconds",
            "Time to answer a token endpoint request, by grant type.",
            ["grant"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        ),
        refresh_reuse=Counter(
            "authserver_refresh_reuse_detected",
            "Rotated refresh tokens presented again (each revokes its family).",
            registry=registry,
        ),
        login_refused=Counter(
            "authserver_login_refused",
            "Password attempts refused by the login limits (429), without a check or a row each.",
            registry=registry,
        ),
        signing_key_age=Gauge(
            "authserver_signing_key_age_seconds",
            "Seconds since the current signing key became current.",
            registry=registry,
            multiprocess_mode="livemostrecent",
        ),
        password_hash_seconds=Histogram(
            "authserver_password_hash_seconds",
            "Time to verify a password (argon2id), including the dummy hash for unknown users.",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=registry,
        ),
        http_duration=Histogram(
            "authserver_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route path (`other` for unknown paths) "
            "and status.",
            ["method", "path", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        pool_size=Gauge(
            "authserver_database_pool_size",
            "Connections the database pool may hold (DATABASE_POOL_SIZE; summed over workers).",
            registry=registry,
            multiprocess_mode="livesum",
        ),
        pool_checked_out=Gauge(
            "authserver_database_pool_checked_out",
            "Pooled database connections in use by a request right now.",
            registry=registry,
            multiprocess_mode="livesum",
        ),
        pool_overflow=Gauge(
            "authserver_database_pool_overflow",
            "Connections open beyond the pool size (always 0 while the pool has no overflow).",
            registry=registry,
            multiprocess_mode="livesum",
        ),
        multiprocess_dir=multiprocess_dir(),
    )


def sample(
    metrics: Metrics, *, key_activated_at: datetime | None, pool: PoolStats | None, now: float
) -> None:
    """Set the gauges that describe state rather than count events (called at every scrape
    and, for the other workers and the separate metrics port, every few seconds)."""
    if key_activated_at is not None:
        metrics.signing_key_age.set(max(0.0, now - key_activated_at.timestamp()))
    if pool is not None:
        metrics.pool_size.set(pool.size)
        metrics.pool_checked_out.set(pool.checked_out)
        metrics.pool_overflow.set(pool.overflow)


def exposition(metrics: Metrics) -> bytes:
    """The Prometheus text format: this app's registry, or every worker's files added up."""
    if metrics.multiprocess_dir is None:
        return generate_latest(metrics.registry)
    return generate_latest(multiprocess_registry(metrics.multiprocess_dir))


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry that reads the files of every worker (live or dead) under `path`.

    Live-only gauges of a worker that died without cleaning up (SIGKILL, OOM) would otherwise
    be counted forever, so their files are removed first.
    """
    forget_dead_processes(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return registry


def forget_dead_processes(path: str) -> None:
    for entry in Path(path).iterdir():
        match = _LIVE_GAUGE_FILE.match(entry.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):  # another scrape got there first
                mark_process_dead(int(match.group(1)), path)  # type: ignore[no-untyped-call]


def forget_this_process(metrics: Metrics) -> None:
    """On a clean worker exit: its live gauges stop counting (its counters stay summed)."""
    if metrics.multiprocess_dir is not None:
        mark_process_dead(os.getpid(), metrics.multiprocess_dir)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class MetricsServer:
    """/metrics on its own port (METRICS_PORT), served from a thread by prometheus-client."""

    httpd: WSGIServer
    thread: threading.Thread

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(host: str, port: int, registry: Collector) -> MetricsServer:
    """Raises OSError when the port cannot be bound."""
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(httpd, thread)
