"""Shared test setup: hypothesis profiles and a clean backend for every test.

Profiles (pick with the environment variable HYPOTHESIS_PROFILE):

- ``dev`` (default): random examples, no deadline; finds new failures locally.
- ``ci``: derandomized (the same examples on every run), no deadline, so CI is
  fast and reproducible on slow shared machines.

Run the suite on the strict CuPy stand-in with ``MINIGEN_BACKEND=strict``.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

import minigen
from minigen import backend

_common = dict(
    deadline=None,  # timing varies on shared CI machines; never fail on it
    print_blob=True,  # a failure prints the blob that reproduces it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", derandomize=True, max_examples=25, database=None, **_common)
settings.register_profile("dev", max_examples=30, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The backend the whole run asked for; tests that switch it get it back.
_RUN_BACKEND = os.environ.get("MINIGEN_BACKEND", "numpy").strip().lower() or "numpy"


@pytest.fixture(autouse=True)
def _seed_and_restore_backend():
    """Seed minigen's generator before each test and restore the run's backend after it."""
    minigen.manual_seed(0)
    yield
    if backend.name() != _RUN_BACKEND:
        minigen.use_backend(_RUN_BACKEND)
