"""Comparing a command's output with the expected output the page shows after it.

In an expected output, `…` matches any run of characters within a line, and a line that is only
`…` matches any number of lines. Line ends (CR LF from `curl -i`), trailing blanks and blank
lines at the end do not count.
"""

from __future__ import annotations

import difflib
import re

WILDCARD = "…"


def expected_pattern(expected: str) -> re.Pattern[str]:
    """`…` matches any run of characters within a line; a line that is only `…`, any lines."""
    parts: list[str] = []
    expected = normalize(expected)
    for line in expected.split("\n") if expected else []:
        if line.strip() == WILDCARD:
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(piece) for piece in line.split(WILDCARD)) + r"\n")
    return re.compile("".join(parts))


def normalize(text: str) -> str:
    """Line ends without `\\r` or trailing blanks; no blank lines at the end."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def output_matches(expected: str, actual: str) -> bool:
    body = normalize(actual)
    return expected_pattern(expected).fullmatch(body + "\n" if body else "") is not None


def diff(expected: str, actual: str) -> str:
    return "\n".join(
        difflib.unified_diff(
            normalize(expected).splitlines(),
            normalize(actual).splitlines(),
            "expected (the page)",
            "actual",
            lineterm="",
        )
    )
