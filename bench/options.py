"""The command line of bench/run.py, checked once so that the rest can trust it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"  # the only address the benchmark ever talks to
SCENARIOS = ("refresh", "jwks", "password", "mixed", "seeded")
# mixed and seeded only when asked for: seeded first stores 10 million tokens (minutes).
DEFAULT_SCENARIOS = ("refresh", "jwks", "password")
PEERS = ("node-oidc-provider",)  # bench/peers.py


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
    server_cpu: str  # one core, or a list for several workers ("0,1")
    load_cpu: int
    workers: int
    json_out: Path | None
    profile: Path | None
    profile_native: bool
    login_chains: int
    seed_tokens: int
    seed_families: int
    peer: str | None


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
        default=",".join(DEFAULT_SCENARIOS),
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
    parser.add_argument(
        "--server-cpu", default="0", help="core(s) for the server: 0, or 0,1 for --workers 2"
    )
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
    parser.add_argument(
        "--login-chains",
        type=int,
        default=4,
        help="mixed: password-grant chains running beside the refresh chains",
    )
    parser.add_argument(
        "--seed-tokens",
        type=int,
        default=10_000_000,
        help="seeded: refresh tokens stored before its windows (one SQL statement)",
    )
    parser.add_argument(
        "--seed-families", type=int, default=1_000_000, help="seeded: the families they form"
    )
    parser.add_argument(
        "--peer",
        choices=PEERS,
        default=None,
        help="also measure this peer server, same driver and cores, its windows alternating with "
        "authserver's (refresh and jwks only; see bench/peers.py)",
    )
    args = parser.parse_args(argv)

    scenarios = tuple(name.strip() for name in args.scenarios.split(",") if name.strip())
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown or not scenarios:
        parser.error(f"--scenarios: unknown {unknown}; choose from {', '.join(SCENARIOS)}")
    cores = args.server_cpu.split(",")
    if not all(core.strip().isdigit() for core in cores):
        parser.error("--server-cpu: a core number, or a comma-separated list of them")
    for name in ("concurrency", "runs", "users", "workers", "login_chains", "seed_families"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.peer and (args.workers != 1 or "," in args.server_cpu):
        parser.error("--peer compares one process with one: --workers 1 on one --server-cpu")
    if args.seed_tokens < args.seed_families:
        parser.error("--seed-tokens must be at least --seed-families")
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
        server_cpu=",".join(core.strip() for core in cores),
        load_cpu=args.load_cpu,
        workers=args.workers,
        json_out=args.json_out,
        profile=args.profile,
        profile_native=args.profile_native,
        login_chains=args.login_chains,
        seed_tokens=args.seed_tokens,
        seed_families=args.seed_families,
        peer=args.peer,
    )


def _default_authserver() -> list[str]:
    """The console script of this venv, so that the benchmark measures this checkout."""
    script = Path(sys.executable).parent / "authserver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "authserver"]
