"""py-spy: the command that samples the server, and a summary of where its samples went.

The summary is plain markdown: self time by package and by function, which is exact, and the
inclusive time of authserver's own functions, which misses callers across asyncio tasks.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

# Native stacks (py-spy --native cannot tell idle threads): frames that mean "waiting".
IDLE_FRAMES = (
    "epoll_wait (",
    "epoll_pwait (",
    "_queue_SimpleQueue_get (",
    "PyThread_acquire_lock_timed (",
    "lock_PyThread_acquire_lock (",
)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")


def find_pyspy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_command(
    pyspy: str, pid: int, duration: float, out: Path, *, workers: int, native: bool
) -> list[str]:
    """`py-spy record` of the server for one window, as collapsed stacks in `out`."""
    command = [
        pyspy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(duration))),
        "--rate",
        "250",
        "--full-filenames",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    if workers > 1:
        command.append("--subprocesses")
    # --native needs to pause the server for each sample; else sample without pausing it
    command.append("--native" if native else "--nonblocking")
    return command


def frame_package(path: str) -> str:
    """The package a py-spy frame's file belongs to: `sqlalchemy`, `authserver`, `asyncio`,
    `libcrypto` (native frames), `python (C)` for the interpreter itself."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/authserver/" in path or path.startswith("authserver/"):
        return "authserver"
    if "/python3." in path and path.endswith(".py"):
        rest = path.split("/python3.", 1)[1].split("/", 1)
        return (rest[1] if len(rest) > 1 else rest[0]).split("/", 1)[0].removesuffix(".py")
    name = path.rsplit("/", 1)[-1]
    if name.startswith(("libpython", "python3")) or re.search(r"/(Python-3|python3)", path):
        return "python (C)"
    if "/project/" in path:  # C sources of a wheel built by cibuildwheel (asyncpg, uvloop…)
        return path.split("/project/", 1)[1].split("/", 1)[0]
    if ".so" in name:
        return name.split(".so", 1)[0] or name
    return name or "?"


def _frame_label(frame: str) -> tuple[str, str]:
    """(`function (file)`, package) of one collapsed-stack frame: lines are merged."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, "?"
    path = match["path"]
    short = path.split("site-packages/", 1)[-1].split("/work/main/", 1)[-1]
    short = re.sub(r"^.*/lib/python3\.\d+/", "", short)
    return f"{match['function']} ({short})", frame_package(path)


def profile_summary(scenario: str, collapsed: str, top: int = 12) -> str:
    """Where the samples went: self time by package and by function, and the inclusive time of
    authserver's own functions (a stack counts once per function in it)."""
    self_frames: Counter[str] = Counter()
    self_packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if any(marker in stack for marker in IDLE_FRAMES):
            continue
        frames = [_frame_label(frame) for frame in stack.split(";") if frame]
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        label, package = frames[-1]
        self_frames[label] += count
        self_packages[package] += count
        for own in {label for label, package in frames if package == "authserver"}:
            inclusive[own] += count
    if not total:
        return f"{scenario} profile: no samples"

    def rows(title: str, counter: Counter[str], limit: int) -> list[str]:
        return [
            f"\n| {title} | share |",
            "|---|---:|",
            *(f"| {name} | {count / total:.1%} |" for name, count in counter.most_common(limit)),
        ]

    return "\n".join(
        [
            f"\n{scenario} profile: {total:,} samples of the server's busy threads",
            *rows("self time by package", self_packages, top),
            *rows("self time by function", self_frames, top),
            *rows("inclusive time of authserver functions", inclusive, top),
        ]
    )
