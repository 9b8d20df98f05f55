"""Real zoo architectures (random weights) through the exporters: CaffeNet (groups + LRN), GoogLeNet
(inception concatenations, ceil pooling, LRN), ResNet-50 (batch norm, residual sums)."""

import numpy as np
import pytest

from export import common, onnx as onnx_export, saved_model, tflite
from tests.helpers import assert_close_rel
from tests.export.test_export_formats import run_litert


def zoo(name, **kwargs):
    from keras_zoo import models, resolve

    model = models.get_model(name, weights=None, **kwargs)
    samples = common.sample_images(resolve.input_size(model), 3)
    return model, samples, model.predict(samples, verbose=0)


@pytest.fixture(scope="module")
def caffenet_features():
    # the convolutional body: grouped conv2/4/5, LRN, ceil-mode pooling (the FC head only adds size)
    return zoo("caffenet", include_top=False, input_shape=(227, 227, 3))


def test_caffenet_onnx(caffenet_features, tmp_path):
    model, samples, expected = caffenet_features
    proto = onnx_export.convert_onnx(model)
    assert not onnx_export.unsupported_by_tensorrt(proto)
    path = onnx_export.save_onnx(proto, tmp_path / "caffenet.onnx")
    assert_close_rel(onnx_export.OnnxRunner(path)(samples)[0], expected, 1e-4)


def test_caffenet_tflite(caffenet_features):
    model, samples, expected = caffenet_features
    content = tflite.convert_tflite(model)
    assert all(op.isupper() and not op.startswith("FLEX") for op in tflite.operators(content))
    assert_close_rel(run_litert(content, samples), expected, 1e-4)


def test_googlenet_tflite():
    model, samples, expected = zoo("googlenet")
    content = tflite.convert_tflite(model)
    ops = set(tflite.operators(content))
    assert all(op.isupper() and not op.startswith("FLEX") for op in ops)
    assert {"CONCATENATION", "MAX_POOL_2D", "POW"} <= ops
    assert_close_rel(run_litert(content, samples), expected, 1e-4)


def test_resnet50_saved_model(tmp_path):
    import tensorflow as tf

    model, samples, expected = zoo("resnet-50", include_top=False, input_shape=(96, 96, 3))
    result = saved_model.export_saved_model(model, tmp_path / "1", samples=samples, reference=[expected],
                                            classification=False)
    assert result.passed
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    (out,) = loaded.signatures["serving_default"](images=tf.constant(samples)).values()
    assert_close_rel(out.numpy(), expected, 1e-4)
    assert np.isfinite(out.numpy()).all()
