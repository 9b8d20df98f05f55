"""keras_zoo.builder and keras_zoo.preprocessing on hand-built neutral graphs (NumPy references in the tests)."""

import keras
import numpy as np
import pytest

import keras_zoo
from converters.errors import ConversionError
from converters.graph import Graph, Node
from keras_zoo import weight_assignment
from keras_zoo.builder import build_model, keras_name, port_weights
from keras_zoo.cards import InputSpec
from keras_zoo.preprocessing import Preprocessing
from tests.helpers import assert_close_rel


def weights(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def nchw(y):
    y = np.asarray(y)
    return np.transpose(y, (0, 3, 1, 2)) if y.ndim == 4 else y


def small_net(rng, source="small.prototxt"):
    """conv -> relu (in place) -> BN -> Scale (in place) -> pool -> fc on a 4-D blob -> prelu -> softmax."""
    return Graph("small/net", {"data": (3, 8, 10)}, [
        Node("conv1/3x3", "conv", ["data"], ["conv1"],
             dict(filters=4, kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1), groups=1, use_bias=True),
             dict(kernel=weights(rng, 3, 3, 3, 4), bias=weights(rng, 4))),
        Node("relu1", "relu", ["conv1"], ["conv1"], dict(negative_slope=0.1)),
        Node("bn1", "batchnorm", ["conv1"], ["conv1"], dict(stat="variance", epsilon=1e-5),
             dict(mean=weights(rng, 4), variance=np.abs(weights(rng, 4)) + 0.5)),
        Node("scale1", "scale", ["conv1"], ["conv1"], dict(axis=1, num_axes=1, use_bias=True),
             dict(gamma=weights(rng, 4), beta=weights(rng, 4))),
        Node("pool1", "pool", ["conv1"], ["pool1"],
             dict(method="max", kernel=(3, 3), strides=(2, 2), pads=(0, 0, 0, 0))),
        Node("fc", "dense", ["pool1"], ["fc"], dict(units=5, axis=1),
             dict(kernel=weights(rng, 4 * 4 * 5, 5), bias=weights(rng, 5))),
        Node("prelu", "prelu", ["fc"], ["fc"], dict(channel_shared=False), dict(alpha=weights(rng, 5))),
        Node("prob", "softmax", ["fc"], ["prob"], dict(axis=1)),
    ], ["prob", "fc", "pool1"], source=source)


def reference_small_net(graph, x):
    """NumPy forward pass of small_net (NCHW, Caffe's formulas)."""
    conv = graph.node("conv1/3x3").weights
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((x.shape[0], 4, 8, 10))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,co->nohw", xp[:, :, i:i + 8, j:j + 10], conv["kernel"][i, j])
    y += conv["bias"][None, :, None, None]
    y = np.where(y > 0, y, 0.1 * y)
    bn, scale = graph.node("bn1").weights, graph.node("scale1").weights
    c = (None, slice(None), None, None)
    y = (y - bn["mean"][c]) / np.sqrt(bn["variance"][c] + 1e-5) * scale["gamma"][c] + scale["beta"][c]
    # ceil rule: (8-3)/2 -> 4 rows, (10-3)/2 -> 5 columns (the last windows are clipped)
    pool = np.stack([np.stack([y[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(2, 3)) for j in range(5)], -1)
                     for i in range(4)], -2)
    dense = graph.node("fc").weights
    fc = pool.reshape(x.shape[0], -1) @ dense["kernel"] + dense["bias"]  # Caffe flattens C, H, W
    alpha = graph.node("prelu").weights["alpha"]
    fc = np.where(fc > 0, fc, alpha * fc)
    prob = np.exp(fc - fc.max(axis=1, keepdims=True))
    return prob / prob.sum(axis=1, keepdims=True), fc, pool


def test_small_net_matches_numpy_and_names(rng):
    graph = small_net(rng)
    model = build_model(graph)
    x = rng.standard_normal((2, 3, 8, 10)).astype(np.float32) * 10
    for y, y_ref, blob in zip(model(nhwc(x)), reference_small_net(graph, x), graph.outputs):
        assert_close_rel(nchw(y), y_ref, what=blob)
    assert [t.name for t in model.inputs] == ["data"]
    # 'fc' is rewritten in place by 'prelu' and a layer already carries the name 'fc'
    assert model.output_names == ["prob", "fc_output", "pool1"]
    assert model.name == "small_net"
    for name in ("conv1_3x3", "bn1", "scale1", "fc", "prelu", "relu1", "pool1"):
        model.get_layer(name)


def test_keras_name():
    assert keras_name("conv1/3x3_reduce") == "conv1_3x3_reduce"
    assert keras_name("inception_3a/1x1") == "inception_3a_1x1"
    assert keras_name("conv4-2") == "conv4-2"
    assert keras_name("a b:c") == "a_b_c"


def test_dense_after_flatten_layer_keeps_caffe_order(rng):
    kernel = weights(rng, 2 * 3 * 4, 3)
    graph = Graph("g", {"data": (2, 3, 4)}, [
        Node("flat", "flatten", ["data"], ["flat"], dict(axis=1, end_axis=-1)),
        Node("ip", "dense", ["flat"], ["ip"], dict(units=3), dict(kernel=kernel, bias=np.zeros(3, np.float32))),
    ], ["ip", "flat"])
    model = build_model(graph)
    x = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)
    ip, flat = model(nhwc(x))
    assert_close_rel(flat, x.reshape(2, -1))
    assert_close_rel(ip, x.reshape(2, -1) @ kernel)


def test_port_weights_assigns_large_kernels_in_slices(rng, monkeypatch):
    """The zoo builders' path: architecture first (no weights), then port_weights, slice by slice."""
    monkeypatch.setattr(weight_assignment, "CHUNK_BYTES", 256)
    graph = small_net(rng)
    graph.nodes.append(Node("conv2", "conv", ["pool1"], ["conv2"],
                            dict(filters=40, kernel=(1, 1), use_bias=False), dict(kernel=weights(rng, 1, 1, 4, 40))))
    graph.outputs = ["fc", "conv2"]
    bare = Graph(graph.name, graph.inputs, [Node(n.name, n.op, n.inputs, n.outputs, n.attrs) for n in graph.nodes],
                 graph.outputs)
    model = build_model(bare)
    x = rng.standard_normal((1, 3, 8, 10)).astype(np.float32)
    port_weights(model, graph)
    _, fc, pool = reference_small_net(graph, x)
    fc_out, conv_out = model(nhwc(x))
    assert_close_rel(fc_out, fc)
    assert_close_rel(nchw(conv_out), np.einsum("nchw,co->nohw", pool, graph.node("conv2").weights["kernel"][0, 0]))


def filter_bank_net(kernel, units):
    """data (3, 4, 5) -> dense fc6 over the whole input -> dense fc7 (1 x 1 filter bank, a flat input)."""
    return Graph("bank", {"data": (3, 4, 5)}, [
        Node("fc6", "dense", ["data"], ["fc6"], dict(units=units, use_bias=True),
             dict(kernel=kernel["fc6"], bias=kernel["fc6_bias"])),
        Node("fc7", "dense", ["fc6"], ["fc7"], dict(units=2, use_bias=False), dict(kernel=kernel["fc7"])),
    ], ["fc7", "fc6"], source="bank.mat")


@pytest.mark.parametrize("path", ["build", "port in slices"])
def test_dense_filter_bank_kernel_matches_channel_major_rows(rng, tmp_path, monkeypatch, path):
    """A 4-D (kh, kw, C, out) dense kernel (a column-major file view, as MatConvNet stores a fully connected
    layer) computes sum over h, w, c of x[h, w, c] * K[h, w, c, o], the same model as its 2-D (C, H, W) rows."""
    bank = weights(rng, 4, 5, 3, 6)  # H x W x C x out over the (3, 4, 5) input
    file = np.memmap(tmp_path / "fc6.bin", np.float32, "w+", shape=bank.shape, order="F")
    file[...] = bank
    file.flush()
    mapped = np.memmap(tmp_path / "fc6.bin", np.float32, "r", shape=bank.shape, order="F")
    fc7 = weights(rng, 1, 1, 6, 2)
    as_bank = {"fc6": mapped, "fc6_bias": weights(rng, 6), "fc7": fc7}
    as_rows = {"fc6": bank.transpose(2, 0, 1, 3).reshape(-1, 6), "fc6_bias": as_bank["fc6_bias"],
               "fc7": fc7.reshape(6, 2)}
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)  # NHWC
    fc6 = np.einsum("nhwc,hwco->no", x.astype(np.float64), bank) + as_bank["fc6_bias"]
    fc7_expected = fc6 @ fc7[0, 0]
    models = {}
    for form, kernels in (("bank", as_bank), ("rows", as_rows)):
        graph = filter_bank_net(kernels, 6)
        if path == "build":
            models[form] = build_model(graph)
        else:
            monkeypatch.setattr(weight_assignment, "CHUNK_BYTES", 3 * 4 * 5 * 4)  # one output column per slice
            bare = Graph(graph.name, graph.inputs,
                         [Node(n.name, n.op, n.inputs, n.outputs, n.attrs) for n in graph.nodes], graph.outputs)
            models[form] = port_weights(build_model(bare), graph)
        y7, y6 = models[form](x)
        assert_close_rel(y6, fc6, what=f"fc6 from the {form} kernel")
        assert_close_rel(y7, fc7_expected, what=f"fc7 from the {form} kernel")
    np.testing.assert_array_equal(models["bank"].get_layer("fc6").kernel.numpy(),
                                  models["rows"].get_layer("fc6").kernel.numpy())


@pytest.mark.parametrize("path", ["build", "port"])
def test_dense_filter_bank_not_covering_the_input_is_an_error(rng, path):
    kernels = {"fc6": weights(rng, 5, 4, 3, 6), "fc6_bias": weights(rng, 6), "fc7": weights(rng, 1, 1, 6, 2)}
    graph = filter_bank_net(kernels, 6)  # 5 x 4 x 3 has the size of the 4 x 5 x 3 input, not its shape
    with pytest.raises(ConversionError) as error:
        if path == "build":
            build_model(graph)
        else:
            good = filter_bank_net({**kernels, "fc6": weights(rng, 4, 5, 3, 6)}, 6)
            port_weights(build_model(good), graph)
    message = str(error.value)
    assert "bank.mat" in message and "fc6" in message and "(5, 4, 3, 6)" in message and "(4, 5, 3)" in message


def test_weight_shape_mismatch_names_file_layer_and_shapes(rng):
    graph = small_net(rng)
    graph.node("conv1/3x3").weights["kernel"] = weights(rng, 5, 5, 3, 4)
    with pytest.raises(ConversionError) as error:
        build_model(graph)
    message = str(error.value)
    assert "small.prototxt" in message and "conv1/3x3" in message
    assert "(5, 5, 3, 4)" in message and "(3, 3, 3, 4)" in message


@pytest.mark.parametrize("change,expected", [
    (lambda g: g.nodes.append(Node("odd", "roipool", ["fc"], ["odd"])), "op 'roipool' is not supported"),
    (lambda g: g.nodes.insert(0, Node("early", "relu", ["nowhere"], ["early"])), "produced by no earlier layer"),
    (lambda g: g.outputs.append("missing"), "output blob 'missing'"),
    (lambda g: g.node("pool1").attrs.update(method="median"), "pool1"),
])
def test_bad_graphs_raise_conversion_errors(rng, change, expected):
    graph = small_net(rng)
    change(graph)
    with pytest.raises(ConversionError, match=expected):
        build_model(graph)


def test_port_weights_by_name_with_rename(rng):
    graph = small_net(rng)
    model = build_model(graph)
    fresh = small_net(np.random.default_rng(1))
    for node in fresh.nodes:
        node.name = "new_" + node.name
    with pytest.raises(ConversionError, match="no layer 'new_conv1_3x3'"):
        port_weights(model, fresh)
    x = rng.standard_normal((1, 3, 8, 10)).astype(np.float32)
    port_weights(model, fresh, rename=lambda name: name[4:])
    assert_close_rel(model(nhwc(x))[1], reference_small_net(small_net(np.random.default_rng(1)), x)[1])
    port_weights(model, graph, rename={"conv1/3x3": "conv1/3x3"})
    assert_close_rel(model(nhwc(x))[1], reference_small_net(graph, x)[1])


@pytest.mark.parametrize("layer,change,found,wanted", [
    ("conv1/3x3", dict(pads=(0, 2, 1, 1)), "pads=(0, 2, 1, 1)", "pads=(1, 1, 1, 1)"),
    ("conv1/3x3", dict(strides=(2, 2)), "strides=(2, 2)", "strides=(1, 1)"),
    ("norm1", dict(k=2.0), "k=2.0", "k=1.0"),
    ("norm1", dict(alpha=2e-5), "alpha=2e-05", "alpha=0.0001"),
])
def test_port_weights_refuses_a_network_that_differs(rng, layer, change, found, wanted):
    """Weights whose file describes other pads, strides or LRN constants than the model's layer of the same
    name would compute another function: refused, naming the layer and both values."""
    def with_lrn(graph):
        graph.nodes.insert(2, Node("norm1", "lrn", ["conv1"], ["conv1"], dict(size=5, alpha=1e-4, beta=0.75)))
        return graph

    model = build_model(with_lrn(small_net(rng)))
    other = with_lrn(small_net(rng))
    port_weights(model, other)  # the same network: accepted
    other.node(layer).attrs.update(change)
    with pytest.raises(ConversionError) as error:
        port_weights(model, other)
    assert error.value.layer == layer
    message = str(error.value)
    assert found in message and wanted in message and "small.prototxt" in message


def test_input_shape_override_and_free_sizes(rng):
    kernel = weights(rng, 3, 3, 2, 2)
    graph = Graph("fcn", {"data": (2, None, None)}, [
        Node("conv", "conv", ["data"], ["conv"], dict(filters=2, kernel=(3, 3), pads=(1, 1, 1, 1), use_bias=False),
             dict(kernel=kernel)),
        Node("pool", "pool", ["conv"], ["pool"], dict(method="avg", kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1))),
        Node("up", "deconv", ["pool"], ["up"], dict(filters=2, kernel=(4, 4), strides=(2, 2), use_bias=False),
             dict(kernel=weights(rng, 4, 4, 2, 2))),
        Node("crop", "crop", ["up", "data"], ["score"], dict(axis=2, offsets=[1])),
    ], ["score"])
    model = build_model(graph)
    assert model.input.shape == (None, None, None, 2)
    for size in ((9, 13), (16, 7)):
        assert model(np.zeros((1, *size, 2), np.float32)).shape == (1, *size, 2)
    assert build_model(graph, input_shape=(20, 24)).input.shape == (None, 20, 24, 2)


def test_affine_variants(rng):
    gamma_chw = weights(rng, 3, 4, 5)
    beta = weights(rng, 3)
    graph = Graph("g", {"data": (3, 4, 5), "factor": (3,)}, [
        Node("scale_chw", "scale", ["data"], ["a"], dict(axis=1, num_axes=3), dict(gamma=gamma_chw)),
        Node("bias", "bias", ["a"], ["b"], dict(axis=1, num_axes=1), dict(beta=beta)),
        Node("by_input", "scale", ["b", "factor"], ["c"], dict(axis=1, num_axes=1, use_bias=True), dict(beta=beta)),
        Node("prod", "eltwise", ["a", "b"], ["d"], dict(operation="prod")),
        Node("weighted", "eltwise", ["c", "d"], ["e"], dict(operation="sum", coeffs=[2.0, -1.0])),
    ], ["e"])
    model = build_model(graph)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    factor = rng.standard_normal((2, 3)).astype(np.float32)
    c = (None, slice(None), None, None)
    a = x * gamma_chw[None]
    b = a + beta[c]
    expected = 2 * (b * factor[:, :, None, None] + beta[c]) - a * b
    assert_close_rel(nchw(model([nhwc(x), factor])), expected)


def test_slice_concat_crop_reshape_ops(rng):
    graph = Graph("g", {"data": (6, 5, 4)}, [
        Node("slice", "slice", ["data"], ["s1", "s2"], dict(axis=1, points=[2])),
        Node("concat", "concat", ["s2", "s1"], ["cat"], dict(axis=1)),
        Node("crop", "crop", ["cat", "s1"], ["crop"], dict(axis=1, offsets=[1, 0, 0])),
        Node("reshape", "reshape", ["crop"], ["r"], dict(shape=[0, -1], axis=0, num_axes=-1)),
        Node("softmax", "softmax", ["cat"], ["sm"], dict(axis=1)),
    ], ["r", "sm"])
    model = build_model(graph)
    x = rng.standard_normal((2, 6, 5, 4)).astype(np.float32)
    r, sm = model(nhwc(x))
    cat = np.concatenate([x[:, 2:], x[:, :2]], axis=1)
    assert_close_rel(r, cat[:, 1:3, 0:5, 0:4].reshape(2, -1))
    e = np.exp(cat - cat.max(axis=1, keepdims=True))
    assert_close_rel(nchw(sm), e / e.sum(axis=1, keepdims=True))


# ---------------------------------------------------------------- preprocessing


def test_preprocessing_flip_mean_scale(rng):
    layer = Preprocessing(flip_channels=True, mean=[104.0, 117.0, 123.0], scale=0.5).layer()
    x = rng.uniform(0, 255, (2, 4, 5, 3)).astype(np.float32)
    expected = (x[..., ::-1] - np.array([104.0, 117.0, 123.0])) * 0.5
    assert_close_rel(layer(x), expected)


def test_preprocessing_mean_image_is_centre_cropped_and_saved(rng, tmp_path):
    mean = rng.uniform(0, 255, (3, 9, 11)).astype(np.float32)
    inputs = keras.Input((5, 6, 3))
    model = keras.Model(inputs, Preprocessing(mean=mean).layer()(inputs))
    x = rng.uniform(0, 255, (1, 5, 6, 3)).astype(np.float32)
    top, left = (9 - 5) // 2, (11 - 6) // 2
    expected = x - np.transpose(mean, (1, 2, 0))[top:top + 5, left:left + 6]
    assert_close_rel(model(x), expected)
    path = tmp_path / "pre.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert_close_rel(loaded(x), expected)
    free = keras.Input((None, None, 3))
    free_model = keras.Model(free, Preprocessing(mean=mean).layer()(free))
    assert_close_rel(free_model(x), expected)


def test_preprocessing_from_card_and_normalization():
    card = Preprocessing.from_card(InputSpec(channel_order="BGR", mean=(1.0, 2.0, 3.0), scale=2.0))
    assert card.flip_channels and card.scale == 2.0 and list(card.mean) == [1.0, 2.0, 3.0]
    assert not Preprocessing.from_card(InputSpec(channel_order="RGB")).flip_channels
    with pytest.raises(ValueError):
        Preprocessing.from_card(InputSpec(channel_order="GBR"))
    norm = Preprocessing.from_normalization({"mean": np.zeros((3, 4, 4))})
    assert norm.mean.shape == (3, 4, 4) and not norm.flip_channels
    assert Preprocessing.from_normalization(None).mean is None


def test_build_model_with_preprocessing(rng):
    graph = small_net(rng)
    pre = Preprocessing(flip_channels=True, mean=[10.0, 20.0, 30.0], scale=0.1)
    model = build_model(graph, preprocessing=pre)
    assert model.get_layer("preprocess") is not None
    rgb = rng.uniform(0, 255, (1, 8, 10, 3)).astype(np.float32)
    bgr_centred = (rgb[..., ::-1] - np.array([10.0, 20.0, 30.0])) * 0.1
    assert_close_rel(model(rgb)[0], reference_small_net(graph, nchw(bgr_centred))[0])
    with pytest.raises(ConversionError, match="2 channels"):
        build_model(graph, preprocessing=Preprocessing(mean=[1.0, 2.0]))
    with pytest.raises(ConversionError, match="larger than the mean image"):
        build_model(graph, preprocessing=Preprocessing(mean=np.zeros((3, 4, 4))))


def test_lazy_exports():
    assert keras_zoo.build_model is build_model and keras_zoo.port_weights is port_weights
