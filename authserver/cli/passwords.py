"""Reading a new password: one line of standard input (`--password-stdin`), or a hidden prompt
asked twice at a terminal. Never an argument (it would land in the shell history and `ps`)."""

from __future__ import annotations

import sys

import click

from authserver.cli.exits import CliError

EMPTY_STDIN = (
    "no password on standard input: give one line with --password-stdin, or run the command "
    "at a terminal to be asked"
)


def read_password(password_stdin: bool) -> str:
    """The password; a closed or empty standard input is one `Error:` line, not a traceback.

    At a terminal the prompt hides what is typed (getpass). When standard input is a pipe or a
    file, nobody is there to read a prompt or to type unseen: the two lines are read as they
    come, without getpass, which would warn that it cannot hide the input (and print prompts
    into a pipeline's output).
    """
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise CliError(EMPTY_STDIN)
    if password_stdin:
        return _line(stdin.readline())
    if stdin.isatty():
        value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
        return value
    first, second = _line(stdin.readline()), _line(stdin.readline())
    if first != second:
        raise CliError("the two passwords do not match")
    return first


def _line(line: str) -> str:
    if not line:
        raise CliError(EMPTY_STDIN)
    return line.rstrip("\r\n")
