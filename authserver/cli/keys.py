"""`keys list`."""

from __future__ import annotations

import click

from authserver.cli import common
from authserver.store import keys as key_store


@click.group()
def keys() -> None:
    """Signing keys."""


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    """Public facts about each key; never private material."""
    rows = [
        {
            "kid": key.kid,
            "state": key.state,
            "alg": key.alg,
            "size": key.size,
            "created_at": common.iso(key.created_at),
            "activated_at": common.iso(key.activated_at),
            "retired_at": common.iso(key.retired_at),
        }
        for key in common.run(common.load(), key_store.list_keys)
    ]
    common.print_rows(rows, as_json, ["kid", "state", "alg", "size", "created_at", "activated_at"])
