"""The HTTP API reference, from docs/openapi.yaml: for each operation its summary, description,
query and body parameters, and every response with its error codes and headers. The prose
lives in the OpenAPI document, so the page and the document cannot disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from docgen.markdown import code, table

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


def load_openapi(path: Path = OPENAPI) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def http_api_reference(path: Path = OPENAPI) -> str:
    document = load_openapi(path)
    out: list[str] = []
    for route, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                out.append(operation_section(document, method.upper(), route, item[method]))
    return "\n".join(out)


def resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s (`#/components/...`) until a node without one."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation_section(document: dict[str, Any], method: str, route: str, op: dict[str, Any]) -> str:
    lines = [f"### {method} {route}", "", f"**{op['summary']}.**", ""]
    if "description" in op:
        lines += [" ".join(op["description"].split()), ""]
    parameters = [resolve(document, p) for p in op.get("parameters", [])]
    for where, title in (("query", "Query parameters:"), ("header", "Request headers:")):
        these = [p for p in parameters if p.get("in", "query") == where]
        if these:
            lines += [title, "", query_table(these)]
    body = op.get("requestBody")
    if body is not None:
        for media_type, content in resolve(document, body)["content"].items():
            schema = resolve(document, content["schema"])
            lines += [f"Request body, {code(media_type)}:", ""]
            if "description" in schema:
                lines += [" ".join(schema["description"].split()), ""]
            lines += [parameters_table(document, schema)]
    lines += ["Responses:", "", responses_table(document, op["responses"])]
    return "\n".join(lines)


def parameters_table(document: dict[str, Any], schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        prop = resolve(document, prop)
        meaning = prop.get("description", "")
        if "enum" in prop:
            meaning = (meaning + " One of " + ", ".join(code(v) for v in prop["enum"])).strip()
        rows.append([code(name), "yes" if name in required else "no", meaning])
    return table(["parameter", "required", "meaning"], rows)


def query_table(parameters: list[dict[str, Any]]) -> str:
    rows = []
    for parameter in parameters:
        schema = parameter.get("schema", {})
        meaning = " ".join(parameter.get("description", "").split())
        if "const" in schema:
            meaning = (f"Exactly {code(schema['const'])}. " + meaning).strip()
        elif "enum" in schema:
            meaning = (meaning + " One of " + ", ".join(code(v) for v in schema["enum"])).strip()
        rows.append(
            [code(parameter["name"]), "yes" if parameter.get("required") else "no", meaning]
        )
    return table(["parameter", "required", "meaning"], rows)


def responses_table(document: dict[str, Any], responses: dict[str, Any]) -> str:
    rows = []
    for status, response in responses.items():
        response = resolve(document, response)
        headers = response.get("headers", {}).items()
        rows.append(
            [
                str(status),
                " ".join(response["description"].split()),
                ", ".join(body_summary(document, response)),
                ", ".join(header_text(document, name, header) for name, header in headers),
            ]
        )
    return table(["status", "meaning", "body", "headers"], rows)


def body_summary(document: dict[str, Any], response: dict[str, Any]) -> list[str]:
    """Error codes from the examples, or the fields of a success body."""
    out: list[str] = []
    for media_type, content in response.get("content", {}).items():
        examples = content.get("examples", {})
        if examples:
            out += [code(resolve(document, ex)["value"]["error"]) for ex in examples.values()]
            continue
        schema = resolve(document, content.get("schema", {}))
        variants = [resolve(document, s) for s in schema.get("oneOf", [schema])]
        for variant in variants:
            names = list(variant.get("properties", {}))
            if names:
                out.append("{" + ", ".join(code(name) for name in names) + "}")
            else:
                out.append(code("{}") if variant.get("type") == "object" else code(media_type))
    return out


def header_text(document: dict[str, Any], name: str, header: dict[str, Any]) -> str:
    """`Name: value` when the document fixes the value, else `Name`."""
    schema = resolve(document, header).get("schema", {})
    return code(f"{name}: {schema['const']}") if "const" in schema else code(name)
