"""Shared pytest fixtures."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# speed is never tested: the exporters time nothing (the tests of timing set their own seconds)
os.environ.setdefault("KERAS_ZOO_SPEED_SECONDS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import FIXTURES  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: tens of seconds on two cores (still run; -m 'not slow' leaves them out)")


@pytest.fixture(scope="session")
def fixtures():
    """The directory of real third-party fixture files; tests needing it skip where it is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(f"the fixtures directory {FIXTURES} is absent (set KERAS_ZOO_FIXTURES)")
    return FIXTURES


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """An empty KERAS_ZOO_HOME, offline, no mirror: what a new user without weights has."""
    from keras_zoo import labels

    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    monkeypatch.delenv("KERAS_ZOO_MIRROR", raising=False)
    labels.get_classes.cache_clear()
    yield tmp_path / "home"
    labels.get_classes.cache_clear()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
