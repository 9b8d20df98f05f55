"""Shared pytest fixtures."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_ZOO_SPEED_SECONDS", "0.05")  # speed is never tested: keep exporters' timing runs short

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import FIXTURES  # noqa: E402


@pytest.fixture(scope="session")
def fixtures():
    """The directory of real third-party fixture files; tests needing it skip where it is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(f"the fixtures directory {FIXTURES} is absent (set KERAS_ZOO_FIXTURES)")
    return FIXTURES


@pytest.fixture
def rng():
    return np.random.default_rng(0)
