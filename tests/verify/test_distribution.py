"""authserver-verify on its own (issue 14, "The verifier on its own").

Builds the two wheels from this checkout (verify/pyproject.toml and pyproject.toml), and checks:
the verify wheel ships authserver/verify and nothing else of authserver (no
authserver/__init__.py: `authserver` is a namespace package where only it is installed) and
requires only what the verifier imports; the server's wheel leaves authserver/verify out and
requires authserver-verify at its own version; in a fresh virtual environment holding only the
verify wheel (and pytest), `import authserver.verify` works, nothing of the server is there, and
the verifier's own tests pass; the two wheels installed together make one `authserver` package.

The environments are made with `venv --without-pip` and filled by this interpreter's pip
(`pip --python`), from pip's cache and the usual index.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
TESTS = REPOSITORY / "tests" / "verify"
# The verifier's tests that need the server (a live `authserver serve`, the app's fixtures),
# and this file: everything else in tests/verify must pass with the verify wheel alone.
NEEDS_THE_SERVER = {"test_live.py", "test_server_tokens.py", "test_distribution.py"}
VERIFY_REQUIRES = {"cryptography", "joserfc", "httpx", "orjson"}
SERVER_ONLY = ["sqlalchemy", "asyncpg", "aiosqlite", "alembic", "uvicorn", "argon2", "click"]
TIMEOUT = 600.0  # seconds; pip on a cold cache is the slow part


def run(command: Sequence[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `command` without this checkout on its import path; fail with its output."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done


def build_wheel(project: Path, out: Path) -> Path:
    """The project's wheel, by hatchling's PEP 517 hook (no isolated build environment)."""
    hook = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"
    name = run([sys.executable, "-c", hook, out], cwd=project).stdout.strip().splitlines()[-1]
    return out / name


def new_venv(where: Path, *requirements: str) -> Path:
    """A fresh virtual environment holding `requirements`; its python."""
    run([sys.executable, "-m", "venv", "--without-pip", where], cwd=where.parent)
    python = where / "bin" / "python"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python, "install"]
    run([*pip, "--quiet", "--disable-pip-version-check", *requirements], cwd=where.parent)
    return python


def pinned(name: str) -> str:
    """`name`, at the version this environment has: the same test tools, from pip's cache."""
    return f"{name}=={importlib.metadata.version(name)}"


def requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    return [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return [name for name in archive.namelist() if ".dist-info/" not in name]


def project_version(pyproject: Path) -> str:
    version: str = tomllib.loads(pyproject.read_text())["project"]["version"]
    return version


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the verify wheel, the server's wheel), built from this checkout."""
    out = tmp_path_factory.mktemp("wheels")
    return build_wheel(REPOSITORY / "verify", out), build_wheel(REPOSITORY, out)


@pytest.fixture(scope="module")
def alone(wheels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with the verify wheel (and its Starlette extra) and pytest only."""
    verify_wheel, _ = wheels
    where = tmp_path_factory.mktemp("alone") / "venv"
    return new_venv(where, f"{verify_wheel}[starlette]", pinned("pytest"), pinned("pytest-asyncio"))


def test_the_verify_wheel_ships_authserver_verify_and_nothing_else(
    wheels: tuple[Path, Path],
) -> None:
    verify_wheel, _ = wheels
    shipped = names(verify_wheel)
    assert "authserver/__init__.py" not in shipped  # a PEP 420 portion of `authserver`
    assert all(name.startswith("authserver/verify/") for name in shipped), shipped
    assert not [name for name in shipped if "__pycache__" in name or name.endswith(".pyc")]
    sources = {p.name for p in (REPOSITORY / "authserver" / "verify").iterdir() if p.is_file()}
    sources -= {name for name in sources if name.endswith(".pyc")}
    assert {name.removeprefix("authserver/verify/") for name in shipped} == sources
    assert "authserver/verify/py.typed" in shipped
    plain = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] for r in requires(verify_wheel)}
    assert plain == VERIFY_REQUIRES | {"starlette"}
    assert [r for r in requires(verify_wheel) if r.startswith("starlette")] == [
        "starlette>=0.40; extra == 'starlette'"
    ]


def test_the_server_wheel_leaves_verify_to_authserver_verify_at_its_own_version(
    wheels: tuple[Path, Path],
) -> None:
    verify_wheel, server_wheel = wheels
    shipped = names(server_wheel)
    assert "authserver/__init__.py" in shipped
    assert not [name for name in shipped if name.startswith("authserver/verify")]
    version = project_version(REPOSITORY / "pyproject.toml")
    assert project_version(REPOSITORY / "verify" / "pyproject.toml") == version
    assert f"authserver-verify=={version}" in requires(server_wheel)
    assert verify_wheel.name == f"authserver_verify-{version}-py3-none-any.whl"


def test_alone_authserver_verify_imports_and_the_server_is_not_there(
    alone: Path, tmp_path: Path
) -> None:
    probe = """
import importlib.metadata, importlib.util, sys
import authserver, authserver.verify, authserver.verify.starlette, authserver.verify.wsgi
from authserver.verify import TokenVerifier, read_access_token
assert getattr(authserver, "__file__", None) is None, authserver.__file__  # a namespace
assert importlib.util.find_spec("authserver.app") is None
for name in sys.argv[1:]:
    assert importlib.util.find_spec(name) is None, name
dists = {d.metadata["Name"] for d in importlib.metadata.distributions()}
assert "authserver" not in dists and "authserver-verify" in dists, dists
print(authserver.verify.__file__)
"""
    done = run([alone, "-c", probe, *SERVER_ONLY], cwd=tmp_path)
    assert "site-packages/authserver/verify/__init__.py" in done.stdout
    assert str(REPOSITORY) not in done.stdout


def test_the_verifier_tests_pass_with_only_the_verify_wheel_installed(
    alone: Path, tmp_path: Path
) -> None:
    """tests/verify, less the tests that need the server, copied out of this checkout (so that
    nothing can be imported from it) and run by the venv's python."""
    tree = tmp_path / "tree"
    (tree / "tests" / "verify").mkdir(parents=True)
    shutil.copy(REPOSITORY / "tests" / "__init__.py", tree / "tests")
    copied = []
    for source in sorted(TESTS.glob("*.py")):
        if source.name not in NEEDS_THE_SERVER:
            shutil.copy(source, tree / "tests" / "verify")
            copied.append(source.name)
    assert {"conftest.py", "helpers.py", "test_verifier.py", "test_wsgi.py"} <= set(copied)
    shutil.copytree(REPOSITORY / "examples", tree / "examples")  # test_wsgi runs the example
    options = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["pytest"]
    ini = ["[pytest]"]
    for name, value in options["ini_options"].items():
        if name not in ("testpaths", "markers"):
            lines = value if isinstance(value, list) else [value]
            ini.append(f"{name} =" + "".join(f"\n    {line}" for line in lines))
    (tree / "pytest.ini").write_text("\n".join(ini) + "\n")

    done = run([alone, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/verify"], cwd=tree)
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), done.stdout


def test_the_two_wheels_installed_together_make_one_authserver_package(
    wheels: tuple[Path, Path], tmp_path: Path
) -> None:
    """How a server is deployed from wheels: both in one site-packages, the server complete."""
    verify_wheel, server_wheel = wheels
    python = new_venv(tmp_path / "venv", str(server_wheel), str(verify_wheel))
    probe = """
import pathlib, authserver, authserver.app, authserver.verify
from authserver.verify.starlette import BearerAuthMiddleware
here = pathlib.Path(authserver.__file__).parent
assert pathlib.Path(authserver.verify.__file__).parent == here / "verify"
assert (here / "migrations").is_dir()
print(here)
"""
    done = run([python, "-c", probe], cwd=tmp_path)
    assert done.stdout.strip().endswith("site-packages/authserver")


def test_the_image_installs_the_verifier_from_the_checkout_in_the_servers_pip_run() -> None:
    """authserver-verify is on no index: the Dockerfile copies verify/ (and authserver/, which
    its symlinked source points into) and installs both projects in one pip run."""
    dockerfile = (REPOSITORY / "Dockerfile").read_text()
    assert re.search(r"^COPY verify \./verify$", dockerfile, re.M)
    assert re.search(r"^COPY authserver \./authserver$", dockerfile, re.M)
    assert re.search(r"^RUN pip install \./verify \. ", dockerfile, re.M)
    link = REPOSITORY / "verify" / "src" / "authserver" / "verify"
    assert link.is_symlink()
    assert link.resolve() == REPOSITORY / "authserver" / "verify"
