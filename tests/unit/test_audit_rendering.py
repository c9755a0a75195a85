"""`audit tail` prints attacker-chosen text (security review, finding 7): a username tried at
/token, an address from X-Forwarded-For, a client's name. In text output, no value may forge a
field (`key=value` look-alikes, spaces, quotes) or drive the terminal (control characters,
escape sequences, bidi overrides, line breaks); with --json, the line is exact JSON that reads
back to the stored values."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime

import pytest

from authserver.cli.audit_format import json_line, text_line
from authserver.store.audit import AuditRecord

HOSTILE = [
    "alice ip=10.0.0.1 outcome=success",  # forges fields
    'alice" subject="x',  # breaks out of a quoted value
    "\x1b[2J\x1b[1;31mroot",  # clears the screen, colours the rest
    "admin\r\n2026-01-01T00:00:00Z login.success success actor=admin",  # forges a line
    "\u202enimda",  # right-to-left override: shows as "admin"
    "a\u2066b\u2069c\u200bd",  # isolates and a zero-width space
    "back\\slash",
    "tab\there",
    "nbsp\u00a0space",
    "line\u2028separator",
]


def record(actor: str, **detail: object) -> AuditRecord:
    return AuditRecord(
        7,
        datetime(2026, 11, 26, 18, 0, tzinfo=UTC),
        "login.failure",
        "failure",
        actor,
        "web",
        "203.0.113.7",
        None,
        dict(detail),
    )


def fields_of(line: str) -> list[str]:
    """Split a text line as a reader (or awk) would: at spaces outside double quotes."""
    parts, current, quoted, escaped = [], "", False, False
    for char in line:
        if escaped:
            current += char
            escaped = False
        elif char == "\\" and quoted:
            current += char
            escaped = True
        elif char == '"':
            current += char
            quoted = not quoted
        elif char == " " and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


@pytest.mark.parametrize("actor", HOSTILE)
def test_a_hostile_value_stays_one_field_on_one_line_with_nothing_invisible(actor: str) -> None:
    line = text_line(record(actor, reason="unknown_user"))
    assert "\n" not in line
    assert "\r" not in line
    for char in line:
        assert char == " " or char.isprintable(), f"{unicodedata.name(char, hex(ord(char)))}"
    fields = fields_of(line)
    assert fields[:3] == ["2026-11-26T18:00:00Z", "login.failure", "failure"]
    assert [field.split("=", 1)[0] for field in fields[3:]] == [
        "actor",
        "client_id",
        "ip",
        "reason",
    ]
    assert fields[4:] == ["client_id=web", "ip=203.0.113.7", "reason=unknown_user"]


def test_plain_values_are_printed_as_they_are() -> None:
    line = text_line(record("alice", reason="password", seconds=60, family_revoked=True))
    assert line == (
        "2026-11-26T18:00:00Z login.failure failure actor=alice client_id=web ip=203.0.113.7 "
        "family_revoked=True reason=password seconds=60"
    )


def test_a_value_with_a_space_or_an_equals_sign_is_quoted() -> None:
    line = text_line(record("alice", grants="password refresh_token"))
    assert 'grants="password refresh_token"' in line
    assert 'actor="a=b"' in text_line(record("a=b"))


def test_escapes_are_readable_and_reversible() -> None:
    line = text_line(record('\u202eq"\\\x1b'))
    assert 'actor="\\u202eq\\"\\\\\\u001b"' in line


@pytest.mark.parametrize("actor", HOSTILE)
def test_json_output_is_exact_json_of_the_stored_values(actor: str) -> None:
    stored = record(actor, name=actor)
    line = json_line(stored)
    assert "\n" not in line
    assert all(" " <= char <= "~" for char in line), line  # escaped: plain ASCII only
    value = json.loads(line)
    assert value["actor"] == actor
    assert value["detail"] == {"name": actor}
    assert list(value) == [
        "id",
        "time",
        "event",
        "outcome",
        "actor",
        "client_id",
        "ip",
        "subject",
        "detail",
    ]
