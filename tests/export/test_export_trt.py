"""export.trt: Keras -> verified ONNX -> TensorRT engine; without TensorRT/GPU, the ONNX and the instructions."""

import json
import subprocess
import sys

import numpy as np
import pytest

from export import common, onnx as onnx_export, trt
from tests.helpers import ROOT, assert_close_rel
from tests.export.test_export_formats import SIZE, lenet, small_zoo_model

NO_TENSORRT = trt.tensorrt_unavailable()


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    from keras_zoo.convert import save_model

    folder = tmp_path_factory.mktemp("models")
    return {"small": save_model(small_zoo_model(), folder / "small_zoo.keras"),
            "lenet": save_model(lenet(), folder / "lenet.keras")}


def test_help_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "export.trt", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    for option in ("--precision", "--min-batch", "--opt-batch", "--max-batch", "--int8-mode", "--representative",
                   "--weights", "--input-size", "--output"):
        assert option in done.stdout


def test_build_instructions_name_shapes_and_flags():
    text = trt.build_instructions("resnet-152", "out/ResNet152.onnx", "fp16", (224, 224), (1, 8, 32))
    assert "python -m export.trt resnet-152 --precision fp16" in text
    for part in ("trtexec", "--onnx=out/ResNet152.onnx", "--saveEngine=ResNet152.fp16.engine",
                 "--minShapes=images:1x224x224x3", "--optShapes=images:8x224x224x3",
                 "--maxShapes=images:32x224x224x3", "--fp16"):
        assert part in text
    assert "--int8" in trt.build_instructions("m", "m.int8.onnx", "int8", (32, 32), (1, 1, 1))


@pytest.mark.skipif(NO_TENSORRT is None, reason="TensorRT and a GPU are present: the engine gets built")
def test_without_tensorrt_the_onnx_is_verified_and_the_command_says_how(keras_files, tmp_path, capsys):
    assert "tensorrt" in NO_TENSORRT or "GPU" in NO_TENSORRT or "cuda" in NO_TENSORRT
    engine = tmp_path / "small.fp16.engine"
    status = trt.main([str(keras_files["small"]), "-o", str(engine), "--num-samples", "4", "--precision", "fp16"])
    captured = capsys.readouterr()
    assert status == trt.NO_ENGINE_STATUS != 0
    assert not engine.exists()
    onnx_file = tmp_path / "small_zoo.onnx"
    report = json.loads((tmp_path / "small_zoo.onnx.report.json").read_text())
    assert report["passed"] and report["format"] == "onnx" and report["samples"] == 4
    assert "no TensorRT engine built on this machine" in captured.err
    assert f"--onnx={onnx_file}" in captured.err and "--minShapes=images:1x48x48x3" in captured.err
    # the ONNX really is the model
    samples = common.sample_images(SIZE, 3)
    import keras

    model = keras.saving.load_model(keras_files["small"])
    assert_close_rel(onnx_export.OnnxRunner(onnx_file)(samples)[0], model.predict(samples, verbose=0))


@pytest.mark.skipif(NO_TENSORRT is None, reason="TensorRT and a GPU are present: the engine gets built")
def test_without_tensorrt_int8_writes_the_explicitly_quantized_onnx(keras_files, tmp_path, capsys):
    status = trt.main([str(keras_files["lenet"]), "-o", str(tmp_path / "lenet.int8.engine"), "--num-samples", "16",
                       "--precision", "int8", "--num-representative", "32"])
    captured = capsys.readouterr()
    assert status == trt.NO_ENGINE_STATUS
    report = json.loads((tmp_path / "lenet.int8.onnx.report.json").read_text())
    assert report["passed"] and report["precision"] == "int8" and report["errors"]["top1_agreement"] >= 0.9
    assert "--int8" in captured.err and f"--onnx={tmp_path / 'lenet.int8.onnx'}" in captured.err


def test_bad_batch_range_is_one_clear_error(keras_files, capsys):
    status = trt.main([str(keras_files["small"]), "--min-batch", "8", "--opt-batch", "4", "--num-samples", "2"])
    assert status == 1
    assert "batches must grow" in capsys.readouterr().err


@pytest.mark.skipif(NO_TENSORRT is not None, reason=f"no engine can be built here: {NO_TENSORRT}")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_keras(precision, tmp_path):
    model = small_zoo_model()
    samples = common.sample_images(SIZE, 8)
    reference = common.keras_outputs(model, samples)
    onnx_file = tmp_path / "small.onnx"
    assert onnx_export.export_onnx(model, onnx_file, samples=samples, reference=reference).passed
    result = trt.export_engine(onnx_file, tmp_path / f"small.{precision}.engine", samples=samples,
                               reference=reference, output_names=onnx_export.output_names(model),
                               precision=precision, batch_range=(1, 4, 8))
    assert result.passed
    runner = trt.EngineRunner((tmp_path / f"small.{precision}.engine").read_bytes(), max_batch=8)
    tolerance = 1e-4 if precision == "fp32" else 1e-2
    assert_close_rel(runner(samples[:3])[0], reference[0][:3], tolerance)


@pytest.mark.skipif(NO_TENSORRT is not None, reason=f"no engine can be built here: {NO_TENSORRT}")
@pytest.mark.parametrize("mode", ["explicit", "calibrate"])
def test_int8_engine_agrees_on_real_photos(mode, tmp_path):
    import tensorrt

    if mode == "calibrate" and not hasattr(tensorrt, "IInt8EntropyCalibrator2"):
        pytest.skip(f"TensorRT {tensorrt.__version__} has no implicit int8 calibration")
    model = lenet()
    photos = common.sample_images((28, 28), 32, channels=1)
    reference = common.keras_outputs(model, photos)
    onnx_file = tmp_path / "lenet.onnx"
    assert onnx_export.export_onnx(model, onnx_file, samples=photos, reference=reference).passed
    calibration = common.sample_images((28, 28), 48, channels=1)[16:]
    if mode == "explicit":
        onnx_export.quantize_int8(onnx_file, tmp_path / "lenet.int8.onnx", calibration)
        onnx_file = tmp_path / "lenet.int8.onnx"
    engine = trt.build_engine(onnx_file, precision="int8", batch_range=(1, 8, 32), calibration=calibration,
                              int8_mode=mode)
    got = trt.EngineRunner(engine, max_batch=32)(photos)[0]
    assert np.mean(got.argmax(-1) == reference[0].argmax(-1)) >= 0.9
