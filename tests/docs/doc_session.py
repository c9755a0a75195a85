"""Run documentation shell blocks, in order, in one bash session, against a real server.

The session lives in a fresh directory holding links to the checkout's virtual environment
(`.venv`) and `examples/`, so the docs' relative paths work and the CLI finds the database there,
as it would in the reader's checkout. `authserver serve` runs on a free port; every doc port
(8000 for the server, 9464 for its metrics, and each `background port=N`) is mapped to a free
port of its own, in the commands and in the expected outputs alike, and ISSUER and METRICS_PORT
follow.

Waits are bounded by conditions (the server's /readyz, a background server's port, the end
marker of each block), never by a fixed sleep.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.docs.expected_output import diff, normalize, output_matches
from tests.docs.markdown_blocks import ROOT, Block
from tests.e2e.conftest import AUTHSERVER, clean_env, stop_server

SERVER_DOC_PORT = 8000
METRICS_DOC_PORT = 9464  # the server's METRICS_PORT, mapped like the others
BLOCK_TIMEOUT = 60.0  # one block: generous on a busy machine; the walk-through's take ~1 s each
READY_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


class DocTestFailure(AssertionError):
    """A block failed; the message names the block and shows what differed."""


def makefile_run_command() -> str:
    """The command `make run` runs and echoes, as the README shows it (`.venv/bin/...`)."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    recipe = lines[lines.index("run: install") + 1]
    return recipe.strip().replace("$(BIN)", ".venv/bin")


class DocSession:
    """One bash process and the servers the blocks start; `run(block)` for each block."""

    def __init__(self, workdir: Path, ports: dict[int, int]) -> None:
        self.workdir = workdir
        self.ports = ports  # doc port -> the port it really is in this session
        self.marker = f"__doc_block_done_{secrets.token_hex(8)}__"
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log = workdir / ".doc-session" / "serve.log"
        (workdir / ".doc-session").mkdir()
        (workdir / ".venv").symlink_to(Path(sys.prefix))
        (workdir / "examples").symlink_to(ROOT / "examples")
        self.env = clean_env(
            {
                "AUTHSERVER_ISSUER": f"http://127.0.0.1:{self.ports[SERVER_DOC_PORT]}",
                "AUTHSERVER_METRICS_PORT": str(self.ports[METRICS_DOC_PORT]),
                "PATH": f"{workdir / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        self.bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=workdir,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: teardown reaches background jobs
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read_output, daemon=True)
        self.reader.start()
        self.count = 0

    def _read_output(self) -> None:
        assert self.bash.stdout is not None
        for line in self.bash.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def localize(self, text: str) -> str:
        """Doc ports (`127.0.0.1:8000`, `--port 8000`) to the session's real ports."""
        for doc_port, port in self.ports.items():
            text = re.sub(rf"(127\.0\.0\.1:|--port ){doc_port}\b", rf"\g<1>{port}", text)
        return text

    # --- running blocks ---------------------------------------------------------------------

    def run(self, block: Block) -> None:
        assert block.runs, block.where
        if block.marker is not None and block.marker.kind == "serve":
            self._serve(block)
        elif block.marker is not None and block.marker.kind == "background":
            self._background(block)
        else:
            self._foreground(block)

    def _foreground(self, block: Block) -> None:
        output, status = self.execute(self.localize(block.text), block.where)
        if block.expected is None:
            if normalize(output):
                raise DocTestFailure(
                    f"{block.where}: the block prints something but the page shows no output "
                    f"after it:\n{output}"
                )
            expected = ""
        else:
            expected = self.localize(block.expected.text)
            if not output_matches(expected, output):
                raise DocTestFailure(
                    f"{block.where}: the output differs from {block.expected.where} "
                    f"(`…` matches anything within a line):\n{diff(expected, output)}"
                )
        shows_error = any(line.startswith("Error:") for line in expected.splitlines())
        if (status != 0) != shows_error:
            raise DocTestFailure(
                f"{block.where}: the last command exited {status}, but the page "
                f"{'shows' if shows_error else 'does not show'} an `Error:` line:\n{output}"
            )

    def execute(self, script: str, where: str) -> tuple[str, int]:
        """Run `script` in the session (stdin from /dev/null); its output and last status."""
        self.count += 1
        path = self.workdir / ".doc-session" / f"block-{self.count}.sh"
        path.write_text(script)
        assert self.bash.stdin is not None
        self.bash.stdin.write(
            f"source {path} </dev/null; __status=$?; printf '\\n{self.marker} %d\\n' $__status\n"
        )
        self.bash.stdin.flush()
        collected: list[str] = []
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise DocTestFailure(
                    f"{where}: still running after {BLOCK_TIMEOUT} s; output so far:\n"
                    + "".join(collected)
                ) from None
            if line is None:
                raise DocTestFailure(f"{where}: the shell exited; output:\n" + "".join(collected))
            if line.startswith(self.marker + " "):
                return "".join(collected), int(line.split()[1])
            collected.append(line)

    def _background(self, block: Block) -> None:
        """A server the page starts in another terminal: started here with `&`, then its port
        polled until it accepts connections (or the process has exited: then its log)."""
        log = self.workdir / ".doc-session" / f"background-{self.count + 1}.log"
        script = f"( {self.localize(block.text).strip()} ) >{log} 2>&1 &\necho $!\n"
        output, _status = self.execute(script, block.where)
        pid = int(output.split()[-1])
        port = self.ports[block.marker.port] if block.marker is not None else 0
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            if not _alive(pid):
                raise DocTestFailure(f"{block.where}: exited before listening:\n{log.read_text()}")
            time.sleep(POLL_INTERVAL)
        raise DocTestFailure(
            f"{block.where}: not listening within {READY_TIMEOUT} s:\n{log.read_text()}"
        )

    def _serve(self, block: Block, *, check_output: bool = True) -> None:
        """`make run`: the harness's own `authserver serve` on the session's server port; the
        expected output is make's echo of the recipe, then the server's first log lines."""
        port = self.ports[SERVER_DOC_PORT]
        with self.server_log.open("wb") as sink:
            self.server = subprocess.Popen(
                [AUTHSERVER, "serve", "--port", str(port)],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_ready(block, port)
        if not check_output:
            return
        if block.expected is None:
            raise DocTestFailure(f"{block.where}: `make run` shows no output after it")
        expected = self.localize(block.expected.text).splitlines()
        if expected[0] != makefile_run_command():
            raise DocTestFailure(
                f"{block.expected.where}: `make run` echoes {makefile_run_command()!r} "
                f"(the Makefile's recipe), not {expected[0]!r}"
            )
        logged = self.server_log.read_text().splitlines()[: len(expected) - 1]
        if not output_matches("\n".join(expected[1:]), "\n".join(logged)):
            raise DocTestFailure(
                f"{block.where}: the server's first log lines differ:\n"
                + diff("\n".join(expected[1:]), "\n".join(logged))
            )

    def _wait_until_ready(self, block: Block, port: int) -> None:
        assert self.server is not None
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.server.poll() is not None:
                    raise DocTestFailure(
                        f"{block.where}: authserver serve exited with "
                        f"{self.server.returncode}:\n{self.server_log.read_text()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if http.get("/readyz").status_code == 200:
                        return
                time.sleep(POLL_INTERVAL)
        raise DocTestFailure(
            f"{block.where}: authserver serve not ready within {READY_TIMEOUT} s:\n"
            f"{self.server_log.read_text()}"
        )

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.bash.pid, signal.SIGTERM)
        try:
            self.bash.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.bash.pid, signal.SIGKILL)
            self.bash.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.bash.pid, signal.SIGKILL)  # background servers left in the group
        self.reader.join(timeout=10)  # EOF once every writer of the pipe has exited
        for pipe in (self.bash.stdin, self.bash.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
        if self.server is not None:
            stop_server(self.server)

    # --- the walk-through's end state, for every other page ------------------------------

    def variables(self) -> set[str]:
        output, _status = self.execute("compgen -v", "(listing the shell's variables)")
        return set(output.split())

    def save_variables(self, names: set[str], path: Path) -> None:
        if names:
            self.execute(f"declare -p {' '.join(sorted(names))} >{path}", "(saving variables)")
        else:
            path.write_text("")

    def restart(self, block: Block) -> None:
        """Start a server of the prelude again (`serve` or `background`), output unchecked."""
        if block.marker is not None and block.marker.kind == "serve":
            self._serve(block, check_output=False)
        else:
            self._background(block)


@contextlib.contextmanager
def doc_session(workdir: Path, ports: dict[int, int]) -> Iterator[DocSession]:
    session = DocSession(workdir, ports)
    try:
        yield session
    finally:
        session.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
