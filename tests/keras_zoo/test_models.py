"""The zoo builders: architectures against the original deploy prototxts, shapes, parameter counts from the
papers/prototxts, and the keras.applications-style arguments."""

import math

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo import models
from tests.helpers import assert_close_rel, fixture_path


# ---------------------------------------------------------------------------------------------------------
# the graphs equal what the Caffe reader makes of the original deploy prototxts (names, ops, wiring, attrs)
# ---------------------------------------------------------------------------------------------------------
def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):  # prototxt floats pass through float32
        return math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    return a == b


def _assert_same_graph(reference, graph, ignore=lambda node: False):
    reference_nodes = [node for node in reference.nodes if not ignore(node)]
    graph_nodes = [node for node in graph.nodes if not ignore(node)]
    assert [n.name for n in graph_nodes] == [n.name for n in reference_nodes]
    for ours, theirs in zip(graph_nodes, reference_nodes):
        assert (ours.op, ours.inputs, ours.outputs, ours.source_type) == \
               (theirs.op, theirs.inputs, theirs.outputs, theirs.source_type), ours.name
        assert _same(ours.attrs, theirs.attrs), f"{ours.name}: {ours.attrs} != {theirs.attrs}"
    assert graph.outputs == reference.outputs


OFFICIAL_DEPLOYS = [
    ("vgg/VGG_ILSVRC_16_layers_deploy.prototxt", lambda: models.vgg_graph(16)),
    ("vgg/VGG_ILSVRC_19_layers_deploy.prototxt", lambda: models.vgg_graph(19)),
    ("vgg_face/VGG_FACE_deploy_newstyle.prototxt", lambda: models.vgg_graph(16, 2622)),
    ("bvlc/bvlc_alexnet/deploy.prototxt", lambda: models.alexnet_graph("alexnet")),
    ("bvlc/bvlc_reference_caffenet/deploy.prototxt", lambda: models.alexnet_graph("caffenet")),
    ("bvlc/bvlc_reference_rcnn_ilsvrc13/deploy.prototxt", lambda: models.alexnet_graph("rcnn")),
    ("bvlc/bvlc_googlenet/deploy.prototxt", models.googlenet_graph),
    ("resnet/ResNet-50-deploy.prototxt", lambda: models.resnet_graph(50)),
    ("resnet/ResNet-101-deploy.prototxt", lambda: models.resnet_graph(101)),
    ("resnet/ResNet-152-deploy.prototxt", lambda: models.resnet_graph(152)),
]


@pytest.mark.parametrize("prototxt, make_graph", OFFICIAL_DEPLOYS, ids=[p for p, _ in OFFICIAL_DEPLOYS])
def test_graph_equals_deploy_prototxt(prototxt, make_graph):
    from converters.caffe import read_caffe

    reference = read_caffe(fixture_path(prototxt))
    graph = make_graph()
    assert graph.inputs == reference.inputs
    _assert_same_graph(reference, graph)


@pytest.mark.parametrize("stride, prototxt", [(8, "fcn/voc-fcn8s/deploy.prototxt"),
                                              (16, "fcn/voc-fcn16s/val.prototxt"),
                                              (32, "fcn/voc-fcn32s/val.prototxt")])
def test_fcn_graph_equals_original_net(stride, prototxt):
    """FCN-8s against its deploy net; FCN-16s/32s against their val nets less the data layer, loss and
    dropout (no official deploy net exists for them)."""
    from converters.caffe import read_caffe

    reference = read_caffe(fixture_path(prototxt), input_shape=(64, 64))
    reference.nodes = [node for node in reference.nodes if node.op != "dropout"]
    reference.outputs = ["score"]
    graph = models.fcn_graph(stride)
    assert graph.inputs["data"] == (3, None, None)
    _assert_same_graph(reference, graph)


@pytest.mark.parametrize("variant, prototxt, last", [
    ("m-2048", "vgg_cnn/VGG_CNN_M_2048_deploy_TDD.prototxt", "prob"),
    ("m-1024", "vgg_cnn/early-fast-rcnn_VGG_CNN_M_1024_deploy_v1.prototxt", "relu5"),
    ("s", "vgg_cnn/early-fast-rcnn_VGG_CNN_S_deploy_v1.prototxt", "relu5"),
])
def test_vgg_cnn_graph_equals_caffe_nets(variant, prototxt, last, tmp_path):
    """VGG_CNN_M_2048's classifier deploy (its third-party copy lacks the LRN ``k: 2`` that the Fast R-CNN
    nets built on the same weights and the paper give, and has dropout 0.9); the Fast R-CNN detection nets
    share the VGG_CNN_M_1024 / VGG_CNN_S layers up to conv5 (then ROI pooling replaces pool5: the test cuts
    the prototxt there)."""
    from converters.caffe import read_caffe

    text = fixture_path(prototxt).read_text()
    if "ROI_POOLING" in text:
        text = text[:text.rfind("layers", 0, text.index("ROI_POOLING"))]
    (tmp_path / "net.prototxt").write_text(text)
    reference = read_caffe(tmp_path / "net.prototxt")
    if variant == "m-2048":
        for node in reference.nodes:
            if node.op == "lrn":
                assert node.attrs["k"] == 1.0  # Caffe's default: k is absent from this copy
                node.attrs["k"] = 2.0
    graph = models.vgg_cnn_graph(variant)
    names = [node.name for node in graph.nodes]
    ours = models.architecture.truncate(graph, last)
    body = [node for node in reference.nodes if node.name in names[:names.index(last) + 1]]
    reference.nodes, reference.outputs = body, ours.outputs
    _assert_same_graph(reference, ours, ignore=lambda node: node.op == "dropout" or node.name == "pool5")


def test_vgg_cnn_tables_follow_the_paper():
    """Chatfield et al. 2014, Table 1: filters, kernel sizes and strides of conv1..conv5; fc7 widths."""
    expected = {"f": [(64, 11, 4), (256, 5, 1), (256, 3, 1), (256, 3, 1), (256, 3, 1)],
                "m": [(96, 7, 2), (256, 5, 2), (512, 3, 1), (512, 3, 1), (512, 3, 1)],
                "s": [(96, 7, 2), (256, 5, 1), (512, 3, 1), (512, 3, 1), (512, 3, 1)]}
    for variant, convs in expected.items():
        graph = models.vgg_cnn_graph(variant)
        found = [(n.attrs["filters"], n.attrs["kernel"][0], n.attrs["strides"][0]) for n in graph.nodes
                 if n.op == "conv"]
        assert found == convs
    for variant, width in (("m-2048", 2048), ("m-1024", 1024), ("m-128", 128)):
        assert models.vgg_cnn_graph(variant).node("fc7").attrs["units"] == width


# ---------------------------------------------------------------------------------------------------------
# parameter counts, written from the papers' / prototxts' layer tables (independent of the graphs)
# ---------------------------------------------------------------------------------------------------------
def conv(k, cin, cout, groups=1, bias=True):
    return k * k * cin // groups * cout + (cout if bias else 0)


def dense(n_in, n_out):
    return n_in * n_out + n_out


def vgg_params(depth, classes=1000):
    stages = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}[depth]
    total, cin = 0, 3
    for width, count in zip((64, 128, 256, 512, 512), stages):
        for _ in range(count):
            total, cin = total + conv(3, cin, width), width
    return total + dense(7 * 7 * 512, 4096) + dense(4096, 4096) + dense(4096, classes)


def alexnet_params(classes=1000):
    return (conv(11, 3, 96) + conv(5, 96, 256, 2) + conv(3, 256, 384) + conv(3, 384, 384, 2)
            + conv(3, 384, 256, 2) + dense(6 * 6 * 256, 4096) + dense(4096, 4096) + dense(4096, classes))


def vgg_cnn_params(variant):
    fc7 = {"f": 4096, "m": 4096, "s": 4096, "m-2048": 2048, "m-1024": 1024, "m-128": 128}[variant]
    if variant == "f":
        body = conv(11, 3, 64) + conv(5, 64, 256) + 3 * conv(3, 256, 256) + dense(6 * 6 * 256, 4096)
    else:
        body = conv(7, 3, 96) + conv(5, 96, 256) + conv(3, 256, 512) + 2 * conv(3, 512, 512) \
            + dense(6 * 6 * 512, 4096)
    return body + dense(4096, fc7) + dense(fc7, 1000)


def googlenet_params():
    table = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), (480, 192, 96, 208, 16, 48, 64),
             (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
             (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
             (832, 384, 192, 384, 48, 128, 128)]
    total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    for cin, n1, r3, n3, r5, n5, proj in table:
        total += conv(1, cin, n1) + conv(1, cin, r3) + conv(3, r3, n3) + conv(1, cin, r5) + conv(5, r5, n5) \
            + conv(1, cin, proj)
    return total + dense(1024, 1000)


def resnet_params(depth):
    """Convolutions without bias (ResNet-50's conv1 has one); BatchNorm mean + variance and Scale gamma + beta
    per channel (4 C; Caffe's one-element moving-average factor is not a Keras variable)."""
    blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[depth]
    total, cin = conv(7, 3, 64, bias=depth == 50) + 4 * 64, 64
    for width, count in zip((64, 128, 256, 512), blocks):
        for index in range(count):
            if index == 0:
                total += conv(1, cin, 4 * width, bias=False) + 4 * 4 * width
            total += conv(1, cin, width, bias=False) + conv(3, width, width, bias=False) \
                + conv(1, width, 4 * width, bias=False) + 4 * (width + width + 4 * width)
            cin = 4 * width
    return total + dense(2048, 1000)


def fcn_params(stride, classes=21):
    body = vgg_params(16, 0) - dense(4096, 0)  # the VGG-16 convolutions and fc6, fc7 (as 7x7 and 1x1 convs)
    upsampling = {32: [64], 16: [4, 32], 8: [4, 4, 16]}[stride]
    skips = {32: [], 16: [512], 8: [512, 256]}[stride]
    return body + conv(1, 4096, classes) + sum(conv(1, cin, classes) for cin in skips) \
        + sum(k * k * classes * classes for k in upsampling)


BUILDERS = [
    # builder, input (H, W), output shape, parameters, layers that must exist, output layer
    ("VGG16", (224, 224), (1000,), 138_357_544, ["conv1_1", "conv5_3", "fc8"], "prob"),
    ("VGG19", (224, 224), (1000,), 143_667_240, ["conv3_4", "conv5_4", "fc8"], "prob"),
    ("VGGFace", (224, 224), (2622,), vgg_params(16, 2622), ["conv1_1", "fc7", "fc8"], "prob"),
    ("AlexNet", (227, 227), (1000,), alexnet_params(), ["conv1", "norm1", "fc8"], "prob"),
    ("CaffeNet", (227, 227), (1000,), alexnet_params(), ["conv5", "norm2", "fc8"], "prob"),
    ("RCNNILSVRC13", (227, 227), (200,), alexnet_params(200), ["conv1", "fc7", "fc-rcnn"], "fc-rcnn"),
    ("GoogLeNet", (224, 224), (1000,), googlenet_params(),
     ["conv1_7x7_s2", "inception_3a_1x1", "inception_5b_pool_proj", "loss3_classifier"], "prob"),
    ("ResNet50", (224, 224), (1000,), resnet_params(50),
     ["conv1", "bn_conv1", "scale_conv1", "res2a_branch1", "res2a_branch2a", "res5c_branch2c", "fc1000"], "prob"),
    ("ResNet101", (224, 224), (1000,), resnet_params(101), ["res3b3_branch2c", "res4b22_branch2c", "fc1000"],
     "prob"),
    ("ResNet152", (224, 224), (1000,), resnet_params(152), ["res3b7_branch2c", "res4b35_branch2c", "fc1000"],
     "prob"),
    ("VGGF", (224, 224), (1000,), vgg_cnn_params("f"), ["conv1", "norm2", "fc8"], "prob"),
    ("VGGM", (224, 224), (1000,), vgg_cnn_params("m"), ["conv1", "norm2", "fc8"], "prob"),
    ("VGGS", (224, 224), (1000,), vgg_cnn_params("s"), ["conv1", "norm1", "fc8"], "prob"),
    ("VGGM128", (224, 224), (1000,), vgg_cnn_params("m-128"), ["fc7", "fc8"], "prob"),
    ("VGGM1024", (224, 224), (1000,), vgg_cnn_params("m-1024"), ["fc7", "fc8"], "prob"),
    ("VGGM2048", (224, 224), (1000,), vgg_cnn_params("m-2048"), ["fc7", "fc8"], "prob"),
    ("FCN32s", (None, None), (None, None, 21), fcn_params(32), ["fc6", "score_fr", "upscore"], "score"),
    ("FCN16s", (None, None), (None, None, 21), fcn_params(16), ["score_pool4", "score_pool4c", "upscore16"],
     "score"),
    ("FCN8s", (None, None), (None, None, 21), fcn_params(8),
     ["score_pool3", "fuse_pool3", "upscore8", "upscore_pool4"], "score"),
]


@pytest.mark.parametrize("builder, size, output, params, layers, output_layer", BUILDERS,
                         ids=[row[0] for row in BUILDERS])
def test_builder_defaults(builder, size, output, params, layers, output_layer):
    """The original architecture, layer for layer (``fold_batchnorm=False``: the builders fold by default)."""
    model = getattr(keras_zoo, builder)(weights=None, include_preprocessing=False, fold_batchnorm=False)
    assert model.input_shape == (None, *size, 3)
    assert model.output_shape == (None, *output)
    assert model.count_params() == params
    names = {layer.name for layer in model.layers}
    assert set(layers) <= names
    assert model.layers[-1].name == output_layer
    assert builder in models.__all__


def test_builders_fold_batchnorm_by_default(tmp_path):
    """As built by default a ResNet is an inference model: every BatchNorm and Scale folded into the convolution
    before it, which keeps its name; it computes what the unfolded model computes with the same weights file.
    Models without batch norms are as they were."""
    shape = dict(include_top=False, input_shape=(64, 64, 3))
    kept = keras_zoo.ResNet50(weights=None, fold_batchnorm=False, **shape)
    rng = np.random.default_rng(0)
    for layer in kept.layers:  # batch-norm statistics and scales far from the identity
        if layer.name.startswith(("bn", "scale")):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    kept.save_weights(tmp_path / "resnet.weights.h5")
    built = keras_zoo.ResNet50(weights=str(tmp_path / "resnet.weights.h5"), **shape)
    names = {layer.name for layer in built.layers}
    assert not {"bn_conv1", "scale_conv1", "bn2a_branch2a", "scale5c_branch2c"} & names
    assert {"conv1", "res2a_branch2a", "res5c_branch2c", "res5c_relu"} <= names
    assert built.count_params() < kept.count_params()
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    assert_close_rel(built.predict_on_batch(images), kept.predict_on_batch(images), tol=1e-4)
    vgg = [layer.name for layer in keras_zoo.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)).layers]
    assert vgg == [layer.name for layer in keras_zoo.VGG16(weights=None, fold_batchnorm=False, include_top=False,
                                                           input_shape=(32, 32, 3)).layers]


def test_vgg16_parameter_count_is_the_papers():
    assert vgg_params(16) == 138_357_544  # Simonyan & Zisserman, Table 2: 138M


# ---------------------------------------------------------------------------------------------------------
# keras.applications-style arguments
# ---------------------------------------------------------------------------------------------------------
def test_include_top_false_ends_at_pool5_with_caffe_rounding():
    model = models.VGG16(weights=None, include_top=False, include_preprocessing=False, input_shape=(100, 100, 3))
    # Caffe rounds pooling up: 100 -> 50 -> 25 -> 13 -> 7 -> 4
    assert model.output_shape == (None, 4, 4, 512)
    assert model.layers[-1].name == "pool5"
    assert "fc6" not in {layer.name for layer in model.layers}


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_global_pooling(pooling, rng):
    model = models.GoogLeNet(weights=None, include_top=False, pooling=pooling, include_preprocessing=False,
                             input_shape=(96, 128, 3))
    features = models.GoogLeNet(weights=None, include_top=False, include_preprocessing=False,
                                input_shape=(96, 128, 3))
    features.set_weights(model.get_weights())
    x = rng.uniform(-50, 50, (2, 96, 128, 3)).astype("float32")
    maps = keras.ops.convert_to_numpy(features(x))
    pooled = keras.ops.convert_to_numpy(model(x))
    assert maps.shape == (2, 3, 4, 1024)
    reduce = np.mean if pooling == "avg" else np.max
    np.testing.assert_allclose(pooled, reduce(maps, axis=(1, 2)), rtol=1e-5, atol=1e-5)


def test_resnet_features_end_before_global_pooling():
    model = models.ResNet50(weights=None, include_top=False, include_preprocessing=False)
    assert model.output_shape == (None, 7, 7, 2048)


def test_classes_and_classifier_activation(rng):
    model = models.AlexNet(weights=None, classes=10, include_preprocessing=False)
    raw = models.AlexNet(weights=None, classes=10, classifier_activation=None, include_preprocessing=False)
    raw.set_weights(model.get_weights())
    assert model.output_shape == raw.output_shape == (None, 10)
    assert raw.layers[-1].name == "fc8"
    x = rng.uniform(-100, 100, (2, 227, 227, 3)).astype("float32")
    scores = keras.ops.convert_to_numpy(raw(x))
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, rtol=1e-5, atol=1e-6)


def test_weights_are_random_without_weights():
    model = models.VGGF(weights=None, include_top=False, include_preprocessing=False)
    kernel = model.get_layer("conv2").get_weights()[0]
    assert kernel.std() > 0
    assert np.all(model.get_layer("conv2").get_weights()[1] == 0)


def test_pretrained_weights_with_other_classes_are_refused():
    with pytest.raises(ValueError, match="classes"):
        models.VGG16(weights="imagenet", classes=10)


def test_pretrained_weights_with_other_sizes_need_include_top_false():
    with pytest.raises(ValueError, match="input_shape"):
        models.CaffeNet(weights="imagenet", input_shape=(200, 200, 3))
    with pytest.raises(ValueError, match="height, width, 3"):
        models.CaffeNet(weights=None, input_shape=(227, 227, 1))


@pytest.mark.parametrize("kwargs, match", [({"pooling": "sum"}, "pooling"),
                                           ({"classifier_activation": "relu"}, "classifier_activation"),
                                           ({"weights": "no/such/file.caffemodel"}, "does not exist"),
                                           ({"weights": "no-such-source"}, "no weight source")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.AlexNet(**kwargs)


def test_input_tensor():
    tensor = keras.Input((227, 227, 3), name="image")
    model = models.CaffeNet(weights=None, input_tensor=tensor, include_top=False, include_preprocessing=False)
    assert model.inputs[0] is tensor
    assert model.get_layer("conv1") is not None  # the layers stay at the top level
    assert model.output_shape == (None, 6, 6, 256)

    image = keras.Input((64, 64, 3))
    upscaled = keras.layers.UpSampling2D(4)(image)
    model = models.CaffeNet(weights=None, input_tensor=upscaled, include_top=False, include_preprocessing=False)
    assert model.inputs[0] is image
    assert model.output_shape == (None, 7, 7, 256)  # 256 -> conv1 62 -> 31 -> 15 -> 7


def test_fcn_takes_any_size_and_returns_scores_of_that_size(rng):
    model = models.FCN32s(weights=None, include_preprocessing=False)
    for height, width in ((40, 56), (33, 21)):
        x = rng.uniform(-100, 100, (1, height, width, 3)).astype("float32")
        assert keras.ops.convert_to_numpy(model(x)).shape == (1, height, width, 21)
    probabilities = models.FCN32s(weights=None, include_preprocessing=False, classifier_activation="softmax")
    x = rng.uniform(-100, 100, (1, 24, 30, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(probabilities(x))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


def test_vggface_descriptor_is_unit_length(rng):
    model = models.VGGFaceDescriptor(weights=None, include_preprocessing=False)
    assert model.output_shape == (None, 4096)
    assert "fc8" not in {layer.name for layer in model.layers}
    x = rng.uniform(-100, 100, (2, 224, 224, 3)).astype("float32")
    descriptors = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(np.linalg.norm(descriptors, axis=1), 1.0, rtol=1e-5)
    assert descriptors.min() >= 0  # fc7 after relu7, as Caffe's in-place blob holds it


# ---------------------------------------------------------------------------------------------------------
# preprocessing inside the model
# ---------------------------------------------------------------------------------------------------------
def test_preprocessing_with_mean_pixel_equals_caffe_input(rng):
    """bvlc_googlenet: RGB 0..255 in; Caffe took BGR minus the mean pixel (104, 117, 123)."""
    inside = models.GoogLeNet(weights=None, include_top=False, input_shape=(64, 64, 3))
    raw = models.GoogLeNet(weights=None, include_top=False, include_preprocessing=False, input_shape=(64, 64, 3))
    raw.set_weights([w for layer in inside.layers if layer.name != "preprocess" for w in layer.get_weights()])
    rgb = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    caffe_input = rgb[..., ::-1] - np.array([104.0, 117.0, 123.0], np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inside(rgb)),
                               keras.ops.convert_to_numpy(raw(caffe_input)), rtol=1e-4, atol=1e-3)


def test_preprocessing_with_mean_image_equals_caffe_input(rng, tmp_path, monkeypatch):
    """CaffeNet: BGR minus Caffe's 256x256 ImageNet mean image, centre-cropped to 227x227 (the cached mean
    file is the fixture; the reference mean comes from the .npy copy of the same data)."""
    import shutil

    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path))
    (tmp_path / "downloads").mkdir()
    shutil.copy(fixture_path("labels/ilsvrc12/imagenet_mean.binaryproto"), tmp_path / "downloads")
    mean = np.load(fixture_path("bvlc/ilsvrc_2012_mean.npy")).astype(np.float32)  # (3, 256, 256) BGR
    inside = models.CaffeNet(weights=None, include_top=False)
    raw = models.CaffeNet(weights=None, include_top=False, include_preprocessing=False)
    raw.set_weights([w for layer in inside.layers if layer.name != "preprocess" for w in layer.get_weights()])
    rgb = rng.uniform(0, 255, (1, 227, 227, 3)).astype("float32")
    caffe_input = rgb[..., ::-1] - mean[:, 14:241, 14:241].transpose(1, 2, 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inside(rgb)),
                               keras.ops.convert_to_numpy(raw(caffe_input)), rtol=1e-4, atol=1e-3)


def test_saved_model_loads_in_safe_mode(tmp_path, rng):
    model = models.GoogLeNet(weights=None, include_top=False, pooling="avg", input_shape=(64, 64, 3))
    path = tmp_path / "googlenet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = rng.uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-5, atol=1e-5)


def test_family_preprocess_input_and_decode_predictions(tmp_path, monkeypatch):
    """keras.applications style: ``keras_zoo.models.vgg.preprocess_input`` does what VGG-16's Caffe weights
    took (BGR minus the VGG mean pixel); ``decode_predictions`` names Caffe's ImageNet classes (the label
    file is the cached fixture)."""
    import shutil

    from keras_zoo.models import resnet, vgg

    rgb = np.array([[[[10.0, 20.0, 30.0]]]], np.float32)
    expected = np.array([30.0 - 103.939, 20.0 - 116.779, 10.0 - 123.68], np.float32)
    np.testing.assert_allclose(vgg.preprocess_input(rgb)[0, 0, 0], expected, rtol=1e-6)
    vgg_face = vgg.preprocess_input(rgb, model="VGGFace", weights="caffe")[0, 0, 0]
    np.testing.assert_allclose(vgg_face, [30.0 - 93.5940, 20.0 - 104.7624, 10.0 - 129.1863], rtol=1e-6)

    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    (tmp_path / "downloads").mkdir()
    shutil.copy(fixture_path("labels/ilsvrc12/synset_words.txt"), tmp_path / "downloads")
    preds = np.zeros((1, 1000), np.float32)
    preds[0, [0, 281]] = [0.25, 0.75]
    decoded = resnet.decode_predictions(preds, top=2)
    assert [(wnid, score) for wnid, _, score in decoded[0]] == [("n02123045", 0.75), ("n01440764", 0.25)]
    assert "tabby" in decoded[0][0][1]
