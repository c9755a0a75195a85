"""Benchmark `authserver serve` on PostgreSQL: refresh (real rotation), JWKS and password grants.

    .venv/bin/python bench/run.py [--concurrency 16] [--duration 15] [--warmup 3] [--runs 3]
                                  [--scenarios refresh,jwks,password] [--cheap-hash]
                                  [--peer node-oidc-provider]

This module is the entry point and the order of things; bench/README.md says what happens and
what the figures mean. The server is stopped and the throwaway database dropped in every case:
success, error, Ctrl-C or SIGTERM. Only 127.0.0.1 is ever contacted.

Exit status: 0; 1 if any request failed; 2 on a setup error; 130 when interrupted.

Run as a script: its directory is then on sys.path, which is how the sibling modules import.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from console import BenchError, log
from cpu import openssl_rsa2048_signs
from database import Postgres, drop_database, drop_orphans, throwaway_name
from options import Options, parse_options
from peers import SCENARIOS as PEER_SCENARIOS
from peers import NodeOidcProvider, peer_report, side_by_side
from profiling import find_pyspy
from report import Summary, git_revision, report
from session import Session


class Interrupted(BaseException):
    """SIGTERM: unwind like Ctrl-C so that every `finally` cleans up."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise Interrupted


def run_scenarios(
    options: Options, session: Session, database: str, peer: NodeOidcProvider | None
) -> tuple[list[Summary], list[Summary]]:
    """Every scenario's windows, each followed by its profile window with --profile (authserver
    only). With a peer, the scenarios it shares have their windows alternate between the two
    servers. Returns authserver's summaries and the peer's."""
    session.prepare(database)
    if peer is not None:
        peer.prepare()
    pyspy = find_pyspy() if options.profile else None
    if options.profile and pyspy is None:
        raise BenchError("--profile needs py-spy (.venv/bin/pip install py-spy)")
    summaries, peer_summaries = [], []
    for name in options.scenarios:
        if peer is not None and name in PEER_SCENARIOS:
            ours, theirs = side_by_side(session, peer, name, options.runs)
            summaries.append(ours)
            peer_summaries.append(theirs)
        else:
            summaries.append(session.scenario(name))
        if options.profile and pyspy:
            options.profile.mkdir(parents=True, exist_ok=True)
            session.profile(name, pyspy, options.profile.resolve() / f"profile-{name}.txt")
    return summaries, peer_summaries


def benchmark(options: Options) -> int:
    revision = git_revision()
    first_core = int(options.server_cpu.split(",")[0])
    signs = openssl_rsa2048_signs(first_core)
    log(f"openssl speed rsa2048 on CPU {first_core}: {signs} sign/s")
    postgres = Postgres(options.postgres)
    with contextlib.ExitStack() as cleanup:  # unwinds in reverse: server, database, connection
        cleanup.callback(postgres.close)
        postgres.connect()
        workdir = Path(tempfile.mkdtemp(prefix="authserver-bench-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        drop_orphans(postgres)
        database = throwaway_name()
        postgres.create_database(database)
        cleanup.callback(drop_database, postgres, database)
        session = Session(options, postgres, workdir)
        cleanup.callback(session.stop)
        peer = NodeOidcProvider(options, workdir) if options.peer else None
        if peer is not None:
            cleanup.callback(peer.stop)
        try:
            summaries, peer_summaries = run_scenarios(options, session, database, peer)
        except BenchError:
            for server in (session, peer):
                if server is not None:
                    log(f"{server.name}'s log ends with:\n{server.server_log_tail(40)}")
            raise
        session.stop()  # before reading its log: everything it wrote is there
        if "Traceback" in session.server_log_tail(1000):
            log(f"the server logged a traceback:\n{session.server_log_tail(40)}")
        if peer is not None:
            peer.stop()
            if "server_error" in peer.server_log_tail(1000):
                log(f"{peer.name} logged an error:\n{peer.server_log_tail(40)}")

    print(report(options, summaries, signs, revision))
    if peer is not None:
        print(peer_report(peer.name, peer.version, summaries, peer_summaries, signs))
    if options.json_out is not None:
        write_json(options.json_out, options, summaries + peer_summaries, signs)
    return 1 if any(s.median["errors"] for s in summaries + peer_summaries) else 0


def write_json(path: Path, options: Options, summaries: list[Summary], signs: float | None) -> None:
    """Every window's raw figures, for comparisons the table does not make."""
    raw = {
        "options": {**options.__dict__, "json_out": str(options.json_out)},
        "openssl_rsa2048_sign_per_s": signs,
        "windows": [w.__dict__ | {"figures": w.figures()} for s in summaries for w in s.windows],
    }
    path.write_text(json.dumps(raw, indent=2, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    try:
        return benchmark(options)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except (KeyboardInterrupt, Interrupted):
        log("interrupted; the server is stopped and the database dropped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
