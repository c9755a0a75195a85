"""The shape every command has (issue 15, guard rail 5): `--json` on every command but `serve`
(whose output is its log, JSON lines by default), and the exit statuses documented in the
root command's help."""

from __future__ import annotations

import click
import pytest

from authserver.cli import main
from docgen.cli_reference import subcommands


def leaves(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = []
    for name, sub in subcommands(command):
        found += (
            leaves(sub, f"{path} {name}")
            if isinstance(sub, click.Group)
            else [(f"{path} {name}", sub)]
        )
    return found


COMMANDS = [(path, command) for path, command in leaves(main, "authserver")]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_but_serve_has_json(path: str, command: click.Command) -> None:
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    if path == "authserver serve":
        assert "--json" not in options
    else:
        assert "--json" in options, path


def test_the_exit_statuses_are_in_the_help() -> None:
    help_text = " ".join((main.help or "").split())
    assert "0 success, 1 error, 2 usage error, 3 not found, 4 already exists" in help_text
