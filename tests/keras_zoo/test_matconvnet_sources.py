"""The zoo builders load MatConvNet's imports of the original models: the same random weights written as a
.caffemodel and as a .mat laid out as MatConvNet's Caffe importer writes it give the same outputs.

The .mat files are written here as ``utils/import-caffe.py`` (with ``layers.py``) lays them out, from the
net definition (the real deploy prototxt, read by the Caffe reader) and the caffemodel's blobs:

* every array is reversed to W x H x C x N and then X/Y-transposed back, so filters are H x W x Cin x Cout
  (``blob.transpose(2, 3, 1, 0)``); the first convolution of a BGR net gets its input channels flipped to
  RGB; fully connected layers become filter banks over their whole input (H x W x C x out);
* pooling pads grow at the bottom/right to ``min(pad + stride - 1, kernel - 1)`` (MatConvNet rounds down);
  LRN is stored as ``[N kappa alpha/N beta]``; in-place layers write renamed variables; dropout and losses
  are removed;
* a BatchNorm followed by a Scale becomes one ``dagnn.BatchNorm`` named like the BatchNorm, with params
  ``<bn>_mult`` (the Scale's gamma), ``<bn>_bias`` (its beta) and ``<bn>_moments`` = [mean, sqrt(var + eps)]
  (Caffe's statistics divided by its scale factor); conv params are ``<layer>_filter``/``<layer>_bias``;
* a Deconvolution becomes a ``dagnn.ConvTranspose`` (filters H x W x Cout x Cin, ``upsample``, ``crop``); a Crop
  a ``dagnn.Crop`` whose ``crop`` the importer derives from the layers' receptive fields (for the FCN nets the
  offsets of the 2016 deploy nets); names lose their '-' ('_' instead), and a repeated name gets an 'x' suffix.
"""

import dataclasses
import hashlib
import itertools

import numpy as np
import pytest

import keras_zoo
from converters.caffe import read_caffe
from keras_zoo.models import resnet
from converters.graph import Node
from tests.helpers import assert_close_rel, fixture_path
from converters.writers.mat import StructArray, write_mat
from tests.keras_zoo.test_models_parity import _nchw, _opencv, random_blobs, write_full_caffemodel

# bvlc_googlenet's layer names -> the Princeton GoogLeNet's, which MatConvNet imported (import-googlenet.sh)
MODULES = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
BRANCHES = {"1x1": "out0", "3x3_reduce": "reduction1", "3x3": "out1", "5x5_reduce": "reduction2", "5x5": "out2",
            "pool_proj": "out3"}
PRINCETON_NAMES = {"conv1/7x7_s2": "conv1", "conv2/3x3_reduce": "reduction2", "conv2/3x3": "conv2",
                   "loss3/classifier": "cls3_fc",
                   **{f"inception_{module}/{branch}": f"icp{index}_{theirs}"
                      for index, module in enumerate(MODULES, start=1) for branch, theirs in BRANCHES.items()}}


# ------------------------------------------------------------------------------------ the importer's layout
def _row(values):
    """A MATLAB row vector of doubles (a plain list would be a cell array)."""
    return np.asarray(values, np.float64)


def _filter_bank(kernel, flip_to_rgb=False):
    """Caffe (Cout, Cin, kh, kw) -> MatConvNet H x W x Cin x Cout (and RGB input channels for the first)."""
    bank = kernel.transpose(2, 3, 1, 0)
    return np.ascontiguousarray(bank[:, :, ::-1, :] if flip_to_rgb else bank)


def _fully_connected_bank(kernel, in_shape):
    """Caffe InnerProduct (out, C*H*W) -> H x W x C x out (the importer's reshape over the whole input)."""
    channels, height, width = in_shape
    return np.ascontiguousarray(kernel.reshape(kernel.shape[0], channels, height, width).transpose(2, 3, 1, 0))


def _caffe_out(size, kernel, stride, pad_before, pad_after, ceil):
    span = size + pad_before + pad_after - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and pad_before and (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


class _Importer:
    """Lays a Caffe net (graph + blobs) out as MatConvNet's import-caffe.py writes it."""

    def __init__(self, graph, blobs, names=None):
        self.graph, self.blobs, self.names = graph, blobs, names or {}
        self.shapes = {name: shape for name, shape in graph.inputs.items()}
        self.variables = {name: name for name in graph.inputs}
        self.layers, self.params = [], []

    def _name(self, node):
        return self.names.get(node.name, node.name)

    def _output(self, blob, shape):
        variable = blob
        while variable in self.variables.values():  # in-place layers write renamed variables
            variable += "x"
        self.variables[blob], self.shapes[blob] = variable, shape
        return variable

    def _param(self, name, value):
        self.params.append({"name": name, "value": np.asarray(value, np.float32)})
        return name

    def add(self, node, kind, block, shape, params=()):
        inputs = [self.variables[blob] for blob in node.inputs]
        self.layers.append({"name": self._name(node), "type": kind, "inputs": inputs,
                            "outputs": [self._output(node.outputs[0], shape)], "params": list(params),
                            "block": block})

    def convert(self, node, scale=None):
        a, shape = node.attrs, self.shapes.get(node.inputs[0]) if node.inputs else None
        name, blobs = self._name(node), self.blobs.get(node.name, [])
        if node.op in ("conv", "dense"):
            if node.op == "conv":
                bank = _filter_bank(blobs[0], flip_to_rgb=node.inputs[0] == "data")  # a BGR Caffe net
                pads, strides = list(a["pads"]), list(a["strides"])
                out = (bank.shape[3], *(_caffe_out(s, k, st, p0, p1, False) for s, k, st, p0, p1 in
                                        zip(shape[1:], a["kernel"], strides, pads[0::2], pads[1::2])))
            else:
                bank, pads, strides = _fully_connected_bank(blobs[0], shape), [0, 0, 0, 0], [1, 1]
                out = (bank.shape[3], 1, 1)
            params = [self._param(f"{name}_filter", bank)]
            if len(blobs) > 1:
                params.append(self._param(f"{name}_bias", blobs[1]))
            self.add(node, "dagnn.Conv", {"size": _row(bank.shape), "hasBias": len(blobs) > 1, "pad": _row(pads),
                                          "stride": _row(strides), "dilate": _row([1, 1])}, out, params)
        elif node.op == "deconv":  # Caffe (Cin, Cout, kh, kw) -> vl_nnconvt's H x W x Cout x Cin
            bank, strides = _filter_bank(blobs[0]), list(a["strides"])
            out = (bank.shape[2], *(st * (s - 1) + k for s, k, st in zip(shape[1:], a["kernel"], strides)))
            params = [self._param(f"{name}_filter", bank)]
            if len(blobs) > 1:
                params.append(self._param(f"{name}_bias", blobs[1]))
            self.add(node, "dagnn.ConvTranspose", {"size": _row(bank.shape), "hasBias": len(blobs) > 1,
                                                   "upsample": _row(strides), "crop": _row([0, 0, 0, 0]),
                                                   "numGroups": 1.0}, out, params)
        elif node.op == "crop":  # the importer's offsets from receptive fields (Caffe's, for the FCN nets)
            reference = self.shapes[node.inputs[1]]
            self.add(node, "dagnn.Crop", {"crop": _row(a["offsets"])}, (shape[0], *reference[1:]))
        elif node.op == "pool":
            kernel, strides, pads = a["kernel"], a["strides"], list(a["pads"])
            for axis in (0, 1):
                pads[1 + 2 * axis] = min(pads[1 + 2 * axis] + strides[axis] - 1, kernel[axis] - 1)
            out = (shape[0], *(_caffe_out(s, k, st, p0, p1, True) for s, k, st, p0, p1 in
                               zip(shape[1:], kernel, strides, a["pads"][0::2], a["pads"][1::2])))
            self.add(node, "dagnn.Pooling", {"method": a["method"], "poolSize": _row(kernel),
                                             "stride": _row(strides), "pad": _row(pads)}, out)
        elif node.op == "batchnorm":
            mean, variance, factor = blobs
            gamma, beta = self.blobs[scale.name]
            moments = np.stack([mean / factor[0], np.sqrt(variance / factor[0] + a["epsilon"])], axis=1)
            params = [self._param(f"{name}_mult", gamma), self._param(f"{name}_bias", beta),
                      self._param(f"{name}_moments", moments)]
            self.add(node, "dagnn.BatchNorm", {"epsilon": a["epsilon"]}, shape, params)
        elif node.op == "lrn":
            self.add(node, "dagnn.LRN", {"param": _row([a["size"], a["k"], a["alpha"], a["beta"]])}, shape)
        elif node.op == "relu":
            self.add(node, "dagnn.ReLU", {"leak": 0.0}, shape)
        elif node.op == "softmax":
            self.add(node, "dagnn.SoftMax", np.zeros((0,)), shape)
        elif node.op == "eltwise":
            self.add(node, "dagnn.Sum", {"numInputs": len(node.inputs)}, shape)
        elif node.op == "concat":
            channels = sum(self.shapes[blob][0] for blob in node.inputs)
            self.add(node, "dagnn.Concat", {"dim": 3}, (channels, *shape[1:]))
        elif node.op == "dropout":  # removed (--remove-dropout): later layers read its input
            self.variables[node.outputs[0]] = self.variables[node.inputs[0]]
        else:
            raise AssertionError(f"no importer layout for {node.op}")

    def dagnn(self, average_image):
        """``{'layers', 'params', 'meta'}`` of the DagNN file (BatchNorm + Scale merged)."""
        nodes, merged = self.graph.nodes, {}
        for before, after in itertools.pairwise(nodes):
            if before.op == "batchnorm" and after.op == "scale" and after.inputs == before.outputs:
                merged[after.name] = before
        for node in nodes:
            if node.op == "batchnorm":
                continue
            if node.name in merged:
                self.convert(merged[node.name], scale=node)
            else:
                self.convert(node)
        channels, height, width = self.graph.inputs["data"]
        size = _row([height, width, channels, 1])
        meta = {"inputs": StructArray([{"name": "data", "size": size}]),
                "normalization": {"imageSize": size, "averageImage": average_image,
                                  "interpolation": "bilinear", "keepAspect": True}}
        return {"layers": StructArray(self.layers), "params": StructArray(self.params), "meta": meta}

    def simplenn(self, average_image, beta16=False):
        """``{'layers', 'meta'}`` of the SimpleNN file (a chain: one cell per layer); ``beta16``: as files
        before MatConvNet 1.0-beta17 (``filters``/``biases`` fields, LRN type 'normalize', ``normalization``
        at the top level instead of in ``meta``)."""
        for node in self.graph.nodes:
            self.convert(node)
        values = {param["name"]: param["value"] for param in self.params}
        fields = {"dagnn.Conv": ("conv", ("pad", "stride") if beta16 else ("pad", "stride", "dilate", "size")),
                  "dagnn.Pooling": ("pool", ("method", "poolSize", "stride", "pad")),
                  "dagnn.LRN": ("normalize" if beta16 else "lrn", ("param",)),
                  "dagnn.ReLU": ("relu", ("leak",)), "dagnn.SoftMax": ("softmax", ())}
        layers = []
        for layer in self.layers:
            kind, keys = fields[layer["type"]]
            record = {"name": layer["name"], "type": kind,
                      **{("pool" if key == "poolSize" else key): layer["block"][key] for key in keys}}
            weights = [values[name] for name in layer["params"]]
            if weights and beta16:
                record.update(filters=weights[0], biases=weights[1])
            elif weights:
                record["weights"] = weights
            layers.append(record)
        channels, height, width = self.graph.inputs["data"]
        normalization = {"imageSize": _row([height, width, channels]), "averageImage": average_image}
        if beta16:
            return {"layers": layers, "normalization": normalization}
        return {"layers": layers, "meta": {"normalization": normalization}}


def _caffe_and_mat(tmp_path, prototxt, mat_name, layout, names=None, extra=None, average_image=None,
                   adjust=None):
    """(caffemodel, .mat) of the same random weights; ``adjust(blobs)`` may change the weights first and
    ``extra(graph, blobs)`` add layers to the .mat."""
    blobs = random_blobs(prototxt, tmp_path / "random.blobs")
    if adjust is not None:
        adjust(blobs)
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel", blobs=blobs)
    graph = read_caffe(prototxt)
    if extra is not None:
        graph = extra(graph, blobs)
    average = np.array([[[122.0, 116.0, 104.0]]]) if average_image is None else average_image
    importer = _Importer(graph, blobs, names)
    variables = importer.dagnn(average) if layout == "dagnn" else importer.simplenn(average, layout == "beta16")
    mat = write_mat(tmp_path / mat_name, variables)
    return caffemodel, mat


def _same_outputs(builder, caffemodel, mat, seed, size=224):
    """The builder's scores from the .mat (RGB input) equal those from the caffemodel (BGR input)."""
    rgb = np.random.default_rng(seed).uniform(-120, 120, (1, size, size, 3)).astype(np.float32)
    make = getattr(keras_zoo, builder)
    options = {"include_preprocessing": False, "classifier_activation": None}
    y_mat = _nchw(make(weights=str(mat), **options)(rgb))
    y_caffe = _nchw(make(weights=str(caffemodel), **options)(rgb[..., ::-1]))
    assert_close_rel(y_mat, y_caffe, tol=1e-5, what=f"{builder} .mat against .caffemodel")
    return y_mat


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("KERAS_ZOO_HOME", str(home))
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    return home


# ------------------------------------------------------------------------------------------------- tests
def test_resnet50_dagnn_with_merged_batch_norms(tmp_path, zoo_home, monkeypatch):
    """ResNet-50 as imagenet-resnet-50-dag.mat: every BatchNorm + Scale pair merged into one batch norm that
    divides by sqrt(var + eps); the builder's BatchNorm (epsilon 1e-5) and Scale layers reproduce it. Then
    ``weights='matconvnet'`` converts the file from the downloads folder (the card given the random file's
    MD5: a file there is verified), caches it, and with preprocessing takes RGB 0..255 minus the file's own
    average image."""
    prototxt = fixture_path("resnet/ResNet-50-deploy.prototxt")
    rng = np.random.default_rng(5)
    average = rng.uniform(90, 140, (224, 224, 3))
    caffemodel, mat = _caffe_and_mat(tmp_path, prototxt, "imagenet-resnet-50-dag.mat", "dagnn",
                                     average_image=average, adjust=_tiny_variances)
    y_mat = _same_outputs("ResNet50", caffemodel, mat, seed=6)

    (zoo_home / "downloads").mkdir(parents=True)
    mat.rename(zoo_home / "downloads" / mat.name)
    _card_accepts(monkeypatch, zoo_home / "downloads" / mat.name)
    model = keras_zoo.ResNet50(weights="matconvnet", classifier_activation=None)
    rgb = np.random.default_rng(6).uniform(-120, 120, (1, 224, 224, 3)).astype(np.float32)
    assert_close_rel(_nchw(model(rgb + average.astype(np.float32))), y_mat, tol=1e-5,
                     what="ResNet50 'matconvnet' source from RGB 0..255")
    assert (zoo_home / "weights" / "ResNet50-matconvnet.h5").exists()


def _card_accepts(monkeypatch, path):
    """Make ResNet50 use a card whose 'matconvnet' source has the MD5 of the file at ``path``."""
    card = resnet.RESNET50_ARCH.card
    source = card.source("matconvnet")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    accepting = dataclasses.replace(source, file=dataclasses.replace(source.file, md5=(md5,), sha1=(), sha256=()))
    accepting_card = dataclasses.replace(card, weights=tuple(accepting if s is source else s for s in card.weights))
    monkeypatch.setattr(resnet, "RESNET50_ARCH", dataclasses.replace(resnet.RESNET50_ARCH, card=accepting_card))


def _tiny_variances(blobs):
    """Variances of the order of Caffe's epsilon in the first batch norm, where sqrt(var + eps) and
    sqrt(var) differ: the .mat's std must come out exactly."""
    _, variance, factor = blobs["bn_conv1"]
    variance[:16] = np.float32(2e-6) * factor[0]


def _princeton_auxiliary_head(graph, blobs):
    """The first auxiliary classifier of the Princeton net (kept by the import), after inception_4a."""
    rng = np.random.default_rng(7)
    at = [node.name for node in graph.nodes].index("inception_4a/output") + 1
    head = [Node("cls1_pool", "pool", ["inception_4a/output"], ["cls1_pool"],
                 {"method": "avg", "kernel": (5, 5), "strides": (3, 3), "pads": (0, 0, 0, 0)}),
            Node("cls1_reduction", "conv", ["cls1_pool"], ["cls1_reduction"],
                 {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0)}),
            Node("cls1_relu", "relu", ["cls1_reduction"], ["cls1_reduction"]),
            Node("cls1_fc1", "dense", ["cls1_reduction"], ["cls1_fc1"]),
            Node("cls1_fc2", "dense", ["cls1_fc1"], ["cls1_fc2"])]
    for name, shape in (("cls1_reduction", (128, 512, 1, 1)), ("cls1_fc1", (1024, 128 * 4 * 4)),
                        ("cls1_fc2", (1000, 1024))):
        blobs[name] = [rng.standard_normal(shape).astype(np.float32) * 0.01,
                       rng.standard_normal(shape[0]).astype(np.float32)]
    return dataclasses.replace(graph, nodes=[*graph.nodes[:at], *head, *graph.nodes[at:]])


def test_googlenet_princeton_names_and_auxiliary_classifier(tmp_path, zoo_home):
    """imagenet-googlenet-dag.mat: the Princeton layer names (icp1_out0 ... cls3_fc) and an auxiliary
    classifier the builder does not have; the card's rename/unused map it onto bvlc_googlenet's layers."""
    prototxt = fixture_path("bvlc/bvlc_googlenet/deploy.prototxt")
    caffemodel, mat = _caffe_and_mat(tmp_path, prototxt, "imagenet-googlenet-dag.mat", "dagnn",
                                     names=PRINCETON_NAMES, extra=_princeton_auxiliary_head)
    _same_outputs("GoogLeNet", caffemodel, mat, seed=8)


def test_vgg16_simplenn(tmp_path, zoo_home):
    """imagenet-vgg-verydeep-16.mat (SimpleNN, RGB first convolution, fully connected layers as filter banks
    over 7x7x512 and 1x1 inputs) loads into VGG16 with the caffemodel's outputs; so does the VGG-VD-16 MatConvNet
    trained itself, whose layers (conv1_1 ... fc8, prob) its cnn_imagenet_init.m names as Caffe's, with no
    dropout and its batch norms folded into the convolutions (cnn_imagenet_deploy.m)."""
    prototxt = fixture_path("vgg/VGG_ILSVRC_16_layers_deploy.prototxt")
    caffemodel, mat = _caffe_and_mat(tmp_path, prototxt, "imagenet-vgg-verydeep-16.mat", "simplenn")
    y_mat = _same_outputs("VGG16", caffemodel, mat, seed=9)
    trained = mat.rename(mat.with_name("imagenet-matconvnet-vgg-verydeep-16.mat"))
    rgb = np.random.default_rng(9).uniform(-120, 120, (1, 224, 224, 3)).astype(np.float32)
    model = keras_zoo.VGG16(weights=str(trained), include_preprocessing=False, classifier_activation=None)
    np.testing.assert_array_equal(_nchw(model(rgb)), y_mat)


def test_a_merged_batch_norm_without_a_scale_rule_is_an_error(tmp_path, zoo_home):
    """A file whose batch norm carries gamma/beta the builder keeps in another layer, without the card
    saying which, is refused with the layer named (not silently half-loaded)."""
    from converters.errors import ConversionError
    from keras_zoo.cards import PortRules
    from keras_zoo.porting import adapt_graph

    prototxt = fixture_path("resnet/ResNet-50-deploy.prototxt")
    _, mat = _caffe_and_mat(tmp_path, prototxt, "net.mat", "dagnn")
    model = keras_zoo.ResNet50(weights=None, include_top=False, include_preprocessing=False, fold_batchnorm=False)
    from converters.matconvnet import read_matconvnet

    with pytest.raises(ConversionError, match="bn_conv1.*batchnorm_scale"):
        adapt_graph(read_matconvnet(mat), PortRules(), model)


@pytest.mark.parametrize("builder_op", ["dense", "conv"])
def test_fully_connected_layer_as_the_other_form(builder_op):
    """A file's fully connected layer stored as a filter bank over its whole input (MatConvNet) loads into the
    builder's Dense layer, and a Caffe-style inner product into a convolution covering its input (FCN's fc6):
    both compute sum over (h, w, c) of x[h, w, c] * K[h, w, c, o] + b."""
    from keras_zoo.builder import build_model, port_weights
    from keras_zoo.cards import PortRules
    from keras_zoo.models.graph_writer import GraphWriter
    from keras_zoo.porting import adapt_graph

    rng = np.random.default_rng(10)
    bank = rng.standard_normal((4, 5, 3, 6)).astype(np.float32)  # H x W x C x out
    bias = rng.standard_normal(6).astype(np.float32)
    net = GraphWriter("fc", input_shape=(3, 4, 5))
    out = net.dense("fc", "data", 6) if builder_op == "dense" else net.conv("fc", "data", 6, (4, 5))
    model = build_model(net.finish(out))
    file_net = GraphWriter("file", input_shape=(3, 4, 5))
    if builder_op == "dense":  # the file holds the filter bank
        file_out = file_net.conv("fc", "data", 6, (4, 5))
        kernel = bank
    else:  # the file holds Caffe's rows in (C, H, W) order
        file_out = file_net.dense("fc", "data", 6)
        kernel = bank.transpose(2, 0, 1, 3).reshape(-1, 6)
    file_graph = file_net.finish(file_out)
    file_graph.nodes[0].weights = {"kernel": kernel, "bias": bias}
    port_weights(model, adapt_graph(file_graph, PortRules(), model))
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    expected = np.einsum("nhwc,hwco->no", x, bank) + bias
    y = np.asarray(model(x)).reshape(2, 6)
    assert_close_rel(y, expected, tol=1e-5, what=f"file {file_graph.nodes[0].op} into builder {builder_op}")


def test_alexnet_simplenn_beta16_fields(tmp_path, zoo_home):
    """imagenet-caffe-alex.mat as written before beta17 (``filters``/``biases``, 'normalize' LRN as
    [N kappa alpha/N beta], top-level ``normalization``): grouped convolutions and fc6 over 6x6x256."""
    prototxt = fixture_path("bvlc/bvlc_alexnet/deploy.prototxt")
    caffemodel, mat = _caffe_and_mat(tmp_path, prototxt, "imagenet-caffe-alex.mat", "beta16")
    _same_outputs("AlexNet", caffemodel, mat, seed=11, size=227)


# ------------------------------------------------------------------------------------------------- FCN
# The 2015 deploy gists' layer names, as MatConvNet's importer writes them ('-' -> '_'; a repeated name gets an 'x'
# suffix), for the layers of the 2016 deploy nets; score_fr, score_pool4 and score_pool3 keep their names.
FCN_GIST_NAMES = {
    8: {"upscore2": "score2", "score_pool4c": "crop", "fuse_pool4": "fuse", "upscore_pool4": "score4",
        "score_pool3c": "cropx", "fuse_pool3": "fusex", "upscore8": "upsample", "score": "cropxx"},
    16: {"upscore2": "score2", "score_pool4c": "crop", "fuse_pool4": "fuse", "upscore16": "upsample",
         "score": "cropx"},
}
FCN_DEPLOY = {8: "fcn/voc-fcn8s/deploy.prototxt", 16: "fcn/voc-fcn16s/deploy_fork_rocky-lq.prototxt"}
FCN_SIZE = (48, 64)


def _gist_function(stride, tmp_path):
    """The deploy net with the one difference in function of the 2015 gists: upscore2 has a bias."""
    text = fixture_path(FCN_DEPLOY[stride]).read_text()
    at = text.index("bias_term: false", text.index('name: "upscore2"'))
    path = tmp_path / f"fcn{stride}s-gist-function.prototxt"
    path.write_text(text[:at] + "bias_term: true" + text[at + len("bias_term: false"):])
    return path


def _fcn_files(stride, tmp_path, adjust=None):
    """(prototxt, caffemodel, .mat): random weights of the gist's function as a caffemodel and as MatConvNet's
    import of the gist (DagNN, the gist's names); ``adjust(blobs)`` may change the weights first."""
    prototxt = _gist_function(stride, tmp_path)
    blobs = random_blobs(prototxt, tmp_path / "random.blobs", input_shape=FCN_SIZE)
    if adjust is not None:
        adjust(blobs)
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "gist.caffemodel", blobs=blobs)
    importer = _Importer(read_caffe(prototxt), blobs, FCN_GIST_NAMES[stride])
    mat = write_mat(tmp_path / f"pascal-fcn{stride}s-dag.mat", importer.dagnn(np.array([[[122.0, 116.0, 104.0]]])))
    return prototxt, caffemodel, mat


def _fcn_scores(builder, mat, rgb):
    model = getattr(keras_zoo, builder)(weights=str(mat), include_preprocessing=False, classifier_activation=None)
    return _nchw(model(rgb))


def _large_upscore2_bias(blobs):
    """A bias of the scores' own size on upscore2 (the random one is too small to be seen in the scores)."""
    blobs["upscore2"][1][:] = np.random.default_rng(13).uniform(-300, 300, blobs["upscore2"][1].shape)


@pytest.mark.parametrize("stride, files", [(8, ("pascal-fcn8s-dag.mat", "pascal-fcn8s-tvg-dag.mat")),
                                           (16, ("pascal-fcn16s-dag.mat",))], ids=["FCN8s", "FCN16s"])
def test_fcn_gist_names_and_upscore2_bias(stride, files, tmp_path, zoo_home):
    """pascal-fcn{8,16}s-dag.mat and the TVG FCN-8s: the 2015 gists' names (score2, score4, upsample...) and
    score2's bias, which the builder's upscore2 lacks: its bias moves into score_pool4's (fuse adds the two), and
    the scores equal OpenCV's run of the gist's function (the deploy net with a biased upscore2)."""
    prototxt, caffemodel, mat = _fcn_files(stride, tmp_path, adjust=_large_upscore2_bias)
    rgb = np.random.default_rng(14).uniform(-120, 120, (1, *FCN_SIZE, 3)).astype(np.float32)
    reference = _opencv(prototxt, caffemodel, np.ascontiguousarray(rgb[..., ::-1]), ["score"])[0]
    for name in files:
        mat = mat.rename(mat.with_name(name))
        assert_close_rel(_fcn_scores(f"FCN{stride}s", mat, rgb), reference, tol=1e-4, what=f"{name} scores")


def test_fcn32s_upsampling_bias_must_be_zero(zoo_home):
    """pascal-fcn32s-dag.mat's upsample carries a bias the builder's upscore lacks, frozen at zero in training:
    zeros are dropped and the kernel loads into upscore; any other value is refused, naming the file's layer."""
    from converters.errors import ConversionError
    from converters.graph import Graph
    from keras_zoo.builder import port_weights
    from keras_zoo.cards import get_card
    from keras_zoo.porting import adapt_graph

    source = get_card("FCN32s").source("matconvnet")
    model = keras_zoo.FCN32s(weights=None, include_preprocessing=False)
    kernel = np.random.default_rng(15).standard_normal((64, 64, 21, 21)).astype(np.float32)

    def file_graph(bias):
        node = Node("upsample", "deconv", ["score"], ["bigscore"],
                    {"filters": 21, "kernel": (64, 64), "strides": (32, 32), "pads": (0, 0, 0, 0),
                     "dilation": (1, 1), "groups": 1, "use_bias": True}, weights={"kernel": kernel, "bias": bias})
        return Graph(name="pascal-fcn32s-dag", inputs={"score": (21, None, None)}, nodes=[node],
                     outputs=["bigscore"], source="pascal-fcn32s-dag.mat")

    port_weights(model, adapt_graph(file_graph(np.zeros(21, np.float32)), source.port, model))
    np.testing.assert_array_equal(model.get_layer("upscore").get_weights()[0], kernel)
    bias = np.zeros(21, np.float32)
    bias[3] = 0.5
    with pytest.raises(ConversionError, match="non-zero bias.*upscore") as raised:
        adapt_graph(file_graph(bias), source.port, model)
    assert raised.value.layer == "upsample"


def test_matconvnet_trained_vgg_m_is_built_without_lrn(tmp_path, zoo_home):
    """imagenet-matconvnet-vgg-m.mat: MatConvNet's batch-normalized training net has no LRN layers. Built for
    that file, VGGM leaves out norm1 and norm2 and computes what the file's own network computes (the generic
    MatConvNet converter); a VGGM that has them refuses the file, naming the layer. The file's layers as
    cnn_imagenet_init.m names and pads them, deployed (no batch norms, no dropout), up to pool5."""
    from converters.errors import ConversionError
    from keras_zoo.convert import from_matconvnet
    from keras_zoo.cards import get_card
    from keras_zoo.weights import load_weights

    rng = np.random.default_rng(16)

    def conv(name, kernel, cin, cout, stride, pad):
        scale = np.sqrt(2.0 / (kernel * kernel * cin))
        return {"name": name, "type": "conv", "stride": _row([stride, stride]), "pad": _row([pad] * 4),
                "dilate": _row([1, 1]), "size": _row([kernel, kernel, cin, cout]),
                "weights": [(rng.standard_normal((kernel, kernel, cin, cout)) * scale).astype(np.float32),
                            (rng.standard_normal((cout, 1)) * 0.1).astype(np.float32)]}

    def relu(index):
        return {"name": f"relu{index}", "type": "relu", "leak": 0.0}

    def pool(name, pad):
        return {"name": name, "type": "pool", "method": "max", "pool": _row([3, 3]), "stride": _row([2, 2]),
                "pad": _row(pad)}

    layers = [conv("conv1", 7, 3, 96, 2, 0), relu(1), pool("pool1", [0, 0, 0, 0]),
              conv("conv2", 5, 96, 256, 2, 1), relu(2), pool("pool2", [0, 1, 0, 1]),
              conv("conv3", 3, 256, 512, 1, 1), relu(3), conv("conv4", 3, 512, 512, 1, 1), relu(4),
              conv("conv5", 3, 512, 512, 1, 1), relu(5), pool("pool5", [0, 0, 0, 0])]
    meta = {"normalization": {"imageSize": _row([224, 224, 3]), "averageImage": _row([122.0, 116.0, 104.0])}}
    mat = write_mat(tmp_path / "imagenet-matconvnet-vgg-m.mat", {"layers": layers, "meta": meta})

    model = keras_zoo.VGGM(weights=str(mat), include_top=False, include_preprocessing=False)
    names = {layer.name for layer in model.layers}
    assert {"conv1", "pool1", "conv5", "pool5"} <= names and not {"norm1", "norm2"} & names
    x = rng.uniform(-100, 100, (2, 224, 224, 3)).astype(np.float32)
    reference = from_matconvnet(mat)
    assert_close_rel(model(x), reference(x), tol=1e-5, what="VGGM pool5 from the trained file")

    with_lrn = keras_zoo.VGGM(weights=None, include_top=False, include_preprocessing=False)
    with pytest.raises(ConversionError, match="no layer 'norm1'.*LRN") as raised:
        load_weights(with_lrn, get_card("VGGM"), str(mat))
    assert raised.value.layer == "norm1"
