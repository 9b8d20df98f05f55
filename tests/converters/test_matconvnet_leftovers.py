"""MatConvNet's other inference blocks, outputs chosen past custom losses, shared parameters, several inputs and
outputs, and the register_matconvnet_layer extension point.

The references are NumPy transcriptions of MatConvNet's own code (read in vlfeat/matconvnet): dagnn.Scale's
bsxfun, vl_nnpdist.m, vl_nnspnorm.m (over vl_nnpool's in-image average), vl_nnnoffset.m, the CPU loops of
nnroipooling.cu and nnbilinearsampler.cu, and the grid generators' MATLAB (meshgrid and column-major reshapes
replayed with order="F"). They share nothing with the reader or the Keras layers. Networks are written as .mat
files with converters/writers/mat.py.
"""

import os
import re
import subprocess
import sys
import textwrap
import zipfile

import h5py
import keras
import numpy as np
import pytest

import converters.matconvnet as matconvnet
import keras_zoo
from converters.errors import ConversionError
from converters.graph import Node
from converters.matconvnet import read_matconvnet
from converters.writers.mat import StructArray, write_mat
from keras_zoo.convert import from_matconvnet, save_model
from tests.converters.test_matconvnet import dag_layer, mcn_conv, mcn_pool, random
from tests.helpers import ROOT, assert_close_rel, load_tool


# ------------------------------------------------------------------------------- MatConvNet in NumPy
def mat_to_nhwc(array):
    """A MATLAB H x W x C (x N) parameter as a (1 or N, H, W, C) array broadcasting like bsxfun in NHWC."""
    array = np.asarray(array, np.float64)
    array = array.reshape(array.shape + (1,) * (4 - array.ndim))
    return array.transpose(3, 0, 1, 2)


def mcn_pdist(x, x0, p, no_root=False, instance_weights=None):
    """vl_nnpdist.m's forward branches, aggregate false."""
    d = x - x0
    if not no_root:
        if p == 1:
            y = np.abs(d).sum(-1, keepdims=True)
        elif p == 2:
            y = np.sqrt((d * d).sum(-1, keepdims=True))
        else:
            y = (np.abs(d) ** p).sum(-1, keepdims=True) ** (1 / p)
    else:
        y = np.abs(d).sum(-1, keepdims=True) if p == 1 else (
            (d * d).sum(-1, keepdims=True) if p == 2 else (np.abs(d) ** p).sum(-1, keepdims=True))
    return y if instance_weights is None else y * instance_weights


def mcn_spnorm(x, param):
    """vl_nnspnorm.m: pad = [floor((P-1)/2); P-1-floor((P-1)/2)], n2 = vl_nnpool(x.*x, P, 'avg', pad)."""
    ph, pw, alpha, beta = param
    top, left = (ph - 1) // 2, (pw - 1) // 2
    n2 = mcn_pool(x.astype(np.float64) ** 2, (ph, pw), (1, 1), (top, ph - 1 - top, left, pw - 1 - left), "avg")
    return (1 + alpha * n2) ** (-beta) * x


def mcn_noffset(x, param):
    """vl_nnnoffset.m: x - param(1) * max(sum(x.^2, 3), 1e-8)^param(2)."""
    norm = np.maximum((x.astype(np.float64) ** 2).sum(-1, keepdims=True), 1e-8)
    return x - param[0] * norm ** param[1]


def c_round(value):
    """C's round(): halves away from zero."""
    return int(np.sign(value) * np.floor(abs(value) + 0.5))


def mcn_roipool(x, rois, subdivisions, transform, method):
    """The CPU loop of nnroipooling.cu (ROIPoolingForwardCPU): x (N, H, W, C), rois (K, 5) -> (K, SH, SW, C)."""
    n, height, width, depth = x.shape
    t = transform
    out = np.zeros((len(rois), subdivisions[0], subdivisions[1], depth))
    for k, roi in enumerate(np.asarray(rois, np.float32)):
        u1_, v1_, u2_, v2_ = (float(value) for value in roi[1:])
        u1, v1 = np.float32(t[0] * u1_ + t[2] * v1_ + t[4]), np.float32(t[1] * u1_ + t[3] * v1_ + t[5])
        u2, v2 = np.float32(t[0] * u2_ + t[2] * v2_ + t[4]), np.float32(t[1] * u2_ + t[3] * v2_ + t[5])
        image = min(max(int(roi[0]) - 1, 0), n - 1)
        start_h, start_w = c_round(v1) - 1, c_round(u1) - 1
        end_h, end_w = c_round(v2) - 1, c_round(u2) - 1
        roi_h, roi_w = max(end_h - start_h + 1, 1), max(end_w - start_w + 1, 1)
        bin_h, bin_w = np.float32(roi_h / subdivisions[0]), np.float32(roi_w / subdivisions[1])
        for pw in range(subdivisions[1]):
            w0 = min(max(int(np.floor(np.float32(pw) * bin_w)) + start_w, 0), width)
            w1 = min(max(int(np.ceil(np.float32(pw + 1) * bin_w)) + start_w, 0), width)
            for ph in range(subdivisions[0]):
                h0 = min(max(int(np.floor(np.float32(ph) * bin_h)) + start_h, 0), height)
                h1 = min(max(int(np.ceil(np.float32(ph + 1) * bin_h)) + start_h, 0), height)
                if h1 <= h0 or w1 <= w0:
                    continue  # an empty tile is 0
                tile = x[image, h0:h1, w0:w1].astype(np.float64)
                out[k, ph, pw] = tile.max(axis=(0, 1)) if method == "max" else tile.mean(axis=(0, 1))
    return out


def mcn_bilinear(x, grid):
    """The loop of nnbilinearsampler.cu's forward: x (N, H, W, C), grid (No, 2, Ho, Wo) (vertical, horizontal)."""
    n, height, width, depth = x.shape
    n_out, _, out_h, out_w = grid.shape
    group = n_out // n
    y = np.zeros((n_out, out_h, out_w, depth))
    for o in range(n_out):
        image = x[o // group].astype(np.float64)
        for i in range(out_h):
            for j in range(out_w):
                py = np.float32(0.5) * (np.float32(grid[o, 0, i, j]) + np.float32(1)) * np.float32(height - 1)
                px = np.float32(0.5) * (np.float32(grid[o, 1, i, j]) + np.float32(1)) * np.float32(width - 1)
                sx, sy = int(np.floor(px)), int(np.floor(py))
                if not (-1 <= sy < height and -1 <= sx < width):
                    continue
                wx, wy = px - sx, py - sy
                for dj in (0, 1):
                    for di in (0, 1):
                        yy, xx = sy + di, sx + dj
                        if 0 <= yy < height and 0 <= xx < width:
                            weight = ((1 - dj) * (1 - wx) + dj * wx) * ((1 - di) * (1 - wy) + di * wy)
                            y[o, i, j] += weight * image[yy, xx]
    return y


def matlab_linspace(count):
    return np.array([1.0]) if count == 1 else np.linspace(-1.0, 1.0, count)


def mcn_affine_grid(theta, out_h, out_w):
    """dagnn.AffineGridGenerator.forward replayed: theta (N, 6) -> (N, 2, Ho, Wo)."""
    n = len(theta)
    xi, yi = matlab_linspace(out_h), matlab_linspace(out_w)
    yy, xx = np.meshgrid(xi, yi)                      # MATLAB [yy,xx] = meshgrid(xi, yi): Wo x Ho
    xxyy = np.stack([yy.ravel(order="F"), xx.ravel(order="F")], axis=1)       # M x 2
    a = theta.T.reshape(2, 3, n, order="F")          # reshape(A, 2, 3, nbatch) of the 1 x 1 x 6 x N array
    linear = a[:, :2, :].reshape(2, 2 * n, order="F")
    shift = a[:, 2, :].reshape(1, 2 * n, order="F")
    g = (xxyy @ linear + shift).reshape(out_w, out_h, 2, n, order="F")
    return g.transpose(2, 1, 0, 3).transpose(3, 0, 1, 2)   # permute [3 2 1 4] -> 2 x Ho x Wo x N -> N first


def mcn_scaling_grid(params, out_h, out_w):
    """dagnn.UniformScalingGridGenerator.forward replayed: params (N, 3) [s ty tx] -> (N, 2, Ho, Wo)."""
    n = len(params)
    xi, yi = matlab_linspace(out_h), matlab_linspace(out_w)
    yy, xx = np.meshgrid(yi, xi)                      # [yy,xx] = meshgrid(yi, xi): Ho x Wo
    xxyy = np.stack([xx.ravel(order="F"), yy.ravel(order="F")])             # 2 x M
    g = xxyy[:, :, None] * params[:, 0][None, None, :] + params[:, 1:].T[:, None, :]
    return g.reshape(2, out_h, out_w, n, order="F").transpose(3, 0, 1, 2)


# -------------------------------------------------------------------------------------------- helpers
def run(model, *inputs):
    outputs = model([np.asarray(x, np.float32) for x in inputs] if len(inputs) > 1 else
                    np.asarray(inputs[0], np.float32), training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def dagnn_file(path, layers, params=(), inputs=None, precious=(), version="5"):
    """A DagNN .mat (``inputs``: {name: MATLAB size} for meta.inputs; ``precious``: variables so marked)."""
    variables = sorted({name for layer in layers for name in layer["inputs"] + layer["outputs"]})
    net = {"layers": StructArray(layers),
           "params": StructArray([{"name": name, "value": value} for name, value in params]),
           "vars": StructArray([{"name": name, "precious": name in precious} for name in variables])}
    if inputs:
        net["meta"] = {"inputs": StructArray([{"name": name, "size": np.array([size], np.float64)}
                                              for name, size in inputs.items()])}
    return write_mat(path, net, version=version)


def conv(name, source, target, filters, bias_name=None, pad=1):
    return dag_layer(name, "dagnn.Conv", [source], [target], [filters] + ([bias_name] if bias_name else []),
                     {"size": np.zeros((1, 4)), "hasBias": bias_name is not None, "pad": float(pad),
                      "stride": 1.0, "dilate": 1.0})


# ------------------------------------------------------------------------------------------ dagnn.Scale
SCALE_CASES = {  # id: (parameter shapes (MATLAB), hasBias); the input is 6 x 5 x 4
    "per-channel with bias": ([(1, 1, 4), (1, 1, 4)], True),
    "per-channel without bias": ([(1, 1, 4)], False),
    "scalar": ([(1, 1), (1, 1)], True),
    "whole input": ([(6, 5, 4), (6, 5, 4)], True),
    "rows and channels (bsxfun)": ([(6, 1, 4), (1, 5)], True),
    "channel vector bias with a full multiplier": ([(6, 5, 4), (1, 1, 4)], True),
}


@pytest.mark.parametrize("known_size", [True, False], ids=["fixed size", "free size"])
@pytest.mark.parametrize("case", list(SCALE_CASES))
def test_scale_with_parameters_is_bsxfun(tmp_path, rng, case, known_size):
    """As Caffe's Scale (foldable) where the parameters are a scalar, per channel or cover the (known) input;
    the general broadcasting op otherwise."""
    shapes, has_bias = SCALE_CASES[case]
    params = [(f"p{i}", random(rng, *shape) + (1.5 if i == 0 else 0)) for i, shape in enumerate(shapes)]
    layers = [dag_layer("scale", "dagnn.Scale", ["x"], ["y"], [name for name, _ in params],
                        {"size": np.array([list(shapes[0]) + [1] * (4 - len(shapes[0]))], np.float64),
                         "hasBias": has_bias})]
    path = dagnn_file(tmp_path / "scale.mat", layers, params, inputs={"x": [6, 5, 4, 1]})
    size = None if known_size else (4, None, None)
    graph = read_matconvnet(path, input_shape=size)
    spatial = any(shape[:2] != (1, 1) for shape in shapes)
    assert graph.node("scale").op == ("muladd" if spatial and not known_size else "scale")
    x = random(rng, 2, 6, 5, 4)
    reference = x * mat_to_nhwc(params[0][1]) + (mat_to_nhwc(params[1][1]) if has_bias else 0)
    assert_close_rel(run(from_matconvnet(path, input_shape=size), x), reference)


def test_scale_as_written_by_matconvnets_caffe_importer_folds_into_the_convolution(tmp_path, rng):
    """import-caffe.py writes a Caffe Scale (unmerged batch norm) as dagnn.Scale with 1 x 1 x C 'mult' and
    'bias' parameters; fold_batchnorm folds it into the convolution before it like a Caffe Scale."""
    f, b = random(rng, 3, 3, 3, 4), random(rng, 4)
    mult, bias = random(rng, 1, 1, 4) + 2, random(rng, 1, 1, 4)
    layers = [conv("conv1", "data", "c1", "conv1_f", "conv1_b"),
              dag_layer("scale1", "dagnn.Scale", ["c1"], ["s1"], ["scale1_mult", "scale1_bias"],
                        {"size": np.array([[1.0, 1, 4]]), "hasBias": True}),
              dag_layer("relu1", "dagnn.ReLU", ["s1"], ["r1"], block={"leak": 0.0})]
    params = [("conv1_f", f), ("conv1_b", b.reshape(-1, 1)), ("scale1_mult", mult), ("scale1_bias", bias)]
    path = dagnn_file(tmp_path / "imported.mat", layers, params, inputs={"data": [7, 6, 3, 1]})
    x = random(rng, 2, 7, 6, 3)
    reference = np.maximum(mcn_conv(x, f, b, (1, 1, 1, 1)) * mat_to_nhwc(mult) + mat_to_nhwc(bias), 0)
    model = from_matconvnet(path)
    assert_close_rel(run(model, x), reference)
    folded = from_matconvnet(path, fold_batchnorm=True)
    assert "scale1" not in {layer.name for layer in folded.layers}
    assert_close_rel(run(folded, x), reference)


def squeeze_excitation(tmp_path, rng, has_bias, bias_as_input=False):
    """conv -> (global average pool -> 1x1 conv -> sigmoid = gate) -> Scale(x, gate [, bias])."""
    f, b = random(rng, 3, 3, 3, 4), random(rng, 4)
    fg, bg, beta = random(rng, 1, 1, 4, 4), random(rng, 4), random(rng, 1, 1, 4)
    layers = [conv("conv1", "data", "c1", "conv1_f", "conv1_b"),
              dag_layer("squeeze", "dagnn.Pooling", ["c1"], ["sq"],
                        block={"method": "avg", "poolSize": np.array([[6.0, 5]]), "pad": 0.0, "stride": 1.0}),
              conv("excite", "sq", "ex", "excite_f", "excite_b", pad=0),
              dag_layer("gate", "dagnn.Sigmoid", ["ex"], ["gate"])]
    scale_inputs, scale_params = ["c1", "gate"], []
    params = [("conv1_f", f), ("conv1_b", b.reshape(-1, 1)), ("excite_f", fg), ("excite_b", bg.reshape(-1, 1))]
    if has_bias and bias_as_input:
        layers.append(dag_layer("bias_conv", "dagnn.Conv", ["data"], ["bias_map"], ["bias_f"],
                                {"size": np.zeros((1, 4)), "hasBias": False, "pad": 1.0, "stride": 1.0}))
        params.append(("bias_f", random(rng, 3, 3, 3, 4)))
        scale_inputs.append("bias_map")
    elif has_bias:
        scale_params.append("se_bias")
        params.append(("se_bias", beta))
    layers.append(dag_layer("se", "dagnn.Scale", scale_inputs, ["out"], scale_params,
                            {"size": np.array([[1.0, 1, 4]]), "hasBias": has_bias}))
    path = dagnn_file(tmp_path / "se.mat", layers, params, inputs={"data": [6, 5, 3, 1]})

    def reference(x):
        c1 = mcn_conv(x, f, b, (1, 1, 1, 1))
        gate = 1 / (1 + np.exp(-mcn_conv(c1.mean(axis=(1, 2), keepdims=True), fg, bg)))
        y = c1 * gate
        if has_bias and bias_as_input:
            y = y + mcn_conv(x, params[-1][1], None, (1, 1, 1, 1))
        elif has_bias:
            y = y + mat_to_nhwc(beta)
        return y
    return path, reference


@pytest.mark.parametrize("form", ["x * gate", "x * gate + bias parameter", "x * gate + bias input"])
def test_scale_second_input_form_multiplies_by_a_computed_gate(tmp_path, rng, form):
    path, reference = squeeze_excitation(tmp_path, rng, has_bias=form != "x * gate",
                                         bias_as_input=form.endswith("input"))
    graph = read_matconvnet(path)
    assert graph.node("se").op == "muladd"
    assert graph.node("excite").op == "conv"  # the 1 x 1 gate stays spatial to broadcast over H x W
    x = random(rng, 2, 6, 5, 3)
    assert_close_rel(run(from_matconvnet(path), x), reference(x))


def test_scale_whose_bias_has_no_argument_is_refused_by_name(tmp_path, rng):
    """import-caffe.py writes hasBias for a two-bottom Caffe Scale without a bias parameter: MatConvNet's
    forward reads args{3}, which does not exist."""
    layers = [dag_layer("se", "dagnn.Scale", ["x", "gate"], ["y"], [], {"size": np.zeros((1, 4)), "hasBias": True})]
    path = dagnn_file(tmp_path / "nobias.mat", layers, inputs={"x": [4, 4, 2, 1], "gate": [1, 1, 2, 1]})
    with pytest.raises(ConversionError, match="adds the third") as error:
        read_matconvnet(path)
    assert error.value.layer == "se" and "nobias.mat" in str(error.value)


def test_simplenn_scale_type(tmp_path, rng):
    mult, bias = random(rng, 1, 1, 3) + 1, random(rng, 1, 1, 3)
    path = write_mat(tmp_path / "simple.mat", {"layers": [
        {"type": "scale", "name": "s", "size": np.array([[1.0, 1, 3]]), "hasBias": True, "weights": [mult, bias]}],
        "meta": {"inputSize": np.array([[5.0, 4, 3]])}})
    x = random(rng, 2, 5, 4, 3)
    assert_close_rel(run(from_matconvnet(path), x), x * mat_to_nhwc(mult) + mat_to_nhwc(bias))


# -------------------------------------------------------------------------------- PDist, SpatialNorm, ...
@pytest.mark.parametrize("p,no_root,weighted", [(2, False, False), (1, False, True), (3, False, False),
                                                (2, True, True), (0.5, True, False)])
def test_dagnn_pdist_between_two_variables(tmp_path, rng, p, no_root, weighted):
    inputs = ["x", "x0"] + (["w"] if weighted else [])
    layers = [dag_layer("dist", "dagnn.PDist", inputs, ["d"],
                        block={"p": float(p), "noRoot": no_root, "aggregate": False, "epsilon": 1e-6,
                               "loss": "pdist", "ignoreAverage": False})]
    sizes = {"x": [5, 4, 3, 1], "x0": [1, 1, 3, 1], "w": [5, 4, 1, 1]}
    path = dagnn_file(tmp_path / "pdist.mat", layers, inputs={name: sizes[name] for name in inputs})
    graph = read_matconvnet(path)
    assert list(graph.inputs) == inputs and graph.outputs == ["d"]
    x, x0, w = random(rng, 2, 5, 4, 3), random(rng, 2, 1, 1, 3), rng.random((2, 5, 4, 1)).astype(np.float32)
    model = from_matconvnet(path)
    y = run(model, x, x0, w) if weighted else run(model, x, x0)
    assert_close_rel(y, mcn_pdist(x.astype(np.float64), x0, p, no_root, w if weighted else None))


def test_simplenn_pdist_target_and_instance_weights_are_constants(tmp_path, rng):
    """vl_simplenn: vl_nnpdist(x, l.class, l.p, ..., 'instanceWeights', l.instanceWeights)."""
    target, weights = random(rng, 1, 1, 3), rng.random((5, 4)).astype(np.float32)
    path = write_mat(tmp_path / "simple_pdist.mat", {"layers": [
        {"type": "pdist", "name": "dist", "class": target, "p": 2.0, "noRoot": True, "aggregate": False,
         "epsilon": 1e-3, "instanceWeights": weights}], "meta": {"inputSize": np.array([[5.0, 4, 3]])}})
    x = random(rng, 2, 5, 4, 3)
    reference = mcn_pdist(x.astype(np.float64), mat_to_nhwc(target), 2, True, weights[None, :, :, None])
    assert_close_rel(run(from_matconvnet(path), x), reference)


def test_aggregating_pdist_is_a_loss_dropped_by_default_and_refused_on_the_path(tmp_path, rng):
    f = random(rng, 3, 3, 2, 2)
    layers = [conv("conv1", "x", "pred", "f"),
              dag_layer("objective", "dagnn.PDist", ["pred", "label"], ["loss"],  # dagnn.PDist: aggregate true
                        block={"p": 2.0, "noRoot": True, "epsilon": 1e-6, "loss": "pdist", "ignoreAverage": False,
                               "aggregate": True})]
    path = dagnn_file(tmp_path / "train.mat", layers, [("f", f)], inputs={"x": [5, 5, 2, 1]})
    graph = read_matconvnet(path)
    assert (list(graph.inputs), graph.outputs) == (["x"], ["pred"])
    with pytest.raises(ConversionError, match="aggregate is true") as error:
        read_matconvnet(path, outputs=["loss"])
    assert error.value.layer == "objective"


@pytest.mark.parametrize("param", [(3, 2, 0.5, 0.75), (2, 2, 10, 2), (1, 4, 2.0, 0.5), None])
def test_spatial_norm(tmp_path, rng, param):
    block = {} if param is None else {"param": np.array([param], np.float64)}
    layers = [dag_layer("spnorm", "dagnn.SpatialNorm", ["x"], ["y"], block=block or np.zeros((0, 0)))]
    path = dagnn_file(tmp_path / "spnorm.mat", layers, inputs={"x": [6, 7, 3, 1]})
    x = random(rng, 2, 6, 7, 3, scale=0.5)
    assert_close_rel(run(from_matconvnet(path), x), mcn_spnorm(x, param or (2, 2, 10, 2)))  # the class default


@pytest.mark.parametrize("param", [(1, 0.5), (0.3, 1.5)])
def test_norm_offset(tmp_path, rng, param):
    layers = [dag_layer("noff", "dagnn.NormOffset", ["x"], ["y"], block={"param": np.array([param], np.float64)})]
    path = dagnn_file(tmp_path / "noffset.mat", layers, inputs={"x": [4, 5, 3, 1]})
    x = random(rng, 2, 4, 5, 3)
    x[0, 0, 0] = 0  # the 1e-8 floor
    assert_close_rel(run(from_matconvnet(path), x), mcn_noffset(x, param))


def test_simplenn_spnorm_and_noffset_types(tmp_path, rng):
    path = write_mat(tmp_path / "simple_norms.mat", {"layers": [
        {"type": "spnorm", "name": "sp", "param": np.array([[3.0, 3, 1, 0.5]])},
        {"type": "noffset", "name": "no", "param": np.array([[0.5, 0.5]])}],
        "meta": {"inputSize": np.array([[5.0, 6, 2]])}})
    x = random(rng, 2, 5, 6, 2)
    assert_close_rel(run(from_matconvnet(path), x), mcn_noffset(mcn_spnorm(x, (3, 3, 1, 0.5)), (0.5, 0.5)))
    missing = write_mat(tmp_path / "no_param.mat", {"layers": [{"type": "spnorm", "name": "sp"}],
                                                    "meta": {"inputSize": np.array([[5.0, 6, 2]])}})
    with pytest.raises(ConversionError, match="missing field 'param'"):
        read_matconvnet(missing)


# ------------------------------------------------------------------------------------------ ROI pooling
ROIS = np.array([[1, 1, 1, 6, 7], [2, 2, 3, 5, 4], [1, -3, 2, 9, 12], [2, 4, 4, 4, 4], [5, 2.5, 1.5, 7.5, 3.5],
                 [0, 3, 3, 2, 2], [1, 30, 30, 40, 40]], np.float32)  # [t u0 v0 u1 v1]; t 0 and 5 are clamped
ROI_CASES = {  # id: (block, transform as vl_nnroipool reads it)
    "max 2x3": ({"method": "max", "subdivisions": np.array([[2.0, 3]]), "transform": 1.0, "flatten": False},
                (1, 0, 0, 1, 0, 0)),
    "avg 3x2 scaled, flattened": ({"method": "avg", "subdivisions": np.array([[3.0, 2]]),
                                   "transform": np.array([[0.5, 0.75]]), "flatten": True},
                                  (0.5, 0, 0, 0.75, 0.5, 0.25)),
    "max 2x3 matrix (u and v swapped)": ({"method": "max", "subdivisions": np.array([[2.0, 2]]),
                                          "transform": np.array([[0.0, 1, 0], [1, 0, 0]]), "flatten": False},
                                         (0, 1, 1, 0, 0, 0)),
}


@pytest.mark.parametrize("case", list(ROI_CASES))
def test_roi_pooling(tmp_path, rng, case):
    block, transform = ROI_CASES[case]
    layers = [dag_layer("roipool", "dagnn.ROIPooling", ["data", "rois"], ["pooled"], block=block)]
    path = dagnn_file(tmp_path / "roi.mat", layers, inputs={"data": [8, 10, 3, 2]})
    graph = read_matconvnet(path)
    assert graph.inputs == {"data": (3, 8, 10), "rois": (1, 5, None)}  # a 5 x K array
    x = random(rng, 2, 8, 10, 3)
    y = run(from_matconvnet(path), x, ROIS.T[None, :, :, None])
    sub = tuple(int(v) for v in block["subdivisions"].ravel())
    reference = mcn_roipool(x, ROIS, sub, transform, block["method"])
    if block["flatten"]:  # reshape(y, 1, 1, [], K): rows fastest, then columns, then channels
        reference = reference.transpose(0, 3, 2, 1).reshape(len(ROIS), 1, 1, -1)
    assert_close_rel(y, reference)


# ------------------------------------------------------------------------------ bilinear sampling, grids
def sampling_grid(rng, count, out_h, out_w):
    grid = rng.uniform(-2.0, 2.0, (count, 2, out_h, out_w)).astype(np.float32)  # some points outside
    grid[0, :, 0, 0] = (-1, -1)  # the first and the last pixel centres exactly
    grid[0, :, -1, -1] = (1, 1)
    return grid


@pytest.mark.parametrize("grids_per_image", [1, 2])
def test_bilinear_sampler_with_the_grid_an_input(tmp_path, rng, grids_per_image):
    layers = [dag_layer("sampler", "dagnn.BilinearSampler", ["x", "grid"], ["y"])]
    path = dagnn_file(tmp_path / "sampler.mat", layers, inputs={"x": [5, 6, 3, 1], "grid": [2, 4, 7, 1]})
    graph = read_matconvnet(path)
    assert graph.inputs == {"x": (3, 5, 6), "grid": (7, 2, 4)}  # 2 x Ho x Wo: channels Wo, height 2, width Ho
    x, grid = random(rng, 2, 5, 6, 3), sampling_grid(rng, 2 * grids_per_image, 4, 7)
    y = run(from_matconvnet(path), x, grid)
    assert y.shape == (2 * grids_per_image, 4, 7, 3)
    assert_close_rel(y, mcn_bilinear(x, grid))


@pytest.mark.parametrize("generator", ["dagnn.AffineGridGenerator", "dagnn.UniformScalingGridGenerator"])
def test_bilinear_sampler_with_the_grid_computed_in_the_net(tmp_path, rng, generator):
    """A spatial transformer: the transform is an input, the grid a variable of the net."""
    count = 6 if generator == "dagnn.AffineGridGenerator" else 3
    layers = [dag_layer("grid", generator, ["theta"], ["grid"], block={"Ho": 4.0, "Wo": 5.0}),
              dag_layer("sampler", "dagnn.BilinearSampler", ["x", "grid"], ["y"])]
    path = dagnn_file(tmp_path / "stn.mat", layers, inputs={"x": [6, 7, 2, 1]})
    graph = read_matconvnet(path)
    assert graph.inputs == {"theta": (count, 1, 1), "x": (2, 6, 7)}
    theta = rng.uniform(-0.8, 0.8, (3, count)).astype(np.float32)
    theta[:, 0] += 0.5
    x = random(rng, 3, 6, 7, 2)
    y = run(from_matconvnet(path), theta[:, None, None, :], x)
    make_grid = mcn_affine_grid if count == 6 else mcn_scaling_grid
    assert_close_rel(y, mcn_bilinear(x, make_grid(theta.astype(np.float64), 4, 5)))


def test_grid_generators_match_matlab_on_the_identity():
    """The identity affine transform samples every pixel centre: the grid is linspace(-1, 1) x linspace(-1, 1)."""
    grid = mcn_affine_grid(np.array([[1.0, 0, 0, 1, 0, 0]]), 3, 4)
    assert np.allclose(grid[0, 0], np.linspace(-1, 1, 3)[:, None] * np.ones((1, 4)))
    assert np.allclose(grid[0, 1], np.ones((3, 1)) * np.linspace(-1, 1, 4)[None, :])
    assert np.allclose(mcn_scaling_grid(np.array([[1.0, 0, 0]]), 3, 4), grid)


# --------------------------------------------------------------------- outputs, dropped layers, losses
def training_net(tmp_path, rng, version="5"):
    """data -> conv1 -> relu1 -> conv2 = pred; a custom loss (pred, label), a custom PSNR metric deriving from
    dagnn.Loss, a precious intermediate 'r1', and layers stored out of execution order."""
    f1, b1, f2 = random(rng, 3, 3, 2, 4), random(rng, 4), random(rng, 3, 3, 4, 2)
    layers = [conv("conv2", "r1", "pred", "f2"),
              dag_layer("relu1", "dagnn.ReLU", ["c1"], ["r1"], block={"leak": 0.1}),
              dag_layer("l1", "dagnn.vllab_dag_loss", ["pred", "label"], ["objective"],
                        block={"lambda": 1.0, "loss_type": "L1", "loss": "softmaxlog", "ignoreAverage": False}),
              dag_layer("psnr", "dagnn.PSNRMetric", ["pred", "label"], ["psnr"],
                        block={"loss": "psnr", "ignoreAverage": True}),
              conv("conv1", "data", "c1", "f1", "b1")]
    params = [("f1", f1), ("b1", b1.reshape(-1, 1)), ("f2", f2)]
    path = dagnn_file(tmp_path / "train.mat", layers, params, inputs={"data": [6, 5, 2, 1]}, precious=["r1"],
                      version=version)

    def reference(x):
        c1 = mcn_conv(x, f1, b1, (1, 1, 1, 1))
        r1 = np.where(c1 > 0, c1, 0.1 * c1)
        return r1, mcn_conv(r1, f2, None, (1, 1, 1, 1))
    return path, reference


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_custom_losses_are_dropped_and_the_outputs_default_to_the_net_outputs(tmp_path, rng, version):
    path, reference = training_net(tmp_path, rng, version)
    graph = read_matconvnet(path)
    assert list(graph.inputs) == ["data"]  # 'label' only fed the losses
    assert graph.outputs == ["r1", "pred"]  # precious, then unconsumed; in the order of the layers writing them
    assert [node.name for node in graph.nodes] == ["conv1", "relu1", "conv2"]  # execution order
    model = from_matconvnet(path)
    assert model.output_names == ["r1", "pred"]
    x = random(rng, 2, 6, 5, 2)
    for y, ref in zip(run(model, x), reference(x)):
        assert_close_rel(y, ref)


def test_outputs_choose_variables_in_the_order_given(tmp_path, rng):
    path, reference = training_net(tmp_path, rng)
    model = from_matconvnet(path, outputs=["pred", "c1"])
    assert model.output_names == ["pred", "c1"]
    assert {layer.name for layer in model.layers} >= {"conv1", "conv2"}
    only_first = from_matconvnet(path, outputs=["c1"])
    assert "conv2" not in {layer.name for layer in only_first.layers}  # not needed, not converted


@pytest.mark.parametrize("outputs,message,layer", [
    (["objective"], "'dagnn.vllab_dag_loss' is a training loss", "l1"),
    (["psnr"], "'dagnn.PSNRMetric' is a training loss", "psnr"),
    (["prd"], "no layer computes a variable 'prd'; did you mean 'pred'", None),
    (["data"], "'data' is an input of the network", None),
    (["pred", "pred"], "more than once", None),
])
def test_bad_outputs_are_conversion_errors(tmp_path, rng, outputs, message, layer):
    path, _ = training_net(tmp_path, rng)
    with pytest.raises(ConversionError) as error:
        read_matconvnet(path, outputs=outputs)
    assert message in str(error.value) and "train.mat" in str(error.value)
    assert error.value.layer == layer


def test_a_custom_class_on_the_path_is_one_error_naming_it(tmp_path, rng):
    f = random(rng, 3, 3, 2, 2)
    layers = [conv("conv1", "x", "c1", "f"),
              dag_layer("warp", "dagnn.Warp", ["c1"], ["warped"], block={"strength": 2.0}),
              dag_layer("post", "dagnn.ReLU", ["warped"], ["out"], block={"leak": 0.0}),
              dag_layer("viz", "dagnn.Visualize", ["c1"], ["picture"])]  # off the path of 'c1'
    path = dagnn_file(tmp_path / "custom.mat", layers, [("f", f)], inputs={"x": [5, 5, 2, 1]})
    with pytest.raises(ConversionError) as error:
        read_matconvnet(path)
    message = str(error.value)
    assert error.value.layer == "warp" and "unknown DagNN layer type 'dagnn.Warp'" in message
    assert "needed by the output(s) 'out'" in message and "dagnn.Visualize" in message
    assert "register_matconvnet_layer" in message and "outputs=" in message
    graph = read_matconvnet(path, outputs=["c1"])
    assert [node.name for node in graph.nodes] == ["conv1"]


def test_variables_rewritten_in_place_as_matconvnets_caffe_importer_writes_them(tmp_path, rng):
    """conv1 -> bn (conv1 -> conv1) -> relu (conv1 -> conv1): the file's order is the execution order and the
    output is the last value of 'conv1', though a layer reads it."""
    f, b = random(rng, 3, 3, 2, 3), random(rng, 3)
    mult, bias = random(rng, 1, 1, 3) + 2, random(rng, 1, 1, 3)
    layers = [conv("conv1", "data", "conv1", "f", "b"),
              dag_layer("scale1", "dagnn.Scale", ["conv1"], ["conv1"], ["m", "mb"], {"size": np.zeros((1, 4))}),
              dag_layer("relu1", "dagnn.ReLU", ["conv1"], ["conv1"], block={"leak": 0.0}),
              dag_layer("loss", "dagnn.Loss", ["conv1", "label"], ["objective"], block={"loss": "softmaxlog"})]
    params = [("f", f), ("b", b.reshape(-1, 1)), ("m", mult), ("mb", bias)]
    path = dagnn_file(tmp_path / "inplace.mat", layers, params, inputs={"data": [5, 4, 2, 1]})
    graph = read_matconvnet(path)
    assert (list(graph.inputs), graph.outputs) == (["data"], ["conv1"])
    x = random(rng, 2, 5, 4, 2)
    reference = np.maximum(mcn_conv(x, f, b, (1, 1, 1, 1)) * mat_to_nhwc(mult) + mat_to_nhwc(bias), 0)
    assert_close_rel(run(from_matconvnet(path), x), reference)


def test_a_layer_reading_its_own_output_is_a_cycle(tmp_path):
    layers = [dag_layer("a", "dagnn.ReLU", ["x", "b"], ["a"]), dag_layer("b", "dagnn.ReLU", ["a"], ["b"]),
              dag_layer("out", "dagnn.Sigmoid", ["b"], ["y"])]
    with pytest.raises(ConversionError, match="cycle"):
        read_matconvnet(dagnn_file(tmp_path / "cycle.mat", layers, inputs={"x": [2, 2, 1, 1]}))


# ------------------------------------------------------------------------------------ shared parameters
def recursive_net(tmp_path, rng, second_params=("f", "b")):
    """x -> conv (f, b) -> relu -> conv (the same f, b: a recursion) -> + x."""
    f, b = random(rng, 3, 3, 2, 2, scale=0.4), random(rng, 2)
    layers = [conv("conv_a", "x", "a", "f", "b"), dag_layer("relu", "dagnn.ReLU", ["a"], ["r"], block={"leak": 0.0}),
              dag_layer("conv_b", "dagnn.Conv", ["r"], ["c"], list(second_params),
                        {"size": np.zeros((1, 4)), "hasBias": True, "pad": 1.0, "stride": 1.0, "dilate": 1.0}),
              dag_layer("sum", "dagnn.Sum", ["c", "x"], ["y"])]
    params = [("f", f), ("b", b.reshape(-1, 1)), ("b2", b.reshape(-1, 1) + 1)]
    return dagnn_file(tmp_path / "recursive.mat", layers, params, inputs={"x": [6, 6, 2, 1]}), f, b


def recursion(x, f, b):
    a = np.maximum(mcn_conv(x, f, b, (1, 1, 1, 1)), 0)
    return mcn_conv(a, f, b, (1, 1, 1, 1)) + x


def test_parameters_shared_by_name_are_one_keras_variable(tmp_path, rng):
    path, f, b = recursive_net(tmp_path, rng)
    graph = read_matconvnet(path)
    assert graph.node("conv_b").attrs["shares"] == "conv_a" and not graph.node("conv_b").weights
    model = from_matconvnet(path)
    assert len(model.weights) == 2  # one kernel, one bias
    x = random(rng, 2, 6, 6, 2)
    assert_close_rel(run(model, x), recursion(x, f, b))
    output = save_model(model, tmp_path / "recursive.keras")
    with zipfile.ZipFile(output) as archive, archive.open("model.weights.h5") as handle:
        with h5py.File(handle) as weights:
            arrays = []
            weights.visititems(lambda name, item: arrays.append(name) if isinstance(item, h5py.Dataset) else None)
    assert len(arrays) == 2, arrays
    loaded = keras.saving.load_model(output)  # safe mode
    kernel = next(layer for layer in loaded.layers if layer.name == "conv_a")
    new_f, new_b = random(rng, 3, 3, 2, 2, scale=0.4), random(rng, 2)
    kernel.set_weights([new_f, new_b])
    assert_close_rel(run(loaded, x), recursion(x, new_f, new_b))  # one change, both uses


def test_partly_shared_parameters_are_refused_by_name(tmp_path, rng):
    path, _, _ = recursive_net(tmp_path, rng, second_params=("f", "b2"))
    with pytest.raises(ConversionError) as error:
        read_matconvnet(path)
    assert error.value.layer == "conv_b" and "parameter 'f' is shared with layer 'conv_a'" in str(error.value)


def test_several_inputs_and_outputs(tmp_path, rng):
    """Inputs in the order first read, outputs in the order of their layers, both named after the variables."""
    f = random(rng, 3, 3, 1, 1)
    layers = [conv("branch_b", "in_b", "out_b", "f"), conv("branch_a", "in_a", "out_a", "f"),
              dag_layer("both", "dagnn.Concat", ["out_a", "out_b"], ["both"], block={"dim": 3.0})]
    path = dagnn_file(tmp_path / "two.mat", layers, [("f", f)])
    model = from_matconvnet(path, outputs=["both", "out_b"])
    assert [tensor.name for tensor in model.inputs] == ["in_b", "in_a"]
    assert model.output_names == ["both", "out_b"]
    a, a2 = random(rng, 1, 5, 4, 1), random(rng, 1, 5, 4, 1)
    both, out_b = run(model, a2, a)
    assert_close_rel(out_b, mcn_conv(a2, f, None, (1, 1, 1, 1)))
    assert_close_rel(both, np.concatenate([mcn_conv(a, f, None, (1, 1, 1, 1)), out_b], axis=-1))


def test_input_shape_per_input(tmp_path, rng):
    layers = [dag_layer("dist", "dagnn.PDist", ["x", "x0"], ["d"], block={"p": 2.0, "aggregate": False})]
    path = dagnn_file(tmp_path / "pd.mat", layers)
    with pytest.raises(ConversionError, match="cannot tell the number of channels of input 'x'"):
        read_matconvnet(path)
    graph = read_matconvnet(path, input_shape={"x": (3, 5, 4), "x0": (3, 1, 1)})
    assert graph.inputs == {"x": (3, 5, 4), "x0": (3, 1, 1)}
    with pytest.raises(ConversionError, match="not inputs of the network"):
        read_matconvnet(path, input_shape={"y": (3, 5, 4)})


# -------------------------------------------------------------------------------------- extension point
README_BLOCKS = re.compile(r"```python\n(.*?)```", re.DOTALL)


def times_net(tmp_path, rng):
    f = random(rng, 3, 3, 1, 2)
    layers = [conv("conv1", "x", "c1", "f"),
              dag_layer("double", "dagnn.Times", ["c1"], ["y"], block={"factor": 2.5}),
              dag_layer("loss", "dagnn.vllab_dag_loss", ["y", "label"], ["objective"],
                        block={"loss": "softmaxlog", "ignoreAverage": False, "loss_type": "L1"})]
    return dagnn_file(tmp_path / "net.mat", layers, [("f", f)], inputs={"x": [6, 5, 1, 1]}), f


def test_register_matconvnet_layer_converts_a_custom_class(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(matconvnet, "_USER_LAYERS", {})
    path, f = times_net(tmp_path, rng)
    with pytest.raises(ConversionError, match="unknown DagNN layer type 'dagnn.Times'"):
        read_matconvnet(path)

    def times(layer, inputs, ctx):
        factor = float(np.ravel(layer.options["factor"])[0])
        return Node(layer.name, "power", list(layer.inputs), list(layer.outputs),
                    {"power": 1.0, "scale": factor, "shift": 0.0}), [inputs[0]]

    assert keras_zoo.register_matconvnet_layer("dagnn.Times", times) is times
    x = random(rng, 2, 6, 5, 1)
    assert_close_rel(run(keras_zoo.from_matconvnet(path), x), 2.5 * mcn_conv(x, f, None, (1, 1, 1, 1)))
    with pytest.raises(ValueError, match="registered already"):
        keras_zoo.register_matconvnet_layer("dagnn.Times", times)
    with pytest.raises(ValueError, match="converted by keras_zoo already"):
        keras_zoo.register_matconvnet_layer("dagnn.Conv", times)
    keras_zoo.register_matconvnet_layer("dagnn.Times", lambda layer, inputs, ctx: ("oops", [inputs[0]]),
                                        replace=True)
    with pytest.raises(ConversionError, match="not a converters.graph.Node") as error:
        read_matconvnet(path)
    assert error.value.layer == "double"


def test_the_readme_example_runs(tmp_path, rng, monkeypatch, fixtures):
    monkeypatch.setattr(matconvnet, "_USER_LAYERS", {})
    blocks = [block for block in README_BLOCKS.findall((ROOT / "README.md").read_text())
              if "register_matconvnet_layer" in block]
    assert blocks, "README.md has no python example calling register_matconvnet_layer"
    path, f = times_net(tmp_path, rng)
    lapsrn = fixtures / "real_small" / "lapsrn" / "LapSRN_x4.mat"
    if not lapsrn.exists():
        pytest.skip(f"fixture file {lapsrn} is absent (set KERAS_ZOO_FIXTURES)")
    code = blocks[0].replace('"net.mat"', repr(str(path))).replace('"LapSRN_x4.mat"', repr(str(lapsrn)))
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the project's own README
    x = random(rng, 1, 6, 5, 1)
    assert_close_rel(run(namespace["model"], x), 2.5 * mcn_conv(x, f, None, (1, 1, 1, 1)))
    assert namespace["pyramid"].output_names == ["level2_output", "level1_output"]


def test_convert_matconvnet_tool_outputs_option(tmp_path, rng, capsys):
    tool = load_tool("convert_matconvnet")
    path, reference = training_net(tmp_path, rng)
    output = tmp_path / "pred.keras"
    assert tool.main([str(path), "-o", str(output), "--outputs", "pred,c1"]) == 0
    assert "outputs pred, c1" in capsys.readouterr().out
    loaded = keras.saving.load_model(output)
    x = random(rng, 1, 6, 5, 2)
    assert_close_rel(run(loaded, x)[0], reference(x)[1])
    assert tool.main([str(path), "-o", str(tmp_path / "bad.keras"), "--outputs", "objective"]) == 1
    assert "is a training loss" in capsys.readouterr().err and not (tmp_path / "bad.keras").exists()


# ---------------------------------------------------------------------------- save, load, JAX backend
def every_block_net(tmp_path, rng):
    """One DagNN with every block above: Scale (both forms), PDist, SpatialNorm, NormOffset, ROIPooling, the
    grid generator and BilinearSampler."""
    layers = [dag_layer("scale", "dagnn.Scale", ["data"], ["s"], ["m", "b"], {"size": np.zeros((1, 4))}),
              dag_layer("rowscale", "dagnn.Scale", ["s"], ["rs"], ["rm"], {"size": np.zeros((1, 4)),
                                                                          "hasBias": False}),
              dag_layer("spnorm", "dagnn.SpatialNorm", ["rs"], ["sp"], block={"param": np.array([[3.0, 2, 1, 0.5]])}),
              dag_layer("noffset", "dagnn.NormOffset", ["sp"], ["no"], block={"param": np.array([[0.2, 0.5]])}),
              dag_layer("gate", "dagnn.Scale", ["no", "g"], ["gated"], [], {"size": np.zeros((1, 4)),
                                                                             "hasBias": False}),
              dag_layer("dist", "dagnn.PDist", ["gated", "data"], ["d"], block={"p": 3.0, "aggregate": False}),
              dag_layer("roi", "dagnn.ROIPooling", ["gated", "rois"], ["pooled"],
                        block={"method": "avg", "subdivisions": np.array([[2.0, 2]]), "transform": 1.0,
                               "flatten": True}),
              dag_layer("grid", "dagnn.AffineGridGenerator", ["theta"], ["grid"], block={"Ho": 3.0, "Wo": 4.0}),
              dag_layer("sampler", "dagnn.BilinearSampler", ["gated", "grid"], ["sampled"])]
    params = [("m", random(rng, 1, 1, 3)), ("b", random(rng, 1, 1, 3)), ("rm", random(rng, 6, 1, 3))]
    path = dagnn_file(tmp_path / "blocks.mat", layers, params,
                      inputs={"data": [6, 7, 3, 1], "g": [1, 1, 3, 1]})
    x = random(rng, 2, 6, 7, 3)
    feeds = {"data": x, "g": rng.random((2, 1, 1, 3)).astype(np.float32), "rois": ROIS[:4].T[None, :, :, None],
             "theta": np.array([[[[1.0, 0.2, -0.1, 0.9, 0.1, 0.0]]], [[[0.5, 0, 0, 0.5, 0, 0]]]], np.float32)}
    return path, feeds


def test_every_block_saves_loads_in_safe_mode_and_runs_on_jax(tmp_path, rng):
    path, feeds = every_block_net(tmp_path, rng)
    model = from_matconvnet(path)
    inputs = [feeds[tensor.name] for tensor in model.inputs]
    expected = run(model, *inputs)
    output = save_model(model, tmp_path / "blocks.keras")
    loaded = keras.saving.load_model(output)  # safe mode
    for y, ref in zip(run(loaded, *inputs), expected):
        assert_close_rel(y, ref, tol=1e-6)
    pytest.importorskip("jax")
    np.savez(tmp_path / "in.npz", *inputs)
    script = textwrap.dedent("""
        import os, sys
        os.environ["KERAS_BACKEND"] = "jax"
        sys.path.insert(0, sys.argv[1])
        import numpy as np, keras
        import keras_zoo  # registers the custom layers
        assert keras.backend.backend() == "jax"
        model = keras.saving.load_model(sys.argv[2])
        data = np.load(sys.argv[3])
        outputs = model([data[f"arr_{i}"] for i in range(len(data.files))])
        np.savez(sys.argv[4], *[np.asarray(o) for o in outputs])
    """)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", script, str(ROOT), str(output), str(tmp_path / "in.npz"),
                             str(tmp_path / "out.npz")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jax_outputs = np.load(tmp_path / "out.npz")
    for index, ref in enumerate(expected):
        assert_close_rel(jax_outputs[f"arr_{index}"], ref, tol=1e-5, what=model.output_names[index])

