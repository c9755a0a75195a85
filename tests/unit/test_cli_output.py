"""Small pieces of the CLI's output plumbing that the e2e tests reach only indirectly."""

from __future__ import annotations

import pytest

from authserver.cli.report import json_requested
from authserver.cli.tokens import PURGE_BATCH_SIZE
from authserver.store.location import database_label
from authserver.store.purge import DEFAULT_BATCH_SIZE


def test_purge_batch_size_default_is_the_stores() -> None:
    assert PURGE_BATCH_SIZE == DEFAULT_BATCH_SIZE


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["users", "list", "--json"], True),
        (["--json", "users", "list"], True),  # a usage error, still reported as JSON
        (["users", "list"], False),
        (["users", "create", "--", "--json"], False),  # a name, after the end of options
    ],
)
def test_json_is_requested_by_the_option_anywhere_before_a_double_dash(
    args: list[str], wanted: bool
) -> None:
    assert json_requested(args) is wanted


def test_a_database_label_never_shows_the_password() -> None:
    label = database_label("postgresql+asyncpg://auth:pa%40ss-w0rd@db.internal:5432/authserver")
    assert label == "postgresql+asyncpg://auth:***@db.internal:5432/authserver"


def test_a_relative_sqlite_path_is_shown_absolute() -> None:
    label = database_label("sqlite+aiosqlite:///var/authserver.db")
    assert label.startswith("sqlite+aiosqlite:////")
    assert label.endswith("/var/authserver.db")
