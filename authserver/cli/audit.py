"""`audit tail [-n N] [--follow] [--json]`: read the audit trail."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from authserver.cli import common
from authserver.cli.output import json_option

if TYPE_CHECKING:
    from authserver.store.audit import AuditRecord
    from authserver.store.db import Database

POLL_SECONDS = 1.0
# PostgreSQL hands out ids before commit, so a later id can become visible first. A gap in the
# ids is waited for this long before --follow moves past it (a rolled-back insert leaves a
# permanent gap; single-statement inserts commit in milliseconds).
GAP_WAIT_SECONDS = 5.0


@click.group()
def audit() -> None:
    """The audit trail (append-only)."""


@audit.command("tail")
@click.option(
    "-n",
    "--lines",
    "count",
    default=20,
    show_default=True,
    type=click.IntRange(0),
    help="How many of the latest events to print.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they arrive.")
@json_option("One JSON object per line.")
def audit_tail(count: int, follow: bool, as_json: bool) -> None:
    """Print the last events, oldest first; with --follow, keep printing until interrupted."""
    from authserver.cli.interrupt import StopRequest
    from authserver.store import audit as audit_store

    # First of all: from here on Ctrl-C is a request to stop, never an exception (interrupt.py).
    stop = StopRequest.install() if follow else None
    settings = common.load()

    async def work(db: Database) -> None:
        records = await audit_store.latest(db, count)
        for record in records:
            _print(record, as_json)
        if stop is None:
            return
        newest = records[-1].id if records else await _newest_id(db)
        cursor = Cursor(newest)
        while not await stop.wait(POLL_SECONDS):  # Ctrl-C ends --follow quietly (exit 0)
            for record in cursor.take(await audit_store.after(db, cursor.position)):
                _print(record, as_json)

    common.run(settings, work)


async def _newest_id(db: Database) -> int:
    from authserver.store import audit as audit_store

    latest = await audit_store.latest(db, 1)
    return latest[0].id if latest else 0


class Cursor:
    """Where --follow has read up to: every id up to `position` has been printed or given up on.
    Ids beyond a gap are printed at once and remembered, so none is printed twice."""

    def __init__(self, position: int) -> None:
        self.position = position
        self._ahead: set[int] = set()
        self._gap_since: float | None = None

    def take(self, records: list[AuditRecord], now: float | None = None) -> list[AuditRecord]:
        moment = time.monotonic() if now is None else now
        fresh = [r for r in records if r.id > self.position and r.id not in self._ahead]
        self._ahead.update(r.id for r in fresh)
        self._advance()
        if not self._ahead:
            self._gap_since = None
        elif self._gap_since is None:
            self._gap_since = moment
        elif moment - self._gap_since >= GAP_WAIT_SECONDS:
            self.position = min(self._ahead) - 1  # give up on the missing ids
            self._advance()
            self._gap_since = moment if self._ahead else None
        return fresh

    def _advance(self) -> None:
        while self.position + 1 in self._ahead:
            self.position += 1
            self._ahead.discard(self.position)


def _print(record: AuditRecord, as_json: bool) -> None:
    from authserver.cli.audit_format import json_line, text_line

    click.echo(json_line(record) if as_json else text_line(record))
