"""Knock-outs for `bench/ab.py --b-env`: B's server runs without one piece of its per-request
work, so that B / A is what that piece costs in the real server (bench/README.md, "Every
request's own work"). Never for a served deployment: what it removes is required.

    .venv/bin/python bench/ab.py --baseline . --scenario jwks \\
        --b-env PYTHONPATH=$PWD/bench/knockout --b-env KNOCKOUT=histogram

KNOCKOUT takes one or more of these names, comma-separated:
- record: the whole access record (the line and the latency histogram);
- line: the access line (the histogram stays);
- histogram: the latency histogram (the line stays);
- write: the line's write to stdout (it is still built);
- client-ip: the client IP of the line (a constant instead);
- gc-off: the garbage collector (`gc.disable()` at start);
- histogram-unlocked: prometheus-client's values without their lock (`MutexValue.inc`);
- histogram-dict: the latency histogram as a plain dict of bucket lists, no prometheus-client;
- unpaired: uvicorn's own transport instead of the paired writes (http/paired_writes.py).

Python imports `sitecustomize` at start-up from the first directory on its path that has one,
so this runs in B's server process only.
"""

from __future__ import annotations

import gc
import os
from typing import Any

_WHAT = set(filter(None, os.environ.get("KNOCKOUT", "").split(",")))

if _WHAT:
    from authserver.http import request_log
    from authserver.observability.metrics import Metrics

    def _nothing(*_args: Any) -> None:
        return None

    def _replace(owner: object, name: str, value: object) -> None:
        """Monkeypatch `owner.name` (a knock-out is nothing else)."""
        setattr(owner, name, value)

    if "record" in _WHAT:
        _replace(request_log.AccessLog, "record", _nothing)
    if "line" in _WHAT:
        _replace(request_log.log, "isEnabledFor", lambda _level: False)
    if "histogram" in _WHAT:
        _replace(Metrics, "observe_http_request", _nothing)
    if "client-ip" in _WHAT:
        _replace(request_log, "scope_client_ip", lambda _scope, _proxies: "127.0.0.1")
    if "write" in _WHAT:

        class _NoStream:
            def write(self, _text: str) -> None:
                return None

            def flush(self) -> None:
                return None

        _handler = request_log._direct_handler

        def _direct_handler_without_writes() -> Any:
            handler = _handler()
            if handler is not None and not isinstance(handler.stream, _NoStream):
                handler.stream = _NoStream()
            return handler

        _replace(request_log, "_direct_handler", _direct_handler_without_writes)
    if "gc-off" in _WHAT:
        gc.disable()
    if "histogram-unlocked" in _WHAT:
        from prometheus_client import values

        def _inc_unlocked(self: Any, amount: float) -> None:
            self._value += amount

        _replace(values.MutexValue, "inc", _inc_unlocked)
    if "histogram-dict" in _WHAT:
        import bisect

        from authserver.observability.metrics import LATENCY_BUCKETS

        _series: dict[tuple[str, str, int], list[float]] = {}

        def _observe_in_dict(_self: Any, method: str, path: str, status: int, s: float) -> None:
            counts = _series.get((method, path, status))
            if counts is None:
                counts = _series[(method, path, status)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            counts[bisect.bisect_left(LATENCY_BUCKETS, s)] += 1
            counts[-1] += s

        _replace(Metrics, "observe_http_request", _observe_in_dict)
    if "unpaired" in _WHAT:
        from authserver.http import protocol
        from authserver.http.header_limit import HeaderLimitedHttpTools

        _replace(
            protocol.ServerHttpProtocol, "connection_made", HeaderLimitedHttpTools.connection_made
        )
