"""`audit tail --follow` reads by id; PostgreSQL can make a later id visible before an earlier
one commits. The cursor prints every event once, waits a while for a gap, then moves past it."""

from __future__ import annotations

from datetime import UTC, datetime

from authserver.cli.audit import GAP_WAIT_SECONDS, Cursor
from authserver.store.audit import AuditRecord


def rec(id_: int) -> AuditRecord:
    return AuditRecord(
        id_,
        datetime(2026, 11, 26, tzinfo=UTC),
        "login.success",
        "success",
        None,
        None,
        None,
        None,
        {},
    )


def ids(records: list[AuditRecord]) -> list[int]:
    return [record.id for record in records]


def test_contiguous_events_are_printed_once_and_the_cursor_moves_past_them() -> None:
    cursor = Cursor(10)
    assert ids(cursor.take([rec(11), rec(12)], now=0)) == [11, 12]
    assert cursor.position == 12
    assert ids(cursor.take([rec(13)], now=1)) == [13]


def test_an_event_beyond_a_gap_is_printed_at_once_and_the_late_one_when_it_commits() -> None:
    cursor = Cursor(10)
    assert ids(cursor.take([rec(12)], now=0)) == [12]
    assert cursor.position == 10  # 11 may still commit
    assert ids(cursor.take([rec(12)], now=1)) == []  # re-read, not re-printed
    assert ids(cursor.take([rec(11), rec(12), rec(13)], now=2)) == [11, 13]
    assert cursor.position == 13


def test_a_gap_that_never_fills_is_given_up_after_the_wait() -> None:
    cursor = Cursor(10)
    cursor.take([rec(12)], now=0)
    cursor.take([rec(12)], now=GAP_WAIT_SECONDS - 0.1)
    assert cursor.position == 10
    cursor.take([rec(12)], now=GAP_WAIT_SECONDS)
    assert cursor.position == 12
    assert ids(cursor.take([rec(13)], now=GAP_WAIT_SECONDS + 1)) == [13]
