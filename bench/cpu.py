"""CPU figures: process CPU time from /proc, the load average, and openssl's RSA sign rate.

The server's CPU time per request is the fairest figure on a shared machine; the sign rate lets
runs on different machines be compared.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from processes import pinned

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds = utime + stime) of one process, from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree_cpu(root: int) -> float:
    """CPU seconds used so far by `root` and every live descendant (uvicorn workers > 1)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)], cpu[int(entry.name)] = _proc_stat(int(entry.name))
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def pids_cpu(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds of each process still alive (PostgreSQL backends come and go)."""
    result: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            result[pid] = _proc_stat(pid)[1]
    return result


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def openssl_rsa2048_signs(cpu: int, seconds: int = 3) -> float | None:
    """`openssl speed -seconds N rsa2048` on one core: RSA-2048 signatures per second."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    done = subprocess.run(
        pinned(cpu, [openssl, "speed", "-seconds", str(seconds), "rsa2048"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return parse_openssl_signs(done.stdout)


def parse_openssl_signs(output: str) -> float | None:
    """The sign/s column of the `rsa 2048 bits` row (its position differs between versions)."""
    header: list[str] | None = None
    for line in output.splitlines():
        words = line.split()
        if "sign/s" in words:
            header = words
        elif header is not None and re.match(r"\s*rsa\s+2048\s+bits\b", line):
            values = words[3:]
            column = header.index("sign/s")
            if column < len(values):
                return float(values[column])
    return None
