"""The schema, as SQLAlchemy Core tables (the queries in `store/` use Core, not ORM objects).

Alembic revisions under `migrations/` create exactly this; a test compares the two.
Every timestamp is stored as UTC (`UTCDateTime`), on SQLite as well as PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    SQLite drops offsets and returns naive values; this stores UTC and re-attaches it on read, so
    comparisons never mix naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    # SHA-256 of the server-generated secret; NULL for a public client.
    Column("secret_hash", LargeBinary(32), nullable=True),
    Column("grant_types", Text, nullable=False),  # space-separated
    Column("scopes", Text, nullable=False),  # space-separated
    Column("audiences", Text, nullable=False, server_default=""),  # space-separated, "" = default
    Column("can_introspect", Boolean, nullable=False, server_default=text("false")),
    Column("access_token_ttl", Integer, nullable=True),  # NULL = ACCESS_TOKEN_TTL
    Column("created_at", UTCDateTime, nullable=False),
    # Registered redirect URIs (issue 12), space-separated in registration order: the rules of
    # authserver/clients/redirect_uris.py forbid whitespace in a URI. A column, not a table: a
    # client is always read whole by its id, and matching (exact, or loopback with any port) is
    # done in Python on the handful of URIs a client has.
    Column("redirect_uris", Text, nullable=False, server_default=""),
    Column("consent", Boolean, nullable=False, server_default=text("false")),  # --consent
)

# One row per password login: the refresh-token family (`sid` of its access tokens).
refresh_families = Table(
    "refresh_families",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column(
        "client_id",
        String(64),
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("scope", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # REFRESH_FAMILY_MAX_AGE from the login
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_reason", String(32), nullable=True),
    Index("ix_refresh_families_user_id", "user_id"),
    Index("ix_refresh_families_client_id", "client_id"),
)

# One row per refresh token ever issued. The token itself is never stored, only its SHA-256.
# user_id, client_id, scope and family_expires_at copy the family's (immutable) values so the
# rotation statement can return everything it needs without a join (SQLite's RETURNING cannot
# reference joined tables).
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column(
        "family_id",
        Uuid,
        ForeignKey("refresh_families.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("parent_id", Uuid, nullable=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("scope", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("family_expires_at", UTCDateTime, nullable=False),
    Column("rotated_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
    Index("ix_refresh_tokens_expires_at", "expires_at"),
)

KEY_STATES = ("next", "current", "retired", "revoked")

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),  # RFC 7638 thumbprint
    Column("state", String(16), nullable=False),
    Column("alg", String(16), nullable=False),
    Column("size", Integer, nullable=False),
    Column("public_jwk", Text, nullable=False),  # JSON, public members only
    Column("private_key", LargeBinary, nullable=False),  # AES-256-GCM: nonce || ciphertext
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime, nullable=True),
    Column("retired_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    # Which key-encryption key sealed private_key (its public id); NULL: a key stored before
    # KEK ids existed, opened by trying each configured KEK until `keys rekey` names it.
    Column("kek_id", String(32), nullable=True),
    CheckConstraint("state IN ('next', 'current', 'retired', 'revoked')", name="state"),
    # The database, not only the code, guarantees one `current` and one `next` key.
    Index(
        "uq_signing_keys_one_current",
        "state",
        unique=True,
        sqlite_where=text("state = 'current'"),
        postgresql_where=text("state = 'current'"),
    ),
    Index(
        "uq_signing_keys_one_next",
        "state",
        unique=True,
        sqlite_where=text("state = 'next'"),
        postgresql_where=text("state = 'next'"),
    ),
)

# Brute-force limits on the password grant (SPEC "Login limits"): kept in the database so every
# serving process enforces the same limit.
login_user_failures = Table(
    "login_user_failures",
    metadata,
    Column("username", String(255), primary_key=True),  # need not be an existing user
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("lock_seconds", Integer, nullable=False, server_default=text("0")),
)

login_ip_failures = Table(
    "login_ip_failures",
    metadata,
    Column("ip", String(64), primary_key=True),
    Column("window_started_at", UTCDateTime, nullable=False),
    Column("failures", Integer, nullable=False),
)

# The client IPs each username logged in from successfully (login/limits.py, "Known IPs").
# Keyed by username, not user id, so that the lookup costs the same whether the user exists.
login_known_ips = Table(
    "login_known_ips",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("ip", String(64), primary_key=True),
    Column("last_success_at", UTCDateTime, nullable=False),  # known for LOGIN_KNOWN_IP_DAYS after
)

# The counter of attempts from a known IP for its username: the rules of login_user_failures.
login_user_ip_failures = Table(
    "login_user_ip_failures",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("ip", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("lock_seconds", Integer, nullable=False, server_default=text("0")),
)

# Access tokens revoked through /revoke (RFC 7009): their `jti` is kept until the token would have
# expired, so introspection can report it inactive. Offline verifiers cannot see this list.
revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the token's `exp`; purge deletes after
    Index("ix_revoked_access_tokens_expires_at", "expires_at"),
)

# Append-only audit trail (who did what, when, from where, with what outcome). Never a secret:
# no password, token, client secret or key material is ever written here.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("event", String(64), nullable=False),  # e.g. login.failure, refresh.reuse_detected
    Column("outcome", String(16), nullable=False),  # success | failure | denied
    Column("actor", String(255), nullable=True),  # username, client_id, or "cli"
    Column("client_id", String(64), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("subject", String(255), nullable=True),  # what it acted on: user id, kid, family id
    Column("detail", Text, nullable=True),  # JSON object with non-secret context
    Index("ix_audit_events_occurred_at", "occurred_at"),
)


# --- Sign-in through GET /authorize (issue 12) ---------------------------------------------------

# A browser login session (cookie `authserver_session`). Only the SHA-256 of the cookie's value is
# stored. It lasts SESSION_TTL from the sign-in (absolute, not sliding) and ends earlier on
# POST /logout, a password change or the user's disabling (ended_at set, never reopened).
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("auth_time", UTCDateTime, nullable=False),  # when the password was checked
    Column("expires_at", UTCDateTime, nullable=False),  # auth_time + SESSION_TTL
    Column("ended_at", UTCDateTime, nullable=True),
    Column("ended_reason", String(32), nullable=True),  # logout | password_changed | ...
    Index("ix_login_sessions_user_id", "user_id"),
    Index("ix_login_sessions_expires_at", "expires_at"),
)

# A validated authorization request waiting for the person on a page (sign-in or consent),
# between the GET that showed the page and the POST that answers it. The form carries a random
# handle; only its SHA-256 is stored. Deleted (DELETE ... RETURNING) when answered, so a form
# can complete at most once; purge deletes the expired ones.
authorization_requests = Table(
    "authorization_requests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("handle_hash", LargeBinary(32), nullable=False, unique=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("redirect_uri", Text, nullable=False),  # the one to use (loopback: with its port)
    Column("redirect_uri_sent", Boolean, nullable=False),  # /token must then repeat it
    Column("scope", Text, nullable=False),  # what will be granted
    Column("state", Text, nullable=True),
    Column("code_challenge", String(128), nullable=False),  # S256 only
    Column("prompt", String(16), nullable=True),  # "login" (never "none": that shows no page)
    # The login session that answers it: set when the GET found one (consent only), or by the
    # sign-in POST. Ending the session makes the request unanswerable.
    Column(
        "session_id",
        Uuid,
        ForeignKey("login_sessions.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_authorization_requests_client_id", "client_id"),
    Index("ix_authorization_requests_session_id", "session_id"),
    Index("ix_authorization_requests_expires_at", "expires_at"),
)

# Authorization codes (RFC 6749 §4.1.2): only the SHA-256 is stored. Single use: the exchange
# sets used_at atomically, then family_id once the refresh-token family exists; a second
# presentation revokes that family. Kept past expiry while the family they started exists
# (family_id is set NULL when purge deletes the family), so a late replay still revokes it.
authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("code_hash", LargeBinary(32), nullable=False, unique=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("redirect_uri_sent", Boolean, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("scope", Text, nullable=False),
    Column("auth_time", UTCDateTime, nullable=False),  # the login session's; family age counts
    # The login session the code was issued in: /token starts a family only while it is live
    # (ended by logout, a password change or disabling the user). SET NULL when purge deletes
    # the ended session: the code is dead then, and a used one is kept for replay detection.
    Column(
        "session_id",
        Uuid,
        ForeignKey("login_sessions.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # issued_at + CODE_TTL
    Column("used_at", UTCDateTime, nullable=True),
    Column(
        "family_id",
        Uuid,
        ForeignKey("refresh_families.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Index("ix_authorization_codes_client_id", "client_id"),
    Index("ix_authorization_codes_user_id", "user_id"),
    Index("ix_authorization_codes_family_id", "family_id"),
    Index("ix_authorization_codes_session_id", "session_id"),
    Index("ix_authorization_codes_expires_at", "expires_at"),
)

# Consent remembered per user and client (clients registered with --consent): the union of the
# scopes the user approved. A request within it asks no question; a wider one asks again.
consents = Table(
    "consents",
    metadata,
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("scope", Text, nullable=False),  # space-separated, the approved scopes
    Column("granted_at", UTCDateTime, nullable=False),  # first approval
    Column("updated_at", UTCDateTime, nullable=False),  # last approval that widened it
    Index("ix_consents_client_id", "client_id"),
)
