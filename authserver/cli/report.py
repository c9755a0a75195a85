"""What a run of `authserver` tells its caller besides its output: on stderr, which database and
issuer it used, and a failure as one line; then its exit status (cli/exits.py).

With `--json` on the command line, stderr is exactly one JSON object, written when the command
ends: `{"database": …, "issuer": …}`, plus `"error"` and `"exit_code"` when it failed (usage
errors included), so a pipeline can parse it whatever happened. Without it, the first stderr line
names the database and issuer as soon as the settings are read, and a failure is one `Error: …`
line (a usage error adds click's usage lines).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from authserver.cli.exits import INTERRUPTED, CliError

CONTEXT_PREFIX = "authserver: using database "


@dataclass
class Report:
    as_json: bool
    context: dict[str, str] = field(default_factory=dict)

    def announce(self, database: str, issuer: str) -> None:
        """Which database and issuer this command uses (`database` without its password)."""
        self.context = {"database": database, "issuer": issuer}
        if not self.as_json:
            click.echo(f"{CONTEXT_PREFIX}{database}, issuer {issuer}", err=True)

    def failed(self, error: click.ClickException) -> int:
        if self.as_json:
            body = {"error": error.format_message(), "exit_code": error.exit_code}
            click.echo(json.dumps({**body, **self.context}), err=True)
        else:
            error.show()
        return error.exit_code

    def succeeded(self) -> int:
        if self.as_json and self.context:
            click.echo(json.dumps(self.context), err=True)
        return 0


def current_report() -> Report:
    """The report of the running command (a text one when a command runs outside `main`)."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(Report) if ctx is not None else None
    return found if found is not None else Report(as_json=False)


def json_requested(args: Sequence[str]) -> bool:
    """`--json` among the options (before any `--`), even if the command line is wrong."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


class RootGroup(click.Group):
    """`authserver`: runs click without its standalone handling, so that every failure, a usage
    error included, is reported by the Report (one line, or one JSON object with --json)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        report = Report(as_json=json_requested(argv))
        try:
            result = super().main(
                argv, prog_name, complete_var, standalone_mode=False, obj=report, **extra
            )
        except click.ClickException as error:
            code = report.failed(error)
        except click.Abort:  # Ctrl-C, or end of input at a prompt click did not expect
            code = report.failed(CliError("interrupted", INTERRUPTED))
        else:
            code = result if isinstance(result, int) and result else report.succeeded()
        if standalone_mode:
            sys.exit(code)
        return code
