"""Equalizing channels' ranges before int8 (export.equalization; export.tflite.equalize_channels on Keras models,
export.onnx.equalize_channels on ONNX graphs): the same function, every equalized tensor's channels at the widest
one's peak, only the pairs it may rescale touched, and int8 closer to float32 for it."""

import keras
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from export import equalization, tflite
from export import onnx as onnx_export
from export.runners import OnnxRunner, TFLiteRunner
from keras_zoo import layers

SIZE = (16, 16)
SPREAD = np.geomspace(0.01, 1.0, 8).astype(np.float32)  # conv1's channels: ranges 100 times apart
# (producer, next weighted layer) rescaled, in both forms' names
EQUALIZED = [("conv1", "conv2"), ("conv2", "conv3"), ("conv3", "deconv")]


def spread_model():
    """Conv -> PReLU -> Conv -> leaky ReLU -> Conv -> (nothing) -> Deconv, then the layers equalizing must leave:
    a ReLU6 between two convolutions, a convolution read twice, one read by a grouped convolution, a grouped one
    whose output is a model output. Every convolution's output channels have ranges 100 times apart; the next
    layer's weights undo it where the activation lets them (the function of a net of even ranges)."""
    keras.utils.set_random_seed(0)
    images = keras.Input((*SIZE, 3), name="images")
    x = layers.Conv2D(8, 3, pads=(1, 1, 1, 1), name="conv1")(images)
    x = keras.layers.PReLU(shared_axes=[1, 2], name="prelu1")(x)
    x = layers.Conv2D(8, 3, pads=(1, 1, 1, 1), name="conv2")(x)
    x = keras.layers.ReLU(negative_slope=0.2, name="leaky2")(x)
    x = layers.Conv2D(8, 1, name="conv3")(x)
    x = layers.Deconv2D(8, 4, strides=2, crops=(1, 1, 1, 1), name="deconv")(x)
    x = layers.Conv2D(8, 3, pads=(1, 1, 1, 1), name="conv4")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6")(x)
    twice = layers.Conv2D(8, 1, name="conv5")(x)
    x = keras.layers.Add(name="add")([layers.Conv2D(8, 1, name="conv6")(twice), twice])
    x = layers.Conv2D(8, 1, name="conv7")(x)
    grouped = layers.Conv2D(8, 3, pads=(1, 1, 1, 1), groups=2, name="grouped")(x)
    end = layers.Conv2D(4, 1, name="end")(grouped)
    model = keras.Model(images, [end, grouped], name="spread")
    model.get_layer("prelu1").set_weights([np.full((1, 1, 8), 0.25, np.float32)])
    for name, following in [("conv1", "conv2"), ("conv2", "conv3"), ("conv3", "deconv"), ("conv4", "conv5"),
                            ("conv5", "conv6"), ("conv7", "grouped"), ("grouped", "end")]:
        layer, reader = model.get_layer(name), model.get_layer(following)
        layer.kernel.assign(np.asarray(layer.kernel) * SPREAD)
        layer.bias.assign(np.random.default_rng(1).uniform(-0.1, 0.1, 8).astype(np.float32) * SPREAD)
        kernel = np.asarray(reader.kernel)
        if reader.groups == 1:  # input channels: Conv2D's axis 2, Deconv2D's axis 3
            spread = SPREAD.reshape((1, 1, -1, 1) if isinstance(reader, layers.Conv2D) else (1, 1, 1, -1))
            reader.kernel.assign(kernel / spread)
    return model


def photos(count, seed):
    return np.random.default_rng(seed).uniform(0, 255, (count, *SIZE, 3)).astype(np.float32)


def channel_peaks(values, axis):
    peaks = equalization.Peaks()
    peaks.add("x", values, axis)
    return peaks.peaks["x"]


def test_factors_bring_each_channel_to_the_widest():
    peaks = equalization.Peaks()
    peaks.add("t", np.array([[1.0, -4.0, 0.0, 1e-4]]), axis=1)
    peaks.add("t", np.array([[-2.0, 3.0, 0.0, 0.0]]), axis=1)
    np.testing.assert_allclose(peaks.peaks["t"], [2.0, 4.0, 0.0, 1e-4])
    np.testing.assert_allclose(peaks.factors("t"), [2.0, 1.0, 1.0, equalization.MAX_FACTOR])
    peaks.add("t", np.array([[np.inf, 1.0, 0.0, 0.0]]), axis=1)  # a broken net's overflow: left to the check
    np.testing.assert_array_equal(peaks.factors("t"), np.ones(4))


def test_keras_equalization_keeps_the_function_and_levels_the_ranges():
    model = spread_model()
    calibration, images = photos(8, 2), photos(4, 3)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    assert tflite.equalize_channels(copy, calibration) == EQUALIZED
    for got, expected in zip(copy.predict(images, verbose=0), model.predict(images, verbose=0)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    probe = keras.Model(copy.inputs, [copy.get_layer(name).output for name, _ in EQUALIZED])
    for (name, _), values in zip(EQUALIZED, probe.predict(calibration, verbose=0)):
        peaks = channel_peaks(values, axis=-1)
        np.testing.assert_allclose(peaks, peaks.max(), rtol=1e-4, err_msg=name)
    touched = {name for pair in EQUALIZED for name in pair}
    for layer in model.layers:
        if layer.name not in touched:
            for kept, weight in zip(layer.get_weights(), copy.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(kept, weight, err_msg=layer.name)
    before = channel_peaks(keras.Model(model.inputs, model.get_layer("conv1").output).predict(calibration, verbose=0),
                           axis=-1)
    assert before.max() / before.min() > 20  # the model given was left as it was


def test_onnx_equalization_keeps_the_function_and_levels_the_ranges(tmp_path):
    proto = onnx_export.convert_onnx(spread_model())
    onnx_export.fuse_prelu(proto)
    source = tmp_path / "source.onnx"
    onnx_export.write_onnx(proto, source)
    calibration, images = photos(8, 2), photos(4, 3)
    pairs = onnx_export.equalize_channels(proto, calibration)
    assert [(a.split("_1/")[0], b.split("_1/")[0]) for a, b in pairs] == EQUALIZED, pairs
    equalized = tmp_path / "equalized.onnx"
    onnx_export.write_onnx(proto, equalized)
    for got, expected in zip(OnnxRunner(equalized)(images), OnnxRunner(source)(images)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    outputs = {node.name: node.output[0] for node in proto.graph.node}
    for chunk in onnx_export._probed(proto, [outputs[a] for a, _ in pairs], calibration, None):
        for a, _ in pairs:
            peaks = channel_peaks(chunk[outputs[a]], axis=1)
            np.testing.assert_allclose(peaks, peaks.max(), rtol=1e-4, err_msg=a)
    untouched = {node.input[1] for node in proto.graph.node if node.op_type in ("Conv", "ConvTranspose")
                 and not any(node.name in pair for pair in pairs)}
    original = {init.name: numpy_helper.to_array(init) for init in onnx.load(str(source)).graph.initializer}
    for init in proto.graph.initializer:
        if init.name in untouched:
            np.testing.assert_array_equal(numpy_helper.to_array(init), original[init.name], err_msg=init.name)


@pytest.mark.parametrize("form", ["onnxruntime", "litert"])
def test_int8_is_closer_to_float_for_the_equalized_channels(form, tmp_path, monkeypatch):
    """The int8 forms of the chain up to the deconvolution: the root mean square error, as a share of float32's
    largest output, with the channels equalized and with equalize_channels doing nothing."""
    model = spread_model()
    chain = keras.Model(model.inputs, model.get_layer("deconv").output)
    calibration, images = photos(32, 2), photos(8, 3)
    expected = chain.predict(images, verbose=0)

    def error():
        if form == "onnxruntime":
            fp32, int8 = tmp_path / "chain.onnx", tmp_path / "chain.int8.onnx"
            onnx_export.write_onnx(onnx_export.convert_onnx(chain), fp32)
            onnx_export.quantize_int8(fp32, int8, calibration)
            got = OnnxRunner(int8)(images)[0]
        else:
            got = TFLiteRunner(tflite.convert_tflite(chain, quantization="int8", representative=calibration))(images)[0]
        return np.sqrt(np.mean((got - expected) ** 2)) / np.abs(expected).max()

    equalized = error()
    monkeypatch.setattr(onnx_export if form == "onnxruntime" else tflite, "equalize_channels", lambda *_, **__: [])
    plain = error()
    print(f"{form}: int8 error (rms) {equalized:.3%} of the output's range equalized, {plain:.3%} not")
    assert equalized < 0.5 * plain, (equalized, plain)
