"""Where the README's walk-through leaves off, for every other page to continue from.

The walk-through runs once, every output checked; its end state is its directory (database,
key file), its shell variables and the ports it used. Each other page runs in a copy of that
directory, with those variables, and with the walk-through's servers that the page talks to
running again on the same ports, so ISSUER and the tokens signed under it stay valid and pages
cannot disturb each other.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.docs.doc_session import METRICS_DOC_PORT, SERVER_DOC_PORT, DocSession, doc_session
from tests.docs.markdown_blocks import Block
from tests.e2e.conftest import free_port


def session_ports(blocks: list[Block]) -> dict[int, int]:
    """A free port for the server, its metrics, and each doc port a `background` block names."""
    doc_ports = {SERVER_DOC_PORT, METRICS_DOC_PORT} | {
        block.marker.port
        for block in blocks
        if block.marker is not None and block.marker.kind == "background"
    }
    return {port: free_port() for port in doc_ports}


@dataclass(frozen=True)
class Snapshot:
    """Where the walk-through left off: its directory (database, key file), its shell
    variables, the ports it used, and the servers it started (to start them again)."""

    workdir: Path
    variables: Path
    ports: dict[int, int]
    servers: list[Block]


def run_walkthrough(workdir: Path, prelude: list[Block]) -> Snapshot:
    """Run the walk-through's blocks, checking every output, and keep its end state."""
    ports = session_ports(prelude)
    state = workdir.parent / f"{workdir.name}-variables.sh"
    with doc_session(workdir, ports) as session:
        before = session.variables()
        for block in prelude:
            session.run(block)
        session.save_variables(session.variables() - before - {"__status"}, state)
    servers = [b for b in prelude if b.marker is not None and b.marker.kind != "skip"]
    return Snapshot(workdir, state, ports, servers)


@contextlib.contextmanager
def continue_from(snapshot: Snapshot, workdir: Path, page: list[Block]) -> Iterator[DocSession]:
    """A session in a copy of the walk-through's directory, with its variables, and with each of
    its servers that the page's commands talk to (by port) running again on the same port (so
    ISSUER, and the tokens signed under it, stay valid). A page of CLI commands alone starts no
    server: the CLI works on the database directly. A `background` server of the page's own
    gets a free port, mapped like the walk-through's."""
    for entry in snapshot.workdir.iterdir():
        if entry.is_dir() and entry.name not in (".venv", "examples", ".doc-session"):
            shutil.copytree(entry, workdir / entry.name, symlinks=True)
    # A server the page itself starts (say, the example web app) gets a free port of its own.
    ports = {**session_ports(page), **snapshot.ports}
    with doc_session(workdir, ports) as session:
        session.execute(f"source {snapshot.variables}", "(restoring the walk-through's variables)")
        for server in snapshot.servers:
            if any(uses_port(block, port) for block in page for port in server_ports(server)):
                session.restart(server)
        yield session


def server_ports(block: Block) -> tuple[int, ...]:
    """The doc ports a `serve` or `background` block listens on."""
    if block.marker is not None and block.marker.kind == "background":
        return (block.marker.port,)
    return (SERVER_DOC_PORT, METRICS_DOC_PORT)


def uses_port(block: Block, doc_port: int) -> bool:
    return re.search(rf"(127\.0\.0\.1:|--port ){doc_port}\b", block.text) is not None
