"""Reading a new password: one line of standard input (`--password-stdin`), or a hidden prompt
asked twice. Never an argument (it would land in the shell history and `ps`)."""

from __future__ import annotations

import sys

import click


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("no password on standard input")
        return line.rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value
