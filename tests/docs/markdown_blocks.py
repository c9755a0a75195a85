"""The fenced blocks of the repository's Markdown files, with their doc-test markers.

A marker is an HTML comment on the line right before a block (see CONTRIBUTING.md, "The
documentation"):

    <!-- doctest: skip: REASON -->          not run here, and why (Docker, cron, the test suite)
    <!-- doctest: tested-by PATH -->        exercised by another test (PATH names the page)
    <!-- doctest: background port=N -->     a server: started in the background, waited for on N
    <!-- doctest: serve -->                 `make run`: the harness starts `authserver serve` itself

A `text` or `json` block right after a shell block (only blank lines between) is that command's
expected output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = frozenset({"sh", "bash", "shell", "console"})
OUTPUT = frozenset({"text", "json"})  # the languages of an expected output
MARKER_KINDS = frozenset({"skip", "tested-by", "background", "serve"})
# Not scanned, with the reason: copied byte for byte from the shared contract, so its blocks
# keep the contract's form (no language names); it shows no command to run.
VERBATIM = {Path("docs/spec.md")}
NOT_DOCUMENTATION = {"site", "var", "node_modules"}  # and every hidden directory

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*doctest:\s*(?P<kind>[\w-]+)(?P<argument>.*?)\s*-->\s*$")
_ANY_MARKER = re.compile(r"^\s*<!--\s*doctest\b")


@dataclass(frozen=True)
class Marker:
    kind: str  # one of MARKER_KINDS
    argument: str  # skip: the reason; tested-by: a path; background: port=N; serve: ""

    @property
    def port(self) -> int:
        match = re.fullmatch(r"port=(\d+)", self.argument)
        if self.kind != "background" or match is None:
            raise ValueError(f"not a background marker with port=N: {self}")
        return int(match.group(1))


@dataclass(frozen=True)
class Block:
    path: Path  # relative to the repository
    line: int  # 1-based line of the opening fence
    lang: str
    text: str  # the content, without the fence's indentation
    marker: Marker | None
    expected: Block | None = None  # a shell block's expected output

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELL

    @property
    def runs(self) -> bool:
        """Run by the doc-test session (a `serve` block is run as the harness's own server)."""
        runner = self.marker is None or self.marker.kind in ("background", "serve")
        return self.is_shell and runner


class MarkdownError(ValueError):
    """A block or marker the doc tests cannot classify; the message names the file and line."""


def markdown_files() -> list[Path]:
    """Every Markdown file of the repository (relative paths), but the verbatim contract."""
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in NOT_DOCUMENTATION and not d.startswith(".")
        )
        for name in sorted(files):
            path = (Path(directory) / name).relative_to(ROOT)
            if name.endswith(".md") and path not in VERBATIM:
                found.append(path)
    return found


@cache
def blocks(path: Path) -> tuple[Block, ...]:
    """The top-level blocks of one file, in order; an expected output hangs off its command."""
    lines = (ROOT / path).read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            if _ANY_MARKER.search(lines[index]) and _MARKER.match(lines[index]) is None:
                raise MarkdownError(f"{path}:{index + 1}: malformed doctest marker")
            index += 1
            continue
        block, index = _read_block(path, lines, index, opening)
        previous = found[-1] if found else None
        if (
            previous is not None
            and previous.is_shell
            and previous.expected is None
            and block.lang in OUTPUT
            and _only_blank_between(lines, previous, block)
        ):
            found[-1] = Block(**{**previous.__dict__, "expected": block})
        else:
            found.append(block)
    return tuple(found)


def _read_block(
    path: Path, lines: list[str], start: int, opening: re.Match[str]
) -> tuple[Block, int]:
    indent = len(opening.group("indent"))
    fence = opening.group("fence")
    lang = opening.group("info").strip().split(" ")[0].strip("{}.")
    body: list[str] = []
    index = start + 1
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
            marker = _marker_before(path, lines, start)
            text = "\n".join(body) + ("\n" if body else "")
            return Block(path, start + 1, lang, text, marker), index + 1
        body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
        index += 1
    raise MarkdownError(f"{path}:{start + 1}: the fenced block is never closed")


def _marker_before(path: Path, lines: list[str], start: int) -> Marker | None:
    if start == 0:
        return None
    match = _MARKER.match(lines[start - 1])
    if match is None:
        return None
    kind = match.group("kind")
    argument = match.group("argument").strip()
    if kind not in MARKER_KINDS:
        raise MarkdownError(f"{path}:{start}: unknown doctest marker {kind!r}")
    if kind == "skip":
        argument = argument.removeprefix(":").strip()
    return Marker(kind, argument)


def _only_blank_between(lines: list[str], first: Block, second: Block) -> bool:
    end_of_first = first.line + first.text.count("\n")  # 0-based index of its closing fence
    return all(not line.strip() for line in lines[end_of_first + 1 : second.line - 1])
