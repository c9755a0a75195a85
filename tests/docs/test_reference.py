"""The generated reference pages: every setting, command, option, metric and audit event has the
words the page needs, each generator fills exactly one page, and the strict build fails on a
broken link (the check `make docs` relies on)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from mkdocs.exceptions import PluginError

from authserver.cli import main
from authserver.observability.audit import EVENTS
from authserver.observability.metrics import make_metrics
from authserver.settings import Settings
from docgen.cli_reference import cli_reference, subcommands
from docgen.hooks import GENERATORS, MARKER, expand
from docgen.observability import audit_events_table, metrics_table
from docgen.settings_reference import settings_table
from tests.docs.markdown_blocks import ROOT

MKDOCS = str(Path(sys.executable).with_name("mkdocs"))


def commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    for name, sub in subcommands(command):
        found += commands(sub, f"{path} {name}")
    return found


ALL_COMMANDS = commands(main, "authserver")


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented_in_its_field(name: str) -> None:
    description = Settings.model_fields[name].description
    assert description, f"{name}: Field(description=...)"
    assert description.endswith("."), description


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_every_command_and_option_says_what_it_does(path: str, command: click.Command) -> None:
    assert command.help, f"{path}: a docstring, which is its help and its reference entry"
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in ("help", "version"):
            assert param.help, f"{path} {param.opts[0]}: help=..."


def test_the_generated_tables_name_everything_they_document() -> None:
    settings = settings_table()
    assert all(f"`{name.upper()}`" in settings for name in Settings.model_fields)
    cli = cli_reference()
    assert all(f"# {path}\n" in cli for path, _ in ALL_COMMANDS)
    metrics = metrics_table()
    for name in ("authserver_token_requests_total", "authserver_database_pool_size"):
        assert f"`{name}`" in metrics
    assert metrics.count("\n| `authserver_") == len(
        [value for value in vars(make_metrics()).values() if hasattr(value, "_name")]
    )
    events = audit_events_table()
    assert all(f"`{event}`" in events for event in EVENTS)


def test_each_generator_fills_exactly_one_page() -> None:
    used: dict[str, list[str]] = {name: [] for name in GENERATORS}
    for page in (ROOT / "docs").rglob("*.md"):
        for match in MARKER.finditer(page.read_text()):
            used.setdefault(match.group("name"), []).append(str(page.relative_to(ROOT)))
    assert all(len(pages) == 1 for pages in used.values()), used


def test_an_unknown_generated_table_fails_the_build() -> None:
    with pytest.raises(PluginError, match="unknown generated table 'setings'"):
        expand("# Page\n\n<!-- generated: setings -->\n", "page.md")


def test_a_marker_is_replaced_by_its_table() -> None:
    page = expand("# Events\n\n<!-- generated: audit-events -->\n\nAfter.\n", "page.md")
    assert "<!-- generated" not in page
    assert "| `login.success` |" in page
    assert page.endswith("\n\nAfter.\n")


def test_the_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    """A copy of the docs with one broken link does not build with the flags `make docs` uses."""
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    for name in ("docgen", "authserver"):  # the hook, and what mkdocs.yml watches
        (tmp_path / name).symlink_to(ROOT / name)
    page = tmp_path / "docs" / "concepts" / "tokens.md"
    page.write_text(page.read_text() + "\nSee [the missing page](missing.md).\n")
    recipe = (ROOT / "Makefile").read_text().split("\ndocs: install\n\t")[1].splitlines()[0]
    assert re.fullmatch(r"NO_MKDOCS_2_WARNING=1 \$\(BIN\)/mkdocs build --strict", recipe), recipe
    result = subprocess.run(
        [MKDOCS, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stderr
    assert "missing.md" in result.stderr
