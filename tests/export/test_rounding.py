"""export.rounding: int8 weights rounded so that the layers' outputs move least, on the quantizers' own grids, and
the ONNX rewrites the int8 form relies on (fuse_prelu, image_path). The gains on real models are measured in
test_int8_real.py (FSRCNN, ONNX Runtime's form: worse than bicubic before, 61% of its gain after)."""

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
from ai_edge_litert.interpreter import Interpreter
from onnx import TensorProto, helper, numpy_helper

from export import onnx as onnx_export
from export import rounding, tflite
from export.runners import OnnxRunner
from keras_zoo import layers as zoo_layers
from tests.export.test_export_formats import SIZE, small_zoo_model


def nearest(weights, levels):
    step = np.abs(weights).max(axis=1, keepdims=True).astype(np.float64) / levels
    return np.clip(np.round(weights / step), -levels, levels) * step, step


def correlated_inputs(rng, count, columns):
    """Input vectors whose components move together, as neighbouring pixels and channels do."""
    return rng.normal(size=(count, 8)) @ rng.normal(size=(8, columns)) + 0.1 * rng.normal(size=(count, columns))


def test_with_uncorrelated_inputs_it_is_rounding_to_nearest(rng):
    weights = rng.normal(size=(12, 40)).astype(np.float32)
    moments = np.diag(rng.uniform(0.5, 2.0, 40))
    np.testing.assert_allclose(rounding.round_weights(weights, moments, 64), nearest(weights, 64)[0], rtol=1e-12)


@pytest.mark.parametrize("levels", [64, 127])
def test_rounded_weights_stay_on_the_grid_and_move_the_outputs_least(rng, levels):
    weights = rng.normal(size=(16, 200)).astype(np.float32)
    inputs = correlated_inputs(rng, 4000, 200)
    rounded = rounding.round_weights(weights, inputs.T @ inputs / len(inputs), levels)
    plain, step = nearest(weights, levels)
    integers = rounded / step
    np.testing.assert_allclose(integers, np.round(integers), atol=1e-9)
    assert np.abs(np.round(integers)).max() == levels
    peaks = np.abs(weights).argmax(axis=1)  # each row's largest weight keeps the quantizer's step
    np.testing.assert_allclose(integers[np.arange(16), peaks], np.sign(weights[np.arange(16), peaks]) * levels)
    error = np.sum(((weights - rounded) @ inputs.T) ** 2)
    plain_error = np.sum(((weights - plain) @ inputs.T) ** 2)
    assert error < 0.2 * plain_error, (error, plain_error)


def test_inverse_cholesky(rng):
    inputs = rng.normal(size=(300, 50))
    matrix = inputs.T @ inputs + np.eye(50)
    upper = rounding.inverse_cholesky(matrix)
    np.testing.assert_array_equal(upper, np.triu(upper))
    np.testing.assert_allclose(upper.T @ upper, np.linalg.inv(matrix), rtol=1e-4, atol=1e-7)


def run_node(node, weight, inputs):
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, inputs.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(weight, "w")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": inputs})[0], proto


@pytest.mark.parametrize("op,weight_shape,input_shape,attributes", [
    ("Conv", (6, 2, 3, 3), (2, 4, 11, 9), dict(strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2], group=2)),
    ("Conv", (8, 1, 3, 3), (1, 4, 7, 7), dict(pads=[1, 1, 1, 1], group=4)),  # depthwise, two per channel
    ("ConvTranspose", (4, 3, 4, 5), (2, 4, 5, 6), dict(strides=[3, 2], pads=[1, 2, 2, 0], output_padding=[1, 1])),
    ("MatMul", (10, 7), (5, 10), {}),
    ("Gemm", (7, 10), (5, 10), dict(transB=1)),
])
def test_rows_times_input_vectors_are_what_onnx_runtime_computes(rng, op, weight_shape, input_shape, attributes):
    """The rows and input vectors round_weights is given are the layer: row . vector is the output ONNX Runtime
    computes at each place, for every convolution geometry round_onto_grid accepts."""
    weight, inputs = rng.normal(size=weight_shape).astype(np.float32), rng.normal(size=input_shape).astype(np.float32)
    node = helper.make_node(op, ["x", "w"], ["y"], **attributes)
    expected, proto = run_node(node, weight, inputs)
    form = onnx_export._weight_form(proto.graph.node[0], {init.name: init for init in proto.graph.initializer})
    rows = rounding.weight_rows(form, weight)
    vectors = rounding.layer_inputs(form, inputs, rng, limit=10**6)
    assert len(rows) == len(vectors) == form.groups
    got = np.concatenate([vectors_g @ rows_g.T for rows_g, vectors_g in zip(rows, vectors)], axis=-1)
    if op in ("Conv", "ConvTranspose"):  # (N * H' * W', O) -> NCHW
        n, _, height, width = expected.shape
        got = got.reshape(n, height, width, -1).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(rounding.from_weight_rows(form, weight, rows), weight)


def test_onnx_runtime_quantizes_the_rounded_weights_as_they_are(tmp_path):
    """quantize_int8 writes the integers round_onto_grid chose, after equalize_channels (ONNX Runtime's quantizer
    finds every weight on the step it computes), which are not all the nearest ones."""
    model = small_zoo_model()
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    onnx_export.write_onnx(onnx_export.convert_onnx(model), fp32)
    images = np.random.default_rng(1).uniform(0, 255, (16, *SIZE, 3)).astype(np.float32)
    proto = onnx.load(str(fp32))
    assert onnx_export.equalize_channels(proto, images) == [("conv3_dw_1/depthwise", "upscore_1/conv_transpose")]
    original = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    rounded = onnx_export.round_onto_grid(proto, images, onnx_export.WEIGHT_LEVELS["onnxruntime"],
                                          skip=onnx_export.float_nodes(proto))
    assert len(rounded) >= 5  # the convolutions (grouped: one per group), the deconvolution
    chosen = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    onnx_export.quantize_int8(fp32, int8, images)
    written = {init.name: numpy_helper.to_array(init) for init in onnx.load(str(int8)).graph.initializer}
    channel_axis = {node.input[1]: 0 if node.op_type == "Conv" else 1 for node in proto.graph.node
                    if node.name in rounded}
    compared = moved = 0
    for name, values in chosen.items():
        if name not in channel_axis:
            continue
        integers, scale = written[f"{name}_quantized"].astype(np.float64), written[f"{name}_scale"]
        shape = [1] * values.ndim
        shape[channel_axis[name]] = -1
        np.testing.assert_allclose(integers * scale.reshape(shape), values, rtol=1e-6, atol=1e-9, err_msg=name)
        plain = np.round(original[name] / scale.reshape(shape))
        moved += np.count_nonzero(plain != integers)
        compared += 1
    assert compared >= 5 and moved > 0


@pytest.mark.parametrize("quantization", tflite.CALIBRATED)
def test_litert_quantizes_the_rounded_weights_as_they_are(quantization):
    """convert_tflite(int8, int16x8) writes the integers its copy (equalized for int8) rounded onto LiteRT's grid,
    for convolutions (grouped, depthwise), the deconvolution and the Dense layer; the model given is left as it
    was."""
    model = small_zoo_model()
    before = [np.array(weight) for weight in model.get_weights()]
    images = np.random.default_rng(1).uniform(0, 255, (16, *SIZE, 3)).astype(np.float32)
    copy = tflite.calibrated_copy(model, images, quantization)
    for weight, kept in zip(model.get_weights(), before):
        np.testing.assert_array_equal(weight, kept)
    content = tflite.convert_tflite(model, quantization=quantization, representative=images)
    kernels = {}  # each rounded kernel in LiteRT's layout: (O, kh, kw, C), depthwise (1, kh, kw, O), (O, K)
    for layer in copy.layers:
        if tflite._weight_form(layer) is None:
            continue
        kernel = np.asarray(layer.kernel)
        if kernel.ndim == 2:
            kernels[layer.name] = kernel.T
        elif isinstance(layer, zoo_layers.Deconv2D) or kernel.shape[2] == 1 < layer.groups:  # O third
            kernels[layer.name] = kernel.transpose(2, 0, 1, 3)
        else:  # a grouped convolution runs as one CONV_2D per group
            for group, part in enumerate(np.split(kernel.transpose(3, 0, 1, 2), layer.groups)):
                kernels[layer.name if layer.groups == 1 else f"{layer.name}/{group}"] = part
    assert {"conv1", "conv2/0", "conv2/1", "conv3_dw", "upscore", "fc"} <= set(kernels)
    interpreter = Interpreter(model_content=content)
    matched = set()
    for detail in interpreter.get_tensor_details():
        parameters = detail["quantization_parameters"]
        if detail["dtype"] != np.int8 or len(detail["shape"]) not in (2, 4) or not len(parameters["scales"]):
            continue
        try:
            integers = interpreter.get_tensor(detail["index"]).astype(np.float64)
        except ValueError:  # an activation: no data
            continue
        shape = [1] * integers.ndim
        shape[parameters["quantized_dimension"]] = -1
        values = integers * parameters["scales"].reshape(shape)
        for name, kernel in kernels.items():
            if kernel.shape == values.shape and np.allclose(kernel, values, rtol=1e-6, atol=1e-9):
                matched.add(name)
    assert matched == set(kernels), matched


def prelu_model():
    images = keras.Input((6, 5, 3), name="images")
    x = zoo_layers.Conv2D(4, 3, pads=(1, 1, 1, 1), name="conv")(images)
    x = keras.layers.PReLU(shared_axes=[1, 2], name="prelu_channels")(x)
    x = keras.layers.PReLU(name="prelu_each")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(5, name="fc")(x)
    x = keras.layers.PReLU(name="prelu_fc")(x)
    model = keras.Model(images, x)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.PReLU):
            layer.set_weights([rng.uniform(-0.5, 1.5, layer.alpha.shape).astype(np.float32)])
    return model


def test_fuse_prelu_writes_one_prelu_per_layer_computing_the_same_numbers(tmp_path):
    proto = onnx_export.convert_onnx(prelu_model())
    onnx_export.save_onnx(proto, tmp_path / "spelled.onnx")
    fused = onnx_export.fuse_prelu(proto)
    assert len(fused) == 3
    kinds = [node.op_type for node in proto.graph.node]
    assert kinds.count("PRelu") == 3 and "Neg" not in kinds and "Relu" not in kinds, kinds
    onnx.checker.check_model(proto)
    onnx_export.save_onnx(proto, tmp_path / "fused.onnx")
    images = np.random.default_rng(1).normal(0, 50, (4, 6, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(OnnxRunner(tmp_path / "fused.onnx")(images)[0],
                                  OnnxRunner(tmp_path / "spelled.onnx")(images)[0])


def test_image_path_is_the_affine_way_from_the_input_to_an_output():
    """A super-resolution net's upsampling of its input image (affine all the way to the output) stays float in
    int8; its residual branch (through a ReLU) and a classifier's first convolution do not."""
    image = keras.Input((8, 8, 1), name="images")
    upsampled = zoo_layers.Deconv2D(1, 4, strides=2, crops=(1, 1, 1, 1), use_bias=False, name="image_up")(image)
    x = zoo_layers.Conv2D(8, 3, strides=1, pads=(1, 1, 1, 1), name="features")(image)
    x = keras.layers.ReLU(name="relu")(x)
    residual = zoo_layers.Deconv2D(1, 4, strides=2, crops=(1, 1, 1, 1), name="residual")(x)
    output = keras.layers.Add(name="output")([upsampled, residual])
    path = onnx_export.image_path(onnx_export.convert_onnx(keras.Model(image, output)))
    assert any(name.startswith("image_up") for name in path), path
    assert not any(name.startswith(("features", "residual", "output")) for name in path), path

    classifier = keras.Model(image, keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.ReLU()(
        zoo_layers.Conv2D(4, 3, name="first")(image)))))
    assert onnx_export.image_path(onnx_export.convert_onnx(classifier)) == []
