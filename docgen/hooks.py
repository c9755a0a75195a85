"""The MkDocs hook (mkdocs.yml `hooks:`) that fills in the generated reference tables.

A page line that is exactly `<!-- generated: NAME -->` is replaced by the Markdown of the
generator NAME, at build time. An unknown NAME fails the build. The generators read the code
(and docs/openapi.yaml), so a new setting, command, route, metric or audit event reaches the
docs by itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from docgen.cli_reference import cli_reference
from docgen.observability import audit_events_table, metrics_table
from docgen.openapi_reference import http_api_reference
from docgen.settings_reference import settings_table

GENERATORS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "cli": cli_reference,
    "http-api": http_api_reference,
    "metrics": metrics_table,
    "audit-events": audit_events_table,
}
MARKER = re.compile(r"^<!-- generated: (?P<name>[\w-]+) -->$", re.MULTILINE)


def expand(markdown: str, source: str) -> str:
    """`markdown` with every marker replaced; `source` names the page in errors."""

    def generated(match: re.Match[str]) -> str:
        name = match.group("name")
        generator = GENERATORS.get(name)
        if generator is None:
            known = ", ".join(sorted(GENERATORS))
            raise PluginError(f"{source}: unknown generated table {name!r} (known: {known})")
        return generator().rstrip("\n")

    return MARKER.sub(generated, markdown)


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    return expand(markdown, page.file.src_uri)
