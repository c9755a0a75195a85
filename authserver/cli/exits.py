"""Exit statuses, and the expected failures that end a command with one line and one of them
(docs/reference/cli.md, "Exit status").

Every failure an operator can cause is expected: bad input, a name that is not there, a
database that is missing, out of date or unreachable, a key-encryption key that does not fit.
Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

ERROR = 1  # the command failed: bad input, configuration, database, keys
USAGE = 2  # click's: an unknown option, a missing argument
NOT_FOUND = 3  # the user, client or key named does not exist
EXISTS = 4  # what was to be created already exists
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class CliError(click.ClickException):
    """A failure to report in one line, with its exit status."""

    def __init__(self, message: str, exit_code: int = ERROR) -> None:
        super().__init__(message)
        # click declares exit_code a ClassVar, yet reads it from the instance it raised.
        self.exit_code = exit_code  # type: ignore[misc]


# (module, exception class, exit status), most specific first. The modules are looked up, never
# imported: an exception can only be an instance of a class whose module is already loaded, and
# importing, say, the store to test a configuration error would cost a command 0.3 s.
_EXPECTED: tuple[tuple[str, str, int], ...] = (
    ("authserver.settings", "ConfigError", ERROR),
    ("authserver.admin", "NotFound", NOT_FOUND),
    ("authserver.admin", "AlreadyExists", EXISTS),
    ("authserver.admin", "AdminError", ERROR),
    ("authserver.store.schema", "SchemaOutOfDate", ERROR),
    ("authserver.store.schema", "DatabaseRefused", ERROR),
    ("authserver.keys.kek", "KeyDecryptionError", ERROR),
    ("authserver.keys.ring", "NoSigningKey", ERROR),
    ("authserver.keys.lifecycle", "UnknownKey", NOT_FOUND),
    ("authserver.keys.lifecycle", "KeyLifecycleError", ERROR),
    ("authserver.store.keys", "KeyStateConflict", ERROR),
)


@contextmanager
def expected_errors() -> Iterator[None]:
    """Turn every expected failure into a CliError (one line, its exit status)."""
    try:
        yield
    except click.ClickException:
        raise
    except Exception as exc:
        error = as_cli_error(exc)
        if error is None:
            raise
        raise error from None


def as_cli_error(exc: BaseException) -> CliError | None:
    for module_name, class_name, exit_code in _EXPECTED:
        module = sys.modules.get(module_name)
        expected = getattr(module, class_name, None) if module is not None else None
        if isinstance(expected, type) and isinstance(exc, expected):
            return CliError(str(exc), exit_code)
    if isinstance(exc, _database_unavailable()):
        return CliError(f"database unavailable ({exc.__class__.__name__}); check DATABASE_URL")
    return None


def _database_unavailable() -> tuple[type[BaseException], ...]:
    """What means "database unavailable" for the dialect loaded: store/postgresql.py only for a
    PostgreSQL URL; an error of a driver never imported cannot have been raised."""
    postgresql = sys.modules.get("authserver.store.postgresql")
    if postgresql is not None:
        return tuple(postgresql.POSTGRESQL.unavailable)
    dialect = sys.modules.get("authserver.store.dialect")
    return tuple(dialect.SQLITE.unavailable) if dialect is not None else ()
