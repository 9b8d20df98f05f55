"""What the builder checks in the weights before it gives them: memory that cannot exist, values that are not
finite (keras_zoo.weight_assignment, keras_zoo.builder)."""

import logging
import time

import numpy as np
import pytest

import keras_zoo
from converters.errors import ConversionError
from converters.writers.caffe import length_delimited, blob_proto, write_caffemodel
from converters.writers.mat import write_mat
from keras_zoo import weight_assignment

SMALL_NET = """name: "small"
input: "data" input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc2" type: "InnerProduct" bottom: "pool1" top: "fc2" inner_product_param { num_output: 3 } }
"""

HUGE_DENSE = """name: "huge_dense"
input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "fc_huge" type: "InnerProduct" bottom: "conv1" top: "fc_huge"
        inner_product_param { num_output: 4000000000 } }
"""

HUGE_CONV = """name: "huge_conv"
input: "data" input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv_huge" type: "Convolution" bottom: "data" top: "conv_huge"
        convolution_param { num_output: 4000000000 kernel_size: 11 } }
"""

HUGE_ACTIVATIONS = """name: "huge_activations"
input: "data" input_shape { dim: 1 dim: 3 dim: 1000 dim: 1000 }
layer { name: "wide" type: "Convolution" bottom: "data" top: "wide"
        convolution_param { num_output: 3000000 kernel_size: 1 } }
"""


def _prototxt(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _refused(prototxt):
    start = time.perf_counter()
    with pytest.raises(ConversionError) as error:
        keras_zoo.from_caffe(prototxt)
    return str(error.value), time.perf_counter() - start


# ---------------------------------------------------------------------------------------------- memory
def test_a_dense_layer_too_large_for_any_memory_is_refused_at_once(tmp_path):
    message, seconds = _refused(_prototxt(tmp_path, HUGE_DENSE))
    rows = 4 * 6 * 6  # conv1's output, flattened
    assert "layer 'fc_huge' (InnerProduct)" in message and "net.prototxt" in message
    assert f"{rows * 4_000_000_000:,} parameters" in message
    assert f"{rows * 4_000_000_000 * 4:,} bytes" in message and "memory available" in message
    assert seconds < 5  # generous: the refusal comes before anything is allocated (TensorFlow took 10-16 s)


def test_a_convolution_too_large_for_any_memory_is_refused_at_once(tmp_path):
    message, seconds = _refused(_prototxt(tmp_path, HUGE_CONV))
    parameters = 11 * 11 * 3 * 4_000_000_000
    assert "layer 'conv_huge' (Convolution)" in message
    assert f"{parameters:,} parameters" in message and f"{parameters * 4:,} bytes" in message
    assert seconds < 5


def test_activations_of_one_sample_too_large_are_refused(tmp_path):
    message, seconds = _refused(_prototxt(tmp_path, HUGE_ACTIVATIONS))
    values = 3 * 1000 * 1000 + 3_000_000 * 1000 * 1000  # the layer's input and output
    assert "layer 'wide' (Convolution)" in message and "one sample" in message
    assert f"{values * 4:,} bytes" in message
    assert seconds < 5
    huge_input = HUGE_ACTIVATIONS.replace("dim: 1000 dim: 1000", "dim: 1000000 dim: 1000000")
    message, _ = _refused(_prototxt(tmp_path, huge_input, "input.prototxt"))
    assert "layer 'data' (Input)" in message and f"{3 * 10 ** 12 * 4:,} bytes" in message


DENSE_NET = """name: "dense"
input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "fc2" type: "InnerProduct" bottom: "conv1" top: "fc2" inner_product_param { num_output: 1000 } }
"""


def test_the_budget_is_the_available_memory(tmp_path, monkeypatch):
    prototxt = _prototxt(tmp_path, DENSE_NET)
    model = keras_zoo.from_caffe(prototxt)  # a normal model is unaffected
    assert model.output_shape == (None, 1000)
    parameters = (3 * 2 + 2 + 32 * 1000 + 1000) * 4  # bytes of conv1's and fc2's kernels and biases
    largest = (32 + 1000) * 4  # one sample's activations at fc2 (its input and output), the largest
    budget = {"bytes": parameters - 1}
    monkeypatch.setattr(weight_assignment, "available_memory", lambda: budget["bytes"])
    with pytest.raises(ConversionError, match=rf"layer 'fc2'.* parameters .* the model needs {parameters:,} bytes"):
        keras_zoo.from_caffe(prototxt)
    budget["bytes"] = parameters + largest
    keras_zoo.from_caffe(prototxt)
    budget["bytes"] = parameters + largest - 1
    with pytest.raises(ConversionError, match=rf"layer 'fc2'.* one sample .* needs {parameters + largest:,} bytes"):
        keras_zoo.from_caffe(prototxt)


def test_available_memory_reads_meminfo_with_fallbacks(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683568 kB\nMemFree:         1000000 kB\nMemAvailable:   11597316 kB\n")
    assert weight_assignment._meminfo_bytes("MemAvailable", str(meminfo)) == 11597316 * 1024
    assert weight_assignment._meminfo_bytes("MemAvailable", str(tmp_path / "absent")) is None
    available = weight_assignment.available_memory()
    assert available is None or available > 0
    monkeypatch.setattr(weight_assignment, "_meminfo_bytes", lambda *args: None)  # no /proc (macOS...)
    fallback = weight_assignment.available_memory()
    assert fallback is None or fallback > 0


def test_a_zoo_model_builds_within_the_budget():
    model = keras_zoo.VGGM128(weights=None, include_top=False, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 1, 1, 512)


# ------------------------------------------------------------------------------------- non-finite weights
def _blobs(rng):
    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    return {"conv1": [normal(4, 3, 3, 3), normal(4)], "fc2": [normal(3, 4 * 6 * 6), normal(3)]}


def _write(path, blobs):
    return write_caffemodel(path, [(name, "Convolution" if name.startswith("conv") else "InnerProduct", arrays)
                                   for name, arrays in blobs.items()])


def _nonfinite_warnings(caplog):
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and "non-finite" in record.getMessage()]


def test_nan_and_inf_weights_give_one_warning_naming_the_layers(tmp_path, rng, caplog):
    prototxt = _prototxt(tmp_path, SMALL_NET)
    blobs = _blobs(rng)
    blobs["conv1"][0].flat[[1, 5, 7]] = np.nan
    blobs["conv1"][1][2] = np.inf
    blobs["fc2"][0].flat[10] = -np.inf
    blobs["fc2"][0].flat[[11, 12]] = np.inf
    blobs["fc2"][1][0] = np.nan
    caffemodel = _write(tmp_path / "bad.caffemodel", blobs)
    with caplog.at_level(logging.WARNING):
        keras_zoo.from_caffe(prototxt, caffemodel)
    (warning,) = _nonfinite_warnings(caplog)
    assert "bad.caffemodel" in warning and "conv1: 3 NaN, 1 Inf" in warning and "fc2: 1 NaN, 3 Inf" in warning

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        keras_zoo.from_caffe(prototxt, _write(tmp_path / "clean.caffemodel", _blobs(rng)))
    assert _nonfinite_warnings(caplog) == []


def test_non_finite_counts_add_up_over_the_slices_of_large_weights(tmp_path, rng, caplog, monkeypatch):
    monkeypatch.setattr(weight_assignment, "CHUNK_BYTES", 64)  # every weight copied in many slices
    prototxt = _prototxt(tmp_path, SMALL_NET)
    blobs = _blobs(rng)
    kernel = blobs["fc2"][0]
    kernel[0, [0, 50, 100, 143]] = np.nan
    kernel[2, [3, 140]] = np.inf
    with caplog.at_level(logging.WARNING):
        keras_zoo.from_caffe(prototxt, _write(tmp_path / "bad.caffemodel", blobs))
    (warning,) = _nonfinite_warnings(caplog)
    assert "fc2: 4 NaN, 2 Inf" in warning and "conv1" not in warning


def test_a_zoo_builder_warns_about_a_weights_file_with_nan(tmp_path, rng, caplog):
    """CaffeNet's features from a caffemodel as Caffe saves one (each layer with its parameters and blobs)."""
    from google.protobuf import text_format

    from converters.caffe import schema

    shapes = {"conv1": (96, 3, 11, 11), "conv2": (256, 48, 5, 5), "conv3": (384, 256, 3, 3),
              "conv4": (384, 192, 3, 3), "conv5": (256, 192, 3, 3)}
    blobs = {name: [(rng.standard_normal(shape) * 0.01).astype(np.float32), np.zeros(shape[0], np.float32)]
             for name, shape in shapes.items()}
    blobs["conv1"][0].flat[[0, 1]] = np.nan
    blobs["conv3"][1][[5, 6, 7]] = np.inf
    net = schema.NetParameter()
    text_format.Parse(CAFFENET_FEATURES, net)
    payload = b"".join(length_delimited(100, layer.SerializeToString() + b"".join(
        length_delimited(7, blob_proto(array)) for array in blobs.get(layer.name, ()))) for layer in net.layer)
    del net.layer[:]
    caffemodel = tmp_path / "features.caffemodel"
    caffemodel.write_bytes(net.SerializeToString() + payload)
    with caplog.at_level(logging.WARNING):
        model = keras_zoo.CaffeNet(weights=str(caffemodel), include_top=False, include_preprocessing=False)
    np.testing.assert_array_equal(model.get_layer("conv2").get_weights()[0],
                                  blobs["conv2"][0].transpose(2, 3, 1, 0))  # the file was loaded
    (warning,) = _nonfinite_warnings(caplog)
    assert "features.caffemodel" in warning and "conv1: 2 NaN" in warning and "conv3: 3 Inf" in warning
    assert "conv2" not in warning


def test_a_matconvnet_file_with_nan_warns(tmp_path, rng, caplog):
    filters = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    filters[0, 0, 0, :2] = np.nan
    layers = [{"type": "conv", "name": "conv1", "weights": [filters, np.zeros((1, 4), np.float32)],
               "pad": 1, "stride": 1},
              {"type": "relu", "name": "relu1"}]
    write_mat(tmp_path / "net.mat", {"layers": layers,
                                     "meta": {"normalization": {"imageSize": np.array([[8.0, 8, 3]])}}})
    with caplog.at_level(logging.WARNING):
        keras_zoo.from_matconvnet(tmp_path / "net.mat")
    (warning,) = _nonfinite_warnings(caplog)
    assert "conv1: 2 NaN" in warning


CAFFENET_FEATURES = """name: "CaffeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape: { dim: 10 dim: 3 dim: 227 dim: 227 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 96 kernel_size: 11 stride: 4 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "conv2" type: "Convolution" bottom: "norm1" top: "conv2"
        convolution_param { num_output: 256 pad: 2 kernel_size: 5 group: 2 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm2" type: "LRN" bottom: "pool2" top: "norm2" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "conv3" type: "Convolution" bottom: "norm2" top: "conv3"
        convolution_param { num_output: 384 pad: 1 kernel_size: 3 } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "conv4" type: "Convolution" bottom: "conv3" top: "conv4"
        convolution_param { num_output: 384 pad: 1 kernel_size: 3 group: 2 } }
layer { name: "relu4" type: "ReLU" bottom: "conv4" top: "conv4" }
layer { name: "conv5" type: "Convolution" bottom: "conv4" top: "conv5"
        convolution_param { num_output: 256 pad: 1 kernel_size: 3 group: 2 } }
layer { name: "relu5" type: "ReLU" bottom: "conv5" top: "conv5" }
layer { name: "pool5" type: "Pooling" bottom: "conv5" top: "pool5"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
"""
