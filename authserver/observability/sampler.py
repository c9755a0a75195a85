"""Keeping the gauges fresh and serving METRICS_PORT for the app's lifetime.

Gauges (signing-key age, pool use) are sampled every SAMPLE_INTERVAL, so that with several workers
a scrape answered by one of them reports every worker's current values; the worker that answers
`/metrics` samples itself once more first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from authserver.observability.metrics import forget_this_process, sample, start_metrics_server
from authserver.services import Services

log = logging.getLogger("authserver")

# How often each worker refreshes its gauges for scrapes it does not answer itself.
SAMPLE_INTERVAL = 2.0


def sample_now(svc: Services) -> None:
    sample(
        svc.metrics,
        key_activated_at=svc.keys.activated_at,
        pool=svc.db.pool_stats(),
        now=time.time(),
    )


@contextlib.asynccontextmanager
async def metrics_running(svc: Services) -> AsyncIterator[None]:
    """For the app's lifetime: keep the gauges fresh, serve METRICS_PORT when this process is
    the only one (with several workers `serve`'s supervisor serves it), clean up at the end."""
    address = svc.settings.metrics_address
    server = None
    if address is not None and svc.metrics.multiprocess_dir is None:
        server = start_metrics_server(*address, svc.metrics.registry)
    sampler = asyncio.create_task(_sample_forever(svc), name="authserver-metrics-sampler")
    try:
        yield
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        if server is not None:
            await asyncio.to_thread(server.close)
        forget_this_process(svc.metrics)


async def _sample_forever(svc: Services) -> None:
    while True:
        try:
            sample_now(svc)
        except Exception:  # a metrics hiccup must never stop the server
            log.exception("metrics sampling failed")
        await asyncio.sleep(SAMPLE_INTERVAL)
