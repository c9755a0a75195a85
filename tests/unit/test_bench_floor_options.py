"""bench/floor.py's command line: a mistyped rule must stop the run before anything starts,
or the floor "with the rules" would silently be measured without one of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FLOOR = Path(__file__).resolve().parents[2] / "bench" / "floor.py"


def test_unknown_floor_rule_is_refused_with_the_rules_listed() -> None:
    done = subprocess.run(
        [sys.executable, str(FLOOR), "--rules=line,lines"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no such rule lines" in done.stderr
    assert "(rules: id, deadline, metrics, line)" in done.stderr
    assert "openssl" not in done.stdout + done.stderr  # refused before measuring anything
