"""The command-line reference, from the click commands: every command under `authserver`, in
order, with its usage line, help text and options. A new command or option appears by itself."""

from __future__ import annotations

import click

from authserver.cli import main
from docgen.markdown import code, table


def cli_reference() -> str:
    return "\n".join(sections(main, click.Context(main, info_name="authserver"), depth=2))


def sections(command: click.Command, ctx: click.Context, depth: int) -> list[str]:
    out = [command_section(command, ctx, depth)]
    for name, sub in subcommands(command):
        out += sections(sub, click.Context(sub, info_name=name, parent=ctx), depth + 1)
    return out


def subcommands(command: click.Command) -> list[tuple[str, click.Command]]:
    """A group's visible commands in the order they were added (SPEC's order), not sorted."""
    if not isinstance(command, click.Group):
        return []
    return [(name, sub) for name, sub in command.commands.items() if not sub.hidden]


def command_section(command: click.Command, ctx: click.Context, depth: int) -> str:
    lines = [f"{'#' * depth} {ctx.command_path}", ""]
    usage = command.get_usage(ctx).removeprefix("Usage: ")
    lines += ["```text", " ".join(usage.split()), "```", ""]
    if command.help:
        lines += help_paragraphs(command.help)
    options = [
        record
        for param in command.get_params(ctx)
        if (record := param.get_help_record(ctx)) is not None and record[0] != "--help"
    ]
    if options:
        rows = [[code(names), text] for names, text in options]
        lines += [table(["option", "meaning"], rows)]
    commands = subcommands(command)
    if commands:
        paths = [(f"{ctx.command_path} {name}", sub) for name, sub in commands]
        rows = [
            [f"[{code(path)}](#{slug(path)})", sub.get_short_help_str(limit=200)]
            for path, sub in paths
        ]
        lines += [table(["command", "what it does"], rows)]
    return "\n".join(lines)


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc gives a heading made of words and hyphens."""
    return "-".join(heading.lower().split())


def help_paragraphs(text: str) -> list[str]:
    """click's help text as Markdown paragraphs (click's `\\b` no-rewrap marker dropped)."""
    paragraphs = [block.replace("\b\n", "").strip() for block in text.split("\n\n")]
    return [" ".join(block.split()) + "\n" for block in paragraphs if block]
