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
ENV_PREFIX = "AUTHSERVER_"
# Variables with the prefix that are read directly and name no setting: the configuration file,
# and the test suite's own (AUTHSERVER_TEST_POSTGRES, AUTHSERVER_TEST_BROWSER, ...).
CONFIG_VARIABLE = "AUTHSERVER_CONFIG"
TEST_PREFIX = "AUTHSERVER_TEST_"
DEFAULT_ISSUER = "http://127.0.0.1:8000"

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


class ConfigError(Exception):
    """Configuration that cannot be used; the message is one line naming the setting."""


class Settings(BaseSettings):
    """Every setting of SPEC "Configuration", plus the tuning knobs the issues ask for."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    # Each description is the setting's documentation: docs/reference/configuration.md renders
    # them (with the default and the bounds read from the field) at build time.

    # --- identity and storage
    issuer: str = Field(
        default=DEFAULT_ISSUER,
        description="`iss` of every token and the base of the metadata URLs. An http(s) URL "
        "without query or fragment; a trailing `/` is removed. Every process of one deployment "
        "must use the same issuer; in production, the public https URL.",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/authserver.db",
        description="SQLAlchemy async URL: `sqlite+aiosqlite://…` or `postgresql+asyncpg://…`. "
        "An SQLite database (the default is relative to the working directory) is created and "
        "migrated by `serve` at start and by `db upgrade`; PostgreSQL only by `authserver db "
        "upgrade`. Every other command refuses a database that does not exist or is not at "
        "the latest revision.",
    )
    database_pool_size: int = Field(
        default=10,
        ge=2,
        le=1000,
        description="PostgreSQL connections per process (no overflow): a quarter (at least one) "
        "for transactions, the rest for the single statements of the hot path (refresh "
        "rotation, client lookups). See Scaling for the arithmetic against `max_connections`.",
    )
    database_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Seconds to wait for a new PostgreSQL connection or a free pooled one; then "
        "503 `temporarily_unavailable`.",
    )

    # --- token lifetimes (seconds)
    access_token_ttl: int = Field(
        default=900,
        ge=1,
        le=86_400,
        description="Access-token lifetime in seconds (`exp` - `iat`, and `expires_in`). A "
        "client may have a shorter one (`clients create --access-token-ttl`). Also the longest "
        "time a revoked login's access token still passes offline verification.",
    )
    refresh_token_ttl: int = Field(
        default=604_800,
        ge=1,
        description="Lifetime of each refresh token in seconds; every rotation issues a "
        "successor with a fresh lifetime, never past REFRESH_FAMILY_MAX_AGE. At most "
        "REFRESH_FAMILY_MAX_AGE.",
    )
    refresh_family_max_age: int = Field(
        default=2_592_000,
        ge=1,
        description="Absolute limit of a login (a refresh-token family) in seconds, counted from "
        "the sign-in (the password grant, or the sign-in page behind `/authorize`): rotation "
        "never extends a family past it.",
    )
    refresh_reuse_grace: int = Field(
        default=0,
        ge=0,
        le=300,
        description="Grace window in seconds for a client whose network lost the response to a "
        "refresh: within it, the immediately previous token, while its successor is unused, "
        "gets a new pair and the unused successor is revoked. 0: strict rotation, every replay "
        "is reuse and revokes the family.",
    )
    default_audience: str | None = Field(
        default=None,
        description="`aud` of access tokens for clients registered without `--audience`. "
        "Unset: the issuer.",
    )
    scopes: list[str] = Field(
        default_factory=list,
        description="The scopes this server knows (RFC 6749 scope tokens). Empty: any valid "
        "scope may be registered for a client, and discovery's `scopes_supported` lists the "
        "registered clients' scopes. Set: a client's scopes must be among these, and "
        "`scopes_supported` is this list.",
    )

    # --- sign-in through GET /authorize (issue 12)
    session_ttl: int = Field(
        default=43_200,
        ge=60,
        le=31_536_000,
        description="Lifetime in seconds of a browser login session at `/authorize` (the "
        "`authserver_session` cookie), counted from the sign-in, not extended by use. While it "
        "lasts, `/authorize` issues codes without asking for the password again (unless the app "
        "sends `prompt=login`). It ends earlier on `POST /logout`, a password change or when "
        "the user is disabled.",
    )
    code_ttl: int = Field(
        default=60,
        ge=1,
        le=600,
        description="Lifetime in seconds of an authorization code (RFC 6749 §4.1.2 allows 10 "
        "minutes at most). The app swaps it at `/token` right after the redirect, so a minute "
        "is plenty.",
    )
    templates_dir: Path | None = Field(
        default=None,
        description="A folder of Jinja2 templates that replace the built-in sign-in, consent, "
        "logout and error pages (same file names: `sign_in.html`, `consent.html`, "
        "`logout.html`, `logged_out.html`, `error.html`, `base.html`); a page not in the folder "
        "keeps the built-in one. Unset: the built-in pages.",
    )

    # --- signing keys
    jwks_max_age: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="`Cache-Control: max-age` of the JWKS, in seconds; also how long a new "
        "`next` key is published before `keys rotate` may promote it.",
    )
    key_encryption_key: SecretStr | None = Field(
        default=None,
        description="The key-encryption key (KEK): URL-safe base64 of 32 random bytes, which "
        "encrypts private signing keys at rest (AES-256-GCM). Unset: KEY_ENCRYPTION_KEY_FILE. "
        "Every host that shares the database needs the same value; set it from a secret store "
        "through the environment rather than in the file. To replace it, see the KEK rotation "
        "runbook: `keys rekey` seals every key under this one.",
    )
    key_encryption_key_file: Path = Field(
        default=Path("keys/kek"),
        description="Where the KEK is read from when KEY_ENCRYPTION_KEY is unset; `serve` "
        "creates it (mode 0600) on first start, and a file other users may access is refused. "
        "One KEK per line: the first is the KEY_ENCRYPTION_KEY, the others are previous KEKs "
        "(see PREVIOUS_KEY_ENCRYPTION_KEYS); a serving process re-reads the file when it meets "
        "a key sealed under a KEK it does not hold. Relative to the working directory. Back it "
        "up apart from the database: without it the stored signing keys cannot be opened.",
    )
    previous_key_encryption_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Former KEKs, during a KEK rotation: they open the keys still sealed under "
        "them. A JSON list, e.g. AUTHSERVER_PREVIOUS_KEY_ENCRYPTION_KEYS='[\"…\"]'. Each "
        "stored key names the KEK that sealed it (by its id, a public fingerprint), so no KEK is "
        "tried in vain. Until `keys rekey` has moved every key to KEY_ENCRYPTION_KEY, new keys "
        "are sealed under the KEK of the current key, which processes not yet given the new "
        "KEY_ENCRYPTION_KEY hold too. Empty again once the rotation is over.",
    )
    keys_refresh_interval: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds between checks for key changes made by another process: the "
        "longest time before every process applies a rotation or revocation (on PostgreSQL "
        "usually instant, through LISTEN/NOTIFY).",
    )
    key_rotation_interval: int = Field(
        default=0,
        ge=0,
        description="Automatic rotation: seconds the current key signs before the servers "
        "rotate by themselves (exactly one process does, under the same safety rule as `keys "
        "rotate`), e.g. 7776000 = 90 days. 0: off.",
    )
    signing_key_size: int = Field(
        default=2048,
        description="RSA modulus size in bits of newly generated signing keys: 2048, 3072 or 4096.",
    )

    # --- user passwords (argon2id)
    argon2_time_cost: int = Field(
        default=2,
        ge=1,
        le=20,
        description="argon2id iterations for user passwords. Changing the argon2 parameters is "
        "safe: a hash made with other ones is re-hashed at the user's next successful login.",
    )
    argon2_memory_cost: int = Field(
        default=19_456,
        ge=8,
        le=4_194_304,
        description="argon2id memory in KiB (19456 KiB = 19 MiB).",
    )
    argon2_parallelism: int = Field(default=1, ge=1, le=16, description="argon2id lanes (threads).")

    # --- login limits (password grant only; failed refreshes do not count)
    login_max_failures: int = Field(
        default=10,
        ge=1,
        description="Consecutive failed logins for one username (known or not) that lock it. "
        "The failure that reaches this number still answers `invalid_grant`; while locked, "
        "every attempt for that username, right password included, answers 429 with "
        "`Retry-After`.",
    )
    login_lock_seconds: int = Field(
        default=60,
        ge=1,
        description="Length of the first lock in seconds. A failure within "
        "LOGIN_LOCK_MAX_SECONDS after a lock ends locks again for twice as long, up to "
        "LOGIN_LOCK_MAX_SECONDS; a later failure locks for this long only (the escalation "
        "decays). A successful login resets the count.",
    )
    login_lock_max_seconds: int = Field(
        default=900,
        ge=1,
        description="Longest lock in seconds; also the time after a lock in which a failure "
        "escalates.",
    )
    login_ip_max_failures: int = Field(
        default=100,
        ge=1,
        description="Failed logins from one client IP (an IPv6 client: its /64) within "
        "LOGIN_IP_WINDOW_SECONDS after which every login from it gets 429 until the window ends.",
    )
    login_ip_window_seconds: int = Field(
        default=900,
        ge=1,
        description="Length in seconds of that fixed window, starting at its first failure.",
    )
    login_known_ip_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Days a successful login keeps its client IP known for that username. An "
        "attempt from a known IP skips the username's lock and has its own per-(username, IP) "
        "count with the same limits, so an attacker elsewhere cannot lock the user out of the "
        "addresses they use. 0: off, every attempt counts per username.",
    )
    login_failure_reset_seconds: int = Field(
        default=43_200,
        ge=1,
        description="Seconds without a failure (and with no lock running) after which a "
        "username's failures and lock escalation are forgotten: it has its full "
        "LOGIN_MAX_FAILURES again (Keycloak's failure reset time). `tokens purge` deletes such "
        "counters.",
    )
    audit_retention_days: int = Field(
        default=90,
        ge=0,
        le=36_500,
        description="Days `tokens purge` keeps audit events; older ones are deleted. 0: keep "
        "them for ever.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (IP addresses or CIDR networks) whose `X-Forwarded-For` is "
        "believed: the client IP is then the right-most entry that is not itself a trusted "
        "proxy. Empty: the header is ignored and the client IP is the TCP peer.",
    )

    # --- requests
    request_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Longest time in seconds a request may take, reading its body included; "
        "then 503 `temporarily_unavailable` with `Retry-After`, its transaction rolled back.",
    )

    # --- operations: metrics and logs
    metrics_enabled: bool = Field(
        default=True,
        description="Serve Prometheus metrics. false: `/metrics` answers 404 and no metrics "
        "port is opened.",
    )
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65_535,
        description="Port of `/metrics`, apart from the public port (which answers 404 there), "
        "so that the load balancer never exposes it. 9464 is the default port of "
        "OpenTelemetry's Prometheus exporter, the usual home of an application's own metrics "
        "(the Prometheus registry's exporter range, 9100-9999, is all taken). 0: serve "
        "`/metrics` on the main port instead. With `serve --workers N`, `serve`'s supervisor "
        "process answers on it; two `serve` on one host need a port each.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address METRICS_PORT listens on: loopback, for a Prometheus (or agent) on "
        "the same host; `0.0.0.0` for every interface (e.g. in a container scraped from "
        "another one).",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Log lines of `serve`: one JSON object per line, or plain text for humans.",
    )

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

    @field_validator("templates_dir")
    @classmethod
    def _templates_dir_is_a_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"no such folder: {value}")
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
    def login_session_ttl(self) -> int:
        """How long a login session lasts: SESSION_TTL, but never past REFRESH_FAMILY_MAX_AGE
        (the refresh-token families its codes start count from the same sign-in)."""
        return min(self.session_ttl, self.refresh_family_max_age)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where the separate metrics port listens; None when metrics are off, or are served
        on the main port (METRICS_PORT 0)."""
        if not self.metrics_enabled or self.metrics_port == 0:
            return None
        return (self.metrics_host, self.metrics_port)

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
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def config_path() -> Path | None:
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
    unknown = _unknown_variable()
    if unknown is not None:
        raise ConfigError(unknown)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {config_path()}: {_first_line(str(exc))}") from None
    except ValueError as exc:  # pydantic-settings' SettingsError, e.g. a bad JSON list in env
        field = re.search(r'field "(\w+)"', str(exc))
        if field:
            name = field.group(1)
            raise ConfigError(f"{name}: AUTHSERVER_{name.upper()} is not valid JSON") from None
        raise ConfigError(f"configuration: {_first_line(str(exc))}") from None


def _unknown_variable() -> str | None:
    """An AUTHSERVER_* environment variable that names no setting, refused like an unknown key
    in the file: a misspelt variable would otherwise leave the default in force unnoticed."""
    names = list(Settings.model_fields)
    for variable in sorted(os.environ):
        upper = variable.upper()  # pydantic-settings reads the variables case-insensitively
        if not upper.startswith(ENV_PREFIX) or upper.startswith(TEST_PREFIX):
            continue
        if upper == CONFIG_VARIABLE:
            continue
        name = upper.removeprefix(ENV_PREFIX).lower()
        if name not in names:
            import difflib  # only on this error path: every command loads the settings

            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {ENV_PREFIX}{close[0].upper()}?" if close else ""
            return f"{variable}: unknown setting{hint}"
    return None


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
