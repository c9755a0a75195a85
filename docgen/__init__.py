"""Reference pages generated from the code at docs build time (see hooks.py).

Each generator turns one source of truth into Markdown: the `Settings` class, the click commands,
docs/openapi.yaml, the Prometheus metrics and the audit events. Nothing here is shipped in the
wheel; `mkdocs build` imports it through mkdocs.yml's `hooks:`.
"""
