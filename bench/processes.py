"""Child processes: pinned to one core, dying with the benchmark, stopped even when it fails."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any


def pinned(cpus: int | str, command: list[str]) -> list[str]:
    """`taskset -c CPUS command` when taskset exists and the cores do (one, or "0,1"); else the
    bare command."""
    taskset = shutil.which("taskset")
    cores = {int(core) for core in str(cpus).split(",")}
    if taskset is None or not cores <= os.sched_getaffinity(0):
        return command
    return [taskset, "-c", str(cpus), *command]


def die_with_parent() -> None:
    """Linux: SIGTERM this child if the benchmark itself is killed (survives exec).

    For `preexec_fn`, so only while no other thread of the benchmark is running.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(process: subprocess.Popen[Any] | None, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; a no-op for a process already gone."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(5)


def tail(path: Path, lines: int = 20) -> str:
    """The end of a log, for error messages."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"
