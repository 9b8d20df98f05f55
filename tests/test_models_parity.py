"""The zoo builders reproduce Caffe: random caffemodels written for the original deploy prototxts, loaded with
``keras_zoo.X(weights=path, include_preprocessing=False)``, against OpenCV's Caffe runtime and against the
generic converter (:func:`keras_zoo.convert.from_caffe`, what ``tools/convert_caffe.py`` runs)."""

import cv2
import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.convert import from_caffe
from tests.caffe_random_weights import random_caffemodel
from tests.caffe_writer import length_delimited
from tests.helpers import assert_close_rel, fixture_path

CASES = [
    # builder, deploy prototxt, input (H, W), scores layer (before the softmax)
    ("CaffeNet", "bvlc/bvlc_reference_caffenet/deploy.prototxt", (227, 227), "fc8"),
    ("RCNNILSVRC13", "bvlc/bvlc_reference_rcnn_ilsvrc13/deploy.prototxt", (227, 227), "fc-rcnn"),
    ("GoogLeNet", "bvlc/bvlc_googlenet/deploy.prototxt", (224, 224), "loss3/classifier"),
    ("ResNet50", "resnet/ResNet-50-deploy.prototxt", (224, 224), "fc1000"),
    ("VGGM2048", "vgg_cnn/VGG_CNN_M_2048_deploy_TDD.prototxt", (224, 224), "fc8"),
    ("VGG16", "vgg/VGG_ILSVRC_16_layers_deploy.prototxt", (224, 224), "fc8"),
    ("FCN8s", "fcn/voc-fcn8s/deploy.prototxt", (48, 64), "score"),
]


def _prototxt(relative, tmp_path):
    """The fixture; VGG_CNN_M_2048's third-party copy gets the LRN ``k: 2`` of the released model."""
    path = fixture_path(relative)
    if "VGG_CNN_M_2048" not in relative:
        return path
    patched = tmp_path / path.name
    patched.write_text(path.read_text().replace("beta: 0.75", "beta: 0.75\n    k: 2"))
    return patched


def write_full_caffemodel(prototxt, path, *, input_shape=None):
    """A .caffemodel as Caffe saves one: the net definition of ``prototxt`` with random blobs in its layers.

    The builders load a weights file on its own, so it must carry its layers' parameters (groups, strides...)
    as real files do; the random blobs come from :func:`random_caffemodel` (weights only) and are
    appended to each serialized layer (concatenated protobuf messages merge, repeated blobs append).
    """
    from google.protobuf import text_format

    from converters import caffe_schema

    weights_only = random_caffemodel(prototxt, path.with_suffix(".blobs"), input_shape=input_shape)
    blobs = {layer.name: layer.blobs for layer in caffe_schema.NetParameter.FromString(weights_only.read_bytes()).layer}
    net = caffe_schema.NetParameter()
    text_format.Parse(prototxt.read_text(), net)
    v1 = bool(net.layers)
    out = bytearray()
    for layer in net.layers if v1 else net.layer:
        payload = layer.SerializeToString() + b"".join(
            length_delimited(6 if v1 else 7, blob.SerializeToString()) for blob in blobs.get(layer.name, ()))
        out += length_delimited(2 if v1 else 100, payload)
    del net.layers[:], net.layer[:]
    path.write_bytes(net.SerializeToString() + bytes(out))
    return path


def _opencv(prototxt, caffemodel, x_nhwc, blobs):
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableWinograd(False)
    net.setInput(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
    return [np.asarray(out) for out in net.forward(blobs)]


def _softmax(scores):
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _nchw(y):
    y = keras.ops.convert_to_numpy(y)
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


@pytest.mark.parametrize("builder, prototxt, size, scores", CASES, ids=[case[0] for case in CASES])
def test_builder_reproduces_caffe(builder, prototxt, size, scores, tmp_path):
    prototxt = _prototxt(prototxt, tmp_path)
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel",
                                       input_shape=size if builder.startswith("FCN") else None)
    rng = np.random.default_rng(1)
    x = rng.uniform(-120, 120, (1, *size, 3)).astype(np.float32)  # BGR, mean subtracted: what Caffe takes
    make = getattr(keras_zoo, builder)
    fully_convolutional = builder.startswith("FCN")
    raw = make(weights=str(caffemodel), include_preprocessing=False, classifier_activation=None)
    assert raw.input_shape == (None, None, None, 3) if fully_convolutional else (None, *size, 3)
    y_scores = _nchw(raw(x))
    with_softmax = not fully_convolutional and builder != "RCNNILSVRC13"
    references = _opencv(prototxt, caffemodel, x, [scores, "prob"] if with_softmax else [scores])
    assert_close_rel(y_scores, references[0], tol=1e-4, what=f"{builder} {scores}")
    if with_softmax:
        assert_close_rel(_softmax(y_scores), references[1], tol=1e-4, what=f"{builder} prob")

    converted = from_caffe(prototxt, caffemodel, input_shape=size if fully_convolutional else None)
    expected = _softmax(y_scores) if with_softmax else y_scores  # the converter keeps Caffe's softmax
    assert_close_rel(_nchw(converted(x)), expected, tol=1e-5, what=f"{builder} against the converter")
    for layer in raw.layers:
        if layer.weights and layer.name != "preprocess":
            for ours, theirs in zip(layer.get_weights(), converted.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)


def test_include_top_false_loads_the_features(tmp_path):
    """A classifier's weights file loads into the headless model (by layer name), as keras.applications."""
    prototxt = fixture_path("bvlc/bvlc_reference_caffenet/deploy.prototxt")
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel")
    x = np.random.default_rng(2).uniform(-120, 120, (1, 227, 227, 3)).astype(np.float32)
    features = keras_zoo.CaffeNet(weights=str(caffemodel), include_top=False, include_preprocessing=False)
    (pool5,) = _opencv(prototxt, caffemodel, x, ["pool5"])
    assert_close_rel(_nchw(features(x)), pool5, tol=1e-4, what="pool5")


def test_other_classes_keep_the_features_of_a_weights_file(tmp_path):
    prototxt = fixture_path("bvlc/bvlc_reference_caffenet/deploy.prototxt")
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel")
    model = keras_zoo.CaffeNet(weights=str(caffemodel), classes=7, include_preprocessing=False)
    reference = keras_zoo.CaffeNet(weights=str(caffemodel), include_preprocessing=False)
    assert model.output_shape == (None, 7)
    for name in ("conv1", "fc7"):
        for ours, theirs in zip(model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert model.get_layer("fc8").get_weights()[0].std() > 0  # freshly initialised
