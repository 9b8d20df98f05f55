"""SavedModel, TFLite and ONNX exports of models made of every keras_zoo layer, and of real caffemodels.

References are computed here with the runtimes' own APIs (tf.saved_model.load, the LiteRT interpreter,
ONNX Runtime) and compared with the Keras model's outputs.
"""

import io
import json
import warnings

import numpy as np
import pytest

from export import common, onnx as onnx_export, saved_model, tflite
from tests.helpers import assert_close_rel, fixture_path

SIZE = (48, 48)


def small_zoo_model(seed=0, classes=10):
    """A classifier using every custom layer an exporter must map: preprocessing (flip + mean), padded,
    grouped and depthwise convolutions, Caffe ceil-mode max and average pooling, LRN across and within
    channels, deconvolution, crop."""
    import keras

    from keras_zoo import layers
    from keras_zoo.preprocessing import Preprocess

    keras.utils.set_random_seed(seed)
    images = keras.Input((*SIZE, 3), name="data")
    x = Preprocess(flip_channels=True, mean_values=[104.0, 117.0, 123.0], scale=0.02, name="preprocess")(images)
    x = layers.Conv2D(16, 5, strides=2, pads=(2, 2, 2, 2), name="conv1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = layers.Pool2D("max", 3, 2, rounding="ceil", name="pool1")(x)
    x = layers.LRN(5, 1e-4, 0.75, name="norm1")(x)
    x = layers.Conv2D(16, 3, pads=(1, 1, 1, 1), groups=2, name="conv2")(x)
    x = layers.Conv2D(16, 3, pads=(1, 1, 1, 1), groups=16, name="conv3_dw")(x)
    up = layers.Deconv2D(8, 4, strides=2, crops=(1, 1, 1, 1), name="upscore")(x)
    x = layers.Crop(axes=(1, 2), offsets=(2, 3), name="crop")([up, x])
    x = layers.Pool2D("avg", 3, 2, pads=(1, 1, 1, 1), rounding="ceil", name="pool2")(x)
    x = layers.LRN(3, 1e-4, 0.75, region="within", name="norm2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(classes, name="fc")(x)
    return keras.Model(images, keras.layers.Softmax(name="prob")(x), name="small_zoo")


def lenet():
    """LeNet with its real MNIST weights (BVLC's example caffemodel), input grey 0..255."""
    from keras_zoo.convert import from_caffe
    from keras_zoo.preprocessing import Preprocessing

    return from_caffe(fixture_path("small_caffemodels/lenet/lenet.prototxt"),
                      fixture_path("small_caffemodels/lenet/lenet_iter_10000.caffemodel"),
                      preprocessing=Preprocessing(scale=1 / 256))


@pytest.fixture(scope="module")
def model():
    return small_zoo_model()


@pytest.fixture(scope="module")
def samples():
    return common.sample_images(SIZE, 8)


@pytest.fixture(scope="module")
def reference(model, samples):
    return common.keras_outputs(model, samples)


# ------------------------------------------------------------------------------------------------ SavedModel

@pytest.fixture(scope="module")
def saved(model, samples, reference, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "small_zoo"
    labels = [f"class {i}" for i in range(10)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_ZOO_SPEED_SECONDS", "0.05")  # the report's speeds, timed briefly
        result = saved_model.export_saved_model(model, base / "1", samples=samples, reference=reference,
                                                labels=labels, top_k=3)
    return base, result


def test_saved_model_layout_for_tensorflow_serving(saved):
    base, result = saved
    assert result.passed and result.format == "saved_model"
    assert (base / "1" / "saved_model.pb").is_file() and (base / "1" / "variables").is_dir()
    assert result.file_size > 0 and set(result.speed) == {"keras", "saved_model"}


def test_saved_model_signatures(saved, model, samples):
    import tensorflow as tf
    from PIL import Image

    loaded = tf.saved_model.load(str(saved[0] / "1"))
    assert set(loaded.signatures) == {"serving_default", "serving_uint8", "serving_bytes"}
    expected = model.predict(samples, verbose=0)

    float_out = loaded.signatures["serving_default"](images=tf.constant(samples))
    assert_close_rel(float_out["probabilities"].numpy(), expected, 1e-4)
    top = np.argsort(-expected, axis=-1)[:, :3]
    np.testing.assert_array_equal(float_out["top_k_indices"].numpy(), top)
    labels = float_out["top_k_labels"].numpy().astype(str)
    assert labels[0, 0] == f"class {top[0, 0]}" and labels.shape == (len(samples), 3)

    as_uint8 = np.round(samples).astype(np.uint8)
    uint8_out = loaded.signatures["serving_uint8"](images=tf.constant(as_uint8))
    assert_close_rel(uint8_out["probabilities"].numpy(), model.predict(as_uint8.astype(np.float32), verbose=0))

    # PNG bytes of images already at the input size: decoding must give back the same pixels
    encoded = []
    for image in as_uint8[:3]:
        stream = io.BytesIO()
        Image.fromarray(image).save(stream, format="PNG")
        encoded.append(stream.getvalue())
    bytes_out = loaded.signatures["serving_bytes"](images=tf.constant(encoded))
    assert_close_rel(bytes_out["probabilities"].numpy(),
                     model.predict(as_uint8[:3].astype(np.float32), verbose=0), 1e-4)


def test_saved_model_failing_parity_writes_nothing(model, samples, reference, tmp_path):
    wrong = [reference[0][:, ::-1].copy()]  # wrong probabilities; the logits are the model's own
    result = saved_model.export_saved_model(model, tmp_path / "m" / "1", samples=samples, reference=wrong)
    assert not result.passed and "max abs error of the probabilities" in result.failures[0]
    assert result.errors["judged_on"] == "logits" and result.errors["max_rel_error"] <= 1e-4
    assert not (tmp_path / "m" / "1").exists()
    assert [p.name for p in (tmp_path / "m").iterdir()] == []


def test_saved_model_of_a_model_without_softmax_adds_probabilities(samples, tmp_path):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    images = keras.Input((*SIZE, 3))
    logits = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(images))
    model = keras.Model(images, logits)
    reference = common.keras_outputs(model, samples)
    result = saved_model.export_saved_model(model, tmp_path / "1", samples=samples, reference=reference)
    assert result.passed
    out = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"](images=tf.constant(samples))
    assert_close_rel(out["logits"].numpy(), reference[0])
    shifted = np.exp(reference[0] - reference[0].max(-1, keepdims=True))
    expected = shifted / shifted.sum(-1, keepdims=True)
    assert_close_rel(out["probabilities"].numpy(), expected)
    assert "top_k_labels" not in out


# ------------------------------------------------------------------------------------------------ TFLite

def run_litert(content, images):
    """Run a .tflite flatbuffer image by image with the LiteRT interpreter's plain tensor API."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for image in images:
        interpreter.set_tensor(given["index"], image[None].astype(np.float32))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(taken["index"])[0].copy())
    return np.stack(outputs)


@pytest.mark.parametrize("quantization, tolerance", [("float32", 1e-4), ("float16", 1e-2)])
def test_tflite_float_uses_builtin_operators_only(model, samples, reference, quantization, tolerance):
    content = tflite.convert_tflite(model, quantization=quantization)
    ops = set(tflite.operators(content))
    assert all(op.isupper() and not op.startswith("FLEX") for op in ops), ops
    # grouped, depthwise and transposed convolutions, both poolings, the LRN power: all builtin kernels
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "MAX_POOL_2D", "AVERAGE_POOL_2D", "POW"} <= ops
    assert_close_rel(run_litert(content, samples), reference[0], tolerance)


def test_tflite_export_writes_file_and_report(model, samples, reference, tmp_path):
    result = tflite.export_tflite(model, tmp_path / "m.tflite", samples=samples, reference=reference)
    assert result.passed and result.precision == "float32"
    assert (tmp_path / "m.tflite").stat().st_size == result.file_size
    assert_close_rel(tflite.TFLiteRunner(tmp_path / "m.tflite")(samples)[0], reference[0])


def test_tflite_operators_names_custom_codes():
    """A flatbuffer with a custom (Flex) operator code is reported by its custom name."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    builder = flatbuffers.Builder(0)
    custom = builder.CreateString("FlexErfinv")
    schema.OperatorCodeStart(builder)
    schema.OperatorCodeAddBuiltinCode(builder, schema.BuiltinOperator.CUSTOM)
    schema.OperatorCodeAddDeprecatedBuiltinCode(builder, schema.BuiltinOperator.CUSTOM)
    schema.OperatorCodeAddCustomCode(builder, custom)
    first = schema.OperatorCodeEnd(builder)
    schema.OperatorCodeStart(builder)
    schema.OperatorCodeAddBuiltinCode(builder, schema.BuiltinOperator.CONV_2D)
    schema.OperatorCodeAddDeprecatedBuiltinCode(builder, schema.BuiltinOperator.CONV_2D)
    second = schema.OperatorCodeEnd(builder)
    schema.ModelStartOperatorCodesVector(builder, 2)
    builder.PrependUOffsetTRelative(second)
    builder.PrependUOffsetTRelative(first)
    codes = builder.EndVector()
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    schema.ModelAddOperatorCodes(builder, codes)
    builder.Finish(schema.ModelEnd(builder))
    assert tflite.operators(bytes(builder.Output())) == ["FlexErfinv", "CONV_2D"]


def tensor_types(content):
    """The numpy types of a .tflite flatbuffer's tensors."""
    from ai_edge_litert.interpreter import Interpreter

    return {detail["dtype"] for detail in Interpreter(model_content=content).get_tensor_details()}


@pytest.mark.parametrize("quantization", ["dynamic", "int8", "int16x8"])
def test_tflite_int8_agrees_on_real_photos(quantization):
    """LeNet with its real weights: the int8 model's top-1 agrees with Keras on >= 90% of real photos (int16x8: its
    activations int16, its weights int8)."""
    model = lenet()
    photos = common.sample_images((28, 28), 32, channels=1)
    expected = model.predict(photos, verbose=0)
    assert len(set(expected.argmax(-1))) >= 4  # real weights: the photos do not all land in one class
    calibration = common.sample_images((28, 28), 48, channels=1)[16:]
    content = tflite.convert_tflite(model, quantization=quantization, representative=calibration)
    ops = tflite.operators(content)
    if quantization != "dynamic":
        assert "QUANTIZE" in ops and "DEQUANTIZE" in ops
        assert (np.int16 in tensor_types(content)) == (quantization == "int16x8")
        assert np.int8 in tensor_types(content)
    got = run_litert(content, photos)
    assert np.mean(got.argmax(-1) == expected.argmax(-1)) >= 0.9


def bias_scales(content):
    """[(bias scale, input scale x weight scale)] of each CONV_2D and FULLY_CONNECTED of a .tflite flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    flatbuffer = schema.Model.GetRootAsModel(content, 0)
    graph, scales = flatbuffer.Subgraphs(0), []
    for index in range(graph.OperatorsLength()):
        operator = graph.Operators(index)
        code = flatbuffer.OperatorCodes(operator.OpcodeIndex()).BuiltinCode()
        if code in (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.FULLY_CONNECTED):
            x, w, b = (graph.Tensors(operator.Inputs(i)).Quantization() for i in range(3))
            scales.append((b.ScaleAsNumpy(), x.Scale(0) * w.ScaleAsNumpy()))
    return scales


@pytest.mark.parametrize("quantization", tflite.CALIBRATED)
def test_tflite_layer_called_twice_adds_its_bias_on_each_calls_scale(quantization):
    """A convolution and a dense layer each called twice, on inputs of different ranges (as MS-LapSRN's recursions
    call theirs): the converter's int16x8 gives the shared bias the first call's scale only, and the second call
    would add it rescaled by the ratio of the two inputs' scales; every call's bias is on its own scale, and the
    outputs agree."""
    import keras

    rng = np.random.default_rng(0)
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv", bias_initializer=keras.initializers.Constant(0.5),
                               kernel_initializer=keras.initializers.RandomNormal(0, 0.3, seed=1))
    dense = keras.layers.Dense(4, name="dense", bias_initializer=keras.initializers.Constant(0.5),
                               kernel_initializer=keras.initializers.RandomNormal(0, 0.3, seed=2))
    x = keras.Input((8, 8, 4))
    y = conv(keras.layers.Rescaling(5.0)(keras.layers.ReLU()(conv(x))))
    z = keras.layers.Flatten()(keras.layers.GlobalAveragePooling2D(keepdims=True)(y))
    model = keras.Model(x, dense(keras.layers.Rescaling(5.0)(keras.layers.ReLU()(dense(z)))))
    images = rng.uniform(0, 1, (64, 8, 8, 4)).astype(np.float32)
    content = tflite.convert_tflite(model, quantization=quantization, representative=images[16:])
    scales = bias_scales(content)
    assert len(scales) == 4 and all(np.allclose(b, wanted, rtol=1e-5) for b, wanted in scales), scales
    expected = model.predict(images[:16], verbose=0)
    got = run_litert(content, images[:16])
    # measured: 4-6% of the largest output in both forms (int8 weights), 72% in int16x8 with the shared bias
    assert np.abs(got - expected).max() <= 0.15 * np.abs(expected).max()


@pytest.mark.parametrize("quantization", tflite.CALIBRATED)
def test_tflite_calibration_keeps_tensorflows_own_deprecation_warning_quiet(model, quantization):
    """TensorFlow's calibrator runs tf.lite.Interpreter, which warns users to migrate from it; the export shows
    no such warning (keras_zoo runs files with ai_edge_litert)."""
    images = np.random.default_rng(0).uniform(0, 255, (4, *model.inputs[0].shape[1:])).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tflite.convert_tflite(model, quantization=quantization, representative=images)
    assert not [w for w in caught if "tf.lite.Interpreter is deprecated" in str(w.message)]


@pytest.mark.parametrize("quantization", tflite.CALIBRATED)
def test_tflite_integer_activations_need_representative_images(model, quantization):
    with pytest.raises(common.ExportError, match=f"{quantization} quantization needs representative images"):
        tflite.convert_tflite(model, quantization=quantization)


# ------------------------------------------------------------------------------------------------ ONNX

@pytest.fixture(scope="module")
def onnx_file(model, samples, reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    result = onnx_export.export_onnx(model, path, samples=samples, reference=reference)
    assert result.passed
    return path


def test_onnx_runs_any_batch_in_onnxruntime(onnx_file, model, samples, reference):
    import onnx
    import onnxruntime

    proto = onnx.load(str(onnx_file))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [*SIZE, 3]
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == list(model.output_names)
    for batch in (1, 5):
        (out,) = session.run(None, {"images": samples[:batch]})
        assert_close_rel(out, reference[0][:batch], 1e-4)


def test_onnx_operators_are_plain_onnx(onnx_file):
    import onnx

    proto = onnx.load(str(onnx_file))
    types = {node.op_type for node in proto.graph.node}
    assert all(node.domain in ("", "ai.onnx") for node in proto.graph.node)
    assert {"Conv", "ConvTranspose", "MaxPool", "AveragePool"} <= types
    assert not types & {"StatefulPartitionedCall", "PartitionedCall"}


def test_onnx_rejects_graphs_tensorrt_cannot_parse():
    """Keras' own grouped Conv2D is compiled with XLA on CPU; tf2onnx leaves it as a TF (Partitioned)Call node."""
    import keras

    images = keras.Input((8, 8, 4))
    model = keras.Model(images, keras.layers.Conv2D(4, 3, groups=2)(images))
    with pytest.raises(common.ExportError, match="PartitionedCall"):
        onnx_export.convert_onnx(model)


def test_onnx_int8_qdq_for_tensorrt(tmp_path):
    """Explicit int8: symmetric QDQ (zero points 0, as TensorRT requires), top-1 >= 90% on real photos."""
    import onnx
    from onnx import numpy_helper

    model = lenet()
    photos = common.sample_images((28, 28), 32, channels=1)
    reference = common.keras_outputs(model, photos)
    fp32 = tmp_path / "lenet.onnx"
    assert onnx_export.export_onnx(model, fp32, samples=photos, reference=reference).passed
    calibration = common.sample_images((28, 28), 48, channels=1)[16:]
    result = onnx_export.export_onnx_int8(fp32, tmp_path / "lenet.int8.onnx", samples=photos,
                                          reference=reference, calibration=calibration, target="tensorrt")
    assert result.passed
    proto = onnx.load(str(tmp_path / "lenet.int8.onnx"))
    initializers = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    quantizers = [node for node in proto.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert quantizers
    for node in quantizers:
        assert not initializers[node.input[2]].any(), f"{node.name}: non-zero zero point"
    got = onnx_export.OnnxRunner(tmp_path / "lenet.int8.onnx", optimize=False)(photos)[0]  # as TensorRT means it
    assert np.mean(got.argmax(-1) == reference[0].argmax(-1)) >= 0.9


# ------------------------------------------------------------------------------------------------ commands

@pytest.fixture(scope="module")
def keras_file(model, tmp_path_factory):
    from keras_zoo.convert import save_model

    return save_model(model, tmp_path_factory.mktemp("keras") / "small_zoo.keras")


@pytest.mark.parametrize("command, extra, artifact", [
    (saved_model, ["--version", "3"], "serving/3/saved_model.pb"),
    (tflite, ["-q", "float16"], "model.tflite"),
    (onnx_export, [], "model.onnx"),
])
def test_commands_write_artifact_and_report(command, extra, artifact, keras_file, tmp_path, capsys):
    output = tmp_path / artifact.split("/")[0]
    status = command.main([str(keras_file), "-o", str(output), "--num-samples", "4", *extra])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert (tmp_path / artifact).is_file()
    data = json.loads((tmp_path / f"{output.name}.report.json").read_text())
    assert data["passed"] and data["samples"] == 4 and data["model"] == "small_zoo"
    assert "max rel error" in printed and "PASSED" in printed


def test_tflite_command_writes_int16x8_calibrated_on_a_folder(tmp_path, capsys):
    """``python -m export.tflite MODEL -q int16x8 --representative DIR``: LeNet (real weights) calibrated on the photos
    of a folder, checked and reported."""
    from PIL import Image

    from keras_zoo.convert import save_model
    from keras_zoo.images import sample_photos

    source = save_model(lenet(), tmp_path / "lenet.keras")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, photo in list(sample_photos())[:6]:
        Image.fromarray(photo.astype(np.uint8)).save(folder / f"{name}.png")
    output = tmp_path / "lenet.tflite"
    status = tflite.main([str(source), "-o", str(output), "-q", "int16x8", "--representative", str(folder),
                          "--num-representative", "6", "--num-samples", "8"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert np.int16 in tensor_types(output.read_bytes())
    data = json.loads((tmp_path / f"{output.name}.report.json").read_text())
    assert data["passed"] and "quantization: int16x8" in data["notes"], data


@pytest.mark.parametrize("command", [saved_model, tflite, onnx_export])
def test_commands_help_and_errors(command, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--weights", "--output", "--batch", "--input-size", "--samples", "--report"):
        assert option in text
    assert command.main([str(tmp_path / "absent.keras")]) == 1
    assert "absent.keras" in capsys.readouterr().err


def test_tflite_full_int8_of_cifar10_full_agrees_on_real_photos():
    """CIFAR-10 full (real weights; ceil-mode max and average pooling, LRN within channels), BGR + mean."""
    from keras_zoo.convert import from_caffe
    from keras_zoo.preprocessing import Preprocessing

    model = from_caffe(fixture_path("small_caffemodels/cifar10_full/cifar10_full.prototxt"),
                       fixture_path("small_caffemodels/cifar10_full/cifar10_full_iter_70000.caffemodel"),
                       preprocessing=Preprocessing(flip_channels=True, mean=[114.0, 122.0, 125.0]))
    photos = common.sample_images((32, 32), 32)
    expected = model.predict(photos, verbose=0)
    assert len(set(expected.argmax(-1))) >= 4
    content = tflite.convert_tflite(model, quantization="int8",
                                    representative=common.sample_images((32, 32), 64)[16:])
    assert np.mean(run_litert(content, photos).argmax(-1) == expected.argmax(-1)) >= 0.9
