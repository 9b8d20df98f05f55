"""The Caffe reader against real prototxts/caffemodels (all formats) and generated files for every layer."""

import math

import numpy as np
import pytest

from converters.caffe import schema as caffe_schema
from converters.caffe import read_caffe, read_caffemodel, read_mean_file
from converters.errors import ConversionError
from converters.writers.caffe import write_binaryproto, write_caffemodel
from tests.helpers import FIXTURES, assert_close_rel, fixture_path

# ------------------------------------------------------------------------------------ every fixture parses

# Prototxts that cannot become a deploy graph, and the reason the reader must give.
EXPECTED_ERRORS = {
    # Faster R-CNN's region proposals are a Python layer (its ROIPooling converts; see
    # tests/converters/test_caffe_fork_layers.py)
    "vgg_cnn/py-faster-rcnn_VGG_CNN_M_1024_faster_rcnn_test.prototxt":
        "unsupported layer type(s): 'proposal' (Python)",
    # this third-party copy ends with a stray line of JSON: Caffe's parser rejects it too (the same net without
    # that line, res10_300x300_ssd_deploy_clean.prototxt, converts)
    "other_archs/res10_300x300_ssd_deploy.prototxt": "syntax error at line 1790",
}
# Train/val nets whose data layers do not record the input size.
NEEDS_INPUT_SHAPE = {
    "bvlc/examples/lenet_train_test.prototxt": (1, 28, 28),
    "fcn/voc-fcn8s/val.prototxt": (500, 500), "fcn/voc-fcn16s/val.prototxt": (500, 500),
    "fcn/voc-fcn32s/val.prototxt": (500, 500), "fcn/voc-fcn-alexnet/val.prototxt": (500, 500),
    "fcn/voc-fcn8s-atonce/val.prototxt": (500, 500), "fcn/siftflow-fcn32s/test.prototxt": (256, 256),
}
ALL_PROTOTXTS = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.prototxt")) \
    if FIXTURES.is_dir() else []


@pytest.mark.parametrize("relative", ALL_PROTOTXTS)
def test_every_fixture_prototxt_reads_or_gives_the_documented_error(relative):
    path = fixture_path(relative)
    if relative in EXPECTED_ERRORS:
        with pytest.raises(ConversionError) as info:
            read_caffe(path)
        assert str(path) in str(info.value) and EXPECTED_ERRORS[relative] in str(info.value)
        return
    if relative in NEEDS_INPUT_SHAPE:
        with pytest.raises(ConversionError, match="input_shape"):
            read_caffe(path)
        graph = read_caffe(path, input_shape=NEEDS_INPUT_SHAPE[relative])
    else:
        graph = read_caffe(path)
    assert graph.inputs and graph.nodes and graph.outputs
    assert graph.outputs == sorted(graph.outputs)
    produced = set(graph.inputs)
    for node in graph.nodes:
        assert set(node.inputs) <= produced, node.describe()
        produced.update(node.outputs)
    assert set(graph.outputs) <= produced


def test_ssd_fork_layers_convert_without_the_stray_line(tmp_path):
    lines = fixture_path("other_archs/res10_300x300_ssd_deploy.prototxt").read_text().splitlines()
    assert lines[-1].startswith("{")  # the stray line
    clean = tmp_path / "ssd.prototxt"
    clean.write_text("\n".join(lines[:-1]))
    graph = read_caffe(clean)
    for layer, layer_type, op in [("conv4_3_norm", "Normalize", "normalize"), ("fc7_mbox_priorbox", "PriorBox",
                                                                             "priorbox"),
                                  ("conv9_2_mbox_conf_perm", "Permute", "permute"),
                                  ("detection_out", "DetectionOutput", "detection_output")]:
        node = graph.node(layer)
        assert (node.source_type, node.op) == (layer_type, op)
    assert sum(node.source_type == "PriorBox" for node in graph.nodes) == 6
    assert graph.outputs == ["detection_out"]


# ------------------------------------------------------------------------------- V0 / V1 / V2 equivalence

def signature(graph):
    return [(node.name, node.op, node.inputs, node.outputs, node.attrs) for node in graph.nodes]


@pytest.mark.parametrize("variants", [
    ["bvlc/bvlc_reference_caffenet/deploy.prototxt", "bvlc/bvlc_reference_caffenet/deploy_v1_layers.prototxt",
     "bvlc/bvlc_reference_caffenet/deploy_v2_input_dim.prototxt",
     "bvlc/legacy/caffenet_imagenet_deploy_v0.prototxt"],
    ["bvlc/bvlc_alexnet/deploy.prototxt", "bvlc/bvlc_alexnet/deploy_v1_layers.prototxt",
     "bvlc/bvlc_alexnet/deploy_v2_input_dim.prototxt"],
    ["bvlc/bvlc_googlenet/deploy.prototxt", "bvlc/bvlc_googlenet/deploy_v1_layers.prototxt",
     "bvlc/bvlc_googlenet/deploy_v2_input_dim.prototxt"],
])
def test_format_variants_give_the_same_graph(variants):
    graphs = [read_caffe(fixture_path(relative)) for relative in variants]
    formats = {graph.meta["format"] for graph in graphs}
    assert {"V1", "V2"} <= formats
    reference = signature(graphs[0])
    for graph in graphs[1:]:
        assert graph.inputs == graphs[0].inputs
        assert graph.outputs == graphs[0].outputs
        assert signature(graph) == reference


def test_v0_caffenet_is_read_as_v0_with_caffe_semantics():
    graph = read_caffe(fixture_path("bvlc/legacy/caffenet_imagenet_deploy_v0.prototxt"))
    assert graph.meta["format"] == "V0"
    conv1, pool1, norm1 = graph.node("conv1"), graph.node("pool1"), graph.node("norm1")
    assert conv1.attrs["kernel"] == (11, 11) and conv1.attrs["strides"] == (4, 4) and conv1.attrs["filters"] == 96
    assert pool1.attrs["rounding"] == "ceil" and pool1.attrs["avg_divisor"] == "padded"
    assert norm1.attrs["region"] == "across" and norm1.attrs["alpha"] == pytest.approx(0.0001 / 5)
    assert graph.node("conv2").attrs["groups"] == 2 and graph.node("conv2").attrs["pads"] == (2, 2, 2, 2)


def test_googlenet_details():
    graph = read_caffe(fixture_path("bvlc/bvlc_googlenet/deploy.prototxt"))
    assert graph.inputs == {"data": (3, 224, 224)} and graph.outputs == ["prob"]
    concat = graph.node("inception_3a/output")
    assert concat.op == "concat" and concat.attrs["axis"] == 1 and len(concat.inputs) == 4
    pool = graph.node("pool5/7x7_s1")
    assert pool.attrs["method"] == "avg" and pool.attrs["kernel"] == (7, 7)
    assert graph.node("loss3/classifier").attrs == {"units": 1000, "use_bias": True, "axis": 1}


def test_train_val_keeps_test_phase_and_drops_losses():
    graph = read_caffe(fixture_path("bvlc/bvlc_googlenet/train_val.prototxt"), input_shape=(256, 256))
    types = {node.source_type for node in graph.nodes}
    assert not types & {"SoftmaxWithLoss", "Accuracy", "Data"}
    assert graph.inputs == {"data": (3, 256, 256)}
    assert "label" not in {blob for node in graph.nodes for blob in node.inputs}
    assert graph.outputs == ["loss1/classifier", "loss2/classifier", "loss3/classifier"]
    # without input_shape the TEST data layer's crop_size (224) gives the size
    assert read_caffe(fixture_path("bvlc/bvlc_googlenet/train_val.prototxt")).inputs == {"data": (3, 224, 224)}
    lenet = read_caffe(fixture_path("bvlc/examples/lenet_train_test.prototxt"), input_shape=(1, 28, 28))
    assert lenet.meta["data_layers"]["data"]["scale"] == pytest.approx(1 / 256)


def test_multi_input_and_input_shape_styles():
    # the R-CNN V1 deploy declares its input with input_dim; FCN-8s with an Input layer
    graph = read_caffe(fixture_path("rcnn/rcnn_pascal_finetune_deploy_v1.prototxt"))
    assert graph.inputs == {"data": (3, 227, 227)}
    fcn = read_caffe(fixture_path("fcn/voc-fcn8s/deploy.prototxt"), input_shape=(320, 240))
    assert fcn.inputs == {"data": (3, 320, 240)}
    crop = fcn.node("score")
    assert crop.op == "crop" and crop.attrs == {"axis": 2, "offsets": [31, 31]}
    assert fcn.node("upscore2").op == "deconv" and fcn.node("upscore2").attrs["use_bias"] is False


def test_two_inputs_with_input_shape_blocks(tmp_path):
    path = tmp_path / "two.prototxt"
    path.write_text("""
        input: "a" input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
        input: "b" input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
        layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s"
                eltwise_param { operation: SUM coeff: 1 coeff: -1 } }""")
    graph = read_caffe(path)
    assert graph.inputs == {"a": (2, 4, 4), "b": (2, 4, 4)}
    assert graph.node("sum").attrs == {"operation": "sum", "coeffs": [1.0, -1.0]}


# ---------------------------------------------------------------------------------- real caffemodels

# Caffe-layout blob shapes of PROVENANCE.md "Caffemodel contents" (legacy V1 dims squeezed).
REAL_MODELS = {
    "lenet": ("small_caffemodels/lenet/lenet.prototxt", "small_caffemodels/lenet/lenet_iter_10000.caffemodel",
              {"conv1": [(20, 1, 5, 5), (20,)], "conv2": [(50, 20, 5, 5), (50,)], "ip1": [(500, 800), (500,)],
               "ip2": [(10, 500), (10,)]}),
    "cifar10_quick_v1": ("small_caffemodels/cifar10_quick_v1/cifar10_quick_v1_deploy.prototxt",
                         "small_caffemodels/cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel",
                         {"conv1": [(32, 3, 5, 5), (32,)], "conv2": [(32, 32, 5, 5), (32,)],
                          "conv3": [(64, 32, 5, 5), (64,)], "ip1": [(64, 1024), (64,)], "ip2": [(10, 64), (10,)]}),
    "cifar10_full": ("small_caffemodels/cifar10_full/cifar10_full.prototxt",
                     "small_caffemodels/cifar10_full/cifar10_full_iter_70000.caffemodel",
                     {"conv1": [(32, 3, 5, 5), (32,)], "conv2": [(32, 32, 5, 5), (32,)],
                      "conv3": [(64, 32, 5, 5), (64,)], "ip1": [(10, 1024), (10,)]}),
    "det1": ("mtcnn/det1.prototxt", "mtcnn/det1.caffemodel",
             {"conv1": [(10, 3, 3, 3), (10,)], "PReLU1": [(10,)], "conv3": [(32, 16, 3, 3), (32,)],
              "PReLU3": [(32,)], "conv4-1": [(2, 32, 1, 1), (2,)], "conv4-2": [(4, 32, 1, 1), (4,)]}),
    "det2": ("mtcnn/det2.prototxt", "mtcnn/det2.caffemodel",
             {"conv3": [(64, 48, 2, 2), (64,)], "conv4": [(128, 576), (128,)], "prelu4": [(128,)],
              "conv5-3": [(10, 128), (10,)]}),
    "det3": ("mtcnn/det3.prototxt", "mtcnn/det3.caffemodel",
             {"conv4": [(128, 64, 2, 2), (128,)], "conv5": [(256, 1152), (256,)], "prelu5": [(256,)],
              "conv6-3": [(10, 256), (10,)]}),
    "det4": ("mtcnn/det4.prototxt", "mtcnn/det4.caffemodel",
             {"conv3_5": [(64, 48, 2, 2), (64,)], "fc4": [(256, 2880), (256,)], "prelu4_5": [(64,)],
              "fc5_5": [(2, 64), (2,)]}),
}


def caffe_blobs(caffemodel):
    """{layer: [float64 arrays in Caffe layout]} decoded by the protobuf library (independent of the
    reader's wire scanner)."""
    net = caffe_schema.NetParameter.FromString(caffemodel.read_bytes())
    out = {}
    for layer in list(net.layer) + list(net.layers):
        arrays = []
        for blob in layer.blobs:
            dims = tuple(blob.shape.dim) or (blob.num, blob.channels, blob.height, blob.width)
            arrays.append(np.array(blob.data, np.float64).reshape(dims))
        if arrays:
            out[layer.name] = arrays
    return out


def to_neutral(op, caffe_arrays):
    """Caffe layouts -> the neutral layouts of converters.graph (written from the graph's table)."""
    if op == "conv":
        return {"kernel": caffe_arrays[0].transpose(2, 3, 1, 0), "bias": caffe_arrays[1].reshape(-1)}
    if op == "dense":
        weight = caffe_arrays[0].reshape(caffe_arrays[0].shape[-2:])
        return {"kernel": weight.T, "bias": caffe_arrays[1].reshape(-1)}
    if op == "prelu":
        return {"alpha": caffe_arrays[0].reshape(-1)}
    raise AssertionError(op)


@pytest.mark.parametrize("model", sorted(REAL_MODELS))
def test_real_caffemodel_blobs(model, caplog):
    prototxt, caffemodel, expected_shapes = REAL_MODELS[model]
    prototxt, caffemodel = fixture_path(prototxt), fixture_path(caffemodel)
    with caplog.at_level("WARNING", logger="converters.caffe"):
        graph = read_caffe(prototxt, caffemodel)
    reference = caffe_blobs(caffemodel)
    for name, shapes in expected_shapes.items():
        squeezed = [tuple(dim for dim in array.shape[:-len(shape)] if dim != 1) + array.shape[-len(shape):]
                    for array, shape in zip(reference[name], shapes)]
        assert squeezed == shapes, name
    weighted = {node.name: node for node in graph.nodes if node.weights}
    # det2's deploy prototxt has no landmark branch: its trained layer is reported, not an error
    unused = {"det2": {"conv5-3"}}.get(model, set())
    assert set(weighted) == set(reference) - unused
    for name in unused:
        assert f"layer '{name}' has weights in the caffemodel but is not in the net" in caplog.text
    for name, node in weighted.items():
        expected = to_neutral(node.op, reference[name])
        assert set(node.weights) == set(expected)
        for key, array in node.weights.items():
            assert array.dtype == np.float32
            np.testing.assert_array_equal(array, expected[key], err_msg=f"{name}.{key}")


@pytest.mark.parametrize("model", ["lenet", "cifar10_quick_v1", "det1", "det4"])
def test_read_caffemodel_uses_the_embedded_net(model):
    prototxt, caffemodel, _ = REAL_MODELS[model]
    from_file = read_caffe(fixture_path(prototxt), fixture_path(caffemodel))
    embedded = read_caffemodel(fixture_path(caffemodel))
    assert embedded.meta["caffemodel"] == str(fixture_path(caffemodel))
    deploy = {node.name: node for node in from_file.nodes if node.weights}
    trained = {node.name: node for node in embedded.nodes if node.weights}
    assert set(trained) == set(deploy)
    for name, node in trained.items():
        assert node.op == deploy[name].op
        assert node.attrs == deploy[name].attrs, name
        for key in node.weights:
            np.testing.assert_array_equal(node.weights[key], deploy[name].weights[key])
    assert not {node.source_type for node in embedded.nodes} & {"SoftmaxWithLoss", "Accuracy", "Silence"}
    assert all(dim is None for shape in embedded.inputs.values() for dim in shape)


def test_read_caffemodel_mtcnn_picks_the_image_top_of_hdf5_data():
    graph = read_caffemodel(fixture_path("mtcnn/det1.caffemodel"), input_shape=(12, 12))
    # the HDF5Data layer's tops are (label12face, data12face): the image is the one feeding conv1
    assert graph.inputs == {"data12face": (3, 12, 12)}
    assert read_caffe(None, fixture_path("mtcnn/det1.caffemodel")).inputs == {"data12face": (None,) * 3}


# ------------------------------------------------------------------ parity with OpenCV's Caffe runtime

def _np_conv(x, kernel, bias, attrs):
    top, bottom, left, right = attrs["pads"]
    x = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    kh, kw, cin_g, cout = kernel.shape
    dh, dw = attrs["dilation"]
    sh, sw = attrs["strides"]
    groups = attrs["groups"]
    out_h = (x.shape[1] - (dh * (kh - 1) + 1)) // sh + 1
    out_w = (x.shape[2] - (dw * (kw - 1) + 1)) // sw + 1
    y = np.zeros((cout, out_h, out_w))
    per_group = cout // groups
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dh:i * dh + sh * (out_h - 1) + 1:sh, j * dw:j * dw + sw * (out_w - 1) + 1:sw]
            for g in range(groups):
                w = kernel[i, j, :, g * per_group:(g + 1) * per_group]
                y[g * per_group:(g + 1) * per_group] += np.einsum(
                    "chw,co->ohw", patch[g * cin_g:(g + 1) * cin_g], w)
    if bias is not None:
        y += bias[:, None, None]
    return y


def _np_pool(x, attrs):
    """Caffe pooling as the graph documents it (ceil rounding, window clipped to the padded input)."""
    channels, height, width = x.shape
    kh, kw = attrs["kernel"]
    sh, sw = attrs["strides"]
    top, bottom, left, right = attrs["pads"]

    def out_size(size, k, s, pad_before, pad_after):
        out = math.ceil((size + pad_before + pad_after - k) / s) + 1
        return out - 1 if (out - 1) * s >= size + pad_before else out

    out_h, out_w = out_size(height, kh, sh, top, bottom), out_size(width, kw, sw, left, right)
    y = np.zeros((channels, out_h, out_w))
    for oh in range(out_h):
        for ow in range(out_w):
            h0, w0 = oh * sh - top, ow * sw - left
            h1, w1 = min(h0 + kh, height + bottom), min(w0 + kw, width + right)
            window = x[:, max(h0, 0):min(h1, height), max(w0, 0):min(w1, width)]
            if attrs["method"] == "max":
                y[:, oh, ow] = window.max(axis=(1, 2))
            else:
                y[:, oh, ow] = window.sum(axis=(1, 2)) / ((h1 - h0) * (w1 - w0))
    return y


def _np_lrn(x, attrs):
    size, alpha, beta, k = attrs["size"], attrs["alpha"], attrs["beta"], attrs["k"]
    squares = x ** 2
    half = (size - 1) // 2
    if attrs["region"] == "across":
        padded = np.pad(squares, ((half, size // 2), (0, 0), (0, 0)))
        total = sum(padded[i:i + x.shape[0]] for i in range(size))
    else:
        padded = np.pad(squares, ((0, 0), (half, size // 2), (half, size // 2)))
        total = sum(padded[:, i:i + x.shape[1], j:j + x.shape[2]] for i in range(size) for j in range(size))
    return x / (k + alpha * total) ** beta


def run_numpy(graph, feeds):
    """A NumPy interpreter of the neutral graph for the ops of the small real nets (one image, CHW)."""
    blobs = dict(feeds)
    for node in graph.nodes:
        x = blobs[node.inputs[0]]
        w, attrs = node.weights, node.attrs
        if node.op == "conv":
            y = _np_conv(x, w["kernel"].astype(np.float64), w.get("bias"), attrs)
        elif node.op == "pool":
            y = _np_pool(x, attrs)
        elif node.op == "lrn":
            y = _np_lrn(x, attrs)
        elif node.op == "relu":
            y = np.where(x > 0, x, x * attrs["negative_slope"])
        elif node.op == "prelu":
            alpha = w["alpha"].astype(np.float64).reshape((-1,) + (1,) * (x.ndim - 1))
            y = np.where(x > 0, x, x * alpha)
        elif node.op == "dense":
            y = x.reshape(-1) @ w["kernel"].astype(np.float64) + w["bias"]
        elif node.op == "softmax":
            e = np.exp(x - x.max(axis=attrs["axis"] - 1, keepdims=True))
            y = e / e.sum(axis=attrs["axis"] - 1, keepdims=True)
        elif node.op == "dropout":
            y = x
        else:
            raise AssertionError(f"the test interpreter lacks {node.op}")
        blobs[node.outputs[0]] = y
    return blobs


@pytest.mark.parametrize("model,size", [("lenet", None), ("cifar10_full", None), ("det1", (3, 17, 23)),
                                        ("det3", None)])
def test_numpy_run_of_the_graph_matches_opencv(model, size, rng):
    cv2 = pytest.importorskip("cv2")
    prototxt, caffemodel, _ = REAL_MODELS[model]
    prototxt, caffemodel = fixture_path(prototxt), fixture_path(caffemodel)
    graph = read_caffe(prototxt, caffemodel, input_shape=size)
    (name, shape), = graph.inputs.items()
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableWinograd(False)
    net.setInput(x[None], name)
    references = net.forward(graph.outputs)
    blobs = run_numpy(graph, {name: x.astype(np.float64)})
    for output, reference in zip(graph.outputs, references):
        assert_close_rel(blobs[output], reference[0], what=f"{model}:{output}")


# --------------------------------------------------------------------------------------- mean files

def test_mean_files_binaryproto_equals_npy():
    binary = read_mean_file(fixture_path("labels/ilsvrc12/imagenet_mean.binaryproto"))
    npy = read_mean_file(fixture_path("bvlc/ilsvrc_2012_mean.npy"))
    assert binary.shape == (3, 256, 256) and binary.dtype == np.float32
    np.testing.assert_array_equal(binary, npy)
    places = read_mean_file(fixture_path("places365/places365CNN_mean.binaryproto"))
    assert places.shape == (3, 256, 256) and 50 < places.mean() < 200


def test_written_binaryproto_round_trips(tmp_path, rng):
    mean = rng.uniform(0, 255, (3, 5, 7)).astype(np.float32)
    np.testing.assert_array_equal(read_mean_file(write_binaryproto(tmp_path / "m.binaryproto", mean)), mean)
    np.testing.assert_array_equal(read_mean_file(write_binaryproto(tmp_path / "m4.binaryproto", mean[None])),
                                  mean)


# ------------------------------------------------------------------------- generated nets, every layer

def write_net(tmp_path, text, layers=None, *, v1=False, unpacked=False, name="net"):
    prototxt = tmp_path / f"{name}.prototxt"
    prototxt.write_text(text)
    if layers is None:
        return prototxt, None
    return prototxt, write_caffemodel(tmp_path / f"{name}.caffemodel", layers, v1=v1, unpacked=unpacked)


CONV_NET = """
input: "data" input_dim: 1 input_dim: 4 input_dim: 9 input_dim: 8
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 stride: 2 pad_h: 1 pad_w: 0 group: 2
                            dilation: 2 } }
layer { name: "up" type: "Deconvolution" bottom: "conv" top: "up"
        convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1 bias_term: false group: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "up" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "fct" type: "InnerProduct" bottom: "fc" top: "fct"
        inner_product_param { num_output: 3 transpose: true } }
"""


def test_conv_deconv_dense_layouts_and_attrs(tmp_path, rng):
    conv_w, conv_b = rng.normal(size=(6, 2, 3, 2)), rng.normal(size=6)
    up_w = rng.normal(size=(6, 2, 4, 4))                  # deconv: (cin, cout/g, kh, kw)
    # conv out: h = (9 + 2 - 5) // 2 + 1 = 4, w = (8 - 3) // 2 + 1 = 3; deconv: 2*3+4-2 = 8, 2*2+4-2 = 6
    fc_w, fc_b = rng.normal(size=(5, 4 * 8 * 6)), rng.normal(size=5)
    fct_w, fct_b = rng.normal(size=(5, 3)), rng.normal(size=3)  # transpose: stored (in, out)
    layers = [("conv", "Convolution", [conv_w, conv_b]), ("up", "Deconvolution", [up_w]),
              ("fc", "InnerProduct", [fc_w, fc_b]), ("fct", "InnerProduct", [fct_w, fct_b])]
    graph = read_caffe(*write_net(tmp_path, CONV_NET, [(n, t, [b.astype(np.float32) for b in bl])
                                                        for n, t, bl in layers]))
    conv = graph.node("conv")
    assert conv.attrs == {"filters": 6, "kernel": (3, 2), "strides": (2, 2), "pads": (1, 1, 0, 0),
                          "dilation": (2, 2), "groups": 2, "use_bias": True}
    np.testing.assert_allclose(conv.weights["kernel"], conv_w.transpose(2, 3, 1, 0), rtol=1e-6)
    assert conv.weights["kernel"].shape == (3, 2, 2, 6)
    up = graph.node("up")
    assert up.op == "deconv" and up.attrs["pads"] == (1, 1, 1, 1) and up.attrs["use_bias"] is False
    assert up.weights["kernel"].shape == (4, 4, 2, 6)       # (kh, kw, cout/g, cin)
    np.testing.assert_allclose(up.weights["kernel"][1, 2, 0, 5], up_w[5, 0, 1, 2], rtol=1e-6)
    fc = graph.node("fc")
    assert fc.attrs == {"units": 5, "use_bias": True, "axis": 1}
    np.testing.assert_allclose(fc.weights["kernel"], fc_w.T, rtol=1e-6)
    np.testing.assert_allclose(graph.node("fct").weights["kernel"], fct_w, rtol=1e-6)
    assert graph.outputs == ["fct"]


def test_v1_binary_and_v2_binary_and_unpacked_floats_agree(tmp_path, rng):
    blobs = [("conv", "Convolution", [rng.normal(size=(6, 2, 3, 2)).astype(np.float32),
                                      rng.normal(size=6).astype(np.float32)]),
             ("up", "Deconvolution", [rng.normal(size=(6, 2, 4, 4)).astype(np.float32)]),
             ("fc", "InnerProduct", [rng.normal(size=(5, 192)).astype(np.float32),
                                     rng.normal(size=5).astype(np.float32)]),
             ("fct", "InnerProduct", [rng.normal(size=(5, 3)).astype(np.float32),
                                      rng.normal(size=3).astype(np.float32)])]
    prototxt, v2 = write_net(tmp_path, CONV_NET, blobs)
    v1 = write_caffemodel(tmp_path / "v1.caffemodel", blobs, v1=True)
    unpacked = write_caffemodel(tmp_path / "unpacked.caffemodel", blobs, unpacked=True)
    doubles = write_caffemodel(tmp_path / "double.caffemodel",
                               [(n, t, [b.astype(np.float64) for b in bl]) for n, t, bl in blobs])
    graphs = [read_caffe(prototxt, path) for path in (v2, v1, unpacked, doubles)]
    for graph in graphs[1:]:
        for node, reference in zip(graph.nodes, graphs[0].nodes):
            for key, array in reference.weights.items():
                assert node.weights[key].dtype == np.float32
                np.testing.assert_array_equal(node.weights[key], array)


def test_double_data_is_converted_to_float32(tmp_path):
    values = np.array([[1.0 / 3, 1e-40], [2.5, -7.0]])
    prototxt, model = write_net(tmp_path, """
        input: "x" input_shape { dim: 1 dim: 2 }
        layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 2 } }""",
                                [("fc", "InnerProduct", [values, np.zeros(2)])])
    kernel = read_caffe(prototxt, model).node("fc").weights["kernel"]
    assert kernel.dtype == np.float32
    np.testing.assert_array_equal(kernel, values.T.astype(np.float32))


NORM_NET = """
name: "norms"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { eps: 0.001 } }
layer { name: "sc" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true } }
layer { name: "pr" type: "PReLU" bottom: "bn" top: "pr" }
layer { name: "prs" type: "PReLU" bottom: "pr" top: "prs" prelu_param { channel_shared: true } }
layer { name: "bias" type: "Bias" bottom: "prs" top: "b" }
layer { name: "bn2" type: "BatchNorm" bottom: "b" top: "bn2" batch_norm_param { use_global_stats: false } }
layer { name: "sc2" type: "Scale" bottom: "bn2" bottom: "b" top: "sc2" scale_param { axis: 0 } }
layer { name: "lrn" type: "LRN" bottom: "sc2" top: "lrn"
        lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 norm_region: WITHIN_CHANNEL k: 7 } }
layer { name: "lrn2" type: "LRN" bottom: "lrn" top: "lrn2" lrn_param { local_size: 5 alpha: 0.5 k: 2 } }
"""


def test_batchnorm_scale_prelu_bias_lrn(tmp_path, rng):
    mean, var = rng.normal(size=3), rng.uniform(1, 2, size=3)
    gamma, beta, alpha, bias = (rng.normal(size=3) for _ in range(4))
    layers = [("bn", "BatchNorm", [mean * 4, var * 4, np.array([4.0])]),
              ("sc", "Scale", [gamma, beta]), ("pr", "PReLU", [alpha]), ("prs", "PReLU", [np.array([0.25])]),
              ("bias", "Bias", [bias]), ("bn2", "BatchNorm", [mean, var, np.array([0.0])])]
    layers = [(n, t, [np.asarray(b, np.float32) for b in bl]) for n, t, bl in layers]
    graph = read_caffe(*write_net(tmp_path, NORM_NET, layers))
    assert graph.name == "norms" and graph.inputs == {"data": (3, 5, 5)}
    bn = graph.node("bn")
    assert bn.attrs == {"stat": "variance", "epsilon": pytest.approx(0.001), "use_global_stats": True}
    np.testing.assert_allclose(bn.weights["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(bn.weights["variance"], var, rtol=1e-6)
    bn2 = graph.node("bn2")
    assert bn2.attrs["use_global_stats"] is False and bn2.attrs["epsilon"] == pytest.approx(1e-5)
    assert not bn2.weights["mean"].any() and not bn2.weights["variance"].any()  # scale factor 0 -> 0
    sc = graph.node("sc")
    assert sc.attrs == {"axis": 1, "num_axes": 1, "use_bias": True}
    np.testing.assert_allclose(sc.weights["gamma"], gamma, rtol=1e-6)
    np.testing.assert_allclose(sc.weights["beta"], beta, rtol=1e-6)
    assert graph.node("pr").attrs == {"channel_shared": False} and graph.node("pr").weights["alpha"].shape == (3,)
    assert graph.node("prs").attrs == {"channel_shared": True}
    np.testing.assert_array_equal(graph.node("prs").weights["alpha"], [0.25])
    np.testing.assert_allclose(graph.node("bias").weights["beta"], bias, rtol=1e-6)
    sc2 = graph.node("sc2")
    assert sc2.inputs == ["bn2", "b"] and sc2.weights == {} and sc2.attrs == {"axis": 1, "num_axes": 3, "use_bias": False}
    lrn, lrn2 = graph.node("lrn"), graph.node("lrn2")
    assert lrn.attrs == {"region": "within", "size": 3, "alpha": pytest.approx(0.5 / 9), "beta":
                         pytest.approx(0.6), "k": 1.0}
    assert lrn2.attrs == {"region": "across", "size": 5, "alpha": pytest.approx(0.1), "beta": 0.75, "k": 2.0}
    # without a caffemodel: the same nodes, no weights
    assert not read_caffe(tmp_path / "net.prototxt").weights_by_layer()


SHAPE_NET = """
input: "data" input_dim: 1 input_dim: 6 input_dim: 4 input_dim: 4
input: "ref" input_dim: 1 input_dim: 6 input_dim: 3 input_dim: 2
layers { name: "cat" type: CONCAT bottom: "data" bottom: "data" top: "cat" concat_param { concat_dim: 1 } }
layers { name: "sl" type: SLICE bottom: "cat" top: "s1" top: "s2" top: "s3"
         slice_param { slice_dim: 1 slice_point: 2 slice_point: 5 } }
layers { name: "sp" type: SPLIT bottom: "s3" top: "a" top: "b" }
layers { name: "fl" type: FLATTEN bottom: "a" top: "flat" }
layers { name: "sm" type: SOFTMAX bottom: "flat" top: "zeta" }
layers { name: "pw" type: POWER bottom: "b" top: "alpha" power_param { power: 2 scale: 3 shift: 1 } }
layers { name: "relu" type: RELU bottom: "s1" top: "s1" relu_param { negative_slope: 0.1 } }
layers { name: "drop" type: DROPOUT bottom: "s1" top: "s1" dropout_param { dropout_ratio: 0.3 } }
layers { name: "abs" type: ABSVAL bottom: "s2" top: "s2" }
layers { name: "sig" type: SIGMOID bottom: "s2" top: "s2" }
layers { name: "tanh" type: TANH bottom: "s2" top: "mid" }
layers { name: "max" type: ELTWISE bottom: "mid" bottom: "mid" top: "mx" eltwise_param { operation: MAX } }
"""


def test_v1_shape_layers_and_output_order(tmp_path):
    graph = read_caffe(write_net(tmp_path, SHAPE_NET)[0])
    assert graph.meta["format"] == "V1"
    assert graph.node("cat").attrs == {"axis": 1}
    assert graph.node("sl").attrs == {"axis": 1, "points": [2, 5]}
    assert graph.node("sp").op == "split" and graph.node("sp").outputs == ["a", "b"]
    assert graph.node("fl").attrs == {"axis": 1, "end_axis": 3}
    assert graph.node("pw").attrs == {"power": 2.0, "scale": 3.0, "shift": 1.0}
    assert graph.node("relu").attrs == {"negative_slope": pytest.approx(0.1)}
    assert graph.node("drop").attrs == {"rate": pytest.approx(0.3)}
    assert [graph.node(n).op for n in ("abs", "sig", "tanh")] == ["absval", "sigmoid", "tanh"]
    assert graph.node("max").attrs == {"operation": "max", "coeffs": []}
    # Caffe reports unconsumed blobs in name order (a std::set), unused inputs included
    assert graph.outputs == ["alpha", "mx", "ref", "s1", "zeta"]


def test_v2_reshape_crop_softmax_elu(tmp_path):
    prototxt, _ = write_net(tmp_path, """
        layer { name: "in" type: "Input" top: "data" top: "ref"
                input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } shape { dim: 1 dim: 4 dim: 5 dim: 6 } } }
        layer { name: "crop" type: "Crop" bottom: "data" bottom: "ref" top: "crop"
                crop_param { axis: 2 offset: 1 offset: 2 } }
        layer { name: "crop1" type: "Crop" bottom: "data" bottom: "ref" top: "crop1" crop_param { offset: 2 } }
        layer { name: "rs" type: "Reshape" bottom: "crop" top: "rs" reshape_param { shape { dim: 0 dim: 2 dim: -1 } } }
        layer { name: "sm" type: "Softmax" bottom: "rs" top: "sm" softmax_param { axis: -1 } }
        layer { name: "elu" type: "ELU" bottom: "crop1" top: "elu" elu_param { alpha: 0.5 } }""")
    graph = read_caffe(prototxt)
    assert graph.inputs == {"data": (4, 8, 8), "ref": (4, 5, 6)}
    assert graph.node("crop").attrs == {"axis": 2, "offsets": [1, 2]}
    assert graph.node("crop1").attrs == {"axis": 2, "offsets": [2, 2]}
    assert graph.node("rs").attrs == {"shape": [0, 2, -1], "axis": 0, "num_axes": -1}
    assert graph.node("sm").attrs == {"axis": 2}  # -1 of the 3-D reshaped blob (4 * 5 * 6 / 2 = 60)
    assert graph.node("elu").attrs == {"alpha": 0.5}


def test_pooling_attrs(tmp_path):
    prototxt, _ = write_net(tmp_path, """
        input: "data" input_dim: 1 input_dim: 3 input_dim: 7 input_dim: 7
        layer { name: "p1" type: "Pooling" bottom: "data" top: "p1"
                pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
        layer { name: "p2" type: "Pooling" bottom: "p1" top: "p2"
                pooling_param { pool: MAX kernel_h: 2 kernel_w: 1 stride_h: 1 stride_w: 2 round_mode: FLOOR } }
        layer { name: "g" type: "Pooling" bottom: "p2" top: "g" pooling_param { pool: AVE global_pooling: true } }
        layer { name: "fc" type: "InnerProduct" bottom: "g" top: "fc" inner_product_param { num_output: 2 } }""")
    graph = read_caffe(prototxt)
    assert graph.node("p1").attrs == {"method": "avg", "global": False, "rounding": "ceil",
                                      "avg_divisor": "padded", "kernel": (3, 3), "strides": (2, 2),
                                      "pads": (1, 1, 1, 1)}
    p2 = graph.node("p2").attrs
    assert (p2["method"], p2["rounding"], p2["kernel"], p2["strides"]) == ("max", "floor", (2, 1), (1, 2))
    g = graph.node("g").attrs
    # p1: ceil((7 + 2 - 3) / 2) + 1 = 4; p2: floor((4 - 2) / 1) + 1 = 3 rows, floor((4 - 1) / 2) + 1 = 2 cols
    assert g["global"] is True and g["kernel"] == (3, 2)


def test_fork_ceil_mode_false_means_floor_rounding(tmp_path):
    prototxt, _ = write_net(tmp_path, """
        input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
        layer { name: "p" type: "Pooling" bottom: "data" top: "p"
                pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false } }
        layer { name: "q" type: "Pooling" bottom: "p" top: "q"
                pooling_param { pool: MAX kernel_size: 2 stride: 2 ceil_mode: true } }""")
    graph = read_caffe(prototxt)
    assert graph.node("p").attrs["rounding"] == "floor"
    assert graph.node("q").attrs["rounding"] == "ceil"


def test_phase_rules_and_stages(tmp_path):
    prototxt, _ = write_net(tmp_path, """
        state { stage: "deploy" }
        layer { name: "train_data" type: "Data" top: "data" top: "label" include { phase: TRAIN } }
        layer { name: "test_data" type: "Data" top: "data" top: "label" include { phase: TEST }
                transform_param { crop_size: 10 mean_value: 104 } }
        layer { name: "a" type: "ReLU" bottom: "data" top: "a" exclude { stage: "deploy" } }
        layer { name: "b" type: "ReLU" bottom: "data" top: "b" include { stage: "deploy" } }
        layer { name: "c" type: "ReLU" bottom: "data" top: "c" include { min_level: 1 } }
        layer { name: "fc" type: "InnerProduct" bottom: "b" top: "fc" inner_product_param { num_output: 2 } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
        layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" }""")
    graph = read_caffe(prototxt)
    assert [node.name for node in graph.nodes] == ["b", "fc"]
    assert graph.inputs == {"data": (3, 10, 10)} and graph.outputs == ["fc"]
    assert graph.meta["data_layers"]["data"]["mean_value"] == [104.0]
    assert read_caffe(prototxt, input_shape=(1, 4, 6)).inputs == {"data": (1, 4, 6)}
    assert read_caffe(prototxt, input_shape=(4, 6)).inputs == {"data": (3, 4, 6)}


def test_read_caffemodel_without_layer_params(tmp_path, rng):
    # old files: only names, types, tops/bottoms and blobs -- kernel and num_output come from the blobs
    weight = rng.normal(size=(8, 3, 3, 3)).astype(np.float32)
    fc = rng.normal(size=(4, 8 * 3 * 3)).astype(np.float32)
    path = write_caffemodel(tmp_path / "old.caffemodel", [
        ("data", "Data", [], [], ["data", "label"]),
        ("conv", "CONVOLUTION", [weight], ["data"], ["conv"]),
        ("fc", "INNER_PRODUCT", [fc, np.zeros(4, np.float32)], ["conv"], ["fc"]),
        ("loss", "SOFTMAX_LOSS", [], ["fc", "label"], ["loss"])], v1=True)
    graph = read_caffemodel(path, input_shape=(5, 5))
    conv = graph.node("conv")
    assert conv.attrs["filters"] == 8 and conv.attrs["kernel"] == (3, 3) and conv.attrs["use_bias"] is False
    assert graph.node("fc").attrs["use_bias"] is True  # bias_term from the number of blobs
    np.testing.assert_array_equal(conv.weights["kernel"], weight.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(graph.node("fc").weights["kernel"], fc.T)
    assert graph.inputs == {"data": (3, 5, 5)} and graph.outputs == ["fc"]


V0_NET = """
input: "data" input_dim: 1 input_dim: 2 input_dim: 5 input_dim: 5
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 2 biasterm: false }
         bottom: "pad1" top: "conv1" }
layers { layer { name: "ip" type: "innerproduct" num_output: 3 } bottom: "conv1" top: "ip" }
"""


def test_v0_padding_layer_and_v0_binary(tmp_path, rng):
    from converters.writers.caffe import blob_proto, length_delimited, string_field

    conv = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    ip_w, ip_b = rng.normal(size=(3, 64)).astype(np.float32), rng.normal(size=3).astype(np.float32)

    def v0_connection(name, kind, blobs, bottom, top):  # V1 connection {layer(1): V0 {blobs: 50}}
        v0 = string_field(1, name) + string_field(2, kind)
        v0 += b"".join(length_delimited(50, blob_proto(blob, legacy_dims=True)) for blob in blobs)
        return length_delimited(2, length_delimited(1, v0) + string_field(2, bottom) + string_field(3, top))

    model = tmp_path / "v0.caffemodel"
    model.write_bytes(v0_connection("conv1", "conv", [conv], "data", "conv1")
                      + v0_connection("ip", "innerproduct", [ip_w, ip_b], "conv1", "ip"))
    prototxt, _ = write_net(tmp_path, V0_NET)
    graph = read_caffe(prototxt, model)
    conv1 = graph.node("conv1")
    # the padding layer is merged into the convolution that reads it, as Caffe's upgrade does
    assert [node.name for node in graph.nodes] == ["conv1", "ip"] and conv1.inputs == ["data"]
    assert conv1.attrs["pads"] == (2, 2, 2, 2) and conv1.attrs["use_bias"] is False
    np.testing.assert_array_equal(conv1.weights["kernel"], conv.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(graph.node("ip").weights["kernel"], ip_w.T)  # (5+4-3)//2+1 = 4: 4*4*4 = 64
    embedded = read_caffemodel(model)  # no params saved here: sizes unknown, blobs still converted
    assert embedded.meta["format"] == "V0"
    np.testing.assert_array_equal(embedded.node("ip").weights["bias"], ip_b)
