"""Typed configuration: `config/authserver.toml` (or `$AUTHSERVER_CONFIG`) overridden by
`AUTHSERVER_<NAME>` environment variables (SPEC "Configuration").

Invalid configuration raises `ConfigError` with one line naming the setting, which the CLI prints
before exiting non-zero.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_PATH = Path("config/authserver.toml")
DEFAULT_ISSUER = "http://127.0.0.1:8000"

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


class ConfigError(Exception):
    """Configuration that cannot be used; the message is one line naming the setting."""


class Settings(BaseSettings):
    """Every setting of SPEC "Configuration", plus the tuning knobs the issues ask for."""

    model_config = SettingsConfigDict(
        env_prefix="AUTHSERVER_",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    issuer: str = DEFAULT_ISSUER
    database_url: str = "sqlite+aiosqlite:///var/authserver.db"
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    database_connect_timeout: float = Field(default=5.0, gt=0, le=120)

    access_token_ttl: int = Field(default=900, ge=1, le=86_400)
    refresh_token_ttl: int = Field(default=604_800, ge=1)
    refresh_family_max_age: int = Field(default=2_592_000, ge=1)
    refresh_reuse_grace: int = Field(default=0, ge=0, le=300)
    default_audience: str | None = None
    scopes: list[str] = Field(default_factory=list)

    jwks_max_age: int = Field(default=300, ge=0, le=86_400)
    key_encryption_key: SecretStr | None = None
    key_encryption_key_file: Path = Path("keys/kek")
    keys_refresh_interval: float = Field(default=5.0, gt=0, le=3600)
    key_rotation_interval: int = Field(default=0, ge=0)  # seconds; 0 = no automatic rotation
    signing_key_size: int = Field(default=2048)

    argon2_time_cost: int = Field(default=2, ge=1, le=20)
    argon2_memory_cost: int = Field(default=19_456, ge=8, le=4_194_304)  # KiB
    argon2_parallelism: int = Field(default=1, ge=1, le=16)

    login_max_failures: int = Field(default=10, ge=1)
    login_lock_seconds: int = Field(default=60, ge=1)
    login_lock_max_seconds: int = Field(default=900, ge=1)
    login_ip_max_failures: int = Field(default=100, ge=1)
    login_ip_window_seconds: int = Field(default=900, ge=1)
    login_known_ip_days: int = Field(default=30, ge=0, le=3650)  # 0: no known-IP exception
    login_failure_reset_seconds: int = Field(default=43_200, ge=1)  # quiet time that forgets
    audit_retention_days: int = Field(default=90, ge=0, le=36_500)  # 0: keep audit rows for ever
    trusted_proxies: list[str] = Field(default_factory=list)

    request_timeout: float = Field(default=10.0, gt=0, le=300)

    metrics_enabled: bool = True
    metrics_port: int | None = Field(default=None, ge=1, le=65_535)  # None: the main port
    metrics_host: str = "127.0.0.1"
    log_format: Literal["json", "text"] = "json"

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_plain_url(cls, value: str) -> str:
        url = AnyHttpUrl(value)  # raises a ValidationError naming `issuer`
        if url.query or url.fragment:
            raise ValueError("must not have a query or fragment (RFC 8414 §2)")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url_is_async(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes_are_scope_tokens(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not SCOPE_TOKEN.match(scope):
                raise ValueError(f"{scope!r} is not a valid scope token (RFC 6749 §3.3)")
        return list(dict.fromkeys(value))

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("signing_key_size")
    @classmethod
    def _rsa_size(cls, value: int) -> int:
        if value not in (2048, 3072, 4096):
            raise ValueError("must be 2048, 3072 or 4096")
        return value

    @model_validator(mode="after")
    def _lifetimes_fit(self) -> Settings:
        if self.refresh_token_ttl > self.refresh_family_max_age:
            raise ValueError(
                "refresh_token_ttl: must not exceed refresh_family_max_age "
                f"({self.refresh_family_max_age})"
            )
        return self

    @property
    def audience(self) -> str:
        """`aud` for clients with no audience of their own."""
        return self.default_audience or self.issuer

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def _config_path() -> Path | None:
    """The TOML file to read: `$AUTHSERVER_CONFIG` (must exist) or the default (may be absent)."""
    explicit = os.environ.get("AUTHSERVER_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"AUTHSERVER_CONFIG: no such file: {explicit}")
        return path
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning any problem into a one-line `ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {_config_path()}: {_first_line(str(exc))}") from None
    except ValueError as exc:  # pydantic-settings' SettingsError, e.g. a bad JSON list in env
        field = re.search(r'field "(\w+)"', str(exc))
        if field:
            name = field.group(1)
            raise ConfigError(f"{name}: AUTHSERVER_{name.upper()} is not valid JSON") from None
        raise ConfigError(f"configuration: {_first_line(str(exc))}") from None


def _one_line(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    name = ".".join(str(part) for part in error["loc"]) or "configuration"
    if error["type"] == "extra_forbidden":
        return f"{name}: unknown setting"
    message = str(error["msg"]).removeprefix("Value error, ")
    if ":" in message and message.split(":", 1)[0].isidentifier() and name == "configuration":
        return message  # model-level validators already name their setting
    return f"{name}: {_first_line(message)}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid"
