"""How `audit tail` prints an event: one line of `key=value` fields, or one JSON object.

Values come from outside: a username tried at /token, an address from X-Forwarded-For, the
names operators gave clients. In text, a value made only of plain characters (letters, digits,
`_ . : / @ + , -`) is printed as it is; any other is double-quoted, with `"` and `\\` escaped and
every character that is not printable (control characters, escape sequences, bidi overrides and
isolates, zero-width and line-separator characters, non-breaking spaces) written as `\\uXXXX`.
So no value can forge a field, start a new line or drive the terminal (security review, finding
7). JSON escapes everything outside ASCII, and reads back to exactly what was stored.
"""

from __future__ import annotations

import json
import re
from typing import Any

from authserver.cli.output import iso
from authserver.store.audit import AuditRecord

_PLAIN = re.compile(r"[\w.:/@+,-]+", re.ASCII)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def fields(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "time": iso(record.occurred_at),
        "event": record.event,
        "outcome": record.outcome,
        "actor": record.actor,
        "client_id": record.client_id,
        "ip": record.ip,
        "subject": record.subject,
        "detail": record.detail,
    }


def json_line(record: AuditRecord) -> str:
    return json.dumps(fields(record), ensure_ascii=True)


def text_line(record: AuditRecord) -> str:
    parts = [str(iso(record.occurred_at)), quoted(record.event), quoted(record.outcome)]
    for name in ("actor", "client_id", "ip", "subject"):
        value = getattr(record, name)
        if value is not None:
            parts.append(f"{name}={quoted(value)}")
    parts.extend(f"{quoted(key)}={quoted(value)}" for key, value in sorted(record.detail.items()))
    return " ".join(parts)


def quoted(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if _PLAIN.fullmatch(text):
        return text
    return '"' + "".join(_escaped(char) for char in text) + '"'


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
