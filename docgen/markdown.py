"""The little Markdown the generators write: tables and inline code."""

from __future__ import annotations

from collections.abc import Sequence


def code(text: str) -> str:
    """Inline code, with a fence long enough for backticks inside."""
    fence = "``" if "`" in text else "`"
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def cell(text: str) -> str:
    """One table cell: on one line, with `|` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
