"""The operator CLI (SPEC "Command line"): parse, call the functions the server uses, print.

Every failure exits non-zero with one short line (or one JSON object with `--json`) and a
documented status (cli/exits.py); nothing here prints a private key, a password or a secret
other than the client secret a command has just made.

Start-up is kept cheap: the command modules import only click at the top, and each command
imports the libraries it needs (SQLAlchemy, argon2, joserfc, the server) when it runs, so that
`authserver --help` imports none of them (tests/e2e/test_cli_imports.py, bench/cli_startup.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from authserver.cli.audit import audit
from authserver.cli.check import check
from authserver.cli.clients import clients
from authserver.cli.keys import keys
from authserver.cli.report import RootGroup
from authserver.cli.server import db, serve
from authserver.cli.tokens import tokens
from authserver.cli.users import users


def _config_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    # Through the environment, which `serve`'s worker processes inherit and read again.
    if value is not None:
        os.environ["AUTHSERVER_CONFIG"] = str(Path(value).absolute())


def _database_url_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        os.environ["AUTHSERVER_DATABASE_URL"] = value


@click.group(cls=RootGroup)
@click.version_option(package_name="authserver")
@click.option(
    "--config",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    expose_value=False,
    callback=_config_option,
    help="The TOML configuration file to read, instead of $AUTHSERVER_CONFIG or "
    "config/authserver.toml. Environment variables still override its values.",
)
@click.option(
    "--database-url",
    metavar="URL",
    expose_value=False,
    callback=_database_url_option,
    help="The database, instead of $AUTHSERVER_DATABASE_URL, the file's or the default "
    "(sqlite+aiosqlite:///var/authserver.db).",
)
def main() -> None:
    """authserver: an OAuth 2.0 authorization server.

    Settings come from, highest precedence first: these options, `AUTHSERVER_*` environment
    variables, the configuration file, the defaults. Every command names the database and
    issuer it uses on stderr. Exit status: 0 success, 1 error, 2 usage error, 3 not found,
    4 already exists.
    """


for command in (serve, db, users, clients, keys, tokens, audit, check):
    main.add_command(command)
