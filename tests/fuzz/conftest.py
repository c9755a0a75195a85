"""The fuzz suite: hostile input at every endpoint (see profiles.py for how many examples)."""

from __future__ import annotations

from tests.fuzz import profiles  # noqa: F401  (registers the Hypothesis profiles)
