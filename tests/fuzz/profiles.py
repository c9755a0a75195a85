"""Hypothesis profiles for the fuzz suite, chosen by the HYPOTHESIS_PROFILE environment variable.

- `quick` (default, `make test`): a bounded number of examples so the suite stays fast.
- `fuzz` (`make fuzz`): thousands of examples per test, for deeper runs.

The tests reuse function-scoped fixtures (the app, its HTTP client, one client and one user)
across examples on purpose: starting an app per example would cost seconds. Each example leaves
nothing behind that matters (its failures change nothing, which is what the tests check), so the
health check about function-scoped fixtures is suppressed deliberately.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

ENV = "HYPOTHESIS_PROFILE"
SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

settings.register_profile(
    "quick", max_examples=60, deadline=None, suppress_health_check=SUPPRESSED, print_blob=True
)
settings.register_profile(
    "fuzz", max_examples=3000, deadline=None, suppress_health_check=SUPPRESSED, print_blob=True
)

FUZZ = settings.get_profile(os.environ.get(ENV, "quick"))
