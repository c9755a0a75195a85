"""How commands print their results: tables, `key: value` lines, JSON. Times are ISO 8601 UTC
to the second (`2026-11-26T18:00:00Z`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(help: str) -> Callable[[F], F]:  # click's own name for it
    """`--json`: the command's result as JSON on stdout; stderr then carries one JSON object
    (cli/report.py). Every command but `serve` has it."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC to the second, e.g. 2026-11-26T18:00:00Z."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def print_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    """A JSON list of `rows`, or a table of their `columns` (a header, then one row each)."""
    if as_json:
        print_json(rows)
        return
    cells = [[cell(row[column]) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(c[i]) for c in cells]) for i, column in enumerate(columns)]
    click.echo(
        "  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns)).rstrip()
    )
    for line in cells:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


def print_fields(fields: Mapping[str, Any], as_json: bool) -> None:
    """One object: JSON, or one `name: value` line per field."""
    if as_json:
        print_json(dict(fields))
        return
    width = max(len(name) for name in fields) + 1
    for name, value in fields.items():
        click.echo(f"{name + ':':<{width}} {cell(value)}")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
