"""Helpers shared by the tests: where the real fixtures are, and the parity criterion."""

import importlib.util
import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = pathlib.Path(os.environ.get("KERAS_ZOO_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def fixture_path(relative):
    """Path of one fixture file, skipping the calling test with a clear reason where it is absent."""
    path = FIXTURES / relative
    if not path.exists():
        pytest.skip(f"fixture file {path} is absent (set KERAS_ZOO_FIXTURES to a fixtures directory that has it)")
    return path


def assert_close_rel(actual, reference, tol=1e-4, what="output"):
    """max|y - y_ref| <= tol * max|y_ref|: the project's parity criterion."""
    actual = np.asarray(actual, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    assert actual.shape == reference.shape, f"{what}: shape {actual.shape} != reference {reference.shape}"
    scale = max(np.abs(reference).max(), 1e-12)
    err = np.abs(actual - reference).max()
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} > {tol:g} * max|ref| ({scale:.3g})"


def load_tool(name):
    """The module of the command-line script ``tools/<name>.py`` (its ``main(argv)`` runs the command)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
