"""converters.matconvnet + the Keras builder against MatConvNet's own formulas, on written and real .mat files.

The references below are NumPy transcriptions of MatConvNet's documented functions (vl_nnconv, vl_nnconvt,
vl_nnpool with its in-image average, vl_nnnormalize, vl_nnbnorm, dagnn.Crop), working on N x H x W x C arrays
(MatConvNet's H x W x C images with the batch first); they share nothing with the reader or the builder.
"""

import math

import cv2
import keras
import numpy as np
import pytest

from converters import matfile
from converters.errors import ConversionError
from converters.matconvnet import read_matconvnet
from keras_zoo.convert import from_matconvnet
from tests.helpers import assert_close_rel, fixture_path
from converters.writers.mat import StructArray, write_mat

DNCNN = "matconvnet_mat/dncnn/"
PLATE = "matconvnet_mat/plate_simplenn/net-epoch-50.mat"


# ------------------------------------------------------------------------------- MatConvNet in NumPy
def mcn_conv(x, filters, bias=None, pad=(0, 0, 0, 0), stride=(1, 1), dilate=(1, 1)):
    """vl_nnconv: filters H x W x depth x K, groups = channels / depth."""
    n, h, w, c = x.shape
    kh, kw, depth, k = filters.shape
    groups = c // depth
    top, bottom, left, right = pad
    xp = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h = (h + top + bottom - (dilate[0] * (kh - 1) + 1)) // stride[0] + 1
    out_w = (w + left + right - (dilate[1] * (kw - 1) + 1)) // stride[1] + 1
    y = np.zeros((n, out_h, out_w, k))
    per_group = k // groups
    for g in range(groups):
        for p in range(kh):
            for q in range(kw):
                rows = slice(p * dilate[0], p * dilate[0] + stride[0] * (out_h - 1) + 1, stride[0])
                cols = slice(q * dilate[1], q * dilate[1] + stride[1] * (out_w - 1) + 1, stride[1])
                patch = xp[:, rows, cols, g * depth:(g + 1) * depth]
                y[..., g * per_group:(g + 1) * per_group] += patch @ filters[p, q, :, g * per_group:
                                                                             (g + 1) * per_group]
    return y if bias is None else y + np.ravel(bias)


def mcn_convt(x, filters, bias=None, upsample=(1, 1), crop=(0, 0, 0, 0), groups=1):
    """vl_nnconvt: the transpose of vl_nnconv; filters FH x FW x K x D, output K * groups channels."""
    n, h, w, d = x.shape
    kh, kw, k, depth = filters.shape
    per_group = d // groups
    full = np.zeros((n, upsample[0] * (h - 1) + kh, upsample[1] * (w - 1) + kw, k * groups))
    for g in range(groups):
        block = filters[:, :, :, g * per_group:(g + 1) * per_group]
        for p in range(kh):
            for q in range(kw):
                contribution = x[..., g * per_group:(g + 1) * per_group] @ block[p, q].T
                full[:, p:p + upsample[0] * (h - 1) + 1:upsample[0],
                     q:q + upsample[1] * (w - 1) + 1:upsample[1], g * k:(g + 1) * k] += contribution
    top, bottom, left, right = crop
    y = full[:, top:full.shape[1] - bottom, left:full.shape[2] - right]
    return y if bias is None else y + np.ravel(bias)


def mcn_pool(x, size, stride=(1, 1), pad=(0, 0, 0, 0), method="max"):
    """vl_nnpool: windows clipped to the image; max ignores padding, avg divides by the in-image cells."""
    n, h, w, c = x.shape
    top, bottom, left, right = pad
    out_h = (h + top + bottom - size[0]) // stride[0] + 1
    out_w = (w + left + right - size[1]) // stride[1] + 1
    y = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        r0 = i * stride[0] - top
        r1, r0 = min(r0 + size[0], h), max(r0, 0)
        for j in range(out_w):
            c0 = j * stride[1] - left
            c1, c0 = min(c0 + size[1], w), max(c0, 0)
            window = x[:, r0:r1, c0:c1, :]
            y[:, i, j] = window.max(axis=(1, 2)) if method == "max" else window.mean(axis=(1, 2))
    return y


def mcn_lrn(x, param):
    """vl_nnnormalize: y = x / (kappa + alpha * S)^beta, S the sum of squares over channels
    [k - floor((N-1)/2), k + ceil((N-1)/2)]."""
    size, kappa, alpha, beta = param
    squares = x.astype(np.float64) ** 2
    c = x.shape[-1]
    y = np.empty_like(squares)
    for k in range(c):
        lo, hi = max(0, k - (size - 1) // 2), min(c - 1, k + math.ceil((size - 1) / 2))
        y[..., k] = x[..., k] / (kappa + alpha * squares[..., lo:hi + 1].sum(-1)) ** beta
    return y


def mcn_bnorm(x, gamma, beta, moments):
    """vl_nnbnorm with given moments [mu sigma]: y = gamma (x - mu) / sigma + beta."""
    return np.ravel(gamma) * (x - moments[:, 0]) / moments[:, 1] + np.ravel(beta)


def mcn_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mcn_crop(x, like, crop):
    """dagnn.Crop: crop x to like's H x W, offsets clipped to the size difference."""
    dv, du = x.shape[1] - like.shape[1], x.shape[2] - like.shape[2]
    top, left = min(crop[0], dv), min(crop[1], du)
    return x[:, top:top + like.shape[1], left:left + like.shape[2]]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -------------------------------------------------------------------------------------------- helpers
def keras_outputs(model, x):
    outputs = model(x.astype(np.float32), training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def convert(tmp_path, variables, version="5", **kwargs):
    path = write_mat(tmp_path / "net.mat", variables, version=version)
    return from_matconvnet(path, **kwargs)


def random(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def conv_layer(name, filters, bias, **options):
    return {"type": "conv", "name": name, "weights": [filters, bias.reshape(1, -1)], **options}


# --------------------------------------------------------------------- every SimpleNN layer type alone
def layer_cases(rng):
    """(case id, input H x W x C, SimpleNN layer, NumPy reference of the layer)."""
    f1, b1 = random(rng, 3, 3, 3, 4), random(rng, 4)
    f2, b2 = random(rng, 3, 2, 3, 5), random(rng, 5)
    f3, b3 = random(rng, 3, 3, 3, 4), random(rng, 4)
    f4, b4 = random(rng, 3, 3, 2, 6), random(rng, 6)
    t1, tb1 = random(rng, 4, 4, 3, 4), random(rng, 3)
    t2, tb2 = random(rng, 3, 3, 2, 4), random(rng, 4)
    gamma, beta, mu = random(rng, 4), random(rng, 4), random(rng, 4)
    sigma = (rng.random(4) + 0.5).astype(np.float32)
    moments = np.stack([mu, sigma], axis=1)
    lrn = [5, 2.0, 0.05, 0.75]
    return [
        ("conv pad scalar, stride scalar", (9, 8, 3), conv_layer("c", f1, b1, pad=1, stride=2),
         lambda x: mcn_conv(x, f1, b1, (1, 1, 1, 1), (2, 2))),
        ("conv asymmetric pad and stride", (9, 8, 3),
         conv_layer("c", f2, b2, pad=np.array([[0, 2, 1, 3]]), stride=np.array([[2, 1]])),
         lambda x: mcn_conv(x, f2, b2, (0, 2, 1, 3), (2, 1))),
        ("conv dilated", (10, 9, 3),
         conv_layer("c", f3, b3, pad=np.array([[2, 2, 1, 1]]), dilate=np.array([[2, 1]])),
         lambda x: mcn_conv(x, f3, b3, (2, 2, 1, 1), (1, 1), (2, 1))),
        ("conv groups from the filter depth", (7, 6, 4), conv_layer("c", f4, b4, pad=1),
         lambda x: mcn_conv(x, f4, b4, (1, 1, 1, 1))),
        ("convt upsample and crop", (5, 4, 4),
         {"type": "convt", "name": "t", "weights": [t1, tb1.reshape(1, -1)], "upsample": 2,
          "crop": np.array([[1, 1, 1, 1]])},
         lambda x: mcn_convt(x, t1, tb1, (2, 2), (1, 1, 1, 1))),
        ("convt groups, uneven upsample and crop", (5, 4, 4),
         {"type": "convt", "name": "t", "weights": [t2, tb2.reshape(1, -1)], "upsample": np.array([[2, 3]]),
          "crop": np.array([[0, 1, 2, 0]]), "numGroups": 2},
         lambda x: mcn_convt(x, t2, tb2, (2, 3), (0, 1, 2, 0), groups=2)),
        ("max pool, padded borders", (9, 8, 3),
         {"type": "pool", "name": "p", "method": "max", "pool": np.array([[3, 3]]), "stride": 2,
          "pad": np.array([[0, 1, 0, 1]])},
         lambda x: mcn_pool(x, (3, 3), (2, 2), (0, 1, 0, 1), "max")),
        ("avg pool divides by in-image cells", (9, 8, 3),
         {"type": "pool", "name": "p", "method": "avg", "pool": np.array([[3, 2]]), "stride": np.array([[2, 1]]),
          "pad": np.array([[1, 2, 1, 0]])},
         lambda x: mcn_pool(x, (3, 2), (2, 1), (1, 2, 1, 0), "avg")),
        ("normalize (alpha per element)", (5, 4, 7), {"type": "normalize", "name": "n", "param": np.array([lrn])},
         lambda x: mcn_lrn(x, lrn)),
        ("lrn alias", (5, 4, 6), {"type": "lrn", "name": "n", "param": np.array([[4, 1.0, 0.1, 0.5]])},
         lambda x: mcn_lrn(x, [4, 1.0, 0.1, 0.5])),
        ("leaky relu", (5, 4, 3), {"type": "relu", "name": "r", "leak": 0.1},
         lambda x: np.where(x > 0, x, 0.1 * x)),
        ("bnorm with mean and sigma moments", (5, 4, 4),
         {"type": "bnorm", "name": "bn", "weights": [gamma.reshape(-1, 1), beta.reshape(-1, 1), moments],
          "epsilon": 1e-4},
         lambda x: mcn_bnorm(x, gamma, beta, moments)),
        ("softmax over channels", (3, 4, 5), {"type": "softmax", "name": "s"}, mcn_softmax),
        ("dropout is identity", (3, 4, 5), {"type": "dropout", "name": "d", "rate": 0.5}, lambda x: x),
        ("sigmoid", (3, 4, 5), {"type": "sigmoid", "name": "g"}, sigmoid),
    ]


CASE_IDS = [case[0] for case in layer_cases(np.random.default_rng(0))]


@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_simplenn_layer_matches_matconvnet_formula(tmp_path, index):
    rng = np.random.default_rng(index)
    case_id, (h, w, c), layer, reference = layer_cases(np.random.default_rng(0))[index]
    version = "5" if index % 2 == 0 else "7.3"  # both containers, alternately
    model = convert(tmp_path, {"layers": [layer]}, version, input_shape=(c, h, w))
    x = random(rng, 2, h, w, c)
    assert_close_rel(keras_outputs(model, x), reference(x), what=case_id)
    if "weights" in layer:
        assert model.get_layer(layer["name"]).get_weights()


def test_lrn_alpha_is_not_divided_by_the_window(tmp_path):
    graph = read_matconvnet(write_mat(tmp_path / "n.mat", {"layers": [
        {"type": "normalize", "name": "norm1", "param": np.array([[5, 2.0, 1e-4, 0.75]])}]}),
        input_shape=(8, 4, 4))
    node = graph.node("norm1")
    assert node.op == "lrn"
    assert (node.attrs["size"], node.attrs["k"], node.attrs["beta"]) == (5, 2.0, 0.75)
    assert node.attrs["alpha"] == pytest.approx(1e-4)


def test_graph_attributes_follow_matconvnet_conventions(tmp_path, rng):
    layers = [conv_layer("conv1", random(rng, 3, 2, 3, 4), random(rng, 4), pad=np.array([[1, 2, 3, 4]]),
                         stride=np.array([[2, 3]])),
              {"type": "pool", "name": "pool1", "method": "avg", "pool": np.array([[3, 2]]),
               "pad": np.array([[0, 1, 0, 1]]), "stride": 2}]
    graph = read_matconvnet(write_mat(tmp_path / "g.mat", {"layers": layers}), input_shape=(11, 12))
    assert graph.inputs == {"input": (3, 11, 12)}
    assert graph.outputs == ["prediction"]
    conv, pool = graph.nodes
    assert conv.attrs["pads"] == (1, 2, 3, 4) and conv.attrs["strides"] == (2, 3)
    assert conv.attrs["kernel"] == (3, 2) and conv.weights["kernel"].shape == (3, 2, 3, 4)
    assert pool.attrs["rounding"] == "floor" and pool.attrs["avg_divisor"] == "valid"
    assert pool.attrs["kernel"] == (3, 2) and pool.attrs["pads"] == (0, 1, 0, 1)
    assert graph.meta["framework"] == "matconvnet"


# ----------------------------------------------------------------------- fully connected layers
def classifier(rng):
    """conv -> relu -> pool -> fc6 (covers the 4 x 3 map) -> relu -> dropout -> fc7 (1 x 1) -> softmax."""
    f1, b1 = random(rng, 3, 3, 3, 4), random(rng, 4)
    f6, b6 = random(rng, 4, 3, 4, 10, scale=0.3), random(rng, 10)
    f7, b7 = random(rng, 1, 1, 10, 7, scale=0.3), random(rng, 7)
    layers = [conv_layer("conv1", f1, b1, pad=1), {"type": "relu", "name": "relu1"},
              {"type": "pool", "name": "pool1", "method": "max", "pool": np.array([[2, 2]]), "stride": 2},
              conv_layer("fc6", f6, b6), {"type": "relu", "name": "relu6"},
              {"type": "dropout", "name": "drop6", "rate": 0.5},
              conv_layer("fc7", f7, b7), {"type": "softmax", "name": "prob"},
              {"type": "softmaxloss", "name": "loss"}]

    def reference(x):
        y = mcn_pool(np.maximum(mcn_conv(x, f1, b1, (1, 1, 1, 1)), 0), (2, 2), (2, 2))
        y = np.maximum(mcn_conv(y, f6, b6), 0)
        return mcn_softmax(mcn_conv(y, f7, b7))

    meta = {"normalization": {"imageSize": np.array([[8.0, 6.0, 3.0]])}}
    return {"layers": layers, "meta": meta}, reference


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_fully_connected_layers_become_dense_at_the_fixed_size(tmp_path, rng, version, monkeypatch):
    monkeypatch.setattr(matfile, "MEMMAP_MIN_BYTES", 0)  # map even these small arrays, as a large one is
    net, reference = classifier(rng)
    path = write_mat(tmp_path / "cls.mat", net, version=version)
    graph = read_matconvnet(path)
    assert graph.inputs == {"input": (3, 8, 6)}
    assert [graph.node(name).op for name in ("fc6", "fc7")] == ["dense", "dense"]
    fc6 = graph.node("fc6").weights["kernel"]
    # the whole-input filter bank (kh, kw, C, out) as the file holds it: a view of the file, never reordered
    assert fc6.shape == (4, 3, 4, 10) and isinstance(fc6, np.memmap)
    np.testing.assert_array_equal(fc6, net["layers"][3]["weights"][0])
    assert "loss" not in [node.name for node in graph.nodes]
    model = from_matconvnet(path)
    x = random(rng, 3, 8, 6, 3)
    y = keras_outputs(model, x)
    assert y.shape == (3, 7)
    assert_close_rel(y, reference(x).reshape(3, 7))


def test_fully_connected_layers_stay_convolutional_on_larger_inputs(tmp_path, rng):
    net, reference = classifier(rng)
    path = write_mat(tmp_path / "cls.mat", net)
    graph = read_matconvnet(path, input_shape=(12, 10))
    assert [graph.node(name).op for name in ("fc6", "fc7")] == ["conv", "conv"]
    model = from_matconvnet(path, input_shape=(12, 10))
    x = random(rng, 2, 12, 10, 3)
    y = keras_outputs(model, x)
    assert y.shape == (2, 3, 3, 7)
    assert_close_rel(y, reference(x))


# ------------------------------------------------------------------------------------- DagNN
def dag_layer(name, block_type, inputs, outputs, params=(), block=None):
    return {"name": name, "type": block_type, "inputs": list(inputs), "outputs": list(outputs),
            "params": list(params), "block": block if block is not None else np.zeros((0, 0))}


def test_dagnn_every_block_class(tmp_path, rng):
    f1, b1 = random(rng, 3, 3, 3, 4), random(rng, 4)
    g, bt, mu = random(rng, 8), random(rng, 8), random(rng, 8)
    moments = np.stack([mu, rng.random(8).astype(np.float32) + 0.5], axis=1)
    ft, bias_t = random(rng, 4, 4, 4, 8, scale=0.3), random(rng, 4)
    f2 = random(rng, 1, 1, 3, 4)
    lrn = [3, 1.5, 0.1, 0.75]
    layers = StructArray([
        dag_layer("conv1", "dagnn.Conv", ["data"], ["c1"], ["conv1f", "conv1b"],
                  {"size": np.array([[3.0, 3, 3, 4]]), "hasBias": True, "pad": np.array([[1.0, 1, 1, 1]]),
                   "stride": np.array([[1.0, 1]]), "dilate": np.array([[1.0, 1]])}),
        dag_layer("relu1", "dagnn.ReLU", ["c1"], ["r1"], block={"leak": 0.0}),
        dag_layer("pool1", "dagnn.Pooling", ["r1"], ["p1"],
                  block={"method": "max", "poolSize": np.array([[3.0, 3]]), "pad": np.array([[1.0, 1, 1, 1]]),
                         "stride": np.array([[1.0, 1]])}),
        dag_layer("norm1", "dagnn.LRN", ["r1"], ["n1"], block={"param": np.array([lrn])}),
        dag_layer("cat", "dagnn.Concat", ["p1", "n1"], ["cat"], block={"dim": 3.0}),
        dag_layer("bn", "dagnn.BatchNorm", ["cat"], ["bn"], ["bn_m", "bn_b", "bn_x"],
                  {"numChannels": 8.0, "epsilon": 1e-5}),
        dag_layer("up", "dagnn.ConvTranspose", ["bn"], ["up"], ["upf", "upb"],
                  {"size": np.array([[4.0, 4, 4, 8]]), "hasBias": True, "upsample": np.array([[2.0, 2]]),
                   "crop": np.array([[1.0, 0, 0, 1]]), "numGroups": 1.0}),
        dag_layer("crop", "dagnn.Crop", ["up", "data"], ["cropped"], block={"crop": np.array([[3.0, 1]])}),
        dag_layer("side", "dagnn.Conv", ["data"], ["side"], ["sidef"],
                  {"size": np.array([[1.0, 1, 3, 4]]), "hasBias": False, "pad": 0.0, "stride": 1.0}),
        dag_layer("sum", "dagnn.Sum", ["cropped", "side"], ["sum"], block={"numInputs": 2.0}),
        dag_layer("drop", "dagnn.DropOut", ["sum"], ["drop"], block={"rate": 0.5}),
        dag_layer("gate", "dagnn.Sigmoid", ["drop"], ["gate"]),
        dag_layer("prob", "dagnn.SoftMax", ["drop"], ["prob"]),
        dag_layer("objective", "dagnn.Loss", ["prob", "label"], ["objective"], block={"loss": "softmaxlog"}),
    ])
    params = StructArray([{"name": name, "value": value} for name, value in [
        ("conv1f", f1), ("conv1b", b1.reshape(-1, 1)), ("bn_m", g.reshape(-1, 1)), ("bn_b", bt.reshape(-1, 1)),
        ("bn_x", moments), ("upf", ft), ("upb", bias_t.reshape(-1, 1)), ("sidef", f2)]])
    variables = StructArray([{"name": name} for name in ["data", "c1", "r1", "p1", "n1", "cat", "bn", "up",
                                                         "cropped", "side", "sum", "drop", "gate", "prob",
                                                         "label", "objective"]])
    meta = {"inputs": {"name": "data", "size": np.array([[7.0, 6, 3, 1]])}}
    path = write_mat(tmp_path / "dag.mat", {"layers": layers, "params": params, "vars": variables, "meta": meta},
                     version="7.3")
    graph = read_matconvnet(path)
    assert graph.inputs == {"data": (3, 7, 6)}
    assert graph.outputs == ["gate", "prob"]
    assert graph.node("crop").attrs["offsets"] == [3, 1]
    model = from_matconvnet(path)
    x = random(rng, 2, 7, 6, 3)
    r1 = np.maximum(mcn_conv(x, f1, b1, (1, 1, 1, 1)), 0)
    cat = np.concatenate([mcn_pool(r1, (3, 3), (1, 1), (1, 1, 1, 1)), mcn_lrn(r1, lrn)], axis=-1)
    up = mcn_convt(mcn_bnorm(cat, g, bt, moments), ft, bias_t, (2, 2), (1, 0, 0, 1))
    total = mcn_crop(up, x, (3, 1)) + mcn_conv(x, f2)
    gate, prob = keras_outputs(model, x)
    assert_close_rel(gate, sigmoid(total), what="gate")
    assert_close_rel(prob, mcn_softmax(total), what="prob")
    assert model.output_names == ["gate", "prob"]


def test_dagnn_crop_offsets_are_clipped_like_dagnn_crop(tmp_path, rng):
    block = {"crop": np.array([[9.0, 1]])}
    layers = StructArray([dag_layer("crop", "dagnn.Crop", ["a", "b"], ["out"], block=block)])
    graph = read_matconvnet(write_mat(tmp_path / "crop.mat", {"layers": layers, "params": StructArray([])}),
                            input_shape=(2, 8, 8))
    assert graph.node("crop").attrs["offsets"] == [0, 0]  # equal sizes: nothing to crop


# -------------------------------------------------------------------------------------- metadata
def test_meta_normalization_and_classes(tmp_path, rng):
    pixel = np.array([[[122.7, 116.6, 104.0]]])
    meta = {"normalization": {"averageImage": pixel, "imageSize": np.array([[9.0, 7, 3]]),
                              "interpolation": "bicubic", "keepAspect": True, "border": np.array([[32.0, 32]]),
                              "cropSize": 0.875},
            "classes": {"name": ["n01440764", "n01443537"], "description": ["tench", "goldfish"]}}
    layers = [conv_layer("conv1", random(rng, 3, 3, 3, 2), random(rng, 2))]
    graph = read_matconvnet(write_mat(tmp_path / "m.mat", {"layers": layers, "meta": meta}, version="7.3"))
    norm = graph.meta["normalization"]
    np.testing.assert_allclose(norm["mean"], [122.7, 116.6, 104.0], rtol=1e-6)
    assert norm["image_size"] == (9, 7) and norm["interpolation"] == "bicubic" and norm["keep_aspect"] is True
    assert norm["border"] == (32.0, 32.0) and norm["crop_size"] == (0.875, 0.875)
    assert graph.meta["classes"] == {"names": ["n01440764", "n01443537"], "descriptions": ["tench", "goldfish"]}


def test_average_image_and_old_style_top_level_fields(tmp_path, rng):
    average = random(rng, 6, 5, 3, scale=50)
    filters, biases = random(rng, 3, 3, 3, 2), random(rng, 2)
    net = {"layers": [{"type": "conv", "name": "conv1", "filters": filters, "biases": biases.reshape(1, -1),
                       "pad": 1}],
           "normalization": {"averageImage": average, "imageSize": np.array([[6.0, 5, 3]])},
           "classes": {"name": "only"}}
    path = write_mat(tmp_path / "old.mat", net)
    graph = read_matconvnet(path)
    mean = graph.meta["normalization"]["mean"]
    assert mean.shape == (3, 6, 5)
    np.testing.assert_allclose(mean[2, 4, 1], average[4, 1, 2])
    assert graph.meta["classes"]["names"] == ["only"]
    plain, baked = from_matconvnet(path), from_matconvnet(path, normalize=True)
    x = random(rng, 2, 6, 5, 3, scale=100)
    assert_close_rel(keras_outputs(plain, x), mcn_conv(x, filters, biases, (1, 1, 1, 1)))
    assert_close_rel(keras_outputs(baked, x), mcn_conv(x - average, filters, biases, (1, 1, 1, 1)))


# --------------------------------------------------------------------------- real MatConvNet files
@pytest.fixture(scope="module")
def noisy_photo():
    import skimage.data

    clean = skimage.data.camera()[160:288, 192:320].astype(np.float32) / 255.0
    noise = np.random.default_rng(25).normal(0.0, 25.0 / 255.0, clean.shape).astype(np.float32)
    return clean, clean + noise


def psnr(image, reference):
    return 10 * np.log10(1.0 / np.mean((image - reference) ** 2))


def test_dncnn_denoises_a_real_photograph(noisy_photo):
    clean, noisy = noisy_photo
    model = from_matconvnet(fixture_path(DNCNN + "sigma=25.mat"))
    residual = keras_outputs(model, noisy[None, :, :, None])[0, :, :, 0]
    before, after = psnr(noisy, clean), psnr(noisy - residual, clean)
    assert before == pytest.approx(20.2, abs=0.5)  # sigma 25 on 0..1 images
    assert after > before + 6, (before, after)


def test_dncnn_with_bnorm_layers_computes_the_folded_network(noisy_photo):
    """Two real files of the same DnCNN: explicit bnorm layers (mean, sigma moments) and folded into convs."""
    _, noisy = noisy_photo
    x = noisy[None, :64, :64, None]
    folded = keras_outputs(from_matconvnet(fixture_path(DNCNN + "sigma=25.mat")), x)
    with_bnorm = keras_outputs(from_matconvnet(fixture_path(DNCNN + "sigma=25_Bnorm.mat")), x)
    assert_close_rel(with_bnorm, folded, tol=1e-3)


def test_dncnn_dagnn_training_checkpoint_outputs_the_clean_image(noisy_photo):
    clean, noisy = noisy_photo
    path = fixture_path(DNCNN + "DnCNN-epoch-50_dagnn.mat")
    graph = read_matconvnet(path)
    assert graph.inputs == {"input": (1, None, None)} and graph.outputs == ["prediction"]
    assert "loss" not in [node.name for node in graph.nodes]
    assert sum(node.op == "batchnorm" for node in graph.nodes) == 15
    denoised = keras_outputs(from_matconvnet(path), noisy[None, :, :, None])[0, :, :, 0]
    assert psnr(denoised, clean) > psnr(noisy, clean) + 6


def render_digit(digit):
    """A white digit on black, filling a tall 10 x 18 box of a 20 x 20 image, like a plate character."""
    canvas = np.zeros((60, 60), np.uint8)
    font = cv2.FONT_HERSHEY_DUPLEX
    (width, height), _ = cv2.getTextSize(str(digit), font, 1.5, 3)
    cv2.putText(canvas, str(digit), ((60 - width) // 2, (60 + height) // 2), font, 1.5, 255, 3)
    rows, cols = np.nonzero(canvas)
    glyph = cv2.resize(canvas[rows.min():rows.max() + 1, cols.min():cols.max() + 1], (10, 18),
                       interpolation=cv2.INTER_AREA)
    image = np.zeros((20, 20), np.float32)
    image[1:19, 5:15] = glyph
    return image


def test_v5_checkpoint_reads_digits_upright():
    """Orientation on a real trained net: a license-plate character classifier (MAT v5 checkpoint) recognises
    upright rendered digits (its classes 0..9 are the digits), and not the same digits transposed, which is
    what a reader swapping MATLAB's rows and columns would effectively feed it."""
    path = fixture_path(PLATE)
    graph = read_matconvnet(path)
    assert graph.inputs == {"input": (1, 20, 20)}
    mean = graph.meta["normalization"]["mean"]
    assert mean.shape == (1, 20, 20)
    rows, cols = mean[0].sum(axis=1), mean[0].sum(axis=0)
    assert np.count_nonzero(rows > 0.2 * rows.max()) > np.count_nonzero(cols > 0.2 * cols.max())  # tall glyphs
    model = from_matconvnet(path, normalize=True)
    digits = np.stack([render_digit(d) for d in range(10)])
    upright = keras_outputs(model, digits[..., None]).reshape(10, -1).argmax(1)
    transposed = keras_outputs(model, digits.transpose(0, 2, 1)[..., None]).reshape(10, -1).argmax(1)
    assert np.sum(upright == np.arange(10)) >= 8, upright
    assert np.sum(transposed == np.arange(10)) <= 4, transposed


# --------------------------------------------------------------------------------------- bad input
def bad_cases(rng):
    good_conv = conv_layer("conv1", random(rng, 3, 3, 3, 4), random(rng, 4))
    return [
        ("not a network", {"something": np.ones((2, 2))}, None, "not a MatConvNet network"),
        ("unknown SimpleNN type", {"layers": [dict(good_conv), {"type": "warp", "name": "odd"}]}, "odd",
         "unknown SimpleNN layer type 'warp'"),
        ("missing type", {"layers": [{"name": "typeless"}]}, "typeless", "missing field 'type'"),
        ("missing weights", {"layers": [{"type": "conv", "name": "empty", "weights": []}]}, "empty",
         "missing weight 1"),
        ("bias size", {"layers": [conv_layer("conv1", random(rng, 3, 3, 3, 4), random(rng, 5))]}, "conv1",
         "biases have 5 elements, expected 4"),
        ("filter depth", {"layers": [dict(good_conv),
                                     conv_layer("conv2", random(rng, 3, 3, 3, 2), random(rng, 2))]}, "conv2",
         "filter depth 3 does not divide the 4 input channels"),
        ("pool size missing", {"layers": [dict(good_conv), {"type": "pool", "name": "pool1"}]}, "pool1",
         "pooling window size"),
        ("bad moments", {"layers": [dict(good_conv), {"type": "bnorm", "name": "bn1", "weights": [
            np.ones((4, 1), np.float32), np.zeros((4, 1), np.float32), np.ones((3, 2), np.float32)]}]},
         "bn1", "moments have shape (3, 2), expected (4, 2)"),
        ("bad pad", {"layers": [conv_layer("conv1", random(rng, 3, 3, 3, 4), random(rng, 4),
                                           pad=np.array([[1.0, 2.0]]))]}, "conv1", "pad must be one or four"),
        ("too small input", {"layers": [dict(good_conv)], "meta": {"inputSize": np.array([[2.0, 2, 3]])}},
         "conv1", "smaller than the window"),
        ("unknown DagNN type", {"layers": StructArray([dag_layer("warp", "dagnn.Warp", ["x"], ["y"])]),
                                "params": StructArray([])}, "warp", "unknown DagNN layer type 'dagnn.Warp'"),
        ("missing DagNN param", {"layers": StructArray([dag_layer("c", "dagnn.Conv", ["x"], ["y"], ["cf"],
                                                                  {"size": np.array([[1.0, 1, 3, 2]])})]),
                                 "params": StructArray([{"name": "other", "value": np.ones((1, 1))}])}, "c",
         "parameter 'cf' is not in the file's params"),
        ("sum of different shapes", {"layers": StructArray([
            dag_layer("pool", "dagnn.Pooling", ["x"], ["p"], block={"poolSize": 2.0, "stride": 2.0}),
            dag_layer("sum", "dagnn.Sum", ["x", "p"], ["y"])]), "params": StructArray([]),
            "meta": {"inputs": {"name": "x", "size": np.array([[8.0, 8, 3]])}}}, "sum", "input shapes disagree"),
    ]


BAD_IDS = [case[0] for case in bad_cases(np.random.default_rng(0))]


@pytest.mark.parametrize("index", range(len(BAD_IDS)), ids=BAD_IDS)
def test_bad_networks_are_conversion_errors_naming_file_layer_and_problem(tmp_path, index):
    case_id, variables, layer, problem = bad_cases(np.random.default_rng(0))[index]
    path = write_mat(tmp_path / "broken.mat", variables, version="5" if index % 2 else "7.3")
    with pytest.raises(ConversionError) as error:
        read_matconvnet(path)
    message = str(error.value)
    assert "broken.mat" in message and problem in message, message
    if layer is not None:
        assert error.value.layer == layer and f"'{layer}'" in message


def test_truncated_v73_network_is_a_conversion_error(tmp_path):
    source = fixture_path(DNCNN + "sigma=25.mat").read_bytes()
    path = tmp_path / "cut.mat"
    path.write_bytes(source[:len(source) * 3 // 4])
    with pytest.raises(ConversionError, match="cut.mat"):
        read_matconvnet(path)


# ------------------------------------------------------------------ one network, as Caffe and as MatConvNet
CAFFE_PROTOTXT = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 14 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
        lrn_param { local_size: 3 alpha: 0.3 beta: 0.75 k: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "norm1" top: "conv2"
        convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0 group: 2 } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2"
        batch_norm_param { use_global_stats: true eps: 1e-5 } }
layer { name: "scale2" type: "Scale" bottom: "conv2" top: "conv2" scale_param { bias_term: true } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "fc3" type: "InnerProduct" bottom: "conv2" top: "fc3" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc3" top: "prob" }
"""


def test_same_network_as_caffe_and_as_matconvnet_gives_the_same_outputs(tmp_path, rng):
    """One set of arrays written as a caffemodel and as the .mat MatConvNet's Caffe importer makes of it
    (filters H x W x Cin x Cout, first filters flipped BGR -> RGB, InnerProduct as a full-size filter bank,
    pooling pads corrected for Caffe's ceil rounding, LRN alpha / N, BatchNorm + Scale as bnorm moments)."""
    from keras_zoo.convert import from_caffe
    from converters.writers.caffe import write_caffemodel

    w1, b1 = random(rng, 4, 3, 3, 3), random(rng, 4)
    w2, b2 = random(rng, 6, 2, 3, 2), random(rng, 6)
    mean, var, factor = random(rng, 6), rng.random(6).astype(np.float32) + 0.5, np.float32(2.0)
    gamma, beta = random(rng, 6), random(rng, 6)
    w3, b3 = random(rng, 5, 6 * 7 * 5, scale=0.05), random(rng, 5)
    prototxt = tmp_path / "tiny.prototxt"
    prototxt.write_text(CAFFE_PROTOTXT)
    caffemodel = write_caffemodel(tmp_path / "tiny.caffemodel", [
        ("conv1", "Convolution", [w1, b1]), ("conv2", "Convolution", [w2, b2]),
        ("bn2", "BatchNorm", [mean * factor, var * factor, np.array([factor])]),
        ("scale2", "Scale", [gamma, beta]), ("fc3", "InnerProduct", [w3, b3])])

    def mcn_filters(caffe_weights):
        return np.ascontiguousarray(caffe_weights.transpose(2, 3, 1, 0))

    moments = np.stack([mean, np.sqrt(var + 1e-5)], axis=1)
    layers = [
        conv_layer("conv1", mcn_filters(w1)[:, :, ::-1, :], b1, pad=1, stride=1),
        {"type": "relu", "name": "relu1"},
        {"type": "pool", "name": "pool1", "method": "max", "pool": np.array([[3, 3]]),
         "stride": np.array([[2, 2]]), "pad": np.array([[0, 1, 0, 1]])},
        {"type": "normalize", "name": "norm1", "param": np.array([[3, 2, 0.3 / 3, 0.75]])},
        conv_layer("conv2", mcn_filters(w2), b2, pad=np.array([[1, 1, 0, 0]])),
        {"type": "bnorm", "name": "bn2", "weights": [gamma.reshape(-1, 1), beta.reshape(-1, 1), moments]},
        {"type": "relu", "name": "relu2"},
        conv_layer("fc3", mcn_filters(w3.reshape(5, 6, 7, 5)), b3),
        {"type": "softmax", "name": "prob"},
    ]
    mat = write_mat(tmp_path / "tiny.mat", {"layers": layers,
                                            "meta": {"normalization": {"imageSize": np.array([[14.0, 12, 3]])}}})
    x_bgr = random(rng, 2, 14, 12, 3, scale=3)
    caffe_out = keras_outputs(from_caffe(prototxt, caffemodel), x_bgr)
    mcn_out = keras_outputs(from_matconvnet(mat), x_bgr[..., ::-1])
    assert caffe_out.shape == mcn_out.shape == (2, 5)
    assert_close_rel(mcn_out, caffe_out)
    assert caffe_out.min() > 1e-3 and caffe_out.std(axis=0).max() > 0.01  # not saturated, input-dependent


def test_weights_matlab_could_not_save_as_arrays_are_named(tmp_path):
    import scipy.io
    import scipy.sparse

    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = scipy.sparse.eye(3)
    layer = np.empty((1, 1), dtype=[("type", object), ("name", object), ("weights", object)])
    layer[0, 0] = ("conv", "sparse_conv", cell)
    layers = np.empty((1, 1), dtype=object)
    layers[0, 0] = layer
    scipy.io.savemat(tmp_path / "sparse.mat", {"layers": layers})
    with pytest.raises(ConversionError, match="layer 'sparse_conv'.*weight 1 is a MATLAB sparse value"):
        read_matconvnet(tmp_path / "sparse.mat", input_shape=(3, 4, 4))
