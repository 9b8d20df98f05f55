"""ONNX export with the weights bound after conversion (export.onnx.bind_weights): the exact weights reach
the ONNX file as initializers, convolution kernels pre-transposed, and the graph runs the same in ONNX
Runtime. References: NumPy formulas written here, the Keras model's own outputs, and the Keras weights."""

import numpy as np
import pytest

from export import common, onnx as onnx_export
from tests.helpers import assert_close_rel

WEIGHT_OPS = {"Conv": 1, "ConvTranspose": 1, "MatMul": 1, "Gemm": 1}  # op -> index of its weight input


def randomize(model, seed=0):
    """Non-zero weights everywhere (zero biases could be dropped unnoticed); positive variances."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        values = rng.normal(0, 0.05, variable.shape)
        if variable.path.endswith(("variance", "std")):
            values = 0.5 + np.abs(values)
        variable.assign(values.astype(np.float32))


def initializers(proto):
    from onnx import numpy_helper

    return {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}


def assert_weights_are_initializers(proto):
    """The only graph input is the image; every weighted operator reads its weight from an initializer."""
    names = {init.name for init in proto.graph.initializer}
    assert [value.name for value in proto.graph.input] == [onnx_export.INPUT_NAME]
    weighted = [node for node in proto.graph.node if node.op_type in WEIGHT_OPS]
    assert weighted
    for node in weighted:
        assert node.input[WEIGHT_OPS[node.op_type]] in names, f"{node.name}: weight computed at run time"


@pytest.fixture(scope="module")
def dense_model():
    """A 9216 -> 1024 fully connected layer (36 MB of weights), CaffeNet's fc6 at a quarter of its width."""
    import keras

    images = keras.Input((6, 6, 256), name="data")
    x = keras.layers.Flatten(name="flatten")(images)
    model = keras.Model(images, keras.layers.Dense(1024, name="fc6")(x), name="wide_fc")
    randomize(model)
    return model


def test_dense_weights_are_exact(dense_model):
    proto = onnx_export.convert_onnx(dense_model)
    assert_weights_are_initializers(proto)
    kernel, bias = (np.asarray(w) for w in dense_model.get_layer("fc6").weights)
    stored = initializers(proto)
    matmul = next(node for node in proto.graph.node if node.op_type == "MatMul")
    np.testing.assert_array_equal(stored[matmul.input[1]], kernel)
    assert sum(a.nbytes for a in stored.values()) < kernel.nbytes + bias.nbytes + 4096  # each weight once


def test_dense_parity_with_numpy(dense_model, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3, 6, 6, 256)).astype(np.float32)
    kernel, bias = (np.asarray(w, np.float64) for w in dense_model.get_layer("fc6").weights)
    expected = x.reshape(3, -1).astype(np.float64) @ kernel + bias
    path = onnx_export.save_onnx(onnx_export.convert_onnx(dense_model), tmp_path / "wide_fc.onnx")
    assert_close_rel(onnx_export.OnnxRunner(path)(x)[0], expected, 1e-5)


@pytest.fixture(scope="module")
def conv_model():
    """Every way a kernel is used: padded, grouped, depthwise, strided-and-dilated (a kernel dilated by
    ops on the weights), transposed; batch norm statistics (non-trainable weights); a fully connected head."""
    import keras

    from keras_zoo import layers

    images = keras.Input((20, 20, 3), name="data")
    x = layers.Conv2D(8, 3, pads=(1, 1, 1, 1), name="conv1")(images)
    x = layers.BatchNorm(scale=True, center=True, name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = layers.Conv2D(8, 3, pads=(1, 1, 1, 1), groups=2, name="conv2")(x)
    x = layers.Conv2D(8, 3, pads=(1, 1, 1, 1), groups=8, name="conv3_dw")(x)
    x = layers.Conv2D(12, 3, strides=2, dilation=2, pads=(2, 2, 2, 2), name="conv4_dilated")(x)
    x = layers.Deconv2D(6, 4, strides=2, crops=(1, 1, 1, 1), name="upscore")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(images, keras.layers.Dense(10, name="fc")(x), name="kernels")
    randomize(model, seed=2)
    return model


def test_conv_kernels_folded_exactly(conv_model, tmp_path):
    proto = onnx_export.convert_onnx(conv_model)
    assert_weights_are_initializers(proto)
    stored = initializers(proto)
    conv1 = next(node for node in proto.graph.node if node.op_type == "Conv")
    kernel, bias = (np.asarray(w) for w in conv_model.get_layer("conv1").weights)
    np.testing.assert_array_equal(stored[conv1.input[1]], kernel.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(stored[conv1.input[2]], bias)  # the bias add is the Conv's own bias

    samples = common.sample_images((20, 20), 4)
    path = onnx_export.save_onnx(proto, tmp_path / "kernels.onnx")
    assert_close_rel(onnx_export.OnnxRunner(path)(samples)[0], conv_model.predict(samples, verbose=0), 1e-4)


def test_past_2gb_weights_go_to_external_data(conv_model, tmp_path, monkeypatch):
    """With the external-data threshold lowered, the export writes model + data file, verified, nothing else."""
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    samples = common.sample_images((20, 20), 4)
    reference = common.keras_outputs(conv_model, samples)
    path = tmp_path / "out" / "kernels.onnx"
    assert onnx_export.export_onnx(conv_model, path, samples=samples, reference=reference).passed
    assert sorted(p.name for p in path.parent.iterdir()) == ["kernels.onnx", "kernels.onnx.data"]
    assert path.stat().st_size < (path.parent / "kernels.onnx.data").stat().st_size
    assert_close_rel(onnx_export.OnnxRunner(path)(samples)[0], reference[0], 1e-4)

    rejected = tmp_path / "rejected" / "kernels.onnx"
    wrong = [-reference[0]]
    assert not onnx_export.export_onnx(conv_model, rejected, samples=samples, reference=wrong).passed
    assert list(rejected.parent.iterdir()) == []


def test_fcn8s_with_its_411_mb_fc6(tmp_path):
    """FCN-8s (random weights) at a small input: a correct ONNX, fc6's 7x7x512x4096 kernel stored exactly."""
    from keras_zoo import models

    model = models.get_model("fcn8s", weights=None, input_shape=(32, 32, 3))
    samples = common.sample_images((32, 32), 2)
    reference = common.keras_outputs(model, samples)
    path = tmp_path / "fcn8s.onnx"
    result = onnx_export.export_onnx(model, path, samples=samples, reference=reference, name="fcn8s",
                                      speed_batch=1)
    assert result.passed and result.errors["max_rel_error"] <= 1e-4

    import onnx

    proto = onnx.load(str(path))
    assert_weights_are_initializers(proto)
    kernel = np.asarray(model.get_layer("fc6").weights[0])
    assert kernel.shape == (7, 7, 512, 4096)
    fc6 = next(init for init in proto.graph.initializer if list(init.dims) == [4096, 512, 7, 7])
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(fc6), kernel.transpose(3, 2, 0, 1))


def caffe_ceil_pool_size(size, kernel, stride):
    """Caffe's pooled size (ceil rounding, no padding), written from its pooling layer's formula."""
    return -(-(size - kernel) // stride) + 1


def test_dynamic_size_ceil_pooling(tmp_path):
    """One ONNX file for any input size: the ceil-mode output size is computed at run time with integer
    floor division of negative numbers, which tf2onnx's own handler rounds toward zero."""
    import keras

    from keras_zoo import layers

    images = keras.Input((None, None, 3), name="data")
    x = layers.Conv2D(4, 3, pads=(1, 1, 1, 1), name="conv")(images)
    model = keras.Model(images, layers.Pool2D("max", 3, 2, rounding="ceil", name="pool")(x))
    randomize(model, seed=3)
    path = onnx_export.save_onnx(onnx_export.convert_onnx(model), tmp_path / "pool.onnx")
    runner = onnx_export.OnnxRunner(path)
    for height, width in ((20, 20), (21, 24), (37, 30)):
        x = common.sample_images((height, width), 2)
        got = runner(x)[0]
        assert got.shape == (2, caffe_ceil_pool_size(height, 3, 2), caffe_ceil_pool_size(width, 3, 2), 4)
        assert_close_rel(got, model.predict(x, verbose=0), 1e-4)
