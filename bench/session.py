"""One benchmark session: the running server, and the load generator of each window.

The server's CPU time, and that of the PostgreSQL backends serving it, are read when
bench/load.py says the measured window opens and again when it closes.
"""

from __future__ import annotations

import json
import math
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from console import BenchError, log
from cpu import openssl_rsa2048_signs, pids_cpu, process_tree_cpu
from database import Postgres
from options import HOST, Options
from processes import die_with_parent, pinned, stop_process, tail
from profiling import profile_summary, record_command
from report import Summary, Window
from seed import seed
from server import populate, start_server, wait_ready

LOAD_SCRIPT = Path(__file__).resolve().parent / "load.py"


class Session:
    """The database's contents, the server, and the load generator of the moment.

    `stop()` may be called any number of times, from any failure path. A peer server
    (bench/peers.py) is a subclass with its own `prepare`, and no database.
    """

    name = "authserver"

    def __init__(self, options: Options, postgres: Postgres | None, workdir: Path) -> None:
        self.options = options
        self.postgres = postgres
        self.workdir = workdir
        self.log_path = workdir / "server.log"
        self.database = ""
        self.server: subprocess.Popen[bytes] | None = None
        self.load: subprocess.Popen[str] | None = None
        self.profiler: subprocess.Popen[str] | None = None
        self.load_config: dict[str, Any] = {}
        self.seeded = False

    def prepare(self, database: str) -> None:
        """Schema, client, users; then the server, ready."""
        self.database = database
        cli, self.load_config = populate(self.options, self.workdir, database)
        self.server = start_server(cli, self.log_path)
        wait_ready(self.server, cli.port, self.log_path)
        log(
            f"server pid {self.server.pid} ready on {HOST}:{cli.port} "
            f"(CPU {self.options.server_cpu})"
        )

    def scenario(self, name: str) -> Summary:
        if name == "seeded" and not self.seeded:
            self.seed()
        return Summary(name, [self.window(name, run) for run in range(1, self.options.runs + 1)])

    @property
    def first_core(self) -> int:
        """The server's (first) core, where the sign rate is measured."""
        return int(self.options.server_cpu.split(",")[0])

    def window(self, scenario: str, run: int) -> Window:
        """One measured window, logged."""
        window = self.measure(scenario, run)
        window.signs_per_s = openssl_rsa2048_signs(self.first_core, seconds=2) or math.nan
        log(f"{window.describe()}, {window.signs_per_s:,.0f} sign/s after it")
        if window.load["first_error"]:
            log(f"  first error: {window.load['first_error']}")
        return window

    def seed(self) -> None:
        """The seeded scenario's stored tokens (bench/seed.py), once, while the server idles."""
        options = self.options
        log(
            f"seeding {options.seed_tokens:,} refresh tokens in {options.seed_families:,} "
            "families with one INSERT (minutes)"
        )
        dsn = options.postgres.rsplit("/", 1)[0] + "/" + self.database
        client_id = str(self.load_config["client_id"])
        for line in seed(dsn, client_id, options.seed_tokens, options.seed_families):
            log(line)
        self.seeded = True

    def measure(self, scenario: str, run: int) -> Window:
        server = self.server
        assert server is not None
        load = self._start_load(scenario)
        load.expect("start")
        cpu0, wall0 = process_tree_cpu(server.pid), time.perf_counter()
        backends = self._backends()
        db0 = pids_cpu(backends)
        load.expect("end")
        cpu1, wall1 = process_tree_cpu(server.pid), time.perf_counter()
        backends = sorted(set(backends) | set(self._backends()))
        db1 = pids_cpu(backends)
        result = self._finish_load(load)
        db_cpu = sum(cpu - db0.get(pid, 0.0) for pid, cpu in db1.items())
        if self.postgres is None:
            db_cpu = math.nan  # no database: "n/a" in the table, not 0
        return Window(scenario, run, result, cpu1 - cpu0, db_cpu, wall1 - wall0, self.name)

    def _backends(self) -> list[int]:
        """The PostgreSQL backends connected to the throwaway database (none without one)."""
        if self.postgres is None:
            return []
        return self.postgres.backend_pids(self.database)

    def profile(self, scenario: str, pyspy: str, out: Path) -> None:
        """One extra, unmeasured window with `py-spy record` sampling the server."""
        assert self.server is not None
        options = self.options
        load = self._start_load(scenario)
        load.expect("start")
        command = record_command(
            pyspy,
            self.server.pid,
            options.duration,
            out,
            workers=options.workers,
            native=options.profile_native,
        )
        self.profiler = subprocess.Popen(
            pinned(options.load_cpu, command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        load.expect("end")
        self._finish_load(load)
        _, stderr = self.profiler.communicate(timeout=60)
        if self.profiler.returncode != 0 or not out.exists():
            raise BenchError(f"py-spy failed: {stderr.strip()[-300:]}")
        self.profiler = None
        log(f"{scenario} profile written to {out}")
        print(profile_summary(scenario, out.read_text()))

    def stop(self) -> None:
        stop_process(self.profiler, grace=5)
        self.profiler = None
        stop_process(self.load, grace=5)
        self.load = None
        stop_process(self.server)

    def server_log_tail(self, lines: int) -> str:
        return tail(self.log_path, lines)

    def _start_load(self, scenario: str) -> LoadRun:
        options = self.options
        command = pinned(
            options.load_cpu,
            [
                sys.executable,
                str(LOAD_SCRIPT),
                "--scenario",
                scenario,
                "--concurrency",
                str(options.concurrency),
                "--warmup",
                str(options.warmup),
                "--duration",
                str(options.duration),
                "--login-chains",
                str(options.login_chains),
            ],
        )
        self.load = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,  # earlier reader threads have ended
        )
        deadline = time.monotonic() + options.warmup + options.duration + 120
        return LoadRun(scenario, self.load, self.load_config, deadline)

    def _finish_load(self, run: LoadRun) -> dict[str, Any]:
        result = run.result()
        self.load = None
        assert self.server is not None
        if self.server.poll() is not None:
            raise BenchError(f"the server exited during the {run.scenario} window")
        return result


class LoadRun:
    """The load generator of one window, as the lines it prints, each awaited with a deadline."""

    def __init__(
        self,
        scenario: str,
        process: subprocess.Popen[str],
        config: dict[str, Any],
        deadline: float,
    ) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.scenario = scenario
        self.process = process
        self.deadline = deadline
        process.stdin.write(json.dumps(config) + "\n")
        process.stdin.close()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(
            target=_reader, args=(process.stdout, self.lines), daemon=True
        )
        self.reader.start()

    def next_line(self) -> str:
        try:
            line = self.lines.get(timeout=max(0.1, self.deadline - time.monotonic()))
        except queue.Empty:
            raise BenchError(f"the {self.scenario} load generator did not finish in time") from None
        if line is None:
            self.process.wait(10)
            raise BenchError(
                f"the {self.scenario} load generator exited ({self.process.returncode})"
            )
        return line

    def expect(self, word: str) -> None:
        line = self.next_line()
        if line != word:
            raise BenchError(f"the load generator said {line[:200]!r}, not {word!r}")

    def result(self) -> dict[str, Any]:
        line = self.next_line()
        if not line.startswith("result "):
            raise BenchError(f"unexpected output from the load generator: {line[:200]}")
        self.process.wait(30)
        self.reader.join(5)
        result: dict[str, Any] = json.loads(line.removeprefix("result "))
        return result


def _reader(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """A thread: the load generator's lines into a queue, so that reading them can time out."""
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)
