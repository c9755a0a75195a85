"""The configuration table, from the `Settings` class: name, default, type and bounds (read from
the field's type and constraints), and its `description`. A new setting appears by itself."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from authserver.settings import Settings
from docgen.markdown import code, table

EN_DASH = "\u2013"  # between the ends of a range


def settings_table() -> str:
    rows = [
        [
            f'<span id="{name}"></span>{code(name.upper())}',
            default_text(field),
            type_and_bounds(field),
            field.description or "",
        ]
        for name, field in Settings.model_fields.items()
    ]
    return table(["setting", "default", "type and bounds", "meaning"], rows)


def default_value(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def default_text(field: FieldInfo) -> str:
    value = default_value(field)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return code("true" if value else "false")
    if isinstance(value, list):
        return code("[]") if not value else code(", ".join(map(str, value)))
    if isinstance(value, Path):
        return code(str(value))
    return code(str(value))


def type_and_bounds(field: FieldInfo) -> str:
    """The type and the field's constraints: `integer, 1` EN_DASH `86400`, `number, > 0, ≤ 120`."""
    bounds: dict[str, object] = {}
    for constraint in field.metadata:
        for kind in ("ge", "gt", "le", "lt"):
            if isinstance(constraint, getattr(annotated_types, kind.capitalize())):
                bounds[kind] = getattr(constraint, kind)
    if set(bounds) == {"ge", "le"}:
        return f"{type_name(field.annotation)}, {bounds['ge']}{EN_DASH}{bounds['le']}"
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    limits = [f"{symbols[kind]} {value}" for kind, value in bounds.items()]
    return ", ".join([type_name(field.annotation), *limits])


def type_name(annotation: object) -> str:
    """In the words of the TOML file and the environment (a list is JSON there)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args if arg is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(code(str(arg)) for arg in args)
    if origin is list:
        return f"list of {type_name(args[0])}s (JSON in the environment)"
    names: dict[object, str] = {
        int: "integer",
        float: "number",
        bool: "boolean",
        str: "string",
        Path: "path",
        SecretStr: "secret string",
    }
    return names.get(annotation, str(annotation))
