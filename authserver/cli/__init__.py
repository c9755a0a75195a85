"""The operator CLI (SPEC "Command line"): parse, call the functions the server uses, print.

Every failure exits non-zero with one short line; nothing here prints a private key, a password
or a secret other than the client secret `clients create` has just made.
"""

from __future__ import annotations

import click

from authserver.cli.audit import audit
from authserver.cli.clients import clients
from authserver.cli.keys import keys
from authserver.cli.server import db, serve
from authserver.cli.tokens import tokens
from authserver.cli.users import users


@click.group()
@click.version_option(package_name="authserver")
def main() -> None:
    """authserver: an OAuth 2.0 authorization server."""


for command in (serve, db, users, clients, keys, tokens, audit):
    main.add_command(command)
