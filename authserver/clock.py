"""The one clock of production code. Tests inject their own through `create_app`; the CLI reads
this one (a module of its own, so that a command need not import the server to know the time)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
