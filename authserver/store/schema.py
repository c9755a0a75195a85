"""Which schema revision a database is at, and whether that is the one this code needs (the head
of `migrations/versions`).

Every CLI command and `serve` asks this, so it costs one SELECT of `alembic_version` and no
Alembic import (about 100 ms on its own): the head is read from the revision files themselves,
whose `revision = "…"` and `down_revision = …` lines Alembic writes (script.py.mako). A test
checks that this reading and Alembic's agree. Bringing the schema up to date stays Alembic's
job (store/migrate.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from authserver.store.db import Database

_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


class SchemaOutOfDate(Exception):
    """The database is not at the head revision; the message says what to run, in one line."""


class DatabaseRefused(Exception):
    """The database server refused us: no such database, or the login was refused (one line)."""


def refusal(exc: sa_exc.DBAPIError) -> DatabaseRefused | None:
    """What a connection error means to the operator, when it is the server saying no (rather
    than not answering, which is `dialect.unavailable`): SQLSTATE 3D000, or class 28."""
    state = getattr(exc.orig, "sqlstate", None) or ""
    if state == "3D000":
        return DatabaseRefused(
            "the database does not exist on the server: create it (CREATE DATABASE), then run "
            "`authserver db upgrade`; or check DATABASE_URL"
        )
    if state.startswith("28"):
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else state
        return DatabaseRefused(f"the database refused the login ({reason}); check DATABASE_URL")
    return None


def migrations_dir() -> Path:
    """Inside an installed wheel the revisions ship as `authserver/migrations`; in a checkout
    (editable install) they are the top-level `migrations/` folder."""
    package = Path(__file__).parent.parent  # authserver/
    packaged = package / "migrations"
    return packaged if packaged.is_dir() else package.parent / "migrations"


def _revision_graph() -> tuple[set[str], set[str]]:
    """Every revision in the files, and every revision some file names as its parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    return revisions, parents


def known_revisions() -> set[str]:
    return _revision_graph()[0]


def head_revision() -> str:
    """The one revision no other revision builds on."""
    revisions, parents = _revision_graph()
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise RuntimeError(f"migrations/versions has {len(heads)} heads ({heads}); expected one")
    return heads[0]


async def current_revision(db: Database) -> str | None:
    """The database's revision; None when it has no schema at all (no `alembic_version`)."""
    try:
        async with db.read() as conn:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    except sa_exc.DBAPIError as exc:
        if _no_version_table(exc):
            return None
        refused = refusal(exc)
        if refused is not None:
            raise refused from None
        raise
    return None if row is None else str(row[0])


def _no_version_table(exc: sa_exc.DBAPIError) -> bool:
    """PostgreSQL: undefined table (42P01); SQLite: "no such table: alembic_version"."""
    if getattr(exc.orig, "sqlstate", None) == "42P01":
        return True
    return "no such table: alembic_version" in str(exc.orig)


async def check_at_head(db: Database) -> str:
    """The head revision, if the database is at it; else SchemaOutOfDate saying what to do."""
    revision = await current_revision(db)
    head = head_revision()
    if revision == head:
        return head
    if revision is None:
        raise SchemaOutOfDate(
            "the database has no schema (no alembic_version table): run `authserver db upgrade`"
        )
    if revision not in known_revisions():
        raise SchemaOutOfDate(
            f"database schema is at revision {revision}, which this authserver does not know "
            f"(its newest is {head}): a newer authserver upgraded it; run that version"
        )
    raise SchemaOutOfDate(
        f"database schema is at revision {revision}, not {head}: run `authserver db upgrade`"
    )
