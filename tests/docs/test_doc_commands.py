"""Every shell command the documentation shows, run against a real server, output compared.

The README's five-minute walk-through runs first, in a fresh directory and bash session, every
output checked. Every other page then continues from where it left off, in a copy of its
directory, with its shell variables ($CLIENT_ID, $CLIENT_SECRET, $ACCESS_TOKEN, ...) and, when
the page talks to them, its servers (authserver, the example resource server) running again on
the same ports: pages cannot disturb each other. (A restarted server's metrics start at zero.)
The conventions (the `…` wildcard, the markers, the port mapping) are in CONTRIBUTING.md, "The
documentation".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.docs.doc_session import DocTestFailure
from tests.docs.markdown_blocks import Block, blocks, markdown_files
from tests.docs.walkthrough import Snapshot, continue_from, run_walkthrough

pytestmark = pytest.mark.e2e

README = Path("README.md")
TOOLS = ("bash", "curl", "jq")


def runnable(path: Path) -> list[Block]:
    return [block for block in blocks(path) if block.runs]


PAGES = [path for path in markdown_files() if path != README and runnable(path)]


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Snapshot | DocTestFailure:
    """The walk-through's end state, or how it failed (reported by its own test)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:  # make test installs them in CI; a missing one fails, never skips
        pytest.fail(f"the doc tests need {', '.join(missing)}: apt-get install -y curl jq")
    try:
        return run_walkthrough(tmp_path_factory.mktemp("walkthrough"), runnable(README))
    except DocTestFailure as failure:
        return failure


def test_the_walkthrough_prints_what_the_readme_shows(
    walkthrough: Snapshot | DocTestFailure,
) -> None:
    if isinstance(walkthrough, DocTestFailure):
        pytest.fail(str(walkthrough), pytrace=False)


def test_the_docs_have_commands_to_run_beyond_the_walkthrough() -> None:
    assert len(PAGES) >= 5, PAGES


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_every_command_on_the_page_prints_what_the_page_shows(
    page: Path, walkthrough: Snapshot | DocTestFailure, tmp_path: Path
) -> None:
    if isinstance(walkthrough, DocTestFailure):
        pytest.fail("the README's walk-through, which every page continues, failed", pytrace=False)
    commands = runnable(page)
    failure: DocTestFailure | None = None
    with continue_from(walkthrough, tmp_path, commands) as session:
        try:
            for block in commands:
                session.run(block)
        except DocTestFailure as caught:
            failure = caught
    if failure is not None:
        pytest.fail(str(failure), pytrace=False)
