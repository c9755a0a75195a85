"""The command line of bench/run.py, checked once so that the rest can trust it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"  # the only address the benchmark ever talks to
SCENARIOS = ("refresh", "jwks", "password")


@dataclass(frozen=True)
class Options:
    concurrency: int
    duration: float
    warmup: float
    runs: int
    scenarios: tuple[str, ...]
    users: int
    cheap_hash: bool
    postgres: str
    authserver: list[str]
    server_cpu: int
    load_cpu: int
    workers: int
    json_out: Path | None
    profile: Path | None
    profile_native: bool


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark authserver on PostgreSQL (see bench/README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent chains")
    parser.add_argument("--duration", type=float, default=15.0, help="measured window (s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up before a window (s)")
    parser.add_argument("--runs", type=int, default=3, help="windows per scenario (median)")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated, from: " + ", ".join(SCENARIOS),
    )
    parser.add_argument("--users", type=int, default=8, help="users the chains log in as")
    parser.add_argument(
        "--cheap-hash",
        action="store_true",
        help="argon2 time_cost=1, memory_cost=1 MiB instead of the production defaults",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
        help="maintenance database used to CREATE/DROP the throwaway one (env BENCH_POSTGRES)",
    )
    parser.add_argument(
        "--authserver",
        default=None,
        help="the authserver console script (default: the one beside this Python)",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the server")
    parser.add_argument("--load-cpu", type=int, default=1, help="core for the load generator")
    parser.add_argument("--workers", type=int, default=1, help="`serve --workers` (1 to compare)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write raw results here")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="after each scenario's runs, one more (unmeasured) window sampled by py-spy; "
        "collapsed stacks go to DIR/profile-SCENARIO.txt and a summary is printed",
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="with --profile: sample C frames too (py-spy --native; OpenSSL, asyncpg, uvloop)",
    )
    args = parser.parse_args(argv)

    scenarios = tuple(name.strip() for name in args.scenarios.split(",") if name.strip())
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown or not scenarios:
        parser.error(f"--scenarios: unknown {unknown}; choose from {', '.join(SCENARIOS)}")
    for name in ("concurrency", "runs", "users", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    host = args.postgres.split("@")[-1].split("/")[0].rsplit(":", 1)[0]
    if host not in (HOST, "localhost"):
        parser.error("--postgres must be on 127.0.0.1 (this benchmark talks to loopback only)")
    return Options(
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        runs=args.runs,
        scenarios=scenarios,
        users=args.users,
        cheap_hash=args.cheap_hash,
        postgres=args.postgres,
        authserver=[args.authserver] if args.authserver else _default_authserver(),
        server_cpu=args.server_cpu,
        load_cpu=args.load_cpu,
        workers=args.workers,
        json_out=args.json_out,
        profile=args.profile,
        profile_native=args.profile_native,
    )


def _default_authserver() -> list[str]:
    """The console script of this venv, so that the benchmark measures this checkout."""
    script = Path(sys.executable).parent / "authserver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "authserver"]
