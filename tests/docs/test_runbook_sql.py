"""The SQL of docs/operations/runbooks/locked-out-user.md ("Lift a lock at once"), run as the
page shows it, on SQLite and PostgreSQL: it really lifts an address block. (A user's locks are
lifted by `authserver users unlock`, which the doc tests run from the same page.)

The page's example address, 203.0.113.7, is the address the `http` fixture's requests come from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from authserver.services import Services
from tests.conftest import RegisteredClient
from tests.docs.markdown_blocks import blocks
from tests.helpers import login, password_login

RUNBOOK = Path("docs/operations/runbooks/locked-out-user.md")


def runbook_statements() -> list[str]:
    (block,) = [block for block in blocks(RUNBOOK) if block.lang == "sql"]
    lines = [line for line in block.text.splitlines() if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


async def lift_locks_as_the_runbook_says(services: Services) -> None:
    async with services.db.transaction() as conn:
        for statement in runbook_statements():
            await conn.execute(text(statement))


async def fail(http: httpx.AsyncClient, client: RegisteredClient, times: int, user: str) -> None:
    for _ in range(times):
        response = await password_login(http, client, user, "wrong password")
        assert response.status_code == 400, response.text


@pytest.fixture
async def client(
    make_client: Callable[..., Awaitable[RegisteredClient]],
    make_user: Callable[..., Awaitable[str]],
) -> RegisteredClient:
    await make_user("alice")
    return await make_client("demo-app")


def test_the_runbook_shows_one_delete_statement_for_an_address() -> None:
    statements = runbook_statements()
    assert statements == ["DELETE FROM login_ip_failures WHERE ip = '203.0.113.7'"]


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}], indirect=True)
async def test_the_runbook_sql_lifts_an_address_block(
    http: httpx.AsyncClient, client: RegisteredClient, services: Services
) -> None:
    for name in ("mallory", "trudy", "eve"):
        await fail(http, client, 1, name)
    assert (await password_login(http, client, "alice")).status_code == 429
    await lift_locks_as_the_runbook_says(services)
    await login(http, client, "alice")
