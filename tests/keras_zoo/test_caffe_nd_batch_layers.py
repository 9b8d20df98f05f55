"""Caffe's 3-D (De)Convolution, Convolution on a channel axis other than 1, the batch-axis (axis 0) forms of
Concat, Slice, Crop, Flatten, Softmax, ArgMax and Tile, and Parameter blobs with their own batch, end to end: a
small prototxt + a random caffemodel -> keras_zoo.from_caffe, against NumPy restatements of BVLC Caffe's layer
.cpp files (NCHW, written here) and OpenCV's DNN module where it implements the layer and the option (3-D
Convolution, Convolution with axis 2, axis-0 Concat, Slice and Softmax). Batches of 2 and 3 samples, so that a
batch-axis mistake shows; such models are called on the whole batch at once.
"""

import itertools
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tests.helpers import ROOT, assert_close_rel
from tests.keras_zoo.test_bvlc_layers import check, convert, layer, run, to_keras


# ------------------------------------------------------------------------------- NumPy references

def _per_axis(value, axes):
    return (value,) * axes if np.isscalar(value) else tuple(value)


def ref_conv_nd(x, w, b=None, stride=1, pad=0, dilation=1, group=1):
    """Caffe's N-D convolution (base_conv_layer.cpp + im2col_nd) restated: x (N, C, S...), w (F, C/g, K...),
    symmetric zero pads, out = (S + 2p - (d(k-1) + 1)) // s + 1 on each spatial axis."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    axes = x.ndim - 2
    stride, pad, dilation = (_per_axis(v, axes) for v in (stride, pad, dilation))
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    kernel, (filters, cin) = w.shape[2:], w.shape[:2]
    out = [(xp.shape[2 + i] - (dilation[i] * (kernel[i] - 1) + 1)) // stride[i] + 1 for i in range(axes)]
    y, fg = np.zeros((x.shape[0], filters, *out)), filters // group
    for g in range(group):
        for k in itertools.product(*(range(size) for size in kernel)):
            window = xp[(slice(None), slice(g * cin, (g + 1) * cin),
                         *(slice(k[i] * dilation[i], k[i] * dilation[i] + stride[i] * (out[i] - 1) + 1, stride[i])
                           for i in range(axes)))]
            y[:, g * fg:(g + 1) * fg] += np.einsum("nc...,fc->nf...", window,
                                                   w[(slice(g * fg, (g + 1) * fg), slice(None), *k)])
    return y if b is None else y + np.asarray(b, np.float64).reshape((1, -1) + (1,) * axes)


def ref_deconv_nd(x, w, b=None, stride=1, pad=0, dilation=1, group=1):
    """Caffe's N-D deconvolution (the convolution's backward data pass, col2im) restated: x (N, C, S...),
    w (C, F/g, K...); the full s(S-1) + d(k-1) + 1 output cropped by ``pad`` on each side."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    axes = x.ndim - 2
    stride, pad, dilation = (_per_axis(v, axes) for v in (stride, pad, dilation))
    kernel, size = w.shape[2:], x.shape[2:]
    full = [stride[i] * (size[i] - 1) + dilation[i] * (kernel[i] - 1) + 1 for i in range(axes)]
    cin, fg = x.shape[1] // group, w.shape[1]
    y = np.zeros((x.shape[0], fg * group, *full))
    for g in range(group):
        for k in itertools.product(*(range(s) for s in kernel)):
            y[(slice(None), slice(g * fg, (g + 1) * fg),
               *(slice(k[i] * dilation[i], k[i] * dilation[i] + stride[i] * (size[i] - 1) + 1, stride[i])
                 for i in range(axes)))] += np.einsum("nc...,cf->nf...", x[:, g * cin:(g + 1) * cin],
                                                      w[(slice(g * cin, (g + 1) * cin), slice(None), *k)])
    y = y[(slice(None), slice(None), *(slice(p, f - p) for p, f in zip(pad, full)))]
    return y if b is None else y + np.asarray(b, np.float64).reshape((1, -1) + (1,) * axes)


def ref_on_channel_axis(reference, x, axis, *args):
    """Caffe's convolution with channel axis ``axis`` > 1: the axes before it are all samples (num_ =
    count(0, axis)), each (C, spatial...) convolved alone."""
    lead = x.shape[:axis]
    y = reference(x.reshape((-1, *x.shape[axis:])), *args)
    return y.reshape((*lead, *y.shape[1:]))


def floats(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------- 3-D convolution

def test_3d_convolution_per_axis_and_once_given_options(tmp_path, rng):
    data = floats(rng, 2, 4, 5, 6, 7)
    w1, b1 = floats(rng, 6, 2, 3, 2, 3), floats(rng, 6)
    w2 = floats(rng, 5, 4, 3, 3, 3)
    w3, b3 = floats(rng, 3, 4, 1, 1, 1), floats(rng, 3)
    text = (layer("conv", "Convolution", "data", "convolution_param { num_output: 6 kernel_size: 3 kernel_size: 2 "
                                                 "kernel_size: 3 stride: 2 stride: 1 stride: 2 pad: 1 pad: 0 pad: 2 "
                                                 "dilation: 1 dilation: 2 dilation: 1 group: 2 }")
            + layer("same", "Convolution", "data", "convolution_param { num_output: 5 kernel_size: 3 stride: 2 "
                                                   "pad: 1 dilation: 2 bias_term: false }")
            + layer("pw", "Convolution", "data", "convolution_param { num_output: 3 kernel_size: 1 }"))
    expected = {"conv": ref_conv_nd(data, w1, b1, (2, 1, 2), (1, 0, 2), (1, 2, 1), 2),
                "same": ref_conv_nd(data, w2, None, 2, 1, 2),
                "pw": ref_conv_nd(data, w3, b3)}
    model, graph, got = check(tmp_path, {"data": data}, text, expected,
                              [("conv", "Convolution", [w1, b1]), ("same", "Convolution", [w2]),
                               ("pw", "Convolution", [w3, b3])], cv=["conv"])  # OpenCV: per-axis sizes only
    assert got["conv"].shape == (2, 6, 3, 4, 5) and got["same"].shape == (2, 5, 2, 2, 3)
    assert type(model.get_layer("conv")).__name__ == "Conv3D"


def test_3d_deconvolution(tmp_path, rng):
    """NumPy only: OpenCV's DNN has no 3-D Deconvolution on its CPU backend."""
    data = floats(rng, 2, 4, 3, 4, 3)
    w1, b1 = floats(rng, 4, 3, 2, 3, 2), floats(rng, 6)
    w2 = floats(rng, 4, 2, 3, 3, 3)
    text = (layer("up", "Deconvolution", "data", "convolution_param { num_output: 6 kernel_size: 2 kernel_size: 3 "
                                                 "kernel_size: 2 stride: 2 stride: 1 stride: 3 pad: 1 pad: 0 pad: 1 "
                                                 "dilation: 2 group: 2 }")
            + layer("up1", "Deconvolution", "data", "convolution_param { num_output: 2 kernel_size: 3 stride: 2 "
                                                    "pad: 1 bias_term: false }"))
    expected = {"up": ref_deconv_nd(data, w1, b1, (2, 1, 3), (1, 0, 1), 2, 2),
                "up1": ref_deconv_nd(data, w2, None, 2, 1)}
    _, _, got = check(tmp_path, {"data": data}, text, expected,
                      [("up", "Deconvolution", [w1, b1]), ("up1", "Deconvolution", [w2])])
    assert got["up"].shape == (2, 6, 5, 8, 7)  # s(S - 1) + d(k - 1) + 1 - 2p per axis


def test_convolution_on_channel_axis_2(tmp_path, rng):
    """axis 2: an (N, A, C, H, W) blob is N*A samples of (C, H, W) to Caffe; (N, A, C, L) is a 1-D one."""
    data, seq = floats(rng, 3, 2, 4, 6, 5), floats(rng, 2, 3, 4, 9)
    w1, b1 = floats(rng, 6, 2, 3, 3), floats(rng, 6)
    w2, b2 = floats(rng, 5, 4, 3), floats(rng, 5)
    w3, b3 = floats(rng, 4, 3, 2, 2), floats(rng, 3)
    text = (layer("conv", "Convolution", "data", "convolution_param { num_output: 6 kernel_size: 3 pad: 1 stride: 2 "
                                                 "group: 2 axis: 2 }")
            + layer("conv1d", "Convolution", "seq", "convolution_param { num_output: 5 kernel_size: 3 dilation: 2 "
                                                    "axis: -2 }")
            + layer("up", "Deconvolution", "data", "convolution_param { num_output: 3 kernel_size: 2 stride: 2 "
                                                   "axis: 2 }"))
    expected = {"conv": ref_on_channel_axis(ref_conv_nd, data, 2, w1, b1, 2, 1, 1, 2),
                "conv1d": ref_on_channel_axis(ref_conv_nd, seq, 2, w2, b2, 1, 0, 2),
                "up": ref_on_channel_axis(ref_deconv_nd, data, 2, w3, b3, 2)}
    _, _, got = check(tmp_path, {"data": data, "seq": seq}, text, expected,
                      [("conv", "Convolution", [w1, b1]), ("conv1d", "Convolution", [w2, b2]),
                       ("up", "Deconvolution", [w3, b3])])  # OpenCV reads no axis: NumPy only
    assert got["conv"].shape == (3, 2, 6, 3, 3) and got["conv1d"].shape == (2, 3, 5, 5)


# --------------------------------------------------------------------------------- the batch axis

BATCH_LAYERS = (layer("cat", "Concat", ["data", "more"], "concat_param { axis: 0 }")
                + layer("cat_out", "Split", "cat")
                + layer("conv", "Convolution", "cat", "convolution_param { num_output: 2 kernel_size: 3 pad: 1 }")
                + layer("parts", "Slice", "cat", "slice_param { axis: 0 slice_point: 1 slice_point: 4 }",
                        tops=["p0", "p1", "p2"])
                + layer("halves", "Slice", "more", "slice_param { axis: 0 }", tops=["h0", "h1"])
                + layer("crop", "Crop", ["cat", "ref"], "crop_param { axis: 0 offset: 2 offset: 0 offset: 1 "
                                                         "offset: 2 }")
                + layer("crop1", "Crop", ["cat", "ref"], "crop_param { axis: 0 offset: 1 }")
                + layer("flat01", "Flatten", "cat", "flatten_param { axis: 0 end_axis: 1 }")
                + layer("flat", "Flatten", "data", "flatten_param { axis: 0 }")
                + layer("sm", "Softmax", "data", "softmax_param { axis: 0 }")
                + layer("am", "ArgMax", "data", "argmax_param { axis: 0 top_k: 2 }")
                + layer("amv", "ArgMax", "data", "argmax_param { axis: 0 top_k: 3 out_max_val: true }")
                + layer("tile", "Tile", "data", "tile_param { axis: 0 tiles: 2 }")
                + layer("tile_out", "Split", "tile")
                + layer("tiled_ip", "InnerProduct", "tile", "inner_product_param { num_output: 4 }"))


def batch_inputs(rng):
    return {"data": floats(rng, 3, 3, 4, 5), "more": floats(rng, 2, 3, 4, 5), "ref": floats(rng, 2, 2, 2, 3)}


def batch_blobs(rng):
    return [("conv", "Convolution", [floats(rng, 2, 3, 3, 3), floats(rng, 2)]),
            ("tiled_ip", "InnerProduct", [floats(rng, 4, 60), floats(rng, 4)])]


def test_batch_axis_forms_of_concat_slice_crop_flatten_softmax_argmax_tile(tmp_path, rng):
    inputs, blobs = batch_inputs(rng), batch_blobs(rng)
    data, more = inputs["data"], inputs["more"]
    cat = np.concatenate([data, more])  # Caffe's Concat on axis 0: the bottoms' samples one after the other
    shifted = np.exp(data - data.max(axis=0))
    order = np.argsort(-data, axis=0, kind="stable")  # no ties in random floats
    (w, b), (wi, bi) = blobs[0][2], blobs[1][2]
    tile = np.tile(data, (2, 1, 1, 1))
    expected = {"cat_out": cat, "conv": ref_conv_nd(cat, w, b, 1, 1),
                "p0": cat[:1], "p1": cat[1:4], "p2": cat[4:], "h0": more[:1], "h1": more[1:],
                "crop": cat[2:4, :2, 1:3, 2:5], "crop1": cat[1:3, 1:3, 1:3, 1:4],
                "flat01": cat.reshape(15, 4, 5), "flat": data.reshape(-1),
                "sm": shifted / shifted.sum(axis=0), "am": order[:2],
                "amv": np.take_along_axis(data, order[:3], axis=0),
                "tile_out": tile, "tiled_ip": tile.reshape(6, -1) @ wi.T + bi}
    model, graph, got = check(tmp_path, inputs, BATCH_LAYERS, expected, blobs, cv=["cat_out", "crop", "flat01", "sm"])
    assert {blob: got[blob].shape[0] for blob in ("cat_out", "p1", "crop", "flat01", "am", "amv", "tile_out")} == {
        "cat_out": 5, "p1": 3, "crop": 2, "flat01": 15, "am": 2, "amv": 3, "tile_out": 6}
    assert got["flat"].shape == (180,)


def test_batch_axis_layers_follow_the_batch_size_of_each_call(tmp_path, rng):
    inputs, blobs = batch_inputs(rng), batch_blobs(rng)
    model, graph, _, _ = convert(tmp_path, inputs, BATCH_LAYERS, blobs)
    other = {"data": floats(rng, 4, 3, 4, 5), "more": floats(rng, 4, 3, 4, 5), "ref": inputs["ref"]}
    got = run(model, graph, other)
    cat = np.concatenate([other["data"], other["more"]])
    shifted = np.exp(other["data"] - other["data"].max(axis=0))
    for blob, reference in {"p1": cat[1:4], "p2": cat[4:], "h0": other["more"][:2], "h1": other["more"][2:],
                            "crop": cat[2:4, :2, 1:3, 2:5], "sm": shifted / shifted.sum(axis=0),
                            "am": np.argsort(-other["data"], axis=0)[:2], "flat01": cat.reshape(24, 4, 5),
                            "tile_out": np.tile(other["data"], (2, 1, 1, 1))}.items():
        assert_close_rel(got[blob], reference, what=blob)


@pytest.mark.parametrize("text,batches,reason", [
    # Caffe: CHECK_EQ(bottom_slice_axis % top.size(), 0), a last slice of negative size, CHECK_GE(size - offset, ref)
    (layer("halves", "Slice", "data", "slice_param { axis: 0 }", tops=["h0", "h1"]), (3, 1),
     "does not split into 2 equal parts"),
    (layer("parts", "Slice", "data", "slice_param { axis: 0 slice_point: 3 }", tops=["p0", "p1"]), (2, 1),
     "slice point 3 is beyond the axis size 2"),
    (layer("crop", "Crop", ["data", "ref"], "crop_param { axis: 0 offset: 1 offset: 0 offset: 0 offset: 0 }"), (2, 2),
     "crop offset 1 \\+ size 2 exceeds the size 2 of axis 0"),
])
def test_batch_sizes_caffe_refuses_are_refused_at_run_time(tmp_path, rng, text, batches, reason):
    inputs = {"data": floats(rng, batches[0], 3, 4, 5), "ref": floats(rng, batches[1], 3, 2, 3)}
    model, graph, _, _ = convert(tmp_path, inputs, text)
    with pytest.raises(ValueError, match=reason):
        run(model, graph, inputs)


# ------------------------------------------------------------------------- Parameter blobs of any shape

def parameter(name, *dims):
    shape = " ".join(f"dim: {d}" for d in dims)
    return f'layer {{ name: "{name}" type: "Parameter" top: "{name}" parameter_param {{ shape {{ {shape} }} }} }}\n'


PARAMETERS = (parameter("table", 4, 3) + parameter("images", 2, 3, 4, 5)
              + layer("conv", "Convolution", "images", "convolution_param { num_output: 2 kernel_size: 3 }")
              + layer("relu", "ReLU", "data"))


def parameter_blobs(rng):
    return [("table", "Parameter", [floats(rng, 4, 3)]), ("images", "Parameter", [floats(rng, 2, 3, 4, 5)]),
            ("conv", "Convolution", [floats(rng, 2, 3, 3, 3), floats(rng, 2)])]


def test_parameter_blobs_keep_their_own_batch_whatever_the_input_batch(tmp_path, rng):
    """Caffe's Parameter outputs its blob itself (top shape = parameter_param.shape): (4, 3) and (2, C, H, W)
    stay so for inputs of 3 samples and of 1."""
    blobs = parameter_blobs(rng)
    table, images = blobs[0][2][0], blobs[1][2][0]
    w, b = blobs[2][2]
    for batch in (3, 1):
        data = floats(rng, batch, 3, 4, 5)
        _, _, got = check(tmp_path, {"data": data}, PARAMETERS,
                          {"table": table, "conv": ref_conv_nd(images, w, b), "relu": np.maximum(data, 0)}, blobs)
        assert got["table"].shape == (4, 3) and got["conv"].shape == (2, 2, 2, 3) and got["relu"].shape[0] == batch


# ------------------------------------------------------------------ .keras in safe mode, and JAX

def all_layers(tmp_path, rng):
    inputs, blobs = batch_inputs(rng), batch_blobs(rng)
    text = (BATCH_LAYERS + parameter("table", 4, 3)
            + layer("c3", "Convolution", "vol", "convolution_param { num_output: 2 kernel_size: 3 kernel_size: 2 "
                                                "kernel_size: 2 pad: 1 dilation: 2 stride: 2 group: 2 }")
            + layer("d3", "Deconvolution", "vol", "convolution_param { num_output: 2 kernel_size: 2 stride: 2 }")
            + layer("c_axis", "Convolution", "vol", "convolution_param { num_output: 3 kernel_size: 2 axis: 2 }"))
    inputs["vol"] = floats(rng, 2, 4, 3, 4, 5)
    blobs += [("table", "Parameter", [floats(rng, 4, 3)]),
              ("c3", "Convolution", [floats(rng, 2, 2, 3, 2, 2), floats(rng, 2)]),
              ("d3", "Deconvolution", [floats(rng, 4, 2, 2, 2, 2), floats(rng, 2)]),
              ("c_axis", "Convolution", [floats(rng, 3, 3, 2, 2), floats(rng, 3)])]
    model, graph, prototxt, caffemodel = convert(tmp_path, inputs, text, blobs)
    return model, graph, prototxt, caffemodel, inputs


def test_new_forms_round_trip_a_keras_file_in_safe_mode(tmp_path, rng):
    model, graph, _, _, inputs = all_layers(tmp_path, rng)
    path = tmp_path / "all.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    before, after = run(model, graph, inputs), run(loaded, graph, inputs)
    for blob in graph.outputs:
        assert_close_rel(after[blob], before[blob], tol=1e-6, what=blob)


JAX_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import keras, keras_zoo
    assert keras.backend.backend() == "jax"
    model = keras_zoo.from_caffe(sys.argv[2], sys.argv[3])
    feed = np.load(sys.argv[4])
    outputs = model([feed[f"arr_{index}"] for index in range(len(feed.files))])
    np.savez(sys.argv[5], *[np.asarray(y) for y in outputs])
""")


def test_new_forms_run_on_the_jax_backend(tmp_path, rng):
    pytest.importorskip("jax")
    model, graph, prototxt, caffemodel, inputs = all_layers(tmp_path, rng)
    np.savez(tmp_path / "x.npz", *[to_keras(inputs[name]) for name in graph.inputs])
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(ROOT), str(prototxt), str(caffemodel),
                             str(tmp_path / "x.npz"), str(tmp_path / "out.npz")], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jax_outputs = np.load(tmp_path / "out.npz")
    tf_outputs = model([to_keras(inputs[name]) for name in graph.inputs])
    assert len(tf_outputs) == len(graph.outputs) == len(jax_outputs.files)
    for index, (blob, y) in enumerate(zip(graph.outputs, tf_outputs)):
        assert_close_rel(jax_outputs[f"arr_{index}"], y, tol=1e-5, what=blob)
