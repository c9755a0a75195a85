"""`serve` and `db upgrade`."""

from __future__ import annotations

import copy

import click

from authserver.cli import common
from authserver.keys import ensure_signing_keys, load_kek
from authserver.schema import upgrade
from authserver.services import utc_now
from authserver.settings import Settings
from authserver.store.db import Database

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Serve HTTP. The embedded SQLite default migrates itself; PostgreSQL must be upgraded."""
    import uvicorn

    settings = common.load()
    _ensure_signing_keys(settings)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["authserver"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    log_config["formatters"]["default"]["fmt"] = LOG_FORMAT
    uvicorn.run(
        "authserver.app:app_from_environment",
        log_config=log_config,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,  # X-Forwarded-For is not trusted unless configured
        server_header=False,
        access_log=False,  # request logs must never carry tokens from query strings
        log_level="info",
        timeout_graceful_shutdown=10,
        # A worker imports SQLAlchemy, joserfc and cryptography before it can answer the
        # supervisor's ping: about 3 s on a loaded 2-core machine, past uvicorn's default 5 s.
        timeout_worker_healthcheck=30,
    )


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to the latest revision and make sure signing keys exist."""
    settings = common.load()
    with common.one_line_errors():
        upgrade(settings.database_url)
    _ensure_signing_keys(settings)
    click.echo("database schema is up to date")


def _ensure_signing_keys(settings: Settings) -> None:
    """SPEC: `db upgrade` and `serve` each make sure a `current` and a `next` key exist (and a
    wrong KEY_ENCRYPTION_KEY stops them before anything is served)."""

    async def ensure(db: Database) -> None:
        await ensure_signing_keys(db, settings, load_kek(settings), utc_now())

    common.run(settings, ensure)
