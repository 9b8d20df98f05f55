"""BVLC Caffe's inference layers end to end: a small prototxt + a random caffemodel -> keras_zoo.from_caffe,
against NumPy restatements of each layer's .cpp (written here, NCHW) for every type and option, and against
OpenCV's DNN module (an independent Caffe runtime) where it implements the layer and honours the option.

OpenCV ignores LRN's k, Log's base/scale/shift, Concat's concat_dim and InnerProduct's transpose, adds MVN's eps
elsewhere than Caffe, refuses Pooling's round_mode, and lacks Bias, Threshold, Clip, Reduction, ArgMax, Tile, Embed,
SPP, Parameter and test-time STOCHASTIC pooling: those are checked against NumPy only.
"""

import os
import re
import subprocess
import sys
import textwrap
import zipfile

import cv2
import h5py
import keras
import numpy as np
import pytest

import keras_zoo
from converters.caffe import LAYERS, read_caffe
from converters.errors import ConversionError
from converters.writers.caffe import write_caffemodel
from tests.helpers import ROOT, assert_close_rel
from tests.keras_zoo.test_layers import ref_conv, ref_deconv, ref_lrn_across, ref_lrn_within, ref_pool


# ------------------------------------------------------------------------------------------- harness

def to_keras(x):
    x = np.asarray(x, np.float32)
    return np.moveaxis(x, 1, -1) if x.ndim >= 3 else x


def to_caffe(y):
    y = np.asarray(y)
    return np.moveaxis(y, -1, 1) if y.ndim >= 3 else y


def header(inputs):
    return "".join(f'input: "{name}" input_shape {{ {" ".join(f"dim: {d}" for d in x.shape)} }}\n'
                   for name, x in inputs.items())


def convert(tmp_path, inputs, layers_text, blobs=(), name="net"):
    """(model, graph, prototxt, caffemodel) of a net: ``inputs`` {name: NCHW array} declared, then the layers."""
    prototxt = tmp_path / f"{name}.prototxt"
    prototxt.write_text(f'name: "{name}"\n' + header(inputs) + textwrap.dedent(layers_text))
    caffemodel = None
    if blobs:
        caffemodel = write_caffemodel(tmp_path / f"{name}.caffemodel",
                                      [(n, t, [np.asarray(b, np.float32) for b in bl]) for n, t, bl in blobs])
    model = keras_zoo.from_caffe(prototxt, caffemodel)
    return model, read_caffe(prototxt, caffemodel), prototxt, caffemodel


def run(model, graph, inputs):
    """{output blob: NCHW value} of ``model`` on the NCHW ``inputs``."""
    feed = [to_keras(inputs[name]) for name in graph.inputs]
    outputs = model(feed[0] if len(feed) == 1 else feed)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    assert len(outputs) == len(graph.outputs)
    return {blob: to_caffe(y) for blob, y in zip(graph.outputs, outputs)}


def opencv(prototxt, caffemodel, inputs, names):
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel) if caffemodel else "")
    net.enableWinograd(False)
    net.enableFusion(False)
    for name, x in inputs.items():
        net.setInput(np.ascontiguousarray(x, np.float32), name)
    return dict(zip(names, net.forward(list(names))))


def layers_for(layers_text, wanted):
    """The layers of ``layers_text`` that the layers named ``wanted`` need (themselves included), in order."""
    blocks = re.split(r"\n(?=layer \{)", textwrap.dedent(layers_text).strip())
    needed, kept = set(wanted), []
    for block in reversed(blocks):
        name = re.search(r'name: "([^"]+)"', block).group(1)
        if name in needed or needed.intersection(re.findall(r'top: "([^"]+)"', block)):
            kept.append(block)
            needed.update(re.findall(r'bottom: "([^"]+)"', block))
    return "\n".join(reversed(kept)) + "\n", needed


def check(tmp_path, inputs, layers_text, expected, blobs=(), *, cv=(), tol=1e-4):
    """Convert, run and compare every blob of ``expected`` with it (and the blobs in ``cv`` with OpenCV, which
    runs a net of only the layers those need)."""
    model, graph, prototxt, caffemodel = convert(tmp_path, inputs, layers_text, blobs)
    got = run(model, graph, inputs)
    for blob, reference in expected.items():
        assert_close_rel(got[blob], reference, tol=tol, what=f"blob '{blob}' against NumPy")
    if cv:
        prototxt = tmp_path / "opencv.prototxt"
        text, needed = layers_for(layers_text, cv)
        used = {name: x for name, x in inputs.items() if name in needed}
        prototxt.write_text(header(used) + text)
        for blob, reference in opencv(prototxt, caffemodel, used, cv).items():
            assert_close_rel(got[blob], reference.reshape(got[blob].shape), tol=tol,
                             what=f"blob '{blob}' against OpenCV")
    return model, graph, got


@pytest.fixture
def x4(rng):
    return rng.standard_normal((2, 3, 6, 5)).astype(np.float32)


@pytest.fixture
def x2(rng):
    return rng.standard_normal((2, 7)).astype(np.float32)


def layer(name, layer_type, bottoms, params="", tops=None):
    bottoms = [bottoms] if isinstance(bottoms, str) else bottoms
    tops = [name] if tops is None else tops
    return (f'layer {{ name: "{name}" type: "{layer_type}" '
            + "".join(f'bottom: "{b}" ' for b in bottoms) + "".join(f'top: "{t}" ' for t in tops) + f"{params} }}\n")


# ------------------------------------------------------------------------------------------- neurons

def softplus(x):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(np.minimum(x, 0))))


def test_neurons_on_4d_and_2d_inputs(tmp_path, x4, x2):
    for data in (x4, x2):
        sigmoid = 1 / (1 + np.exp(-data.astype(np.float64)))
        text = (layer("abs", "AbsVal", "data") + layer("bnll", "BNLL", "data")
                + layer("relu", "ReLU", "data") + layer("leaky", "ReLU", "data", "relu_param { negative_slope: 0.2 }")
                + layer("elu", "ELU", "data", "elu_param { alpha: 0.7 }") + layer("sig", "Sigmoid", "data")
                + layer("tanh", "TanH", "data") + layer("swish", "Swish", "data")
                + layer("swish_b", "Swish", "data", "swish_param { beta: 1.7 }")
                + layer("thr", "Threshold", "data", "threshold_param { threshold: 0.3 }")
                + layer("thr0", "Threshold", "data")
                + layer("clip", "Clip", "data", "clip_param { min: -0.4 max: 0.6 }")
                + layer("pow", "Power", "data", "power_param { power: 2 scale: 0.5 shift: 1.5 }")
                + layer("pow0", "Power", "data", "power_param { power: 3 scale: 0 shift: 2 }")
                + layer("drop", "Dropout", "data", "dropout_param { dropout_ratio: 0.4 }"))
        expected = {"abs": np.abs(data), "bnll": softplus(data), "relu": np.maximum(data, 0),
                    "leaky": np.where(data > 0, data, 0.2 * data),
                    "elu": np.maximum(data, 0) + 0.7 * (np.exp(np.minimum(data, 0)) - 1),
                    "sig": sigmoid, "tanh": np.tanh(data), "swish": data * sigmoid,
                    "swish_b": data / (1 + np.exp(-1.7 * data)), "thr": (data > np.float32(0.3)).astype(float),
                    "thr0": (data > 0).astype(float), "clip": np.clip(data, np.float32(-0.4), np.float32(0.6)),
                    "pow": (1.5 + 0.5 * data) ** 2, "pow0": np.full(data.shape, 8.0), "drop": data}
        check(tmp_path, {"data": data}, text, expected,
              cv=["abs", "bnll", "relu", "leaky", "elu", "sig", "tanh", "swish", "pow"] if data.ndim == 4 else ())


@pytest.mark.parametrize("base,scale,shift", [(-1, 1, 0), (2, 0.5, 1), (-1, -0.3, 0.7), (10, 1, -1)])
def test_exp_and_log(tmp_path, x4, base, scale, shift):
    params = f"base: {base} scale: {scale} shift: {shift}"
    positive = (np.abs(x4) + 1.5) * np.sign(scale)  # Log's argument shift + scale * x stays positive
    log_base = 1.0 if base == -1 else np.log(base)
    e = np.e if base == -1 else base
    expected = {"exp": e ** (shift + scale * x4.astype(np.float64)),
                "log": np.log(shift + scale * positive.astype(np.float64)) / log_base}
    data = {"data": x4, "pos": positive}
    text = (layer("exp", "Exp", "data", f"exp_param {{ {params} }}")
            + layer("log", "Log", "pos", f"log_param {{ {params} }}"))
    # OpenCV honours Exp's parameters but not Log's
    check(tmp_path, data, text, expected, cv=["exp"])


def test_prelu_per_channel_shared_and_2d(tmp_path, x4, x2, rng):
    alpha = rng.uniform(0, 0.5, 3).astype(np.float32)
    text = layer("pr", "PReLU", "data") + layer("prs", "PReLU", "data", "prelu_param { channel_shared: true }")
    check(tmp_path, {"data": x4}, text,
          {"pr": np.where(x4 > 0, x4, alpha[None, :, None, None] * x4), "prs": np.where(x4 > 0, x4, 0.3 * x4)},
          [("pr", "PReLU", [alpha]), ("prs", "PReLU", [[0.3]])], cv=["pr", "prs"])
    alpha = rng.uniform(0, 0.5, 7).astype(np.float32)
    check(tmp_path, {"data": x2}, layer("pr", "PReLU", "data"), {"pr": np.where(x2 > 0, x2, alpha * x2)},
          [("pr", "PReLU", [alpha])])


# --------------------------------------------------------------------------- normalisation, scaling

def test_batchnorm_global_and_batch_statistics(tmp_path, x4, x2, rng):
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    text = (layer("bn", "BatchNorm", "data", "batch_norm_param { eps: 0.001 }")
            + layer("bnb", "BatchNorm", "data", "batch_norm_param { use_global_stats: false }"))
    c = (None, slice(None), None, None)
    batch_mean, batch_var = x4.mean(axis=(0, 2, 3)), x4.var(axis=(0, 2, 3))
    check(tmp_path, {"data": x4}, text,
          {"bn": (x4 - mean[c]) / np.sqrt(var[c] + 0.001),
           "bnb": (x4 - batch_mean[c]) / np.sqrt(batch_var[c] + 1e-5)},
          [("bn", "BatchNorm", [mean * 2, var * 2, [2.0]]), ("bnb", "BatchNorm", [mean, var, [1.0]])], cv=["bn"])
    mean, var = rng.standard_normal(7), rng.uniform(0.5, 2, 7)
    check(tmp_path, {"data": x2}, layer("bn", "BatchNorm", "data"), {"bn": (x2 - mean) / np.sqrt(var + 1e-5)},
          [("bn", "BatchNorm", [mean, var, [1.0]])])


def test_scale_and_bias_one_bottom_every_axis_and_num_axes(tmp_path, x4, rng):
    w = {key: rng.uniform(0.5, 1.5, shape).astype(np.float32) for key, shape in
         {"c": (3,), "chw": (3, 6, 5), "hw": (6, 5), "h": (6,), "nc": (1, 3), "s": (), "w": (5,)}.items()}
    b = {key: rng.standard_normal(value.shape).astype(np.float32) for key, value in w.items()}
    text = (layer("sc", "Scale", "data", "scale_param { bias_term: true }")
            + layer("sc_chw", "Scale", "data", "scale_param { num_axes: -1 }")
            + layer("sc_hw", "Scale", "data", "scale_param { axis: 2 num_axes: 2 bias_term: true }")
            + layer("sc_h", "Scale", "data", "scale_param { axis: -2 }")
            + layer("sc_nc", "Scale", "data", "scale_param { axis: 0 num_axes: 2 bias_term: true }")
            + layer("sc_s", "Scale", "data", "scale_param { num_axes: 0 }")
            + layer("bi", "Bias", "data") + layer("bi_w", "Bias", "data", "bias_param { axis: 3 }")
            + layer("bi_nc", "Bias", "data", "bias_param { axis: 0 num_axes: 2 }")
            + layer("bi_s", "Bias", "data", "bias_param { num_axes: 0 }"))
    blobs = [("sc", "Scale", [w["c"], b["c"]]), ("sc_chw", "Scale", [w["chw"]]), ("sc_hw", "Scale", [w["hw"], b["hw"]]),
             ("sc_h", "Scale", [w["h"]]), ("sc_nc", "Scale", [w["nc"], b["nc"]]), ("sc_s", "Scale", [w["s"]]),
             ("bi", "Bias", [b["c"]]), ("bi_w", "Bias", [b["w"]]), ("bi_nc", "Bias", [b["nc"]]),
             ("bi_s", "Bias", [b["s"]])]
    c, nc = (None, slice(None), None, None), (slice(None), slice(None), None, None)
    expected = {"sc": x4 * w["c"][c] + b["c"][c], "sc_chw": x4 * w["chw"][None], "sc_hw": x4 * w["hw"] + b["hw"],
                "sc_h": x4 * w["h"][:, None], "sc_nc": x4 * w["nc"][nc] + b["nc"][nc], "sc_s": x4 * w["s"],
                "bi": x4 + b["c"][c], "bi_w": x4 + b["w"], "bi_nc": x4 + b["nc"][nc], "bi_s": x4 + b["s"]}
    check(tmp_path, {"data": x4}, text, expected, blobs, cv=["sc", "sc_chw"])  # OpenCV has no Bias layer


def test_scale_and_bias_with_a_second_bottom_on_axis_0(tmp_path, x4, x2, rng):
    """The squeeze-and-excitation gate: an (N, C) blob times the (N, C, H, W) features (Scale axis 0)."""
    gate_bias = rng.standard_normal((1, 3)).astype(np.float32)
    text = (layer("pool", "Pooling", "data", "pooling_param { pool: AVE global_pooling: true }")
            + layer("gate", "Flatten", "pool") + layer("prob", "Sigmoid", "gate")
            + layer("se", "Scale", ["data", "prob"], "scale_param { axis: 0 }")
            + layer("se_b", "Scale", ["data", "prob"], "scale_param { axis: 0 bias_term: true }")
            + layer("add", "Bias", ["data", "prob"], "bias_param { axis: 0 }")
            + layer("same", "Scale", ["data", "data"], "scale_param { axis: 0 }")
            + layer("rows", "Reduction", "data", "reduction_param { axis: 3 }")  # (N, C, H)
            + layer("by_rows", "Scale", ["data", "rows"], "scale_param { axis: 0 }"))
    prob = 1 / (1 + np.exp(-x4.mean(axis=(2, 3))))
    nc = (slice(None), slice(None), None, None)
    expected = {"se": x4 * prob[nc], "se_b": x4 * prob[nc] + gate_bias[nc], "add": x4 + prob[nc], "same": x4 * x4,
                "by_rows": x4 * x4.sum(axis=3, keepdims=True)}
    check(tmp_path, {"data": x4}, text, expected, [("se_b", "Scale", [gate_bias])])
    # (N, C) features times an (N, C) gate; an (N,) per-sample factor on (N, C)
    text = (layer("g", "Sigmoid", "data") + layer("se", "Scale", ["data", "g"], "scale_param { axis: 0 }")
            + layer("one", "Reduction", "data", "reduction_param { axis: 1 operation: MEAN }")
            + layer("per_sample", "Scale", ["data", "one"], "scale_param { axis: 0 }"))
    check(tmp_path, {"data": x2}, text, {"se": x2 / (1 + np.exp(-x2)), "per_sample": x2 * x2.mean(axis=1)[:, None]})


def test_lrn_across_with_k_and_within(tmp_path, x4, rng):
    data = rng.standard_normal((2, 7, 6, 5)).astype(np.float32) * 3
    text = (layer("across", "LRN", "data", "lrn_param { local_size: 5 alpha: 0.3 beta: 0.75 k: 2 }")
            + layer("across1", "LRN", "data", "lrn_param { local_size: 3 alpha: 0.2 beta: 0.6 }")
            + layer("within", "LRN", "data", "lrn_param { local_size: 3 alpha: 0.4 beta: 0.7 norm_region: "
                                             "WITHIN_CHANNEL }"))
    expected = {"across": ref_lrn_across(data, 5, 0.3, 0.75, 2.0), "across1": ref_lrn_across(data, 3, 0.2, 0.6, 1.0),
                "within": ref_lrn_within(data, 3, 0.4, 0.7)}
    check(tmp_path, {"data": data}, text, expected, cv=["across1", "within"])  # OpenCV ignores k


@pytest.mark.parametrize("normalize_variance", [True, False])
@pytest.mark.parametrize("across_channels", [True, False])
def test_mvn_every_option_2d_3d_4d(tmp_path, rng, normalize_variance, across_channels):
    params = (f"mvn_param {{ normalize_variance: {str(normalize_variance).lower()} "
              f"across_channels: {str(across_channels).lower()} eps: 0.01 }}")
    for shape in ((2, 3, 6, 5), (2, 4, 9), (2, 6)):
        data = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        axes = tuple(range(1, data.ndim)) if across_channels else tuple(range(2, data.ndim))
        centred = data - (data.mean(axis=axes, keepdims=True) if axes else data)
        if normalize_variance:
            variance = (centred ** 2).mean(axis=axes, keepdims=True) if axes else centred ** 2
            centred = centred / (np.sqrt(variance) + np.float32(0.01))
        check(tmp_path, {"data": data}, layer("mvn", "MVN", "data", params), {"mvn": centred},
              cv=["mvn"] if data.ndim == 4 and not normalize_variance else ())
    if normalize_variance:  # OpenCV adds eps elsewhere than Caffe's sqrt(variance) + eps: its default 1e-9 only
        data = (rng.standard_normal((2, 3, 6, 5)) * 2 + 1).astype(np.float32)
        model, graph, _ = check(tmp_path, {"data": data}, layer("mvn", "MVN", "data", params.replace("eps: 0.01", "")),
                                {}, cv=["mvn"])


# --------------------------------------------------------------------------------------- reductions

REDUCE = {"SUM": lambda v, a: v.sum(axis=a), "ASUM": lambda v, a: np.abs(v).sum(axis=a),
          "SUMSQ": lambda v, a: (v ** 2).sum(axis=a), "MEAN": lambda v, a: v.mean(axis=a)}


@pytest.mark.parametrize("operation", list(REDUCE))
def test_reduction_every_operation_axis_and_coeff(tmp_path, x4, x2, operation):
    text = "".join(layer(f"r{axis}", "Reduction", "data", f"reduction_param {{ operation: {operation} axis: {axis} "
                                                          f"coeff: {coeff} }}")
                   for axis, coeff in ((1, 1), (2, -0.5), (3, 2)))
    text += layer("r_last", "Reduction", "data", f"reduction_param {{ operation: {operation} axis: -1 }}")
    text += layer("r_all", "Reduction", "data", f"reduction_param {{ operation: {operation} }}")  # axis 0
    reduce = REDUCE[operation]
    expected = {"r1": reduce(x4, (1, 2, 3)), "r2": -0.5 * reduce(x4, (2, 3)), "r3": 2 * reduce(x4, 3),
                "r_last": reduce(x4, 3), "r_all": np.array([reduce(x4, (0, 1, 2, 3))])}
    check(tmp_path, {"data": x4}, text, expected)
    check(tmp_path, {"data": x2}, layer("r", "Reduction", "data", f"reduction_param {{ operation: {operation} "
                                                                    "axis: 1 coeff: 3 }"), {"r": 3 * reduce(x2, 1)})


def ref_argmax(x, top_k=1, out_max_val=False, axis=None):
    """Caffe's ArgMax: (value, index) pairs sorted descending (equal values: the higher index first)."""
    if axis is None:
        flat = x.reshape(len(x), -1)
        index = np.broadcast_to(np.arange(flat.shape[1]), flat.shape)
        order = np.lexsort((-index, -flat), axis=-1)[:, :top_k]
        values = np.take_along_axis(flat, order, axis=-1)
        out = np.stack([order, values], axis=1) if out_max_val else order[:, None]
        return out.reshape(len(x), out.shape[1], top_k, *([1] * (max(x.ndim, 3) - 3)))
    moved = np.moveaxis(x, axis, -1)
    index = np.broadcast_to(np.arange(moved.shape[-1]), moved.shape)
    order = np.lexsort((-index, -moved), axis=-1)[..., :top_k]
    out = np.take_along_axis(moved, order, axis=-1) if out_max_val else order
    return np.moveaxis(out, -1, axis)


def test_argmax_every_option_with_ties(tmp_path, rng):
    data = np.round(rng.uniform(0, 3, (2, 3, 4, 5))).astype(np.float32)  # many equal values
    options = {"a1": (1, False, None), "a3v": (3, True, None), "c2": (2, False, 1), "c2v": (2, True, 1),
               "h3": (3, False, 2), "wv": (1, True, -1)}
    text = "".join(layer(name, "ArgMax", "data", f"argmax_param {{ top_k: {k} out_max_val: {str(v).lower()}"
                                                 + ("" if axis is None else f" axis: {axis}") + " }")
                   for name, (k, v, axis) in options.items())
    expected = {name: ref_argmax(data, k, v, None if axis is None else axis % 4)
                for name, (k, v, axis) in options.items()}
    check(tmp_path, {"data": data}, text, expected)
    flat = np.round(rng.uniform(0, 3, (2, 9))).astype(np.float32)
    text = layer("a", "ArgMax", "data", "argmax_param { top_k: 4 out_max_val: true }") + layer(
        "b", "ArgMax", "data", "argmax_param { axis: 1 top_k: 2 }")
    check(tmp_path, {"data": flat}, text, {"a": ref_argmax(flat, 4, True), "b": ref_argmax(flat, 2, False, 1)})


# ---------------------------------------------------------------------------------- combining, shaping

def test_eltwise_concat_slice_split_crop(tmp_path, x4, rng):
    other = rng.standard_normal(x4.shape).astype(np.float32)
    ref = np.zeros((2, 3, 4, 2), np.float32)
    text = (layer("sum", "Eltwise", ["data", "other", "data"], "eltwise_param { operation: SUM coeff: 2 coeff: -1 "
                                                               "coeff: 0.5 }")
            + layer("sum1", "Eltwise", ["data", "other"]) + layer("prod", "Eltwise", ["data", "other", "data"],
                                                                  "eltwise_param { operation: PROD }")
            + layer("max", "Eltwise", ["data", "other"], "eltwise_param { operation: MAX }")
            + layer("cat", "Concat", ["data", "other"]) + layer("cat_h", "Concat", ["data", "other"],
                                                                "concat_param { axis: 2 }")
            + layer("cat_w", "Concat", ["data", "other"], "concat_param { concat_dim: 3 }")
            + layer("sl", "Slice", "cat", "slice_param { slice_point: 1 slice_point: 4 }", ["s1", "s2", "s3"])
            + layer("slh", "Slice", "data", "slice_param { axis: 2 }", ["h1", "h2"])
            + layer("split", "Split", "s3", tops=["sp1", "sp2"])
            + layer("crop", "Crop", ["data", "ref"], "crop_param { offset: 1 offset: 2 }")
            + layer("crop1", "Crop", ["data", "ref"], "crop_param { axis: 1 offset: 0 offset: 2 offset: 3 }"))
    cat = np.concatenate([x4, other], axis=1)
    expected = {"sum": 2 * x4 - other + 0.5 * x4, "sum1": x4 + other, "prod": x4 * other * x4,
                "max": np.maximum(x4, other), "cat_h": np.concatenate([x4, other], axis=2),
                "cat_w": np.concatenate([x4, other], axis=3), "s1": cat[:, :1], "s2": cat[:, 1:4],
                "h1": x4[:, :, :3], "h2": x4[:, :, 3:], "sp1": cat[:, 4:], "sp2": cat[:, 4:],
                "crop": x4[:, :, 1:5, 2:4], "crop1": x4[:, :, 2:6, 3:5]}
    check(tmp_path, {"data": x4, "other": other, "ref": ref}, text, expected,
          cv=["sum", "prod", "max", "cat_h", "crop", "crop1"])


def test_flatten_reshape_tile_softmax(tmp_path, x4):
    text = (layer("flat", "Flatten", "data") + layer("flat_hw", "Flatten", "data", "flatten_param { axis: 2 }")
            + layer("flat_ch", "Flatten", "data", "flatten_param { axis: 1 end_axis: 2 }")
            + layer("rs", "Reshape", "data", "reshape_param { shape { dim: 0 dim: -1 dim: 10 } }")
            + layer("rs_mid", "Reshape", "data", "reshape_param { shape { dim: 2 dim: 3 } axis: 2 num_axes: 1 }")
            + layer("rs_tail", "Reshape", "data", "reshape_param { shape { dim: 1 } axis: -1 num_axes: 0 }")
            + layer("tile", "Tile", "data", "tile_param { axis: 2 tiles: 3 }")
            + layer("tile_c", "Tile", "data", "tile_param { tiles: 2 }")
            + layer("sm", "Softmax", "data") + layer("sm_h", "Softmax", "data", "softmax_param { axis: 2 }")
            + layer("sm_w", "Softmax", "data", "softmax_param { axis: -1 }"))

    def softmax(v, axis):
        e = np.exp(v - v.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    expected = {"flat": x4.reshape(2, -1), "flat_hw": x4.reshape(2, 3, 30), "flat_ch": x4.reshape(2, 18, 5),
                "rs": x4.reshape(2, 9, 10), "rs_mid": x4.reshape(2, 3, 2, 3, 5),
                "rs_tail": x4.reshape(2, 3, 6, 5, 1),
                "tile": np.tile(x4, (1, 1, 3, 1)), "tile_c": np.tile(x4, (1, 2, 1, 1)), "sm": softmax(x4, 1),
                "sm_h": softmax(x4, 2), "sm_w": softmax(x4, 3)}
    check(tmp_path, {"data": x4}, text, expected, cv=["flat", "flat_hw", "rs", "sm", "sm_h", "sm_w"])
    data = x4.reshape(2, 3, 30)
    check(tmp_path, {"data": data}, layer("sm", "Softmax", "data", "softmax_param { axis: 2 }")
          + layer("rs", "Reshape", "data", "reshape_param { shape { dim: 0 dim: 0 dim: 6 dim: -1 } }"),
          {"sm": softmax(data, 2), "rs": data.reshape(2, 3, 6, 5)})


def test_shape_layers_on_2d_inputs(tmp_path, x2, rng):
    other = rng.standard_normal(x2.shape).astype(np.float32)
    text = (layer("tile", "Tile", "data", "tile_param { tiles: 3 }") + layer("sm", "Softmax", "data")
            + layer("cat", "Concat", ["data", "other"]) + layer("sl", "Slice", "cat", "slice_param { slice_point: 3 }",
                                                                ["s1", "s2"])
            + layer("sum", "Eltwise", ["data", "other"], "eltwise_param { coeff: 0.5 coeff: -2 }")
            + layer("rs", "Reshape", "data", "reshape_param { shape { dim: 0 dim: 1 dim: -1 } }"))
    e = np.exp(x2 - x2.max(axis=1, keepdims=True))
    cat = np.concatenate([x2, other], axis=1)
    check(tmp_path, {"data": x2, "other": other}, text,
          {"tile": np.tile(x2, (1, 3)), "sm": e / e.sum(axis=1, keepdims=True), "s1": cat[:, :3], "s2": cat[:, 3:],
           "sum": 0.5 * x2 - 2 * other, "rs": x2.reshape(2, 1, 7)}, cv=["sm", "sum"])


# ----------------------------------------------------------------------- convolution, pooling, dense

def test_convolution_and_deconvolution_options(tmp_path, rng):
    data = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w1, b1 = rng.standard_normal((6, 2, 3, 2)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    w2 = rng.standard_normal((4, 3, 4, 4)).astype(np.float32)
    w3, b3 = rng.standard_normal((5, 4, 1, 1)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    text = (layer("conv", "Convolution", "data", "convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 "
                                                 "stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 group: 2 dilation: 2 }")
            + layer("up", "Deconvolution", "data", "convolution_param { num_output: 6 kernel_size: 4 stride: 2 pad: 1 "
                                                   "group: 2 bias_term: false }")
            + layer("pw", "Convolution", "data", "convolution_param { num_output: 5 kernel_size: 1 }"))
    expected = {"conv": ref_conv(data, w1, b1, (2, 1), (1, 1, 0, 0), (2, 2), 2),
                "up": ref_deconv(data, w2, np.zeros(6), (2, 2), (1, 1, 1, 1), (1, 1), 2),
                "pw": ref_conv(data, w3, b3)}
    check(tmp_path, {"data": data}, text, expected,
          [("conv", "Convolution", [w1, b1]), ("up", "Deconvolution", [w2]), ("pw", "Convolution", [w3, b3])],
          cv=list(expected))


def test_1d_convolution_and_deconvolution(tmp_path, rng):
    data = rng.standard_normal((2, 4, 11)).astype(np.float32)
    w1, b1 = rng.standard_normal((6, 2, 3)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    w2 = rng.standard_normal((4, 3, 4)).astype(np.float32)
    text = (layer("conv", "Convolution", "data", "convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 "
                                                 "group: 2 dilation: 2 }")
            + layer("up", "Deconvolution", "data", "convolution_param { num_output: 3 kernel_size: 4 stride: 3 pad: 1 "
                                                   "bias_term: false }"))
    expected = {"conv": ref_conv(data[..., None], w1[..., None], b1, (2, 1), (1, 1, 0, 0), (2, 1), 2)[..., 0],
                "up": ref_deconv(data[..., None], w2[..., None], np.zeros(3), (3, 1), (1, 1, 0, 0))[..., 0]}
    check(tmp_path, {"data": data}, text, expected, [("conv", "Convolution", [w1, b1]), ("up", "Deconvolution", [w2])])


def ref_stochastic(x, kernel, stride, rounding="ceil"):
    """Caffe's test-time STOCHASTIC pooling (pooling_layer.cu, StoPoolForwardTest): sum(x^2) / sum(x) over
    [i*s, min(i*s + k, H)), 0 where the sum is not positive."""
    (kh, kw), (sh, sw) = kernel, stride
    _, _, height, width = x.shape
    count = (lambda size, k, s: int(np.ceil((size - k) / s)) + 1 if rounding == "ceil" else (size - k) // s + 1)
    oh, ow = count(height, kh, sh), count(width, kw, sw)
    y = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = x[:, :, i * sh:min(i * sh + kh, height), j * sw:min(j * sw + kw, width)].astype(np.float64)
            total = window.sum(axis=(2, 3))
            y[:, :, i, j] = np.where(total > 0, (window ** 2).sum(axis=(2, 3)) / np.where(total > 0, total, 1), 0)
    return y


def test_pooling_max_ave_stochastic(tmp_path, rng):
    data = rng.standard_normal((2, 3, 9, 7)).astype(np.float32) + 0.3  # some windows sum to <= 0
    text = (layer("max", "Pooling", "data", "pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 }")
            + layer("ave", "Pooling", "data", "pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 stride: 2 pad_h: 1 "
                                              "pad_w: 1 }")
            + layer("floor", "Pooling", "data", "pooling_param { pool: AVE kernel_size: 2 stride: 2 "
                                                "round_mode: FLOOR }")
            + layer("gmax", "Pooling", "data", "pooling_param { pool: MAX global_pooling: true }")
            + layer("sto", "Pooling", "data", "pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }")
            + layer("sto_hw", "Pooling", "data", "pooling_param { pool: STOCHASTIC kernel_h: 2 kernel_w: 3 stride_h: 1 "
                                                 "stride_w: 3 }")
            + layer("sto_floor", "Pooling", "data", "pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 "
                                                    "round_mode: FLOOR }")
            + layer("sto_g", "Pooling", "data", "pooling_param { pool: STOCHASTIC global_pooling: true }"))
    expected = {"max": ref_pool(data, "max", (3, 3), (2, 2), (1, 1, 1, 1)),
                "ave": ref_pool(data, "avg", (3, 2), (2, 2), (1, 1, 1, 1)),
                "floor": ref_pool(data, "avg", (2, 2), (2, 2), rounding="floor"),
                "gmax": data.max(axis=(2, 3), keepdims=True),
                "sto": ref_stochastic(data, (3, 3), (2, 2)), "sto_hw": ref_stochastic(data, (2, 3), (1, 3)),
                "sto_floor": ref_stochastic(data, (2, 2), (2, 2), "floor"),
                "sto_g": ref_stochastic(data, (9, 7), (1, 1))}
    assert (expected["sto"] == 0).any() and (expected["sto"] > 0).any()
    check(tmp_path, {"data": data}, text, expected, cv=["max", "ave", "gmax"])  # OpenCV reads no round_mode


@pytest.mark.parametrize("pool", ["MAX", "AVE", "STOCHASTIC"])
def test_spp(tmp_path, rng, pool):
    size = (8, 12) if pool == "STOCHASTIC" else (9, 7)  # no padding for STOCHASTIC: H, W multiples of 2^levels
    data = np.abs(rng.standard_normal((2, 3, *size))).astype(np.float32)
    text = (layer("spp", "SPP", "data", f"spp_param {{ pyramid_height: 3 pool: {pool} }}")
            + layer("spp1", "SPP", "data", f"spp_param {{ pyramid_height: 1 pool: {pool} }}"))
    height, width = size
    pieces = []
    for level in range(3):
        bins = 2 ** level
        kh, kw = -(-height // bins), -(-width // bins)
        ph, pw = (kh * bins - height + 1) // 2, (kw * bins - width + 1) // 2
        if pool == "STOCHASTIC":
            pooled = ref_stochastic(data, (kh, kw), (kh, kw))
        else:
            pooled = ref_pool(data, "max" if pool == "MAX" else "avg", (kh, kw), (kh, kw), (ph, ph, pw, pw))
        pieces.append(pooled.reshape(2, -1))
    level0 = pieces[0].reshape(2, 3, 1, 1)
    check(tmp_path, {"data": data}, text, {"spp": np.concatenate(pieces, axis=1), "spp1": level0})


@pytest.mark.parametrize("shape,axis", [((2, 3, 4, 5), 1), ((2, 3, 4, 5), 2), ((2, 3, 4, 5), 3), ((2, 3, 4, 5), -1),
                                        ((2, 6, 5), 2), ((2, 7), 1)])
def test_inner_product_any_axis_and_transpose(tmp_path, rng, shape, axis):
    data = rng.standard_normal(shape).astype(np.float32)
    canonical = axis % len(shape)
    features = int(np.prod(shape[canonical:]))
    w, b = rng.standard_normal((4, features)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    text = (layer("ip", "InnerProduct", "data", f"inner_product_param {{ num_output: 4 axis: {axis} }}")
            + layer("ipt", "InnerProduct", "data", f"inner_product_param {{ num_output: 4 axis: {axis} "
                                                    "transpose: true }")
            + layer("ipn", "InnerProduct", "data", f"inner_product_param {{ num_output: 4 axis: {axis} "
                                                    "bias_term: false }"))
    flat = data.reshape(*shape[:canonical], features)
    expected = {"ip": flat @ w.T + b, "ipt": flat @ w.T + b, "ipn": flat @ w.T}
    blobs = [("ip", "InnerProduct", [w, b]), ("ipt", "InnerProduct", [w.T.copy(), b]), ("ipn", "InnerProduct", [w])]
    check(tmp_path, {"data": data}, text, expected, blobs, cv=["ip", "ipn"])  # OpenCV ignores transpose


def test_embed_with_and_without_bias(tmp_path, rng):
    words = rng.integers(0, 10, (2, 5)).astype(np.float32)
    images = rng.integers(0, 10, (2, 2, 3, 4)).astype(np.float32)
    w, b = rng.standard_normal((10, 6)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    text = (layer("emb", "Embed", "words", "embed_param { num_output: 6 input_dim: 10 }")
            + layer("emb_nb", "Embed", "words", "embed_param { num_output: 6 input_dim: 10 bias_term: false }")
            + layer("emb4", "Embed", "images", "embed_param { num_output: 6 input_dim: 10 }"))
    index, index4 = words.astype(int), images.astype(int)
    model, _, got = check(tmp_path, {"words": words, "images": images}, text,
                          {"emb": w[index] + b, "emb_nb": w[index], "emb4": w[index4] + b},
                          [("emb", "Embed", [w, b]), ("emb_nb", "Embed", [w]), ("emb4", "Embed", [w, b])])
    assert got["emb4"].shape == (2, 2, 3, 4, 6)


def test_parameter_input_and_silence(tmp_path, x4, rng):
    value = rng.standard_normal((1, 3, 6, 5)).astype(np.float32)
    prototxt_inputs = {}
    text = ('layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 6 dim: 5 } } }\n'
            'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 1 dim: 3 dim: 6 dim: 5 } } }\n'
            + layer("sum", "Eltwise", ["data", "p"]) + layer("unused", "ReLU", "data")
            + layer("sil", "Silence", "unused"))
    model, graph, prototxt, caffemodel = convert(tmp_path, prototxt_inputs, text, [("p", "Parameter", [value])])
    assert graph.outputs == ["sum"]  # the silenced blob is no output
    assert_close_rel(run(model, graph, {"data": x4})["sum"], x4 + value)


# ---------------------------------------------------------------------------- shared weights by name

SIAMESE = """
layer { name: "conv_a" type: "Convolution" bottom: "a" top: "conv_a" param { name: "conv_w" } param { name: "conv_b" }
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "conv_b" type: "Convolution" bottom: "b" top: "conv_b" param { name: "conv_w" } param { name: "conv_b" }
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "ip_a" type: "InnerProduct" bottom: "conv_a" top: "ip_a" param { name: "ip_w" } param { name: "ip_b" }
        inner_product_param { num_output: 5 } }
layer { name: "ip_b" type: "InnerProduct" bottom: "conv_b" top: "ip_b" param { name: "ip_w" } param { name: "ip_b" }
        inner_product_param { num_output: 5 } }
"""


def test_weights_shared_by_param_name_are_one_keras_variable(tmp_path, rng):
    a, b = (rng.standard_normal((2, 3, 6, 5)).astype(np.float32) for _ in range(2))
    w, bias = rng.standard_normal((4, 3, 3, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    wi, bi = rng.standard_normal((5, 120)).astype(np.float32) * 0.1, rng.standard_normal(5).astype(np.float32)
    blobs = [("conv_a", "Convolution", [w, bias]), ("conv_b", "Convolution", [w, bias]),
             ("ip_a", "InnerProduct", [wi, bi]), ("ip_b", "InnerProduct", [wi, bi])]

    def expected(kernel):
        return {f"ip_{s}": ref_conv(v, kernel, bias, pads=(1, 1, 1, 1)).reshape(2, -1) @ wi.T + bi
                for s, v in (("a", a), ("b", b))}

    model, graph, got = check(tmp_path, {"a": a, "b": b}, SIAMESE, expected(w), blobs, cv=["ip_a", "ip_b"])
    assert [node.attrs.get("shares") for node in graph.nodes] == [None, "conv_a", None, "ip_a"]
    assert sorted(v.path for v in model.weights) == ["conv_a/bias", "conv_a/kernel", "ip_a/bias", "ip_a/kernel"]
    # one variable: changing it changes both branches
    w2 = rng.standard_normal(w.shape).astype(np.float32)
    model.get_layer("conv_a").kernel.assign(np.transpose(w2, (2, 3, 1, 0)))
    for blob, reference in expected(w2).items():
        assert_close_rel(run(model, graph, {"a": a, "b": b})[blob], reference, what=blob)
    # ... and the .keras file holds it once
    path = tmp_path / "siamese.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        archive.extract("model.weights.h5", tmp_path)
    arrays = []
    with h5py.File(tmp_path / "model.weights.h5") as weights:
        weights.visititems(lambda name, item: arrays.append(name) if isinstance(item, h5py.Dataset) else None)
    assert len(arrays) == 4, arrays
    loaded = keras.saving.load_model(path, safe_mode=True)
    loaded.get_layer("conv_a").kernel.assign(np.transpose(w, (2, 3, 1, 0)))
    for blob, reference in expected(w).items():
        assert_close_rel(run(loaded, graph, {"a": a, "b": b})[blob], reference, what=f"loaded {blob}")


# ------------------------------------------------------------------------------ refused layer types

def test_unsupported_layers_are_named_in_one_error(tmp_path, x4):
    text = (layer("rnn", "RNN", "data", "recurrent_param { num_output: 4 }") + layer("py", "Python", "data")
            + layer("lstm", "LSTM", "data", "recurrent_param { num_output: 4 }") + layer("relu", "ReLU", "data"))
    with pytest.raises(ConversionError) as info:
        convert(tmp_path, {"data": x4}, text)
    message = str(info.value)
    assert "'rnn' (RNN)" in message and "'py' (Python)" in message and "'lstm' (LSTM)" in message
    assert "relu" not in message


# ------------------------------------------------------------------- serialisation and the JAX backend

ALL_NEW = (layer("bnll", "BNLL", "data") + layer("thr", "Threshold", "data", "threshold_param { threshold: 0.1 }")
           + layer("clip", "Clip", "data", "clip_param { min: -0.5 max: 0.5 }")
           + layer("exp", "Exp", "data", "exp_param { base: 2 scale: 0.5 shift: 0.5 }")
           + layer("abs", "AbsVal", "data") + layer("log", "Log", "abs", "log_param { base: 3 shift: 1 }")
           + layer("swish", "Swish", "data", "swish_param { beta: 2 }") + layer("mvn", "MVN", "data")
           + layer("red", "Reduction", "data", "reduction_param { axis: 2 operation: SUMSQ }")
           + layer("am", "ArgMax", "data", "argmax_param { top_k: 2 out_max_val: true }")
           + layer("amc", "ArgMax", "data", "argmax_param { axis: 1 }")
           + layer("tile", "Tile", "data", "tile_param { axis: 3 tiles: 2 }")
           + layer("sto", "Pooling", "data", "pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 }")
           + layer("spp", "SPP", "data", "spp_param { pyramid_height: 2 }")
           + layer("ip", "InnerProduct", "data", "inner_product_param { num_output: 3 axis: 2 }")
           + layer("pool", "Pooling", "data", "pooling_param { pool: AVE global_pooling: true }")
           + layer("gate", "Flatten", "pool") + layer("se", "Scale", ["data", "gate"], "scale_param { axis: 0 }")
           + 'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 1 dim: 3 } } }\n'
           + layer("ps", "Eltwise", ["gate", "p"]) + layer("emb", "Embed", "thr", "embed_param { num_output: 2 "
                                                                                 "input_dim: 2 }"))


def all_new_layers(tmp_path, rng):
    data = np.abs(rng.standard_normal((2, 3, 8, 6))).astype(np.float32)
    blobs = [("ip", "InnerProduct", [rng.standard_normal((3, 48)), rng.standard_normal(3)]),
             ("p", "Parameter", [rng.standard_normal((1, 3))]), ("emb", "Embed", [rng.standard_normal((2, 2)),
                                                                                   rng.standard_normal(2)])]
    model, graph, prototxt, caffemodel = convert(tmp_path, {"data": data}, ALL_NEW, blobs)
    return model, graph, prototxt, caffemodel, data


def test_new_layers_round_trip_a_keras_file_in_safe_mode(tmp_path, rng):
    model, graph, _, _, data = all_new_layers(tmp_path, rng)
    path = tmp_path / "all.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    before, after = run(model, graph, {"data": data}), run(loaded, graph, {"data": data})
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
    outputs = model(np.load(sys.argv[4]))
    np.savez(sys.argv[5], *[np.asarray(y) for y in outputs])
""")


def test_new_layers_run_on_the_jax_backend(tmp_path, rng):
    pytest.importorskip("jax")
    model, graph, prototxt, caffemodel, data = all_new_layers(tmp_path, rng)
    np.save(tmp_path / "x.npy", to_keras(data))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(ROOT), str(prototxt), str(caffemodel),
                             str(tmp_path / "x.npy"), str(tmp_path / "out.npz")], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jax_outputs = np.load(tmp_path / "out.npz")
    tf_outputs = model(to_keras(data))
    for index, (blob, y) in enumerate(zip(graph.outputs, tf_outputs)):
        assert_close_rel(jax_outputs[f"arr_{index}"], y, tol=1e-5, what=blob)


# ----------------------------------------------------------------------- the public extension point

def readme_block(heading):
    """The first ```python block of README.md after ``heading``."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def clean_registrations():
    before = LAYERS.names()
    yield
    for name in LAYERS.names() - before:
        LAYERS._functions.pop(name)  # the test's registrations leave with it


MISH_NET = """
name: "mish_net"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 7 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "mish" type: "Mish" bottom: "conv" top: "mish" }
layer { name: "act" type: "CuDNNReLU" bottom: "mish" top: "act" relu_param { negative_slope: 0.5 } }
"""


def test_readme_custom_layer_example_runs(tmp_path, rng, monkeypatch, clean_registrations):
    w, b = rng.standard_normal((4, 3, 3, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    (tmp_path / "mish_net.prototxt").write_text(MISH_NET)
    write_caffemodel(tmp_path / "mish_net.caffemodel", [("conv", "Convolution", [w, b])])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConversionError, match="'mish' \\(Mish\\)"):
        keras_zoo.from_caffe("mish_net.prototxt", "mish_net.caffemodel")
    namespace = {}
    exec(readme_block("## Custom layers"), namespace)
    model = namespace["model"]
    data = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    conv = ref_conv(data, w, b)
    mish = conv * np.tanh(softplus(conv))
    assert_close_rel(to_caffe(model(to_keras(data))), np.where(mish > 0, mish, 0.5 * mish))
    assert {"mish_softplus", "mish_tanh", "mish"} <= {layer.name for layer in model.layers}


def test_register_caffe_layer_refuses_a_known_type_unless_replaced(clean_registrations):
    def fn(layer, inputs, ctx):
        raise AssertionError

    with pytest.raises(ValueError, match="registered already"):
        keras_zoo.register_caffe_layer("ReLU", fn)
    relu = LAYERS.lookup("ReLU")
    try:
        assert keras_zoo.register_caffe_layer("ReLU", fn, replace=True) is fn and LAYERS.lookup("ReLU") is fn
    finally:
        LAYERS.add("ReLU", relu, replace=True)
    with pytest.raises(ValueError, match="not callable"):
        keras_zoo.register_caffe_layer("Mine", None)
