"""converters.caffe.read_caffemodel_weights: a caffemodel read as Caffe's CopyTrainedLayersFrom reads one, by
layer name, each layer on its own (weights-only files; V1 legacy dims; layers that describe themselves)."""

import logging

import numpy as np
import pytest

from converters.caffe import read_caffemodel, read_caffemodel_weights
from converters.errors import ConversionError
from converters.writers.caffe import write_caffemodel


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_weights_only_layers_in_the_neutral_layouts(tmp_path, rng):
    conv = rng.normal(size=(8, 3, 5, 5)).astype(np.float32)  # (out, in, kh, kw)
    fc = rng.normal(size=(4, 32)).astype(np.float32)          # (out, in)
    mean, variance = rng.uniform(0, 1, 8).astype(np.float32), rng.uniform(1, 2, 8).astype(np.float32)
    gamma, beta = rng.normal(size=8).astype(np.float32), rng.normal(size=8).astype(np.float32)
    slopes = rng.uniform(0, 0.5, 8).astype(np.float32)
    path = write_caffemodel(tmp_path / "weights.caffemodel", [
        ("conv1", "Convolution", [conv, np.arange(8, dtype=np.float32)]),
        ("bn1", "BatchNorm", [mean * 2, variance * 2, np.array([2.0], np.float32)]),
        ("scale1", "Scale", [gamma, beta]),
        ("prelu1", "PReLU", [slopes]),
        ("fc1", "InnerProduct", [fc]),
    ])
    graph = read_caffemodel_weights(path)
    assert [(node.name, node.op) for node in graph.nodes] == [
        ("conv1", "conv"), ("bn1", "batchnorm"), ("scale1", "scale"), ("prelu1", "prelu"), ("fc1", "dense")]
    assert all(node.attrs["described"] is False for node in graph.nodes)
    assert graph.inputs == {} and graph.outputs == [] and graph.source == str(path)
    nodes = {node.name: node for node in graph.nodes}
    np.testing.assert_array_equal(nodes["conv1"].weights["kernel"], conv.transpose(2, 3, 1, 0))
    assert nodes["conv1"].attrs["kernel"] == (5, 5) and nodes["conv1"].attrs["use_bias"] is True
    np.testing.assert_allclose(nodes["bn1"].weights["mean"], mean, rtol=1e-7)  # divided by the scale factor
    np.testing.assert_allclose(nodes["bn1"].weights["variance"], variance, rtol=1e-7)
    np.testing.assert_array_equal(nodes["scale1"].weights["beta"], beta)
    assert nodes["scale1"].attrs["use_bias"] is True
    np.testing.assert_array_equal(nodes["prelu1"].weights["alpha"], slopes)
    np.testing.assert_array_equal(nodes["fc1"].weights["kernel"], fc.T)
    assert nodes["fc1"].attrs["use_bias"] is False and nodes["fc1"].attrs["units"] == 4
    with pytest.raises(ConversionError, match="only its layers' weights"):
        read_caffemodel(path)  # no net to assemble


def test_v1_weights_only_file_with_legacy_dims(tmp_path, rng):
    conv = rng.normal(size=(6, 2, 3, 3)).astype(np.float32)
    fc, bias = rng.normal(size=(3, 24)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    path = write_caffemodel(tmp_path / "v1.caffemodel", [("conv", "CONVOLUTION", [conv]),
                                                         ("ip", "INNER_PRODUCT", [fc, bias])], v1=True)
    graph = read_caffemodel_weights(path)
    assert graph.meta["format"] == "V1" and [node.op for node in graph.nodes] == ["conv", "dense"]
    np.testing.assert_array_equal(graph.node("conv").weights["kernel"], conv.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(graph.node("ip").weights["kernel"], fc.T)  # stored 1 x 1 x out x in
    np.testing.assert_array_equal(graph.node("ip").weights["bias"], bias)   # stored 1 x 1 x 1 x out
    # old files: bottoms and tops but no parameters: the strides and pads are not the file's
    old = write_caffemodel(tmp_path / "old.caffemodel", [("conv", "CONVOLUTION", [conv], ["data"], ["conv"])], v1=True)
    (node,) = read_caffemodel_weights(old).nodes
    assert node.attrs["described"] is False and node.inputs == ["data"] and node.attrs["kernel"] == (3, 3)


def test_layers_that_describe_themselves_keep_their_parameters(tmp_path, rng):
    """A layer with bottoms and tops (as Caffe writes every layer) is described; its parameters are read, and
    an LRN without blobs comes too (its constants can be compared); Split and Input layers are not layers
    with anything to load."""
    from converters.caffe import schema
    from converters.writers.caffe import blob_proto, length_delimited

    layers = [schema.LayerParameter(name="input", type="Input", top=["data"]),
              schema.LayerParameter(name="conv1", type="Convolution", bottom=["data"], top=["conv1"]),
              schema.LayerParameter(name="conv1_conv1_0_split", type="Split", bottom=["conv1"],
                                    top=["conv1_conv1_0_split_0", "conv1_conv1_0_split_1"]),
              schema.LayerParameter(name="norm1", type="LRN", bottom=["conv1_conv1_0_split_0"], top=["norm1"])]
    layers[0].input_param.shape.add().dim.extend([1, 3, 9, 9])
    layers[1].convolution_param.num_output = 4
    layers[1].convolution_param.kernel_size.append(3)
    layers[1].convolution_param.stride.append(2)
    layers[1].convolution_param.pad.append(1)
    layers[3].lrn_param.local_size = 3
    kernel = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    blobs = {"conv1": [kernel, np.zeros(4, np.float32)]}
    path = tmp_path / "saved.caffemodel"
    path.write_bytes(b"".join(length_delimited(100, layer.SerializeToString() + b"".join(
        length_delimited(7, blob_proto(array)) for array in blobs.get(layer.name, ()))) for layer in layers))
    graph = read_caffemodel_weights(path)
    assert [node.name for node in graph.nodes] == ["conv1", "norm1"]
    conv1, norm1 = graph.nodes
    assert "described" not in conv1.attrs and conv1.attrs["strides"] == (2, 2) and conv1.attrs["pads"] == (1,) * 4
    assert conv1.inputs == ["data"] and norm1.attrs["size"] == 3


def test_unsupported_types_and_wrong_blobs(tmp_path, rng, caplog):
    path = write_caffemodel(tmp_path / "fork.caffemodel", [
        ("conv", "Convolution", [rng.normal(size=(2, 1, 1, 1)).astype(np.float32)]),
        ("psp_bn", "BN", [np.ones((1, 2, 1, 1), np.float32)] * 4),  # PSPNet's BN: nothing reads it
    ])
    with caplog.at_level(logging.WARNING, logger="converters.caffe.net"):
        graph = read_caffemodel_weights(path)
    assert [node.name for node in graph.nodes] == ["conv"]
    assert any("'psp_bn'" in record.getMessage() and "BN" in record.getMessage() for record in caplog.records)
    bad = write_caffemodel(tmp_path / "bad.caffemodel", [
        ("bn", "BatchNorm", [np.ones(2, np.float32), np.ones(2, np.float32), np.ones(2, np.float32)])])
    with pytest.raises(ConversionError, match="'bn'.*scale factor") as error:
        read_caffemodel_weights(bad)
    assert str(bad) in str(error.value)
