"""tools/convert_matconvnet.py: .mat -> .keras, loadable in safe mode once keras_zoo is imported."""

import keras
import numpy as np
import pytest

import keras_zoo  # noqa: F401  (registers the custom layers the .keras files use)
from keras_zoo.convert import from_matconvnet
from tests.helpers import assert_close_rel, fixture_path, load_tool
from converters.writers.mat import write_mat


TOOL = load_tool("convert_matconvnet")


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x.astype(np.float32), training=False))


def small_net(tmp_path, rng):
    """conv (3x3, pad 1) -> relu -> fc (covers 4 x 3) with an average image, as a .mat."""
    filters = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    fc = rng.standard_normal((4, 3, 4, 5)).astype(np.float32)
    average = (rng.random((4, 3, 3)) * 100).astype(np.float32)
    net = {"layers": [{"type": "conv", "name": "conv1", "weights": [filters, np.zeros((1, 4), np.float32)],
                       "pad": 1},
                      {"type": "relu", "name": "relu1"},
                      {"type": "conv", "name": "fc2", "weights": [fc, np.ones((1, 5), np.float32)]}],
           "meta": {"normalization": {"averageImage": average, "imageSize": np.array([[4.0, 3, 3]])}}}
    return write_mat(tmp_path / "small.mat", net), average


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        TOOL.main(["--help"])
    assert exit_info.value.code == 0
    assert "--input-shape" in capsys.readouterr().out


def test_converts_the_real_dncnn_to_a_loadable_keras_file(tmp_path, capsys):
    source = fixture_path("matconvnet_mat/dncnn/sigma=25.mat")
    output = tmp_path / "dncnn.keras"
    assert TOOL.main([str(source), "-o", str(output)]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = keras.saving.load_model(output)  # safe mode
    assert [tensor.name for tensor in loaded.inputs] == ["input"]
    assert loaded.output_names == ["prediction"]
    assert {"layer1", "layer48"} <= {layer.name for layer in loaded.layers}
    x = np.random.default_rng(0).random((1, 24, 20, 1)).astype(np.float32)
    assert_close_rel(predict(loaded, x), predict(from_matconvnet(source), x), tol=1e-6)


def test_input_shape_keeps_the_classifier_fully_convolutional(tmp_path, rng):
    path, _ = small_net(tmp_path, rng)
    output = tmp_path / "fcn.keras"
    assert TOOL.main([str(path), "-o", str(output), "--input-shape", "8,7"]) == 0
    loaded = keras.saving.load_model(output)
    assert tuple(loaded.inputs[0].shape) == (None, 8, 7, 3)
    assert tuple(loaded.outputs[0].shape) == (None, 5, 5, 5)  # fc2 slides over the 8 x 7 map


def test_normalize_bakes_in_the_average_image(tmp_path, rng):
    path, average = small_net(tmp_path, rng)
    output = tmp_path / "norm.keras"
    assert TOOL.main([str(path), "-o", str(output), "--normalize"]) == 0
    loaded = keras.saving.load_model(output)
    x = (rng.random((2, 4, 3, 3)) * 255).astype(np.float32)
    assert_close_rel(predict(loaded, x), predict(from_matconvnet(path), x - average))


def test_scale_makes_a_net_of_unit_range_images_take_0_to_255(tmp_path, rng):
    """--scale 1/255 (after the average image, with --normalize): the real LapSRN x2, which takes Y in 0..1, then
    takes 0..255 and computes the same picture; with --normalize the scale follows the average image."""
    source = fixture_path("real_small/lapsrn/LapSRN_x2.mat")
    output = tmp_path / "lapsrn.keras"
    assert TOOL.main([str(source), "-o", str(output), "--scale", str(1 / 255)]) == 0
    loaded = keras.saving.load_model(output)
    y = rng.random((1, 12, 10, 1)).astype(np.float32)
    assert_close_rel(predict(loaded, y * 255), predict(from_matconvnet(source), y), tol=1e-5)
    path, average = small_net(tmp_path, rng)
    assert TOOL.main([str(path), "-o", str(tmp_path / "both.keras"), "--normalize", "--scale", "0.5"]) == 0
    x = (rng.random((2, 4, 3, 3)) * 255).astype(np.float32)
    assert_close_rel(predict(keras.saving.load_model(tmp_path / "both.keras"), x),
                     predict(from_matconvnet(path), (x - average) * 0.5))


@pytest.mark.parametrize("content", ["garbage", "unknown layer"])
def test_failure_is_one_line_and_leaves_no_output(tmp_path, capsys, content):
    path = tmp_path / "broken.mat"
    if content == "garbage":
        path.write_bytes(b"this is not a MAT file" * 20)
    else:
        write_mat(path, {"layers": [{"type": "teleport", "name": "odd"}]})
    output = tmp_path / "out" / "broken.keras"
    assert TOOL.main([str(path), "-o", str(output)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.mat" in errors[0]
    assert not output.exists()
    assert not output.parent.exists() or not any(output.parent.iterdir())


def test_bad_input_shape_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        TOOL.main(["net.mat", "-o", str(tmp_path / "x.keras"), "--input-shape", "big"])
    assert exit_info.value.code == 2


def test_fold_batchnorm_option_folds_bnorm_into_the_convolution(tmp_path, rng):
    moments = np.stack([rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)], axis=1).astype(np.float32)
    net = {"layers": [{"type": "conv", "name": "conv1", "pad": 1,
                       "weights": [rng.standard_normal((3, 3, 3, 4)).astype(np.float32),
                                   rng.standard_normal((1, 4)).astype(np.float32)]},
                      {"type": "bnorm", "name": "bn1",
                       "weights": [rng.uniform(0.5, 1.5, (4, 1)).astype(np.float32),
                                   rng.standard_normal((4, 1)).astype(np.float32), moments]},
                      {"type": "relu", "name": "relu1"}]}
    source = write_mat(tmp_path / "bnorm.mat", net)
    output = tmp_path / "folded.keras"
    assert TOOL.main([str(source), "-o", str(output), "--input-shape", "6,5", "--fold-batchnorm"]) == 0
    folded = keras.saving.load_model(output)
    names = {layer.name for layer in folded.layers}
    assert "conv1" in names and "bn1" not in names
    unfolded = from_matconvnet(source, input_shape=(6, 5))
    assert "bn1" in {layer.name for layer in unfolded.layers}
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    assert_close_rel(predict(folded, x), predict(unfolded, x), tol=1e-5)
