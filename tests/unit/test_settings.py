"""Configuration: TOML file overridden by AUTHSERVER_* variables; one line on bad input."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from authserver.settings import ConfigError, load_settings


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "authserver.toml"
    monkeypatch.setenv("AUTHSERVER_CONFIG", str(path))
    return path


def test_defaults_match_the_spec(config_file: Path) -> None:
    config_file.write_text("")
    settings = load_settings()
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.database_url == "sqlite+aiosqlite:///var/authserver.db"
    assert (settings.access_token_ttl, settings.refresh_token_ttl) == (900, 604_800)
    assert settings.refresh_family_max_age == 2_592_000
    assert (settings.jwks_max_age, settings.keys_refresh_interval) == (300, 5.0)
    assert settings.scopes == []
    assert settings.audience == settings.issuer
    assert (settings.session_ttl, settings.code_ttl, settings.templates_dir) == (43_200, 60, None)
    assert settings.login_session_ttl == 43_200


def test_metrics_are_served_off_the_public_port_by_default(config_file: Path) -> None:
    """/metrics on a port of its own (9464), on loopback only, unless METRICS_PORT says 0."""
    config_file.write_text("")
    settings = load_settings()
    assert (settings.metrics_port, settings.metrics_host) == (9464, "127.0.0.1")
    config_file.write_text("metrics_port = 0\n")
    assert load_settings().metrics_port == 0


def test_environment_overrides_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('access_token_ttl = 300\nissuer = "https://file.example"\n')
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_TTL", "120")
    settings = load_settings()
    assert settings.access_token_ttl == 120
    assert settings.issuer == "https://file.example"


def test_list_in_the_environment_is_json(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("")
    monkeypatch.setenv("AUTHSERVER_SCOPES", '["profile:read","orders"]')
    assert load_settings().scopes == ["profile:read", "orders"]


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        ("access_token_ttl = 0\n", {}, "access_token_ttl"),
        ("acess_token_ttl = 60\n", {}, "acess_token_ttl"),
        ("", {"AUTHSERVER_ACCESS_TOKEN_TTL": "abc"}, "access_token_ttl"),
        ('database_url = "postgresql://x/y"\n', {}, "database_url"),
        ('issuer = "not a url"\n', {}, "issuer"),
        ('scopes = ["a b"]\n', {}, "scopes"),
        ("refresh_token_ttl = 100\nrefresh_family_max_age = 50\n", {}, "refresh_token_ttl"),
        ("access_token_ttl = \n", {}, "config file"),
        ("refresh_reuse_grace = 301\n", {}, "refresh_reuse_grace"),
        ('trusted_proxies = ["10.0.0.0/33"]\n', {}, "trusted_proxies"),
        ("", {"AUTHSERVER_SCOPES": "[bad"}, "scopes"),
        ("code_ttl = 601\n", {}, "code_ttl"),
        ("session_ttl = 0\n", {}, "session_ttl"),
        ("database_pool_size = 1\n", {}, "database_pool_size"),  # two pools, one each at least
        ('templates_dir = "/nonexistent/templates"\n', {}, "templates_dir"),
    ],
)
def test_bad_configuration_is_one_line_naming_the_setting(
    config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    toml: str,
    env: dict[str, str],
    named: str,
) -> None:
    config_file.write_text(toml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(named), message


def test_missing_explicit_config_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHSERVER_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="AUTHSERVER_CONFIG"):
        load_settings()


def test_shipped_config_file_lists_every_setting_at_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = Path(__file__).parents[2] / "config" / "authserver.toml"
    monkeypatch.setenv("AUTHSERVER_CONFIG", str(shipped))
    from_file = load_settings()
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("AUTHSERVER_CONFIG", str(empty))
    assert from_file == load_settings()

    text = shipped.read_text()
    listed = set(tomllib.loads(text))
    # A setting without a default value is written down as a commented-out example line.
    commented_out = set(re.findall(r"^# (\w+) = ", text, flags=re.MULTILINE))
    fields = type(from_file).model_fields
    assert listed.isdisjoint(commented_out)
    assert listed | commented_out == set(fields)
    assert commented_out == {name for name, field in fields.items() if field.default is None}


def test_a_login_session_never_outlasts_refresh_family_max_age() -> None:
    """A family counts from the sign-in: a session older than REFRESH_FAMILY_MAX_AGE could only
    start dead ones, so it ends then (an older configuration with a short family age still
    starts)."""
    settings = load_settings(refresh_family_max_age=3600, refresh_token_ttl=600)
    assert (settings.session_ttl, settings.login_session_ttl) == (43_200, 3600)


@pytest.mark.parametrize(
    "variable", ["AUTHSERVER_ACESS_TOKEN_TTL", "AUTHSERVER_METRICS", "authserver_issuerr"]
)
def test_an_environment_variable_that_names_no_setting_is_refused(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A typo in a variable would otherwise leave the default in force without a word."""
    config_file.write_text("")
    monkeypatch.setenv(variable, "60")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{variable}: unknown setting"), message


def test_a_near_miss_names_the_setting_it_resembles(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("")
    monkeypatch.setenv("AUTHSERVER_ACESS_TOKEN_TTL", "60")
    with pytest.raises(ConfigError, match="AUTHSERVER_ACCESS_TOKEN_TTL"):
        load_settings()


def test_the_variables_that_are_not_settings_are_still_accepted(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AUTHSERVER_CONFIG names the file; AUTHSERVER_TEST_* are the test suite's own (its
    PostgreSQL server, its browser, where its screenshots go)."""
    config_file.write_text("")
    for variable in ("AUTHSERVER_TEST_POSTGRES", "AUTHSERVER_TEST_BROWSER", "AUTHSERVER_TEST_X"):
        monkeypatch.setenv(variable, "off")
    assert load_settings().issuer == "http://127.0.0.1:8000"
