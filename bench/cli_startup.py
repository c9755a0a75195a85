"""How long the operator CLI takes to start: `authserver --help`, and commands that read the
database (SQLite, the embedded default), in real processes.

Run it as a script: `.venv/bin/python bench/cli_startup.py` (see bench/README.md, "CLI start-up").
It makes a scratch directory, runs `authserver db upgrade` there (the database and keys/kek),
then runs each command `--runs` times after two warm-up runs and prints, per command, the wall
time (min, median, max) and the median CPU time (user + system) of the process. The machine's
load average is printed before and after: on a shared machine, compare the CPU column and the
minimum.

`--no-bytecode` runs every process with an empty bytecode cache it may not write to
(PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE): every module is compiled from source, as on
the first start after an install that did not compile the package.

`--instructions` runs each command once under valgrind's cachegrind instead and prints the
instructions it executed: a count that other processes on the machine do not change (about
15 s per command; needs `valgrind`).

`--importtime ARGS` runs `python -X importtime -m authserver ARGS` once and prints the modules
whose import took longest: each top-level package (cumulative, the first time it was imported)
and the modules of authserver.cli.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CASES: dict[str, list[str]] = {
    "--help": ["--help"],
    "users --help": ["users", "--help"],
    "users list": ["users", "list"],
    "clients list --json": ["clients", "list", "--json"],
    "keys list": ["keys", "list"],
    "audit tail": ["audit", "tail"],
}
WARMUP = 2


@dataclass(frozen=True)
class Timing:
    wall: list[float]
    cpu: list[float]


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    authserver = Path(options.authserver)
    with tempfile.TemporaryDirectory(prefix="authserver-cli-bench-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        env = clean_env()
        if options.no_bytecode:
            env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "empty-pycache")
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        setup = subprocess.run(
            [str(authserver), "db", "upgrade"], cwd=home, env=env, capture_output=True, text=True
        )
        if setup.returncode != 0:
            print(f"authserver db upgrade failed:\n{setup.stderr}", file=sys.stderr)
            return 2
        if options.importtime is not None:
            return importtime(authserver, options.importtime, home, env)
        if options.instructions:
            return instructions(authserver, home, env, options.only)
        print(f"load average before: {load_average()}")
        print(f"{'command':<22} {'min':>7} {'median':>7} {'max':>7} {'cpu':>7}  (seconds)")
        failed = False
        for name, args in CASES.items():
            if options.only and name not in options.only:
                continue
            timing = measure([str(authserver), *args], home, env, options.runs)
            if timing is None:
                print(f"{name:<22} failed")
                failed = True
                continue
            print(
                f"{name:<22} {min(timing.wall):7.3f} {statistics.median(timing.wall):7.3f} "
                f"{max(timing.wall):7.3f} {statistics.median(timing.cpu):7.3f}"
            )
        print(f"load average after: {load_average()}")
    return 1 if failed else 0


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per command")
    parser.add_argument(
        "--authserver",
        default=str(Path(sys.executable).with_name("authserver")),
        help="the console script to time (default: the one next to this Python)",
    )
    parser.add_argument("--no-bytecode", action="store_true", help="compile every module anew")
    parser.add_argument(
        "--only", action="append", choices=list(CASES), help="time only this command (repeatable)"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (valgrind) instead"
    )
    parser.add_argument(
        "--importtime",
        nargs=argparse.REMAINDER,
        help="print the slowest imports of `authserver ARGS` instead of timing",
    )
    return parser.parse_args(argv)


def clean_env() -> dict[str, str]:
    """The caller's environment without AUTHSERVER_* (no setting of theirs leaks in)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AUTHSERVER_")}


def measure(command: list[str], cwd: Path, env: dict[str, str], runs: int) -> Timing | None:
    timing = Timing([], [])
    for index in range(WARMUP + runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            sys.stderr.write(result.stderr.decode(errors="replace"))
            return None
        if index >= WARMUP:
            timing.wall.append(wall)
            timing.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return timing


def importtime(authserver: Path, args: list[str], cwd: Path, env: dict[str, str]) -> int:
    python = authserver.with_name("python")
    result = subprocess.run(
        [str(python), "-X", "importtime", "-m", "authserver", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    rows: list[tuple[int, str]] = []
    total = 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        module = name.strip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth == 0:
            total += int(cumulative)
        if "." not in module or module.split(".")[:2] == ["authserver", "cli"]:
            rows.append((int(cumulative), module))
    print(f"`authserver {' '.join(args)}`: exit {result.returncode}")
    print(f"{'module':<48} {'cumulative ms':>14}")
    for micros, module in sorted(rows, reverse=True)[:25]:
        print(f"{module:<48} {micros / 1000:14.1f}")
    print(f"imports at the top level in all: {total / 1000:.1f} ms")
    return 0


def instructions(authserver: Path, cwd: Path, env: dict[str, str], only: list[str] | None) -> int:
    """Instructions executed by each command, from cachegrind's `I refs` (no cache model)."""
    python = authserver.with_name("python")
    print(f"{'command':<22} {'instructions':>16}")
    for name, args in CASES.items():
        if only and name not in only:
            continue
        result = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                "--cachegrind-out-file=/dev/null",
                str(python),
                str(authserver),
                *args,
            ],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        refs = [line for line in result.stderr.splitlines() if "I   refs:" in line]
        if result.returncode != 0 or not refs:
            print(f"{name:<22} failed")
            continue
        print(f"{name:<22} {refs[0].split(':')[1].strip():>16}")
    return 0


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
