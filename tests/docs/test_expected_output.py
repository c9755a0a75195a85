"""The wildcard convention of expected outputs (CONTRIBUTING.md, "The documentation")."""

from __future__ import annotations

import pytest

from tests.docs.expected_output import output_matches


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ("created user alice (id …)", "created user alice (id 024da017-7e9c)\n"),
        ('{"client_id": "…", "client_secret": "…"}', '{"client_id": "a", "client_secret": "b"}'),
        ("…Z login.success", "2026-12-04T15:10:59Z login.success"),
        ("HTTP/1.1 200 OK\ndate: …", "HTTP/1.1 200 OK\r\ndate: Fri, 04 Dec 2026\r\n\r\n"),
        ("first\n…\nlast", "first\nsecond\nthird\nlast"),
        ("first\n…\nlast", "first\nlast"),
        ("", "\n\n"),
        ("…", ""),
    ],
)
def test_the_wildcard_stands_for_what_differs_from_run_to_run(expected: str, actual: str) -> None:
    assert output_matches(expected, actual)


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ('"scope": "profile:read orders"', '"scope": "profile:read"'),
        ("created user alice (id …)", "created user bob (id 1)"),
        ("one line …", "one line\nand another"),  # within a line, never across lines
        ("first\nlast", "first\nmiddle\nlast"),
        ("", "something"),
        ("a.b", "axb"),  # everything but `…` is literal
    ],
)
def test_everything_else_must_be_exactly_as_shown(expected: str, actual: str) -> None:
    assert not output_matches(expected, actual)
