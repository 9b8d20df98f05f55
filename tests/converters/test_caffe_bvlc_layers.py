"""The Caffe reader on BVLC Caffe's inference layers: the nodes, attributes, shapes and weights each type and option
becomes, what Caffe itself refuses (refused here by name: file, layer, type, option), weights shared by param name,
Silence, and layer functions returning several nodes. The computations are checked end to end in
tests/keras_zoo/test_bvlc_layers.py."""

import logging
import textwrap

import numpy as np
import pytest

import converters.caffe.net as net_module
from converters.caffe import LAYERS, read_caffe
from converters.errors import ConversionError
from converters.graph import Node
from converters.writers.caffe import write_caffemodel


def write(tmp_path, text, blobs=None, name="net"):
    prototxt = tmp_path / f"{name}.prototxt"
    prototxt.write_text(textwrap.dedent(text))
    if blobs is None:
        return prototxt, None
    layers = [(n, t, [np.asarray(b, np.float32) for b in bl]) for n, t, bl in blobs]
    return prototxt, write_caffemodel(tmp_path / f"{name}.caffemodel", layers)


def read(tmp_path, text, blobs=None, **kwargs):
    return read_caffe(*write(tmp_path, text, blobs), **kwargs)


def error(tmp_path, text, blobs=None):
    prototxt, caffemodel = write(tmp_path, text, blobs)
    with pytest.raises(ConversionError) as info:
        read_caffe(prototxt, caffemodel)
    return str(info.value), prototxt, caffemodel


DATA = 'input: "data" input_shape { dim: 2 dim: 3 dim: 8 dim: 6 }\n'
FLAT = 'input: "data" input_shape { dim: 2 dim: 7 }\n'


def layer(name, layer_type, bottoms="data", params="", tops=None):
    bottoms = [bottoms] if isinstance(bottoms, str) else bottoms
    tops = [name] if tops is None else tops
    return (f'layer {{ name: "{name}" type: "{layer_type}" ' + "".join(f'bottom: "{b}" ' for b in bottoms)
            + "".join(f'top: "{t}" ' for t in tops) + f"{params} }}\n")


def tracked_shapes(monkeypatch, prototxt):
    """{blob: batch-less channel-first shape} as the reader tracks them while it reads ``prototxt``."""
    seen = {}
    original = net_module.ConversionContext.convert_nodes

    def spy(self, layer):
        nodes = original(self, layer)
        seen.update(self.shapes)
        return nodes

    monkeypatch.setattr(net_module.ConversionContext, "convert_nodes", spy)
    read_caffe(prototxt)
    return seen


# ------------------------------------------------------------------------------------------ neurons

def test_neuron_layers(tmp_path):
    graph = read(tmp_path, DATA + layer("bnll", "BNLL") + layer("thr", "Threshold", params="threshold_param { "
                                                                                             "threshold: 0.5 }")
                 + layer("thr0", "Threshold") + layer("clip", "Clip", params="clip_param { min: -1 max: 2 }")
                 + layer("exp", "Exp", params="exp_param { base: 2 scale: 3 shift: 4 }") + layer("exp0", "Exp")
                 + layer("log", "Log", params="log_param { base: 10 scale: 0.5 shift: 1 }")
                 + layer("swish", "Swish", params="swish_param { beta: 2 }") + layer("swish1", "Swish"))
    attrs = {node.name: (node.op, node.attrs) for node in graph.nodes}
    assert attrs == {"bnll": ("bnll", {}), "thr": ("threshold", {"threshold": 0.5}),
                     "thr0": ("threshold", {"threshold": 0.0}), "clip": ("clip", {"min": -1.0, "max": 2.0}),
                     "exp": ("exp", {"base": 2.0, "scale": 3.0, "shift": 4.0}),
                     "exp0": ("exp", {"base": -1.0, "scale": 1.0, "shift": 0.0}),
                     "log": ("log", {"base": 10.0, "scale": 0.5, "shift": 1.0}),
                     "swish": ("swish", {"beta": 2.0}), "swish1": ("swish", {"beta": 1.0})}


@pytest.mark.parametrize("text,reason", [
    (layer("clip", "Clip", params="clip_param { min: 0 }"), "clip_param needs max"),
    (layer("clip", "Clip"), "clip_param needs min and max"),
    (layer("exp", "Exp", params="exp_param { base: -2 }"), "base must be strictly positive"),
    (layer("exp", "Exp", params="exp_param { base: 0 }"), "base must be strictly positive"),
    (layer("log", "Log", params="log_param { base: 1 }"), "base 1 has no logarithm"),
])
def test_neuron_parameters_caffe_refuses_are_refused(tmp_path, text, reason):
    message, prototxt, _ = error(tmp_path, DATA + text)
    name, kind = text.split('"')[1], text.split('"')[3]
    assert str(prototxt) in message and f"layer '{name}' ({kind})" in message and reason in message


# -------------------------------------------------------------------------------- reductions, MVN...

def test_mvn_reduction_argmax_tile_shapes(tmp_path, monkeypatch):
    text = (DATA + layer("mvn", "MVN", params="mvn_param { normalize_variance: false across_channels: true "
                                               "eps: 0.001 }")
            + "".join(layer(f"r{index}", "Reduction", params=f"reduction_param {{ operation: {op} axis: {axis} "
                                                              "coeff: 2 }")
                      for index, (axis, op) in enumerate(((0, "SUM"), (1, "ASUM"), (2, "SUMSQ"), (-1, "MEAN"))))
            + layer("am", "ArgMax", params="argmax_param { top_k: 3 out_max_val: true }")
            + layer("am1", "ArgMax", params="argmax_param { top_k: 2 axis: -2 }")
            + layer("tile", "Tile", params="tile_param { axis: -1 tiles: 3 }")
            + layer("flat", "Flatten") + layer("amf", "ArgMax", "flat")
            + layer("r_mvn", "Reduction", "mvn", "reduction_param { axis: 3 }") + layer("r5", "Reshape", "r_mvn",
                                                                                       "reshape_param { shape { "
                                                                                       "dim: 0 dim: 0 dim: 2 "
                                                                                       "dim: 2 dim: 2 } }")
            + layer("am5", "ArgMax", "r5", "argmax_param { top_k: 2 }"))
    graph = read(tmp_path, text)
    nodes = {node.name: node for node in graph.nodes}
    assert nodes["mvn"].attrs == {"normalize_variance": False, "across_channels": True,
                                  "eps": pytest.approx(0.001)}
    assert [nodes[f"r{index}"].attrs for index in range(4)] == [
        {"operation": "sum", "axis": 0, "coeff": 2.0}, {"operation": "asum", "axis": 1, "coeff": 2.0},
        {"operation": "sumsq", "axis": 2, "coeff": 2.0}, {"operation": "mean", "axis": 3, "coeff": 2.0}]
    assert nodes["am"].attrs == {"top_k": 3, "out_max_val": True, "axis": None}
    assert nodes["am1"].attrs == {"top_k": 2, "out_max_val": False, "axis": 2}
    assert nodes["tile"].attrs == {"axis": 3, "tiles": 3}
    shapes = tracked_shapes(monkeypatch, tmp_path / "net.prototxt")
    assert (shapes["r0"], shapes["r1"], shapes["r2"], shapes["r3"]) == ((), (), (3,), (3, 8))
    assert shapes["am"] == (2, 3, 1)  # (N, 2, top_k, 1): indices, then values
    assert shapes["am1"] == (3, 2, 6) and shapes["tile"] == (3, 8, 18)
    assert shapes["amf"] == (1, 1)  # a 2-D bottom: (N, 1, top_k)
    assert shapes["am5"] == (1, 2, 1, 1)  # a 5-D bottom: (N, 1, top_k, 1, 1)


@pytest.mark.parametrize("text,reason", [
    (layer("am", "ArgMax", params="argmax_param { top_k: 200 }"), "top_k 200 exceeds the 144 values"),
    (layer("am", "ArgMax", params="argmax_param { top_k: 4 axis: 1 }"), "top_k 4 exceeds the 3 entries of axis 1"),
    (layer("am", "ArgMax", params="argmax_param { axis: -5 }"), "axis -5 is out of range"),
    (layer("tile", "Tile"), "tile_param needs tiles"),
    (layer("tile", "Tile", params="tile_param { tiles: 0 }"), "tile_param needs tiles"),
    (layer("r", "Reduction", params="reduction_param { axis: 4 }"), "axis 4 is out of range for a 4-D blob"),
    (layer("rs", "Reshape", params="reshape_param { shape { dim: 0 dim: 0 dim: 0 dim: 2 dim: -1 } }")
     + layer("mvn", "MVN", "rs"), "Caffe's MVN takes at most 4"),
])
def test_shape_errors_name_the_layer(tmp_path, text, reason):
    message, prototxt, _ = error(tmp_path, DATA + text)
    assert str(prototxt) in message and reason in message


# --------------------------------------------------------------------------------- Scale and Bias

SCALES = DATA + (layer("sc0", "Scale", params="scale_param { axis: 0 num_axes: 2 bias_term: true }")
                 + layer("sc_s", "Scale", params="scale_param { num_axes: 0 }")
                 + layer("sc_end", "Scale", params="scale_param { axis: 0 num_axes: -1 }")
                 + layer("bi0", "Bias", params="bias_param { axis: 0 num_axes: 1 }")
                 + layer("pool", "Pooling", params="pooling_param { pool: AVE global_pooling: true }")
                 + layer("gate", "Flatten", "pool")
                 + layer("se", "Scale", ["data", "gate"], "scale_param { axis: 0 bias_term: true }")
                 + layer("add", "Bias", ["data", "gate"], "bias_param { axis: 0 }"))


def test_scale_and_bias_on_axis_0_and_scalars(tmp_path, rng):
    nc, nchw = rng.normal(size=(1, 3)), rng.normal(size=(1, 3, 8, 6))
    blobs = [("sc0", "Scale", [nc, nc + 1]), ("sc_s", "Scale", [np.float32(2.5)]), ("sc_end", "Scale", [nchw]),
             ("bi0", "Bias", [[0.5]]), ("se", "Scale", [nc])]
    graph = read(tmp_path, SCALES, blobs)
    nodes = {node.name: node for node in graph.nodes}
    # axis 0: the blob's batch axis (size 1) dropped, the rest from axis 1
    assert nodes["sc0"].attrs == {"axis": 1, "num_axes": 1, "use_bias": True}
    np.testing.assert_allclose(nodes["sc0"].weights["gamma"], nc[0], rtol=1e-6)
    np.testing.assert_allclose(nodes["sc0"].weights["beta"], nc[0] + 1, rtol=1e-6)
    assert nodes["sc_s"].attrs == {"axis": 1, "num_axes": 0, "use_bias": False}
    assert nodes["sc_s"].weights["gamma"].shape == () and nodes["sc_s"].weights["gamma"] == 2.5
    assert nodes["sc_end"].attrs["num_axes"] == -1 and nodes["sc_end"].weights["gamma"].shape == (3, 8, 6)
    assert nodes["bi0"].attrs == {"axis": 1, "num_axes": 0} and nodes["bi0"].weights["beta"].shape == ()
    # two bottoms on axis 0: the second bottom's batch axis on the first's, its (C,) from axis 1
    assert nodes["se"].inputs == ["data", "gate"]
    assert nodes["se"].attrs == {"axis": 1, "num_axes": 1, "use_bias": True}
    np.testing.assert_allclose(nodes["se"].weights["beta"], nc[0], rtol=1e-6)
    assert nodes["add"].attrs == {"axis": 1, "num_axes": 1} and nodes["add"].weights == {}
    assert not read(tmp_path, SCALES).weights_by_layer()  # without a caffemodel: no weights


@pytest.mark.parametrize("text,reason", [
    # Caffe lines a second bottom's FIRST axis up with `axis`: the batch axis cannot lie elsewhere
    (layer("sig", "Sigmoid") + layer("sc", "Scale", ["data", "sig"]), "only axis 0 is supported with two bottoms"),
    # Caffe checks bottom[1]'s shape against bottom[0]'s from the axis on, exactly: (N, C, 1, 1) is not (N, C, H, W)
    (layer("pool", "Pooling", params="pooling_param { pool: AVE global_pooling: true }")
     + layer("sc", "Scale", ["data", "pool"], "scale_param { axis: 0 }"), "BVLC Caffe refuses this too"),
    (layer("sc", "Scale", params="scale_param { axis: 2 num_axes: 3 }"), "exceed the input rank 4"),
    (layer("sc", "Scale", params="scale_param { num_axes: -2 }"), "num_axes must be -1 or more"),
    (layer("sc", "Scale", params="scale_param { axis: 4 }"), "axis 4 is out of range for a 4-D blob"),
])
def test_scale_shapes_caffe_refuses_are_refused(tmp_path, text, reason):
    message, prototxt, _ = error(tmp_path, DATA + text)
    assert str(prototxt) in message and "layer 'sc' (Scale)" in message and reason in message


def test_scale_blob_with_a_batch_axis_other_than_1_is_refused(tmp_path, rng):
    text = DATA + layer("sc", "Scale", params="scale_param { axis: 0 num_axes: 2 }")
    message, _, caffemodel = error(tmp_path, text, [("sc", "Scale", [rng.normal(size=(2, 3))])])
    assert str(caffemodel) in message and "layer 'sc' (Scale)" in message and "batch axis, of size 2" in message


# ----------------------------------------------------------------- pooling, SPP, dense, embed, parameter

def test_stochastic_pooling_and_spp(tmp_path):
    text = (DATA + layer("sto", "Pooling", params="pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }")
            + layer("stog", "Pooling", params="pooling_param { pool: STOCHASTIC global_pooling: true }")
            + layer("spp", "SPP", params="spp_param { pyramid_height: 3 pool: AVE }")
            + layer("spp1", "SPP", params="spp_param { pyramid_height: 1 }"))
    graph = read(tmp_path, text)
    sto = graph.node("sto").attrs
    assert (sto["method"], sto["kernel"], sto["strides"], sto["pads"]) == ("stochastic", (3, 3), (2, 2), (0,) * 4)
    assert graph.node("stog").attrs["global"] is True
    spp = [node for node in graph.nodes if node.source_type == "SPP" and node.name.startswith("spp/")]
    assert [node.name for node in spp] == ["spp/pool0", "spp/flatten0", "spp/pool1", "spp/flatten1", "spp/pool2",
                                           "spp/flatten2"]
    # level i: kernel ceil(H / 2^i), pad (kernel * 2^i - H + 1) // 2, stride = kernel
    assert [(n.attrs["kernel"], n.attrs["pads"]) for n in spp if n.op == "pool"] == [
        ((8, 6), (0, 0, 0, 0)), ((4, 3), (0, 0, 0, 0)), ((2, 2), (0, 0, 1, 1))]
    concat = graph.node("spp")
    assert concat.op == "concat" and concat.inputs == ["spp/flatten0", "spp/flatten1", "spp/flatten2"]
    assert graph.node("spp1").op == "pool" and graph.node("spp1").attrs["kernel"] == (8, 6)


@pytest.mark.parametrize("text,reason", [
    (layer("p", "Pooling", params="pooling_param { pool: STOCHASTIC kernel_size: 3 pad: 1 }"),
     "Caffe implements padding only for MAX and AVE"),
    (layer("p", "Pooling", params="pooling_param { pool: MAX global_pooling: true stride: 2 }"),
     "global_pooling takes only pad 0 and stride 1"),
    (layer("spp", "SPP", params="spp_param { pyramid_height: 4 }"),
     "level 3: pad (0, 1) is not below the kernel (1, 1)"),
    (layer("spp", "SPP", params="spp_param { pyramid_height: 3 pool: STOCHASTIC }"),
     "STOCHASTIC pooling takes no padding"),
    (layer("spp", "SPP"), "pyramid_height must be 1 or more"),
])
def test_pooling_that_caffe_refuses_is_refused(tmp_path, text, reason):
    message, prototxt, _ = error(tmp_path, DATA + text)
    assert str(prototxt) in message and reason in message


def test_inner_product_axes_embed_and_parameter(tmp_path, rng):
    text = (DATA + layer("ip2", "InnerProduct", params="inner_product_param { num_output: 4 axis: 2 }")
            + layer("ipt", "InnerProduct", params="inner_product_param { num_output: 4 axis: -1 transpose: true }")
            + 'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 1 dim: 3 dim: 2 } } }\n'
            + layer("emb", "Embed", "p", "embed_param { num_output: 5 input_dim: 7 }")
            + layer("embn", "Embed", "p", "embed_param { num_output: 5 input_dim: 7 bias_term: false }"))
    w2, wt, value = rng.normal(size=(4, 48)), rng.normal(size=(6, 4)), rng.normal(size=(1, 3, 2))
    we, be = rng.normal(size=(7, 5)), rng.normal(size=5)
    blobs = [("ip2", "InnerProduct", [w2, np.zeros(4)]), ("ipt", "InnerProduct", [wt, np.zeros(4)]),
             ("p", "Parameter", [value]), ("emb", "Embed", [we, be]), ("embn", "Embed", [we])]
    graph = read(tmp_path, text, blobs)
    assert graph.node("ip2").attrs == {"units": 4, "use_bias": True, "axis": 2}
    np.testing.assert_allclose(graph.node("ip2").weights["kernel"], w2.T, rtol=1e-6)
    assert graph.node("ipt").attrs["axis"] == 3
    np.testing.assert_allclose(graph.node("ipt").weights["kernel"], wt, rtol=1e-6)
    p = graph.node("p")
    assert (p.op, p.inputs, p.attrs) == ("parameter", ["data"], {"shape": (3, 2)})  # the batch size from 'data'
    np.testing.assert_allclose(p.weights["value"], value[0], rtol=1e-6)
    emb = graph.node("emb")
    assert emb.attrs == {"units": 5, "input_dim": 7, "use_bias": True}
    np.testing.assert_allclose(emb.weights["kernel"], we, rtol=1e-6)
    assert set(graph.node("embn").weights) == {"kernel"}


@pytest.mark.parametrize("text,reason", [
    ('layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 2 dim: 0 } } }\n',
     "no empty one"),
    (layer("emb", "Embed", params="embed_param { num_output: 5 }"), "input_dim (0) must be positive"),
])
def test_parameter_and_embed_errors(tmp_path, text, reason):
    message, prototxt, _ = error(tmp_path, DATA + text)
    assert str(prototxt) in message and reason in message


def test_1d_convolution_is_a_2d_one_of_width_1(tmp_path, rng):
    text = ('input: "data" input_shape { dim: 2 dim: 4 dim: 11 }\n'
            + layer("conv", "Convolution", params="convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 "
                                                  "dilation: 2 }"))
    w = rng.normal(size=(6, 4, 3))
    graph = read(tmp_path, text, [("conv", "Convolution", [w, np.zeros(6)])])
    conv = graph.node("conv")
    assert (conv.attrs["kernel"], conv.attrs["strides"], conv.attrs["pads"], conv.attrs["dilation"]) == (
        (3, 1), (2, 1), (1, 1, 0, 0), (2, 1))
    np.testing.assert_allclose(conv.weights["kernel"], w.transpose(2, 1, 0)[:, None], rtol=1e-6)
    message, _, _ = error(tmp_path, text.replace("kernel_size: 3", "kernel_h: 3 kernel_w: 1"))
    assert "layer 'conv' (Convolution)" in message and "kernel_h/kernel_w on a convolution with 1 spatial" \
        in message
    message, _, _ = error(tmp_path, 'input: "data" input_shape { dim: 2 dim: 4 dim: 3 dim: 3 dim: 3 dim: 3 }\n'
                          + layer("conv", "Convolution", params="convolution_param { num_output: 6 kernel_size: 3 }"))
    assert "1-D, 2-D and 3-D convolutions are supported" in message


# ---------------------------------------------------------------------------------------- Silence

def test_silence_consumes_its_bottoms(tmp_path):
    graph = read(tmp_path, DATA + layer("a", "ReLU") + layer("b", "Sigmoid")
                 + layer("sil", "Silence", ["a", "b"], tops=[]))
    assert graph.outputs == []
    assert [node.name for node in graph.nodes] == ["a", "b"]
    graph = read(tmp_path, DATA + layer("a", "ReLU") + layer("b", "Sigmoid") + layer("sil", "Silence", "a", tops=[]))
    assert graph.outputs == ["b"]
    message, _, _ = error(tmp_path, DATA + layer("sil", "Silence", "nowhere", tops=[]))
    assert "layer 'sil' (Silence)" in message and "'nowhere'" in message


# ---------------------------------------------------------------------------- weights shared by name

SHARED = FLAT + """
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" param { name: "w" } param { name: "b" }
        inner_product_param { num_output: 7 } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" param { name: "w" } param { name: "b" }
        inner_product_param { num_output: 7 } }
layer { name: "ip3" type: "InnerProduct" bottom: "ip2" top: "ip3" param { name: "w" } param { name: "b" }
        inner_product_param { num_output: 7 } }
"""


def test_shared_params_become_one_weight(tmp_path, rng, caplog):
    w, b = rng.normal(size=(7, 7)), rng.normal(size=7)
    blobs = [(name, "InnerProduct", [w, b]) for name in ("ip1", "ip2", "ip3")]
    graph = read(tmp_path, SHARED, blobs)
    assert [node.attrs.get("shares") for node in graph.nodes] == [None, "ip1", "ip1"]
    assert list(graph.weights_by_layer()) == ["ip1"]
    np.testing.assert_allclose(graph.node("ip1").weights["kernel"], w.T, rtol=1e-6)
    # Caffe loads a shared blob from every layer naming it: the last one in the file wins
    w3 = rng.normal(size=(7, 7))
    blobs[2] = ("ip3", "InnerProduct", [w3, b])
    with caplog.at_level(logging.WARNING):
        graph = read(tmp_path, SHARED, blobs)
    np.testing.assert_allclose(graph.node("ip1").weights["kernel"], w3.T, rtol=1e-6)
    assert "share their weights but the caffemodel holds different values" in caplog.text
    assert not read(tmp_path, SHARED).weights_by_layer()
    assert [node.attrs.get("shares") for node in read(tmp_path, SHARED).nodes] == [None, "ip1", "ip1"]


V1_SHARED = FLAT + """
layers { name: "ip1" type: INNER_PRODUCT bottom: "data" top: "ip1" param: "w" param: "b"
         inner_product_param { num_output: 7 } }
layers { name: "ip2" type: INNER_PRODUCT bottom: "ip1" top: "ip2" param: "w" param: "b"
         inner_product_param { num_output: 7 } }
"""


def test_v1_param_names_are_shared_too(tmp_path):
    graph = read(tmp_path, V1_SHARED)
    assert graph.meta["format"] == "V1" and graph.node("ip2").attrs["shares"] == "ip1"


@pytest.mark.parametrize("change,reason", [
    # the bias is ip2's own: Caffe shares only the weight
    (('top: "ip2" param { name: "w" } param { name: "b" }', 'top: "ip2" param { name: "w" }'),
     "only sharing every blob"),
    (('top: "ip2" param { name: "w" } param { name: "b" }', 'top: "ip2" param { name: "b" } param { name: "w" }'),
     "only sharing every blob"),
    (('bottom: "ip1" top: "ip2" param { name: "w" } param { name: "b" }\n        inner_product_param { num_output: 7 }',
      'bottom: "ip1" top: "ip2" param { name: "w" } param { name: "b" }\n        inner_product_param { num_output: 7 '
      'transpose: true }'), "computes differently"),
])
def test_partial_or_mismatched_sharing_is_refused(tmp_path, change, reason):
    assert change[0] in SHARED
    message, prototxt, _ = error(tmp_path, SHARED.replace(change[0], change[1]))
    assert str(prototxt) in message and "layer 'ip2' (InnerProduct)" in message and reason in message


def test_sharing_a_weight_of_another_shape_is_refused(tmp_path, rng):
    text = (FLAT + layer("cat", "Concat", ["data", "data"])
            + layer("ip1", "InnerProduct", params='param { name: "w" } param { name: "b" } '
                                                  "inner_product_param { num_output: 7 }")
            + layer("ip2", "InnerProduct", "cat", 'param { name: "w" } param { name: "b" } '
                                                  "inner_product_param { num_output: 7 }"))
    blobs = [("ip1", "InnerProduct", [rng.normal(size=(7, 7)), np.zeros(7)]),
             ("ip2", "InnerProduct", [rng.normal(size=(7, 14)), np.zeros(7)])]
    message, _, caffemodel = error(tmp_path, text, blobs)
    assert str(caffemodel) in message and "layer 'ip2' (InnerProduct)" in message
    assert "weight 'kernel' has shape (14, 7), the layer 'ip1' it shares it with has (7, 7)" in message


# --------------------------------------------------------------------- layer functions, several nodes

def test_a_layer_function_may_return_several_nodes(tmp_path):
    def double_relu(layer, inputs, ctx):
        middle = f"{layer.name}/first"
        return [Node(middle, "relu", list(layer.bottom), [middle], {"negative_slope": 0.0}),
                Node(layer.name, "relu", [middle], list(layer.top), {"negative_slope": 0.5})], [inputs[0]]

    LAYERS.add("DoubleReLU", double_relu)
    try:
        graph = read(tmp_path, DATA + layer("dr", "DoubleReLU") + layer("after", "Sigmoid", "dr"))
    finally:
        LAYERS._functions.pop("DoubleReLU")
    assert [(n.name, n.inputs, n.outputs, n.source_type) for n in graph.nodes] == [
        ("dr/first", ["data"], ["dr/first"], "DoubleReLU"), ("dr", ["dr/first"], ["dr"], "DoubleReLU"),
        ("after", ["dr"], ["after"], "Sigmoid")]
    assert "DoubleReLU" not in LAYERS


def test_unsupported_types_are_listed_in_one_error(tmp_path):
    text = (DATA + layer("rnn", "RNN", params="recurrent_param { num_output: 4 }") + layer("py", "Python")
            + layer("lstm", "LSTM", params="recurrent_param { num_output: 4 }") + layer("ok", "ReLU"))
    message, prototxt, _ = error(tmp_path, text)
    assert message.startswith(f"{prototxt}: unsupported layer type(s): ")
    assert "'rnn' (RNN), 'py' (Python), 'lstm' (LSTM)" in message
