"""The Caffe reader on 3-D (De)Convolution, Convolution's channel axis, the batch-axis (axis 0) forms of Concat,
Slice, Crop, Flatten, Softmax, ArgMax and Tile, Parameter blobs of their own batch, and a two-bottom Scale that
BVLC Caffe itself refuses: nodes, attributes, weight layouts, batch-less shapes, and refusals naming file, layer
and reason. The computations are checked end to end in tests/keras_zoo/test_caffe_nd_batch_layers.py."""

import numpy as np
import pytest

from tests.converters.test_caffe_bvlc_layers import DATA, error, layer, read, tracked_shapes

VOLUME = 'input: "vol" input_shape { dim: 2 dim: 4 dim: 5 dim: 6 dim: 7 }\n'


def test_3d_convolution_attributes_and_weights(tmp_path, rng):
    text = (VOLUME + layer("conv", "Convolution", "vol", "convolution_param { num_output: 6 kernel_size: 3 "
                                                          "kernel_size: 2 kernel_size: 1 stride: 2 pad: 1 pad: 0 "
                                                          "pad: 2 dilation: 2 group: 2 }")
            + layer("up", "Deconvolution", "vol", "convolution_param { num_output: 2 kernel_size: 2 stride: 2 "
                                                  "bias_term: false }"))
    w, b, wd = rng.normal(size=(6, 2, 3, 2, 1)), rng.normal(size=6), rng.normal(size=(4, 2, 2, 2, 2))
    graph = read(tmp_path, text, [("conv", "Convolution", [w, b]), ("up", "Deconvolution", [wd])])
    conv, up = graph.node("conv"), graph.node("up")
    assert conv.attrs == {"filters": 6, "kernel": (3, 2, 1), "strides": (2, 2, 2), "pads": (1, 1, 0, 0, 2, 2),
                          "dilation": (2, 2, 2), "groups": 2, "use_bias": True}
    np.testing.assert_allclose(conv.weights["kernel"], w.transpose(2, 3, 4, 1, 0), rtol=1e-6)  # (k..., cin/g, F)
    np.testing.assert_allclose(up.weights["kernel"], wd.transpose(2, 3, 4, 1, 0), rtol=1e-6)  # (k..., F/g, C)
    shapes = tracked_shapes_of(tmp_path, text)
    assert shapes["conv"] == (6, 2, 2, 6) and shapes["up"] == (2, 10, 12, 14)  # (S + 2p - d(k-1) - 1) // s + 1


def tracked_shapes_of(tmp_path, text):
    monkeypatch = pytest.MonkeyPatch()
    try:
        prototxt = tmp_path / "shapes.prototxt"
        prototxt.write_text(text)
        return tracked_shapes(monkeypatch, prototxt)
    finally:
        monkeypatch.undo()


def test_convolution_channel_axis(tmp_path):
    text = ('input: "data" input_shape { dim: 2 dim: 3 dim: 4 dim: 8 dim: 6 }\n'
            + layer("conv", "Convolution", params="convolution_param { num_output: 5 kernel_size: 3 axis: 2 }")
            + layer("conv1d", "Convolution", params="convolution_param { num_output: 5 kernel_size: 3 axis: -2 }"))
    graph = read(tmp_path, text)
    assert graph.node("conv").attrs["axis"] == 2 and graph.node("conv").attrs["kernel"] == (3, 3)
    assert graph.node("conv1d").attrs["axis"] == 3 and graph.node("conv1d").attrs["kernel"] == (3, 1)
    shapes = tracked_shapes_of(tmp_path, text)
    assert shapes["conv"] == (3, 5, 6, 4) and shapes["conv1d"] == (3, 4, 5, 4)


@pytest.mark.parametrize("text,reason", [
    (VOLUME + layer("c", "Convolution", "vol", "convolution_param { num_output: 2 kernel_size: 3 kernel_size: 3 }"),
     "kernel_size is given 2 times for 3 spatial axes"),
    (VOLUME + layer("c", "Convolution", "vol", "convolution_param { num_output: 2 kernel_h: 3 kernel_w: 3 }"),
     "kernel_h/kernel_w on a convolution with 3 spatial axes"),
    (VOLUME + layer("c", "Convolution", "vol", "convolution_param { num_output: 2 kernel_size: 3 stride: 1 "
                                               "stride: 2 }"), "stride is given 2 times"),
    (VOLUME + layer("c", "Convolution", "vol", "convolution_param { num_output: 2 kernel_size: 2 dilation: 0 }"),
     "invalid parameters"),
    (DATA + layer("c", "Convolution", params="convolution_param { num_output: 2 kernel_size: 1 axis: 0 }"),
     "makes the batch axis the channel axis"),
    (DATA + layer("c", "Convolution", params="convolution_param { num_output: 2 kernel_size: 1 axis: 3 }"),
     "0 spatial axes after channel axis 3"),
])
def test_convolution_options_caffe_refuses_are_refused(tmp_path, text, reason):
    message, prototxt, _ = error(tmp_path, text)
    assert str(prototxt) in message and "layer 'c' (Convolution)" in message and reason in message


BATCH = ('input: "more" input_shape { dim: 3 dim: 3 dim: 8 dim: 6 }\ninput: "ref" input_shape { dim: 1 dim: 2 '
         'dim: 4 dim: 4 }\n')


def test_batch_axis_forms_keep_batch_less_shapes(tmp_path):
    text = (DATA + BATCH + layer("cat", "Concat", ["data", "more"], "concat_param { axis: 0 }")
            + layer("cat_dim", "Concat", ["data", "more"], "concat_param { concat_dim: 0 }")
            + layer("parts", "Slice", "cat", "slice_param { axis: 0 slice_point: 1 slice_point: 3 }",
                    tops=["p0", "p1", "p2"])
            + layer("crop", "Crop", ["cat", "ref"], "crop_param { axis: 0 offset: 1 offset: 0 offset: 2 offset: 1 }")
            + layer("flat01", "Flatten", "cat", "flatten_param { axis: 0 end_axis: 1 }")
            + layer("flat", "Flatten", params="flatten_param { axis: 0 }")
            + layer("flat00", "Flatten", params="flatten_param { axis: 0 end_axis: 0 }")
            + layer("sm", "Softmax", params="softmax_param { axis: 0 }")
            + layer("am", "ArgMax", params="argmax_param { axis: 0 top_k: 2 out_max_val: true }")
            + layer("tile", "Tile", params="tile_param { axis: -4 tiles: 3 }"))
    graph = read(tmp_path, text)
    nodes = {node.name: node for node in graph.nodes}
    assert nodes["cat"].attrs == nodes["cat_dim"].attrs == {"axis": 0}
    assert nodes["parts"].attrs == {"axis": 0, "points": [1, 3]}
    assert nodes["crop"].attrs == {"axis": 0, "offsets": [1, 0, 2, 1]}
    assert nodes["flat01"].attrs == {"axis": 0, "end_axis": 1} and nodes["flat"].attrs == {"axis": 0, "end_axis": 3}
    assert nodes["sm"].attrs == {"axis": 0} and nodes["tile"].attrs == {"axis": 0, "tiles": 3}
    assert nodes["am"].attrs == {"top_k": 2, "out_max_val": True, "axis": 0}
    shapes = tracked_shapes_of(tmp_path, text)
    assert shapes["cat"] == shapes["p0"] == shapes["p2"] == shapes["sm"] == shapes["am"] == shapes["tile"] == (3, 8, 6)
    assert shapes["crop"] == (2, 4, 4) and shapes["flat01"] == (8, 6) and shapes["flat"] == ()
    assert shapes["flat00"] == (3, 8, 6)


@pytest.mark.parametrize("text,reason", [
    (layer("cat", "Concat", ["data", "ref"], "concat_param { axis: 0 }"),
     "bottoms differ on axis 1, which is not the concatenation axis 0"),
    (layer("s", "Slice", params="slice_param { axis: 0 slice_point: 0 }", tops=["a", "b"]), "must rise from above 0"),
    (layer("s", "Slice", params="slice_param { axis: 1 slice_point: 1 slice_point: 1 }", tops=["a", "b", "c"]),
     "must rise from above 0"),
    (layer("s", "Slice", params="slice_param { axis: 1 slice_point: 4 }", tops=["a", "b"]), "at most the axis size 3"),
    (layer("crop", "Crop", ["data", "ref"], "crop_param { axis: 0 offset: 0 offset: 2 }"), "2 offsets for the 4"),
    (layer("f", "Flatten", params="flatten_param { axis: 1 end_axis: 0 }"), "end_axis 0 comes before axis 1"),
    (layer("sm", "Softmax", params="softmax_param { axis: -5 }"), "axis -5 is out of range for a 4-D blob"),
])
def test_batch_axis_forms_caffe_refuses_are_refused(tmp_path, text, reason):
    message, prototxt, _ = error(tmp_path, DATA + BATCH + text)
    assert str(prototxt) in message and reason in message


def test_parameter_blobs_of_their_own_batch(tmp_path, rng):
    text = (DATA + 'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 4 dim: 3 } } }\n'
            + 'layer { name: "q" type: "Parameter" top: "q" parameter_param { shape { dim: 1 dim: 3 } } }\n')
    value, one = rng.normal(size=(4, 3)), rng.normal(size=(1, 3))
    graph = read(tmp_path, text, [("p", "Parameter", [value]), ("q", "Parameter", [one])])
    p, q = graph.node("p"), graph.node("q")
    assert (p.op, p.inputs, p.attrs) == ("batched_parameter", ["data"], {"shape": (4, 3)})
    np.testing.assert_allclose(p.weights["value"], value, rtol=1e-6)  # the whole blob, its batch axis included
    assert (q.op, q.attrs) == ("parameter", {"shape": (3,)})  # (1, ...): repeated over the input batch
    message, _, caffemodel = error(tmp_path, text, [("p", "Parameter", [rng.normal(size=(2, 3))]),
                                                    ("q", "Parameter", [one])])
    assert str(caffemodel) in message and "layer 'p' (Parameter)" in message


@pytest.mark.parametrize("gate,bottom,suggestion", [
    ("pool", "Scale", "Flatten or Reshape the second bottom to (N, 3) first"),  # an (N, C, 1, 1) gate
    ("rows", "Bias", "Flatten or Reshape the second bottom to (N, 3, 8) first"),  # (N, C, H, 1)
])
def test_a_second_bottom_caffe_refuses_says_so_with_the_fix(tmp_path, gate, bottom, suggestion):
    """BVLC Caffe's Scale/BiasLayer::Reshape CHECK_EQs bottom[0]->shape(axis + i) against bottom[1]->shape(i) for
    every axis of bottom[1]: an (N, C, 1, 1) gate does not broadcast over (N, C, H, W)."""
    text = (DATA + layer("pool", "Pooling", params="pooling_param { pool: AVE global_pooling: true }")
            + layer("rows", "Pooling", params="pooling_param { pool: AVE kernel_h: 1 kernel_w: 6 }")
            + layer("sc", bottom, ["data", gate], f"{bottom.lower()}_param {{ axis: 0 }}"))
    message, prototxt, _ = error(tmp_path, text)
    assert str(prototxt) in message and f"layer 'sc' ({bottom})" in message
    assert "BVLC Caffe refuses this too" in message and "Reshape checks every axis" in message
    assert suggestion in message
