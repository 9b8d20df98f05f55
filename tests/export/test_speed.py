"""Timing artifacts as they run alone: a fresh process, every core unless told otherwise, best of several rounds,
and reports that say how they were timed. (No speed is asserted: speed lives in tools/benchmark.py.)"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from export import onnx as onnx_export, runners, speed, tflite
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    images = keras.Input((16, 16, 3), name="images")
    x = keras.layers.Conv2D(4, 3, activation="relu")(images)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(3)(x))


@pytest.fixture(scope="module")
def artifacts(small_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("artifacts")
    (folder / "m.tflite").write_bytes(tflite.convert_tflite(small_model, batch=2))
    onnx_export.write_onnx(onnx_export.convert_onnx(small_model), folder / "m.onnx")
    return folder


def test_measure_is_the_best_of_its_rounds():
    calls, pauses = [], iter([0.03, 0.001, 0.03] * 20)

    def run(chunk):
        calls.append(len(chunk))
        if len(calls) > 1:  # the warm-up is not timed
            import time
            time.sleep(next(pauses))

    result = speed.measure(run, np.zeros((3, 2, 2, 3)), batch=5, min_seconds=0.0, min_runs=3, rounds=3, threads=7)
    assert calls == [5] * 10  # one warm-up, three rounds of three runs, each on a full batch
    # the rounds' medians are 30 ms, 30 ms and 30 ms or 1 ms: the best round decides, not the mean
    assert result["batch"] == 5 and result["threads"] == 7 and "best of 3 rounds" in result["timed"]
    assert result["latency_ms"] == pytest.approx(30, rel=0.5)
    assert result["images_per_s"] == pytest.approx(5 / (result["latency_ms"] / 1e3))


def test_runners_use_every_core_unless_told(artifacts):
    assert runners.cpu_threads() >= 1
    onnx_default = runners.OnnxRunner(artifacts / "m.onnx")
    assert onnx_default.num_threads == runners.cpu_threads()
    assert onnx_default.session.get_session_options().intra_op_num_threads == runners.cpu_threads()
    one = runners.OnnxRunner(artifacts / "m.onnx", num_threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1
    assert runners.TFLiteRunner(artifacts / "m.tflite").num_threads == runners.cpu_threads()
    assert runners.TFLiteRunner(artifacts / "m.tflite", num_threads=1).num_threads == 1


@pytest.mark.parametrize("name, kind, batch", [("m.tflite", "tflite", 2), ("m.onnx", "onnx", 3)])
def test_time_artifact_runs_it_alone_in_a_fresh_process(artifacts, name, kind, batch):
    result = speed.time_artifact(artifacts / name, batch=3, seconds=0.01, rounds=2)
    assert result["batch"] == batch  # the TFLite file's fixed batch wins over the one asked for
    assert result["threads"] == runners.cpu_threads() and result["images_per_s"] > 0
    assert result["timed"] == "best of 2 rounds, a fresh process"
    assert speed.time_artifact(artifacts / name, kind=kind, num_threads=1, seconds=0.01, rounds=1)["threads"] == 1


def test_the_speed_command(artifacts, tmp_path):
    command = [sys.executable, "-m", "export.speed", str(artifacts / "m.onnx"), "--batch", "2", "--seconds", "0.01"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert "images/s" in done.stdout and "batch of 2" in done.stdout and "a fresh process" in done.stdout
    line = subprocess.run([*command, "--json"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert json.loads(line)["batch"] == 2
    (tmp_path / "notes.txt").write_text("x")
    done = subprocess.run([sys.executable, "-m", "export.speed", str(tmp_path / "notes.txt")],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 1 and "notes.txt: not an artifact to time" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(RuntimeError, match="notes.txt: not an artifact to time"):
        speed.time_artifact(tmp_path / "notes.txt")


def test_reports_state_how_the_artifact_was_timed(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_SPEED_SECONDS", "0.05")
    samples = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    reference = [small_model.predict(samples, verbose=0)]
    result = tflite.export_tflite(small_model, tmp_path / "m.tflite", samples=samples, reference=reference, batch=2)
    litert = result.speed["litert"]
    assert litert["threads"] == runners.cpu_threads() and "a fresh process" in litert["timed"]
    table = result.table()
    assert f"batch of 2, {runners.cpu_threads()} threads (best of 3 rounds, a fresh process)" in table


def test_zero_seconds_exports_without_timing(small_model, tmp_path, monkeypatch):
    """KERAS_ZOO_SPEED_SECONDS=0: the exporters check and write the artifact but time nothing."""
    monkeypatch.setenv("KERAS_ZOO_SPEED_SECONDS", "0")
    samples = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    reference = [small_model.predict(samples, verbose=0)]
    result = tflite.export_tflite(small_model, tmp_path / "m.tflite", samples=samples, reference=reference, batch=2)
    assert result.passed and (tmp_path / "m.tflite").is_file()
    assert result.speed == {} and "images/s" not in result.table()
    calls = []
    assert speed.report_speeds(litert=lambda: calls.append(1)) == {} and calls == []
    monkeypatch.setenv("KERAS_ZOO_SPEED_SECONDS", "0.01")
    assert speed.report_speeds(litert=lambda: calls.append(1) or "timed") == {"litert": "timed"}
