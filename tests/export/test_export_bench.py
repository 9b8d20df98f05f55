"""export.bench: every runtime measured on the same model, as the seed's speed table."""

import pytest

from export import bench
from tests.export.test_export_formats import small_zoo_model


def test_format_table_has_one_line_per_model_and_ratios():
    rows = [
        {"model": "A", "runtime": "keras", "images_per_s": 100.0, "ratio": 1.0, "passed": None},
        {"model": "A", "runtime": "onnxruntime", "images_per_s": 250.0, "ratio": 2.5, "passed": True},
        {"model": "B", "runtime": "keras", "images_per_s": 10.0, "ratio": 1.0, "passed": None},
        {"model": "B", "runtime": "onnxruntime", "images_per_s": 5.0, "ratio": 0.5, "passed": False},
    ]
    lines = bench.format_table(rows).splitlines()
    assert len(lines) == 4 and set(lines[1]) <= {"|", "-"}
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == ["model", "keras img/s",
                                                                         "onnxruntime img/s"]
    assert [cell.strip() for cell in lines[2].strip("|").split("|")] == ["A", "100.0 (1.00x)", "250.0 (2.50x)"]
    assert "5.0 (0.50x) (parity failed)" in lines[3]


def test_export_benchmark_measures_every_runtime(tmp_path):
    from keras_zoo.convert import save_model

    path = save_model(small_zoo_model(), tmp_path / "small_zoo.keras")
    rows = bench.export_benchmark([str(path)], batch=2, num_samples=4)
    assert [row["runtime"] for row in rows] == list(bench.RUNTIMES)
    keras_row = rows[0]
    assert keras_row["ratio"] == 1.0 and keras_row["passed"] is None
    for row in rows:
        assert row["model"] == "small_zoo" and row["batch"] == 2 and row["images_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["images_per_s"] / keras_row["images_per_s"])
    by_runtime = {row["runtime"]: row for row in rows}
    for runtime in ("saved_model", "onnxruntime", "tflite_float32"):
        assert by_runtime[runtime]["passed"] and by_runtime[runtime]["max_rel_error"] <= 1e-4
    assert by_runtime["tflite_float16"]["max_rel_error"] <= 1e-2
