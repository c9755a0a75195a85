"""`authserver check`: can this host serve? For deploy pipelines, before the new version takes
traffic: one line per check (`ok`, `FAIL`, or `skip` when an earlier failure leaves nothing to
check), exit status 1 if anything is not ok. It reads, never writes: no database, schema, key or
key file is created.

The checks, in order: the settings load (file and `AUTHSERVER_*` variables valid); the issuer is
a URL resource servers can trust (https, or http on loopback for development); the database is
reachable and at the head revision; the key-encryption key opens every stored signing key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from authserver.cli.exits import CliError, as_cli_error
from authserver.cli.output import json_option, print_json
from authserver.cli.report import current_report

if TYPE_CHECKING:
    from authserver.models import SigningKeyRecord
    from authserver.settings import Settings

OK, FAIL, SKIP = "ok", "FAIL", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


@click.command()
@json_option(
    'One JSON object {"ok": BOOL, "checks": [{"check": ..., "status": "ok"|"fail"|"skip", '
    '"detail": ...}]}.'
)
def check(as_json: bool) -> None:
    """Check that this host can serve: settings valid, issuer usable, database reachable and
    at the head revision, KEY_ENCRYPTION_KEY decrypting every stored signing key. One line per
    check; exit status 1 if any is not ok. Writes nothing: run it in a deploy pipeline before
    the new version takes traffic."""
    checks = _run_checks()
    failed = [c for c in checks if c.status != OK]
    if as_json:
        print_json(
            {
                "ok": not failed,
                "checks": [
                    {"check": c.name, "status": c.status.lower(), "detail": c.detail}
                    for c in checks
                ],
            }
        )
    else:
        for c in checks:
            click.echo(f"{c.status:<4}  {c.name}: {c.detail}")
    if failed:
        raise CliError(f"{len(failed)} of {len(checks)} checks did not pass")


def _run_checks() -> list[Check]:
    from authserver.settings import ConfigError, config_path, load_settings
    from authserver.store.location import database_label

    try:
        settings = load_settings()
    except ConfigError as exc:
        return [
            Check("settings", FAIL, str(exc)),
            *(Check(name, SKIP, "the settings do not load") for name in _LATER),
        ]
    current_report().announce(database_label(settings.database_url), settings.issuer)
    path = config_path()
    variables = sorted(name for name in os.environ if name.upper().startswith("AUTHSERVER_"))
    source = f"file {path}" if path is not None else "no configuration file"
    checks = [
        Check("settings", OK, f"{source}, {len(variables)} AUTHSERVER_* variables"),
        _issuer(settings),
    ]
    database = _database(settings)
    checks.append(database)
    if database.status != OK:
        checks.append(Check("signing keys", SKIP, "the database cannot be read"))
    else:
        checks.append(_signing_keys(settings))
    return checks


_LATER = ("issuer", "database", "signing keys")


def _issuer(settings: Settings) -> Check:
    """https; plain http only on loopback, where nothing crosses a network."""
    from urllib.parse import urlsplit

    issuer = settings.issuer
    parts = urlsplit(issuer)
    if parts.scheme == "https":
        return Check("issuer", OK, issuer)
    if _loopback(parts.hostname or ""):
        return Check("issuer", OK, f"{issuer} (plain http on loopback: development only)")
    return Check(
        "issuer",
        FAIL,
        f"{issuer} is plain http on a network host: resource servers would fetch the signing "
        "keys unprotected (authserver.verify refuses such an issuer); use https",
    )


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _database(settings: Settings) -> Check:
    from authserver.store.location import database_label, missing_sqlite_file

    label = database_label(settings.database_url)
    if missing_sqlite_file(settings.database_url) is not None:
        return Check("database", FAIL, f"{label} does not exist: run `authserver db upgrade`")
    import asyncio

    from authserver.store.db import open_database
    from authserver.store.schema import check_at_head

    async def revision() -> str:
        db = open_database(settings)
        try:
            return await check_at_head(db)
        finally:
            await db.dispose()

    try:
        head = asyncio.run(revision())
    except Exception as exc:
        error = as_cli_error(exc)
        if error is None:
            raise
        return Check("database", FAIL, f"{label}: {error.format_message()}")
    return Check("database", OK, f"{label}, schema at revision {head} (the latest)")


def _signing_keys(settings: Settings) -> Check:
    import asyncio

    from authserver.keys.kek import load_keks
    from authserver.keys.verification import summary, undecryptable

    try:
        keks = load_keks(settings, create=False)
        records = asyncio.run(_stored_keys(settings))
    except Exception as exc:
        error = as_cli_error(exc)
        if error is None:
            raise
        return Check("signing keys", FAIL, error.format_message())
    where = (
        "KEY_ENCRYPTION_KEY"
        if settings.key_encryption_key is not None
        else f"the KEK in {settings.key_encryption_key_file}"
    )
    source = f"{where} (KEK {keks.current.id})"
    if keks.previous:
        source += f" with {len(keks.previous)} previous KEK(s)"
    if not records:
        return Check("signing keys", OK, "none stored yet (`db upgrade` or `serve` creates them)")
    failed = undecryptable(records, keks)
    if failed:
        return Check("signing keys", FAIL, summary(failed, len(records)))
    states = ", ".join(f"{r.state} {r.kid}" for r in records if r.state in ("current", "next"))
    return Check("signing keys", OK, f"{source} decrypts all {len(records)} stored keys ({states})")


async def _stored_keys(settings: Settings) -> list[SigningKeyRecord]:
    from authserver.store.db import open_database
    from authserver.store.keys import list_keys

    db = open_database(settings)
    try:
        return await list_keys(db)
    finally:
        await db.dispose()
