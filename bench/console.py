"""How the benchmark talks to its user: progress on stderr, and BenchError for a failed step.

Progress goes to stderr so that stdout carries only the results. run.py turns a BenchError into
exit status 2, after the usual cleanup.
"""

from __future__ import annotations

import sys
import time


class BenchError(Exception):
    """A setup step failed; the message says which."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
