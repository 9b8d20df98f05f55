"""export.bench: one set of weights in every runtime, each timed alone, as the seed's speed table."""

import keras
import pytest

from export import bench, runners
from keras_zoo import layers
from tests.helpers import fixture_path


def test_format_table_has_a_line_per_model_and_runtime_with_ratios_and_peak_shares():
    rows = [{"model": "A", "runtime": "keras_zoo", "batch": 1, "images_per_s": 10.0, "ratio": 1.0, "gflops": 50.0},
            {"model": "A", "runtime": "keras_zoo", "batch": 16, "images_per_s": 20.0, "ratio": 1.0, "gflops": 100.0},
            {"model": "A", "runtime": "onnxruntime", "batch": 1, "images_per_s": 25.0, "ratio": 2.5, "gflops": 125.0}]
    lines = bench.format_table(rows, peak=500.0).splitlines()
    assert len(lines) == 4 and set(lines[1]) <= {"|", "-", ":"}
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["model", "runtime", "b1 img/s", "b1 ratio", "b1 % peak", "b16 img/s", "b16 ratio",
                        "b16 % peak"]
    assert cells[2] == ["A", "keras_zoo", "10.0", "1.00x", "10%", "20.0", "1.00x", "20%"]
    assert cells[3] == ["A", "onnxruntime", "25.0", "2.50x", "25%", "", "", ""]  # not timed at batch 16


def test_model_flops_counts_multiply_adds_of_convolutions_and_dense_layers():
    images = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, padding="same")(images)  # 8*8 positions x 3*3*4*6
    x = layers.Conv2D(6, 3, strides=2, pads=(1, 1, 1, 1), groups=2)(x)  # 4*4 positions x 3*3*3*6
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5)(x)  # 96 x 5
    model = keras.Model(images, x)
    assert bench.model_flops(model) == 2 * (64 * 216 + 16 * 162 + 96 * 5)
    assert bench.matmul_peak(size=256, rounds=2) > 0


def test_parse_prototxts(tmp_path):
    (tmp_path / "deploy.prototxt").write_text("")
    assert bench.parse_prototxts([f"googlenet={tmp_path / 'deploy.prototxt'}"]) == {
        "googlenet": tmp_path / "deploy.prototxt"}
    with pytest.raises(ValueError, match="MODEL=PATH"):
        bench.parse_prototxts(["googlenet"])
    with pytest.raises(ValueError, match="no file"):
        bench.parse_prototxts([f"googlenet={tmp_path / 'absent.prototxt'}"])


def test_benchmark_times_every_runtime_of_one_caffemodel(capsys):
    """A real deploy prototxt (CIFAR-10 quick) with random weights written as its caffemodel: keras_zoo, the
    SavedModel, ONNX Runtime fp32 and int8, LiteRT fp32/fp16/int8 and OpenCV DNN all run it, each alone."""
    prototxt = fixture_path("small_caffemodels/cifar10_quick_v1/cifar10_quick_v1_deploy.prototxt")
    rows = bench.print_benchmark([str(prototxt)], batches=(1, 2), seconds=0.01, rounds=1)
    assert {row["runtime"] for row in rows} == set(bench.RUNTIMES) - {"keras.applications", "keras_zoo unfolded"}
    for row in rows:
        assert row["model"] == "cifar10_quick_v1_deploy" and row["batch"] in (1, 2)
        assert row["threads"] == runners.cpu_threads() and row["images_per_s"] > 0 and row["gflops"] > 0
        base = next(other for other in rows if other["runtime"] == "keras_zoo" and other["batch"] == row["batch"])
        assert row["ratio"] == pytest.approx(row["images_per_s"] / base["images_per_s"])
    out = capsys.readouterr().out
    assert "UNTRAINED (random) weights" in out and "a fresh process" in out and "GFLOP/s" in out
    assert out.count("cifar10_quick_v1_deploy") == len(bench.RUNTIMES) - 2
