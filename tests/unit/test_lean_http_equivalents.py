"""The token endpoint's lean equivalents of library code (http/forms.py, http/responses.py) give
exactly what the library code they replace gives: the same form pairs as our `parse_qsl` call,
and the same status, header fields and bytes as `JsonResponse(content, headers=NO_STORE)`."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest

from authserver.errors import NO_STORE, OAuthError
from authserver.http.forms import MAX_PARAMETERS, _pairs
from authserver.http.responses import JsonResponse, NoStoreJsonResponse

ALPHABET = [
    "a",
    "Z",
    "0",
    "_",
    "-",
    "=",
    "&",
    "+",
    "%",
    "%2",
    "%41",
    "%e2%82%ac",
    "%FF",
    ";",
    " ",
    "é",
]


def library_pairs(text: str) -> list[tuple[str, str]] | str:
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except UnicodeDecodeError:
        return "not utf-8"
    except ValueError:
        return "too many"


def lean_pairs(text: str) -> list[tuple[str, str]] | str:
    try:
        return _pairs(text)
    except UnicodeDecodeError:
        return "not utf-8"
    except OAuthError as error:
        return "too many" if error.description == "The request has too many parameters." else "?"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "&",
        "a",
        "a=",
        "=b",
        "a=b=c",
        "a=1;b=2",
        "a+b=c+d",
        "a=%2",
        "a=%FF",
        "a=%e2%82%ac",
        "&".join(["x=1"] * (MAX_PARAMETERS - 1)),
        "&".join(["x=1"] * MAX_PARAMETERS),
        "&" * (MAX_PARAMETERS - 1),
        "&" * MAX_PARAMETERS,
    ],
)
def test_form_pairs_match_parse_qsl_on_edge_cases(text: str) -> None:
    assert lean_pairs(text) == library_pairs(text)


def test_form_pairs_match_parse_qsl_on_generated_bodies() -> None:
    rng = random.Random(13)  # fixed: the same bodies on every run
    for _ in range(5000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 40)))
        assert lean_pairs(text) == library_pairs(text), text


@pytest.mark.parametrize(
    "content",
    [{}, {"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 900, "scope": "é"}],
)
def test_no_store_json_response_is_the_json_response_it_replaces(
    content: dict[str, object],
) -> None:
    lean = NoStoreJsonResponse(content)
    library = JsonResponse(content, headers=NO_STORE)
    assert lean.status_code == library.status_code == 200
    assert lean.body == library.body
    assert lean.raw_headers == library.raw_headers
    assert lean.background is None
