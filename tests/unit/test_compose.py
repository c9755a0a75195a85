"""docker-compose.yml and deploy/nginx.conf, checked without Docker: the structure an operator
relies on (start-up order, health checks, one published port, settings that exist)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from authserver.settings import Settings

ROOT = Path(__file__).parents[2]
REPLICAS = ("authserver-1", "authserver-2")
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def test_compose_runs_postgres_a_migration_two_replicas_and_a_load_balancer(
    services: dict[str, Any],
) -> None:
    assert set(services) == {"postgres", "migrate", *REPLICAS, "lb"}


def test_start_up_order_waits_for_health_and_for_the_migration(
    services: dict[str, Any],
) -> None:
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"  # one-shot
    for replica in REPLICAS:
        assert services[replica]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert services["lb"]["depends_on"] == {
        replica: {"condition": "service_healthy"} for replica in REPLICAS
    }


def test_every_long_running_service_has_a_health_check(services: dict[str, Any]) -> None:
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for replica in REPLICAS:
        check = " ".join(services[replica]["healthcheck"]["test"])
        assert "python" in check  # the slim image has no curl
        assert "http://127.0.0.1:8000/readyz" in check
    assert "/healthz" in " ".join(services["lb"]["healthcheck"]["test"])


def test_only_the_load_balancer_publishes_a_port(services: dict[str, Any]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"lb"}
    assert services["lb"]["ports"] == ["127.0.0.1:8000:8000"]


def test_replicas_serve_with_workers_on_the_port_the_balancer_uses(
    services: dict[str, Any],
) -> None:
    for replica in REPLICAS:
        command = services[replica]["command"]
        assert command[0] == "serve"
        options = dict(zip(command[1::2], command[2::2], strict=True))
        assert options["--host"] == "0.0.0.0"  # noqa: S104  # inside the container
        assert options["--port"] == "8000"
        assert int(options["--workers"]) >= 1


def test_replicas_offer_their_metrics_port_to_the_compose_network_only(
    services: dict[str, Any],
) -> None:
    """Prometheus on the compose network scrapes each replica's METRICS_PORT (default 9464); the
    port is exposed to the network, never published, and the balancer does not route to it."""
    port = Settings.model_fields["metrics_port"].default
    for replica in REPLICAS:
        environment = services[replica]["environment"]
        assert environment["AUTHSERVER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104  # container
        assert "AUTHSERVER_METRICS_PORT" not in environment  # the default
        assert str(port) in services[replica]["expose"]
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    assert str(port) not in config


def test_environment_names_only_real_settings_and_is_shared_by_every_authserver(
    services: dict[str, Any],
) -> None:
    fields = set(Settings.model_fields)
    environments = [services[name]["environment"] for name in ("migrate", *REPLICAS)]
    assert environments[0] == environments[1] == environments[2]  # one ISSUER, one KEK, one DB
    environment = environments[0]
    for name in environment:
        assert name.startswith("AUTHSERVER_"), name
        assert name.removeprefix("AUTHSERVER_").lower() in fields, name
    for required in ("DATABASE_URL", "ISSUER", "KEY_ENCRYPTION_KEY"):
        assert f"AUTHSERVER_{required}" in environment
    assert environment["AUTHSERVER_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in environment["AUTHSERVER_DATABASE_URL"]
    # The KEK comes from the operator's .env and compose refuses to start without it.
    assert environment["AUTHSERVER_KEY_ENCRYPTION_KEY"].startswith(
        "${AUTHSERVER_KEY_ENCRYPTION_KEY:?"
    )


def test_environment_values_are_valid_settings(services: dict[str, Any]) -> None:
    """The values, with compose's ${VAR:-default} replaced by a plausible value, load."""
    environment = services["authserver-1"]["environment"]
    kek = "a" * 43

    def plausible(match: re.Match[str]) -> str:
        if match.group(1) == "AUTHSERVER_KEY_ENCRYPTION_KEY":
            return kek
        return match.group(3) if match.group(2) == "-" else "x"  # ${VAR:-default}: the default

    values: dict[str, Any] = {
        name.removeprefix("AUTHSERVER_").lower(): COMPOSE_VARIABLE.sub(plausible, str(value))
        for name, value in environment.items()
    }
    values["issuer"] = "http://localhost:8000"
    for json_list in ("trusted_proxies", "previous_key_encryption_keys"):
        values[json_list] = yaml.safe_load(values[json_list])
    settings = Settings(**values)
    assert settings.trusted_proxies == [services["lb"]["networks"]["default"]["ipv4_address"]]


def test_the_trusted_proxy_is_the_load_balancers_fixed_address(compose: dict[str, Any]) -> None:
    address = compose["services"]["lb"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)


def test_nginx_balances_over_both_replicas_and_forwards_the_client_address() -> None:
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.search(r"upstream authserver \{(.*?)\}", config, re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+([\w.-]+:\d+)", upstream.group(1), re.M)
    assert servers == [f"{replica}:8000" for replica in REPLICAS]
    assert "listen 8000;" in config
    assert "proxy_pass http://authserver;" in config
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in config
    # A POST must never be replayed on the other replica: that would be refresh-token reuse.
    assert "non_idempotent" not in config


def test_the_balancer_mounts_the_config_from_the_repository(services: dict[str, Any]) -> None:
    assert services["lb"]["image"].startswith("nginx:")
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in services["lb"]["volumes"]


def test_dockerfile_runs_authserver_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert 'ENTRYPOINT ["authserver"]' in dockerfile
    assert "COPY migrations" in dockerfile  # `db upgrade` needs the Alembic revisions
