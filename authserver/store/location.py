"""Where a DATABASE_URL points, for the operator: a label to show (never the password; an SQLite
file as its absolute path, since a relative one depends on the working directory), and whether
an SQLite file is there at all (opening one that is not would create it)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_file(database_url: str) -> Path | None:
    """The absolute path of an SQLite database file; None for PostgreSQL or in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).absolute()


def database_label(database_url: str) -> str:
    """The URL as it can be shown: password masked, an SQLite path made absolute."""
    url = make_url(database_url)
    path = sqlite_file(database_url)
    if path is not None:
        url = url.set(database=str(path))
    return url.render_as_string(hide_password=True)


def missing_sqlite_file(database_url: str) -> Path | None:
    """The SQLite file DATABASE_URL names, if it does not exist (else None)."""
    path = sqlite_file(database_url)
    return path if path is not None and not path.exists() else None
