"""tools/convert_caffe.py end to end: .keras files that load in safe mode and compute what Caffe (OpenCV) does."""

import os
import re
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

import keras_zoo  # noqa: F401  (registers the custom layers for safe-mode loading)
from converters.caffe import read_mean_file
from keras_zoo.random_weights import random_caffemodel
from tests.helpers import ROOT, assert_close_rel, fixture_path

SCRIPT = ROOT / "tools" / "convert_caffe.py"
sys.path.insert(0, str(SCRIPT.parent))
import convert_caffe  # noqa: E402


def run_script(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def opencv_forward(prototxt, caffemodel, x, outputs):
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableWinograd(False)
    net.setInput(x)
    return net.forward(outputs)


def test_caffenet_with_caffe_preprocessing_inside(tmp_path, rng):
    """--rgb --mean-file: the model takes RGB 0..255; Caffe got BGR minus the centre of the mean image."""
    prototxt = fixture_path("bvlc/bvlc_reference_caffenet/deploy.prototxt")
    mean_file = fixture_path("labels/ilsvrc12/imagenet_mean.binaryproto")
    caffemodel = random_caffemodel(prototxt, tmp_path / "caffenet.caffemodel", input_shape=(99, 99))
    output = tmp_path / "caffenet.keras"
    result = run_script(prototxt, caffemodel, "-o", output, "--input-shape", "99,99", "--rgb",
                        "--mean-file", mean_file)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "prob" in result.stdout

    model = keras.saving.load_model(output, safe_mode=True)
    assert [t.name for t in model.inputs] == ["data"] and model.output_names == ["prob"]
    assert model.input.shape == (None, 99, 99, 3)
    assert model.get_layer("fc8").kernel.shape == (4096, 1000)
    assert model.get_layer("conv2").get_config()["groups"] == 2

    rgb = rng.uniform(0, 255, (2, 99, 99, 3)).astype(np.float32)
    mean = read_mean_file(mean_file)  # (3, 256, 256) BGR
    offset = (256 - 99) // 2
    caffe_input = np.transpose(rgb[..., ::-1], (0, 3, 1, 2)) - mean[None, :, offset:offset + 99, offset:offset + 99]
    fc8 = keras.Model(model.input, model.get_layer("fc8").output)
    assert_close_rel(fc8(rgb), opencv_forward(prototxt, caffemodel, caffe_input, "fc8"))


def test_googlenet_names_and_plain_input(tmp_path, rng):
    source = fixture_path("bvlc/bvlc_googlenet/deploy.prototxt")
    prototxt = tmp_path / "googlenet.prototxt"  # a quarter of the filters: the same graph, faster
    prototxt.write_text(re.sub(r"num_output: (\d+)", lambda m: f"num_output: {int(m[1]) // 4}", source.read_text()))
    caffemodel = random_caffemodel(prototxt, tmp_path / "googlenet.caffemodel")
    output = tmp_path / "googlenet.keras"
    assert convert_caffe.main([str(prototxt), str(caffemodel), "-o", str(output)]) == 0
    model = keras.saving.load_model(output, safe_mode=True)
    for name in ("inception_3a_1x1", "inception_3a_pool_proj", "loss3_classifier", "pool5_7x7_s1"):
        model.get_layer(name)
    assert model.output_names == ["prob"]
    x = rng.uniform(-100, 100, (1, 3, 224, 224)).astype(np.float32)
    classifier = keras.Model(model.input, model.get_layer("loss3_classifier").output)
    assert_close_rel(classifier(np.transpose(x, (0, 2, 3, 1))),
                     opencv_forward(prototxt, caffemodel, x, "loss3/classifier"))


def test_multiple_outputs_keep_names_and_order(tmp_path, rng):
    prototxt, caffemodel = fixture_path("mtcnn/det3.prototxt"), fixture_path("mtcnn/det3.caffemodel")
    output = tmp_path / "det3.keras"
    assert convert_caffe.main([str(prototxt), str(caffemodel), "-o", str(output), "--mean", "127.5,127.5,127.5",
                               "--scale", "0.0078125"]) == 0
    model = keras.saving.load_model(output, safe_mode=True)
    assert model.output_names == ["conv6-2", "conv6-3", "prob1"]
    x = rng.uniform(0, 255, (2, 48, 48, 3)).astype(np.float32)
    caffe_input = (np.transpose(x, (0, 3, 1, 2)) - 127.5) * 0.0078125
    references = opencv_forward(prototxt, caffemodel, caffe_input, ["conv6-2", "conv6-3", "prob1"])
    for y, y_ref in zip(model(x), references):
        assert_close_rel(y, y_ref)


def test_html_download_fails_cleanly(tmp_path):
    """A web page saved under a .caffemodel name: one error line naming the file, no output, no traceback."""
    output = tmp_path / "out.keras"
    html = fixture_path("negative/res10_300x300_ssd_iter_140000.caffemodel.HTML")
    result = run_script(fixture_path("small_caffemodels/lenet/lenet.prototxt"), html, "-o", output)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and html.name in lines[-1]
    assert not any("Traceback" in line for line in lines)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra,expected", [
    (["--mean", "1,2"], "2 channels"),
    (["--input-shape", "0,5"], None),
])
def test_bad_options_exit_non_zero_without_output(tmp_path, capsys, extra, expected):
    prototxt = fixture_path("small_caffemodels/lenet/lenet.prototxt")
    caffemodel = fixture_path("small_caffemodels/lenet/lenet_iter_10000.caffemodel")
    output = tmp_path / "lenet.keras"
    try:
        code = convert_caffe.main([str(prototxt), str(caffemodel), "-o", str(output), *extra])
    except SystemExit as exit_:  # argparse rejects the value itself
        code = exit_.code
    assert code != 0
    if expected:
        assert expected in capsys.readouterr().err
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_help_and_exclusive_means(capsys):
    with pytest.raises(SystemExit) as exit_:
        convert_caffe.main(["--help"])
    assert exit_.value.code == 0 and "--mean-file" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        convert_caffe.main(["a", "b", "-o", "c", "--mean", "1,2,3", "--mean-file", "m.npy"])
    assert exit_.value.code == 2


def test_fold_batchnorm_option_writes_an_inference_model(tmp_path, rng):
    """--fold-batchnorm: ResNet-50's BatchNorm and Scale layers are folded into its convolutions; the .keras
    file loads in safe mode and still computes what Caffe does."""
    prototxt = fixture_path("resnet/ResNet-50-deploy.prototxt")
    caffemodel = random_caffemodel(prototxt, tmp_path / "resnet50.caffemodel")
    output = tmp_path / "resnet50.keras"
    result = run_script(prototxt, caffemodel, "-o", output, "--fold-batchnorm")
    assert result.returncode == 0, result.stderr
    model = keras.saving.load_model(output, safe_mode=True)
    names = {layer.name for layer in model.layers}
    assert "res2a_branch2a" in names and not {"bn2a_branch2a", "scale2a_branch2a", "bn_conv1"} & names
    x = rng.uniform(-100, 100, (1, 3, 224, 224)).astype(np.float32)
    fc1000 = keras.Model(model.input, model.get_layer("fc1000").output)
    assert_close_rel(fc1000(np.transpose(x, (0, 2, 3, 1))), opencv_forward(prototxt, caffemodel, x, "fc1000"))


MISSPELLED = """name: "typo"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 strid: 2 } }
"""


def test_misspelled_field_is_refused_unless_allowed(tmp_path):
    """`strid: 2` is refused naming file, line, layer, field and the fix; --allow-unknown-fields converts with one
    warning, the field skipped (stride 1: a 10x10 output)."""
    prototxt, correct = tmp_path / "typo.prototxt", tmp_path / "correct.prototxt"
    prototxt.write_text(MISSPELLED)
    correct.write_text(MISSPELLED.replace("strid: 2", ""))
    caffemodel = random_caffemodel(correct, tmp_path / "typo.caffemodel")
    output = tmp_path / "typo.keras"
    refused = run_script(prototxt, caffemodel, "-o", output)
    assert refused.returncode == 1 and not output.exists()
    assert re.search(r"typo\.prototxt.*line 5.*'conv1'.*'strid'.*did you mean 'stride'\?", refused.stderr), \
        refused.stderr
    allowed = run_script(prototxt, caffemodel, "-o", output, "--allow-unknown-fields")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stderr.count("unknown field 'strid'") == 1
    assert keras.saving.load_model(output, safe_mode=True).output.shape == (None, 10, 10, 4)
