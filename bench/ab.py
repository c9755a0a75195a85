"""Two builds of authserver measured in interleaved short windows: is B faster than A?

On a shared VM the speed of a core drifts by tens of percent from one minute to the next, more
than most changes to the code move it, so windows run minutes apart cannot tell two builds apart.
Here both servers run at once, pinned to the same core, each with its own throwaway database;
the load generator drives A, then B, then B, then A (ABBA, so a steady drift favours neither),
for `--pairs` rounds of short windows. Each round gives one ratio B / A of requests per
server-CPU-second measured a few seconds apart; the report is the median ratio and its spread.

    git worktree add /tmp/base HEAD~1                  # the build to compare against
    .venv/bin/python bench/ab.py --baseline /tmp/base --scenario jwks
    .venv/bin/python bench/ab.py --baseline /tmp/base --scenario refresh --pairs 12

A is `--baseline`'s `authserver` package (a checkout or worktree: its migrations are used for
its database), run with this checkout's virtualenv; B is this checkout. The other options are
bench/run.py's (`--duration`, `--warmup`, `--concurrency`, `--cheap-hash`, the cores).

Builds of authserver only: two different runtimes sharing a core do not slow each other alike
(node-oidc-provider's refresh rate rose by 88 % over 8 shared rounds while authserver's held), so
peers are compared alone on the core, in alternating windows (`bench/run.py --peer`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from console import BenchError, log
from cpu import process_tree_cpu
from database import Postgres, drop_database, drop_orphans, throwaway_name
from options import Options, parse_options
from report import Window
from session import Session


def baseline_options(options: Options, baseline: Path) -> Options:
    """`options` with the authserver command importing the package under `baseline`."""
    if not (baseline / "authserver" / "__init__.py").is_file():
        raise BenchError(f"{baseline} holds no authserver package")
    command = ["env", f"PYTHONPATH={baseline}", *options.authserver]
    return dataclasses.replace(options, authserver=command)


def per_cpu(window: Window) -> float:
    return window.figures()["per_server_cpu_s"]


def server_pid(session: Session) -> int:
    assert session.server is not None
    return session.server.pid


def together(sessions: dict[str, Session], scenario: str) -> list[Window]:
    """One window of each server, at the same time: a load generator each, started together,
    and each server's CPU time read when the windows open and close."""
    loads = {name: session._start_load(scenario) for name, session in sessions.items()}
    for load in loads.values():
        load.expect("start")
    pids = {name: server_pid(session) for name, session in sessions.items()}
    began = {name: process_tree_cpu(pid) for name, pid in pids.items()}
    wall = time.perf_counter()
    for load in loads.values():
        load.expect("end")
    ended = {name: process_tree_cpu(pid) for name, pid in pids.items()}
    wall = time.perf_counter() - wall
    windows = []
    for name, session in sessions.items():
        result = session._finish_load(loads[name])
        if result["errors_total"]:
            raise BenchError(f"{name} answered errors: {result['first_error']}")
        cpu = ended[name] - began[name]
        windows.append(Window(scenario, 0, result, cpu, float("nan"), wall, name))
    return windows


def compare(
    options: Options, baseline: Path, scenario: str, pairs: int, b_env: list[str]
) -> list[float]:
    """The B / A ratios of requests per server-CPU-s, one per round of four windows."""
    postgres = Postgres(options.postgres)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(postgres.close)
        postgres.connect()
        drop_orphans(postgres)
        sessions = {}
        b_options = dataclasses.replace(options, authserver=["env", *b_env, *options.authserver])
        for name, build in (("A", baseline_options(options, baseline)), ("B", b_options)):
            workdir = Path(tempfile.mkdtemp(prefix=f"authserver-ab-{name}-"))
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
            database = throwaway_name()
            postgres.create_database(database)
            cleanup.callback(drop_database, postgres, database)
            session = Session(build, postgres, workdir)
            cleanup.callback(session.stop)
            session.prepare(database)
            sessions[name] = session
        ratios = []
        for round_ in range(1, pairs + 1):
            a, b = (per_cpu(window) for window in together(sessions, scenario))
            ratios.append(b / a)
            log(f"round {round_}: A {a:,.0f}, B {b:,.0f} per server-CPU-s, B/A {b / a:.3f}")
        return ratios


def main() -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--scenario", choices=["refresh", "jwks", "password"], default="jwks")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument(
        "--b-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for B's server only (repeatable): with --baseline this "
        "same checkout, B/A is the effect of the setting",
    )
    own, rest = parser.parse_known_args()
    defaults = ["--duration", "3", "--warmup", "0.5"]
    options = parse_options([*defaults, *rest])
    try:
        ratios = compare(options, own.baseline.resolve(), own.scenario, own.pairs, own.b_env)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    ratios.sort()
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(
        f"{own.scenario}: B / A requests per server-CPU-s, median {statistics.median(ratios):.3f} "
        f"of {len(ratios)} rounds (quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}, "
        f"range {ratios[0]:.3f}-{ratios[-1]:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
