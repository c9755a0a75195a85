"""The figures: what one measured window gives, the medians over runs, and the printed report.

See bench/README.md ("What the figures mean") for each column.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cpu import load_average
from options import Options

FLOOR_REFRESH_PER_CPU_S = 1000.0
PEERS_SIGNS_PER_S = 3900.0  # shared/research/peers.md: openssl rsa2048 on the peers' machine
LABELS = {
    "refresh": "refresh (rotation)",
    "jwks": "JWKS GET",
    "password": "password (argon2)",
    "mixed": "refresh, password logins beside",
    "seeded": "refresh, tokens seeded",
}
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Window:
    """One measured window: the load generator's result and the CPU seconds read around it."""

    scenario: str
    run: int
    load: dict[str, Any]
    server_cpu_s: float
    db_cpu_s: float  # NaN for a server without a database
    wall_s: float
    server: str = "authserver"
    # openssl's RSA-2048 sign rate on the server's core right after the window (NaN: none)
    signs_per_s: float = float("nan")

    @property
    def completed(self) -> int:
        return int(self.load["completed"])

    def per_1000(self, cpu: float) -> float:
        return cpu / self.completed * 1000 if self.completed else float("nan")

    def figures(self) -> dict[str, float]:
        per_cpu = self.completed / self.server_cpu_s if self.server_cpu_s else float("nan")
        return {
            "requests_per_s": float(self.load["requests_per_s"]),
            "p50_ms": float(self.load["p50_ms"]),
            "p99_ms": float(self.load["p99_ms"]),
            "errors": float(self.load["errors_total"]),  # warm-up and drain included
            "server_cpu_s_per_1000": self.per_1000(self.server_cpu_s),
            "per_server_cpu_s": per_cpu,
            "db_cpu_s_per_1000": self.per_1000(self.db_cpu_s),
            "server_cpu_util": self.server_cpu_s / self.wall_s,
            "load_cpu_util": float(self.load["load_cpu_s"]) / float(self.load["elapsed_s"]),
            "logins_per_s": float(self.load.get("logins_per_s", 0.0)),  # mixed only
            "login_p99_ms": float(self.load.get("login_p99_ms", 0.0)),
            "per_sign": per_cpu / self.signs_per_s,  # NaN without a sign rate
        }

    def describe(self) -> str:
        f = self.figures()
        peer = "" if self.server == "authserver" else f"{self.server}: "
        return (
            f"{peer}{self.scenario} run {self.run}: {f['requests_per_s']:,.0f} req/s, "
            f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, errors {int(f['errors'])}, "
            f"{f['per_server_cpu_s']:,.0f} per server-CPU-s, "
            f"server core {f['server_cpu_util']:.0%}, load core {f['load_cpu_util']:.0%}"
        )


@dataclass
class Summary:
    """A scenario's windows: the median of each figure, except errors, which are summed."""

    scenario: str
    windows: list[Window]
    median: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        figures = [window.figures() for window in self.windows]
        self.median = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
        self.median["errors"] = sum(f["errors"] for f in figures)


def fmt(value: float, digits: int = 0) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # NaN check


def table(summaries: list[Summary]) -> str:
    rows = [
        "| scenario | req/s | p50 / p99 ms | errors | server CPU s per 1,000 | "
        "req per server-CPU-s | PostgreSQL CPU s per 1,000 | server core busy | load core busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for summary in summaries:
        m = summary.median
        rows.append(
            f"| {LABELS[summary.scenario]} | {fmt(m['requests_per_s'])} "
            f"| {fmt(m['p50_ms'], 1)} / {fmt(m['p99_ms'], 1)} | {int(m['errors'])} "
            f"| {fmt(m['server_cpu_s_per_1000'], 3)} | {fmt(m['per_server_cpu_s'])} "
            f"| {fmt(m['db_cpu_s_per_1000'], 3)} | {m['server_cpu_util']:.0%} "
            f"| {m['load_cpu_util']:.0%} |"
        )
    return "\n".join(rows)


def rsa_lines(summaries: list[Summary], signs_per_s: float | None) -> list[str]:
    """The sign rate, the refresh-to-sign ratio, and the floor's verdict, absolute and scaled."""
    if signs_per_s is None:
        return ["RS256 sign cost: openssl not found or its output not understood."]
    lines = [
        "RS256 sign cost (`openssl speed -seconds 3 rsa2048`, one core): "
        f"{signs_per_s:,.0f} sign/s = {1000 / signs_per_s:.3f} ms per signature."
    ]
    for summary in summaries:
        ratios = [w.figures()["per_sign"] for w in summary.windows]
        if summary.scenario in ("refresh", "jwks") and all(r == r for r in ratios):  # not NaN
            lines.append(
                f"Each {summary.scenario} window against the sign rate measured on its core right "
                f"after it (`openssl speed -seconds 2`): median {summary.median['per_sign']:.3f} "
                f"(windows: {', '.join(f'{r:.3f}' for r in ratios)})."
            )
    refresh = next((s for s in summaries if s.scenario == "refresh"), None)
    if refresh is not None:
        per_cpu = refresh.median["per_server_cpu_s"]
        ratio = per_cpu / signs_per_s
        lines.append(
            f"Refreshes per server-CPU-s / RSA signs per s = {per_cpu:,.0f} / {signs_per_s:,.0f} "
            f"= {ratio:.3f} (signing is ~{ratio:.0%} of the server's CPU per refresh)."
        )
        verdict = "met" if per_cpu >= FLOOR_REFRESH_PER_CPU_S else "NOT met"
        scaled = FLOOR_REFRESH_PER_CPU_S * signs_per_s / PEERS_SIGNS_PER_S
        scaled_verdict = "met" if per_cpu >= scaled else "NOT met"
        lines.append(
            f"Floor of {FLOOR_REFRESH_PER_CPU_S:,.0f} refreshes per server-CPU-s: {verdict}. "
            f"Scaled by this machine's sign rate (the peers were measured on one signing "
            f"~{PEERS_SIGNS_PER_S:,.0f}/s): {scaled:,.0f}, {scaled_verdict}."
        )
    return lines


def comparison_lines(summaries: list[Summary], options: Options) -> list[str]:
    """Issue 13 items 3 and 5: the seeded and mixed scenarios against the plain refresh."""
    by_name = {s.scenario: s.median for s in summaries}
    refresh = by_name.get("refresh")
    if refresh is None:
        return []
    lines = []
    seeded = by_name.get("seeded")
    if seeded is not None:
        lines.append(
            f"Seeded ({options.seed_tokens:,} tokens, {options.seed_families:,} families) / "
            f"empty: refreshes per server-CPU-s {seeded['per_server_cpu_s']:,.0f} / "
            f"{refresh['per_server_cpu_s']:,.0f} = "
            f"{seeded['per_server_cpu_s'] / refresh['per_server_cpu_s']:.2f}; req/s "
            f"{seeded['requests_per_s'] / refresh['requests_per_s']:.2f}; PostgreSQL CPU per "
            f"refresh {seeded['db_cpu_s_per_1000'] / refresh['db_cpu_s_per_1000']:.2f} "
            "(target: within 10 %)."
        )
    mixed = by_name.get("mixed")
    if mixed is not None:
        lines.append(
            f"Refresh p99 with {options.login_chains} password-login chains beside / alone: "
            f"{mixed['p99_ms']:.1f} / {refresh['p99_ms']:.1f} ms = "
            f"{mixed['p99_ms'] / refresh['p99_ms']:.2f} (target: at most 2); meanwhile "
            f"{mixed['logins_per_s']:.1f} logins/s (p99 {mixed['login_p99_ms']:.0f} ms) and "
            f"{mixed['requests_per_s']:,.0f} refreshes/s against {refresh['requests_per_s']:,.0f} "
            "alone."
        )
    return lines


def busy_warning(summaries: list[Summary]) -> list[str]:
    """A server that got less than 90 % of its core shared it: every figure is then skewed."""
    starved = [s.scenario for s in summaries if s.median["server_cpu_util"] < 0.9]
    if not starved:
        return []
    return [
        f"WARNING: the server got less than 90 % of its core in {', '.join(starved)} "
        f"(load average now {load_average()}): other processes shared it, so req/s and latency "
        "are low and even the CPU-per-request figures read high (shared caches); rerun on a "
        "quiet machine before comparing."
    ]


def git_revision() -> str:
    """The commit the server ran (editable install), marked if authserver/ had local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "authserver", "migrations"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "(not a git checkout)"
    return f"{head} + uncommitted changes" if dirty else head


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def report(options: Options, summaries: list[Summary], signs: float | None, revision: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    hashing = "cheap (--cheap-hash)" if options.cheap_hash else "production defaults"
    lines = [
        "",
        f"authserver bench, {when}; {os.cpu_count()} x {cpu_model()}; "
        f"server on CPU {options.server_cpu} (--workers {options.workers}), "
        f"load generator on CPU {options.load_cpu}; PostgreSQL on loopback",
        f"{options.concurrency} chains, {options.warmup:g} s warm-up + {options.duration:g} s "
        f"window, median of {options.runs} run(s); argon2 {hashing}; code {revision}; "
        f"load average at the end {load_average()}",
        "",
        table(summaries),
        "",
        *rsa_lines(summaries, signs),
        *comparison_lines(summaries, options),
        *busy_warning(summaries),
    ]
    return "\n".join(lines)
