"""Prometheus metrics, in a registry owned by the app (SPEC "Operations")."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    token_requests: Counter
    token_duration: Histogram
    refresh_reuse: Counter
    signing_key_age: Gauge
    password_hash_seconds: Histogram


def make_metrics() -> Metrics:
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=registry,
        token_requests=Counter(
            "authserver_token_requests",
            "Token endpoint requests by grant type and outcome (success or the OAuth error code).",
            ["grant", "outcome"],
            registry=registry,
        ),
        token_duration=Histogram(
            "authserver_token_request_duration_seconds",
            "Time to answer a token endpoint request, by grant type.",
            ["grant"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        ),
        refresh_reuse=Counter(
            "authserver_refresh_reuse_detected",
            "Rotated refresh tokens presented again (each revokes its family).",
            registry=registry,
        ),
        signing_key_age=Gauge(
            "authserver_signing_key_age_seconds",
            "Seconds since the current signing key became current.",
            registry=registry,
        ),
        password_hash_seconds=Histogram(
            "authserver_password_hash_seconds",
            "Time to verify a password (argon2id), including the dummy hash for unknown users.",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=registry,
        ),
    )
