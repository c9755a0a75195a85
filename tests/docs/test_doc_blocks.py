"""Every fenced block of the documentation is accounted for: run, checked, or excluded with a
visible reason. No silent exclusions: a block without a language, a shell block without a
marker that is not run, a marker without a reason, each fails here."""

from __future__ import annotations

import ast
import configparser
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.docs.doc_session import SERVER_DOC_PORT
from tests.docs.markdown_blocks import (
    ROOT,
    SHELL,
    Block,
    blocks,
    markdown_files,
)

FILES = markdown_files()
ALL_BLOCKS = [block for path in FILES for block in blocks(path)]
EXPECTED_OUTPUTS = [block.expected for block in ALL_BLOCKS if block.expected is not None]
# Languages whose blocks are checked here rather than run (python: compiled, imports run).
PARSED = {"json", "yaml", "toml", "ini", "python"}
# Shown as they are: output examples, diagrams, an operator's SQL (which names its test).
SHOWN = {"text", "sql"}
README = Path("README.md")
WALKTHROUGH_PORTS = {SERVER_DOC_PORT} | {
    block.marker.port
    for block in blocks(README)
    if block.marker is not None and block.marker.kind == "background"
}
TOP_LEVEL = [README, Path("CONTRIBUTING.md"), Path("SECURITY.md"), Path("CHANGELOG.md")]


def by_lang(*langs: str) -> list[Block]:
    return [block for block in ALL_BLOCKS if block.lang in langs]


def test_the_docs_are_found() -> None:
    assert {README, Path("docs/getting-started.md"), Path("bench/README.md")} <= set(FILES)
    assert Path("docs/spec.md") not in FILES  # the verbatim contract, see VERBATIM


def test_every_block_names_its_language() -> None:
    unnamed = [block.where for block in ALL_BLOCKS + EXPECTED_OUTPUTS if not block.lang]
    assert not unnamed, f"fenced blocks without a language (say sh, text, json, ...): {unnamed}"


def test_every_block_is_run_checked_or_shown() -> None:
    known = SHELL | PARSED | SHOWN
    unknown = [
        f"{b.where} ({b.lang})" for b in ALL_BLOCKS + EXPECTED_OUTPUTS if b.lang not in known
    ]
    assert not unknown, f"blocks in a language the doc tests do not handle: {unknown}"


def test_every_shell_block_runs_or_says_why_not() -> None:
    for block in by_lang(*SHELL):
        if block.runs:
            continue
        assert block.marker is not None, block.where
        assert block.marker.kind in ("skip", "tested-by"), block.where
        if block.marker.kind == "skip":
            assert len(block.marker.argument.split()) >= 4, (
                f"{block.where}: a skipped block says why, in words: {block.marker}"
            )


def test_the_tests_a_reason_names_exist() -> None:
    for block in ALL_BLOCKS:
        if block.marker is None or block.marker.kind != "skip":
            continue
        for named in re.findall(r"tests/[\w/]+\.py", block.marker.argument):
            assert (ROOT / named).is_file(), f"{block.where}: no such test: {named}"


def test_every_sql_block_names_the_test_that_runs_it() -> None:
    for block in by_lang("sql"):
        assert block.marker is not None, block.where
        assert block.marker.kind == "tested-by", block.where


def test_a_tested_by_marker_names_a_test_that_reads_the_page() -> None:
    for block in ALL_BLOCKS:
        if block.marker is None or block.marker.kind != "tested-by":
            continue
        test = ROOT / block.marker.argument
        assert test.is_file(), f"{block.where}: no such test: {block.marker.argument}"
        assert str(block.path) in test.read_text(), f"{test} does not read {block.path}"


def test_servers_are_started_only_where_the_harness_can_follow() -> None:
    for block in ALL_BLOCKS:
        if block.marker is None:
            continue
        if block.marker.kind == "serve":
            assert block.path == README, f"{block.where}: `serve` belongs to the walk-through"
        if block.marker.kind == "background":
            assert block.marker.port > 0, block.where
            # A page may start a server of its own (tests/docs/walkthrough.py maps its port),
            # on a port the walk-through's servers do not use.
            assert block.path == README or block.marker.port not in WALKTHROUGH_PORTS, (
                f"{block.where}: port {block.marker.port} is the walk-through's"
            )


def test_a_marker_stands_right_before_a_block() -> None:
    for path in FILES:
        lines = (ROOT / path).read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            if re.match(r"^\s*<!--\s*doctest\b", line):
                following = lines[number] if number < len(lines) else ""
                assert following.lstrip().startswith(("```", "~~~")), (
                    f"{path}:{number}: a doctest marker must be on the line before a fenced block"
                )


@pytest.mark.parametrize("block", by_lang("python"), ids=lambda block: block.where)
def test_python_blocks_compile_and_their_imports_work(block: Block) -> None:
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = compile(block.text, block.where, "exec", flags=flags)
    assert isinstance(tree, ast.Module)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert imports, f"{block.where}: show where the names come from"
    module = ast.Module(body=list(imports), type_ignores=[])
    exec(compile(module, block.where, "exec"), {})  # noqa: S102 (the docs' own import lines)


@pytest.mark.parametrize(
    "block", by_lang("json", "yaml", "toml", "ini"), ids=lambda block: block.where
)
def test_data_blocks_parse(block: Block) -> None:
    if block.lang == "json":
        json.loads(block.text)
    elif block.lang == "yaml":
        yaml.safe_load(block.text)
    elif block.lang == "toml":
        tomllib.loads(block.text)
    else:
        configparser.ConfigParser().read_string(block.text)


def test_the_readme_starts_with_the_two_commands() -> None:
    first = blocks(README)[0]
    commands = [line.split("#")[0].strip() for line in first.text.splitlines()]
    assert commands[:2] == ["make run", "make test"], first.text
    before = (ROOT / README).read_text().split("```")[0]
    assert len(before.splitlines()) <= 12, "the two commands belong on the first screen"


def test_the_walkthrough_has_one_source_included_by_getting_started() -> None:
    readme = (ROOT / README).read_text()
    for section in ("walkthrough", "about"):
        assert f"<!-- --8<-- [start:{section}] -->" in readme
        assert f"<!-- --8<-- [end:{section}] -->" in readme
    assert '--8<-- "README.md:walkthrough"' in (ROOT / "docs/getting-started.md").read_text()
    assert '--8<-- "README.md:about"' in (ROOT / "docs/index.md").read_text()


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@pytest.mark.parametrize("path", [p for p in FILES if p.parts[0] != "docs"], ids=str)
def test_links_outside_the_site_resolve_in_the_repository(path: Path) -> None:
    """mkdocs --strict checks docs/; these files are read on GitHub or a package index, where
    a relative link must name a file of the repository."""
    text = (ROOT / path).read_text()
    for match in LINK.finditer(text):
        target = match.group("target")
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#")[0]
        assert (ROOT / path.parent / file).exists(), f"{path}: broken link {target}"


def test_the_walkthrough_section_links_nowhere() -> None:
    """It is included into docs/getting-started.md, where a README-relative link would break."""
    readme = (ROOT / README).read_text()
    section = readme.split("[start:walkthrough]")[1].split("[end:walkthrough]")[0]
    relative = [m.group("target") for m in LINK.finditer(section) if ":" not in m.group("target")]
    assert not relative, relative
