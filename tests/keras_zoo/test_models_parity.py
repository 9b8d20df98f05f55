"""The zoo builders reproduce Caffe: random caffemodels written for the original deploy prototxts, loaded with
``keras_zoo.X(weights=path, include_preprocessing=False)``, against OpenCV's Caffe runtime and against the
generic converter (:func:`keras_zoo.convert.from_caffe`, what ``tools/convert_caffe.py`` runs)."""

import re

import cv2
import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.convert import from_caffe
from keras_zoo.random_weights import random_caffemodel
from converters.writers.caffe import blob_proto, length_delimited
from tests.helpers import assert_close_rel, fixture_path

CASES = [
    # builder, deploy prototxt, input (H, W), scores layer (before the softmax)
    ("CaffeNet", "bvlc/bvlc_reference_caffenet/deploy.prototxt", (227, 227), "fc8"),
    ("GoogLeNet", "bvlc/bvlc_googlenet/deploy.prototxt", (224, 224), "loss3/classifier"),
    ("ResNet50", "resnet/ResNet-50-deploy.prototxt", (224, 224), "fc1000"),
    ("VGGM2048", "vgg_cnn/VGG_CNN_M_2048_deploy_TDD.prototxt", (224, 224), "fc8"),
    ("VGG16", "vgg/VGG_ILSVRC_16_layers_deploy.prototxt", (224, 224), "fc8"),
    ("FCN8s", "fcn/voc-fcn8s/deploy.prototxt", (48, 64), "score"),
]


LRN_K = 2.0  # VGG_CNN_* (Chatfield et al. 2014; the Fast R-CNN nets on the same weights say k: 2)
_LRN_BLOCK = re.compile(r'layers \{[^{}]*top: "(?P<top>[^"]+)"[^{}]*type: LRN\s*lrn_param \{[^{}]*\}\s*\}')


def _prototxts(relative, tmp_path):
    """(the net for the builder and converter, the same net for OpenCV).

    VGG_CNN_M_2048's third-party copy lacks the LRN ``k: 2`` of the released model: the first gets it. OpenCV
    ignores Caffe's ``k`` (it always uses 1), so the second writes the same function in a form OpenCV runs:
    x / (k + a/n S)^b = k^-b * x / (1 + (a/k)/n S)^b, i.e. alpha / k and an in-place Power layer k^-b.
    """
    path = fixture_path(relative)
    if "VGG_CNN_M_2048" not in relative:
        return path, path
    text = path.read_text()
    released, for_opencv = tmp_path / "released.prototxt", tmp_path / "opencv.prototxt"
    released.write_text(text.replace("beta: 0.75", f"beta: 0.75\n    k: {LRN_K:g}"))

    def rewrite(match):
        block = match.group(0).replace("alpha: 0.0005", f"alpha: {0.0005 / LRN_K!r}")
        top = match.group("top")
        power = (f'\nlayers {{\n  bottom: "{top}"\n  top: "{top}"\n  name: "{top}_k"\n  type: POWER\n'
                 f'  power_param {{\n    scale: {LRN_K ** -0.75!r}\n  }}\n}}')
        return block + power

    opencv_text, count = _LRN_BLOCK.subn(rewrite, text)
    assert count == 2
    for_opencv.write_text(opencv_text)
    return released, for_opencv


def random_blobs(prototxt, path, *, input_shape=None):
    """``{layer: [arrays in Caffe layouts]}``: the random weights :func:`random_caffemodel` writes to ``path``."""
    from converters.caffe import schema as caffe_schema

    weights_only = caffe_schema.NetParameter.FromString(
        random_caffemodel(prototxt, path, input_shape=input_shape).read_bytes())
    return {layer.name: [np.asarray(blob.data, np.float32).reshape(tuple(blob.shape.dim)) for blob in layer.blobs]
            for layer in weights_only.layer}


def write_full_caffemodel(prototxt, path, *, input_shape=None, blobs=None):
    """A .caffemodel as Caffe saves one: the net definition of ``prototxt`` with random blobs in its layers.

    The builders load a weights file on its own, so it must carry its layers' parameters (groups, strides...)
    as real files do; the random ``blobs`` (default: :func:`random_blobs`) are appended to
    each serialized layer (concatenated protobuf messages merge; repeated blobs append), with the legacy
    num/channels/height/width dims in V1 nets as their files have.
    """
    from google.protobuf import text_format

    from converters.caffe import schema as caffe_schema

    if blobs is None:
        blobs = random_blobs(prototxt, path.with_suffix(".blobs"), input_shape=input_shape)
    net = caffe_schema.NetParameter()
    text_format.Parse(prototxt.read_text(), net)
    v1 = bool(net.layers)
    out = bytearray()
    for layer in net.layers if v1 else net.layer:
        payload = layer.SerializeToString() + b"".join(
            length_delimited(6 if v1 else 7, blob_proto(array, legacy_dims=v1)) for array in blobs.get(layer.name, ()))
        out += length_delimited(2 if v1 else 100, payload)
    del net.layers[:], net.layer[:]
    path.write_bytes(net.SerializeToString() + bytes(out))
    return path


def _opencv(prototxt, caffemodel, x_nhwc, blobs):
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableWinograd(False)
    net.setInput(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
    return [np.asarray(out) for out in net.forward(blobs)]


def _softmax(scores):
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _nchw(y):
    y = keras.ops.convert_to_numpy(y)
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


@pytest.mark.parametrize("builder, prototxt, size, scores", CASES, ids=[case[0] for case in CASES])
def test_builder_reproduces_caffe(builder, prototxt, size, scores, tmp_path):
    prototxt, opencv_prototxt = _prototxts(prototxt, tmp_path)
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel",
                                       input_shape=size if builder.startswith("FCN") else None)
    rng = np.random.default_rng(1)
    x = rng.uniform(-120, 120, (1, *size, 3)).astype(np.float32)  # BGR, mean subtracted: what Caffe takes
    make = getattr(keras_zoo, builder)
    fully_convolutional = builder.startswith("FCN")
    raw = make(weights=str(caffemodel), include_preprocessing=False, classifier_activation=None)
    assert raw.input_shape == (None, None, None, 3) if fully_convolutional else (None, *size, 3)
    y_scores = _nchw(raw(x))
    with_softmax = not fully_convolutional
    references = _opencv(opencv_prototxt, caffemodel, x, [scores, "prob"] if with_softmax else [scores])
    assert_close_rel(y_scores, references[0], tol=1e-4, what=f"{builder} {scores}")
    if with_softmax:
        assert_close_rel(_softmax(y_scores), references[1], tol=1e-4, what=f"{builder} prob")

    # the builders fold batch norms by default: so does this conversion, whose folding must give the same weights
    converted = from_caffe(prototxt, caffemodel, input_shape=size if fully_convolutional else None,
                           fold_batchnorm=True)
    expected = _softmax(y_scores) if with_softmax else y_scores  # the converter keeps Caffe's softmax
    assert_close_rel(_nchw(converted(x)), expected, tol=1e-5, what=f"{builder} against the converter")
    for layer in raw.layers:
        if layer.weights and layer.name != "preprocess":
            for ours, theirs in zip(layer.get_weights(), converted.get_layer(layer.name).get_weights()):
                if not np.array_equal(ours, theirs):  # most are equal: a quick look first
                    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0, err_msg=layer.name)  # folding's rounding


def test_include_top_false_loads_the_features(tmp_path):
    """A classifier's weights file loads into the headless model (by layer name), as keras.applications."""
    prototxt = fixture_path("bvlc/bvlc_reference_caffenet/deploy.prototxt")
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel")
    x = np.random.default_rng(2).uniform(-120, 120, (1, 227, 227, 3)).astype(np.float32)
    features = keras_zoo.CaffeNet(weights=str(caffemodel), include_top=False, include_preprocessing=False)
    (pool5,) = _opencv(prototxt, caffemodel, x, ["pool5"])
    assert_close_rel(_nchw(features(x)), pool5, tol=1e-4, what="pool5")


def test_other_classes_keep_the_features_of_a_weights_file(tmp_path):
    prototxt = fixture_path("bvlc/bvlc_reference_caffenet/deploy.prototxt")
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel")
    model = keras_zoo.CaffeNet(weights=str(caffemodel), classes=7, include_preprocessing=False)
    reference = keras_zoo.CaffeNet(weights=str(caffemodel), include_preprocessing=False)
    assert model.output_shape == (None, 7)
    for name in ("conv1", "fc7"):
        for ours, theirs in zip(model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert model.get_layer("fc8").get_weights()[0].std() > 0  # freshly initialised


def test_named_weight_source_with_preprocessing_reproduces_caffe(tmp_path, monkeypatch):
    """``ResNet50(weights='caffe')`` end to end, offline: the original file names in a mirror directory
    (a random ResNet-50 caffemodel and mean image), fetched, converted and cached by layer name; the model
    takes RGB 0..255 and equals OpenCV fed what Caffe was fed (BGR minus the centre of the mean image), with its
    batch norms folded into the convolutions or not."""
    from converters.writers.caffe import write_binaryproto

    prototxt = fixture_path("resnet/ResNet-50-deploy.prototxt")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    caffemodel = write_full_caffemodel(prototxt, mirror / "ResNet-50-model.caffemodel")
    rng = np.random.default_rng(3)
    mean = rng.uniform(90, 130, (1, 3, 230, 230)).astype(np.float32)
    write_binaryproto(mirror / "ResNet_mean.binaryproto", mean)
    monkeypatch.setenv("KERAS_ZOO_MIRROR", str(mirror))
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")

    model = keras_zoo.ResNet50(weights="caffe", classifier_activation=None)
    rgb = rng.uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    caffe_input = rgb[..., ::-1] - mean[0, :, 3:227, 3:227].transpose(1, 2, 0)
    (reference,) = _opencv(prototxt, caffemodel, caffe_input, ["fc1000"])
    assert_close_rel(_nchw(model(rgb)), reference, tol=1e-4, what="ResNet50 fc1000 from RGB")
    assert list((tmp_path / "home" / "weights").glob("ResNet50-caffe.h5"))  # converted once, cached
    folded = keras_zoo.ResNet50(weights="caffe", classifier_activation=None, fold_batchnorm=True)
    assert "bn_conv1" not in {layer.name for layer in folded.layers}
    assert_close_rel(_nchw(folded(rgb)), reference, tol=1e-4, what="folded ResNet50 fc1000 from RGB")


def _simplenn_vgg_m_2048(blobs):
    """A MatConvNet SimpleNN net of VGG_CNN_M_2048 with the Caffe ``blobs``, laid out as MatConvNet's Caffe
    import writes them: filters H x W x Cin x Cout, fully connected layers as convolutions over their whole
    input, pooling pads corrected for MatConvNet's floor rounding, LRN as [N kappa alpha/N beta]."""

    def conv(name, pad=0, stride=1):
        kernel, bias = blobs[name]
        if kernel.ndim == 2:  # InnerProduct (out, C*H*W) -> (H, W, C, out) over a 6x6 (or 1x1) input
            side = 6 if name == "fc6" else 1
            kernel = kernel.reshape(kernel.shape[0], -1, side, side)
        return {"type": "conv", "name": name, "weights": [np.ascontiguousarray(kernel.transpose(2, 3, 1, 0)), bias],
                "pad": np.full(4, float(pad)), "stride": np.full(2, float(stride))}

    def lrn(name):
        return {"type": "lrn", "name": name, "param": np.array([5, LRN_K, 0.0005 / 5, 0.75])}

    def pool(name):
        return {"type": "pool", "name": name, "method": "max", "pool": np.array([3.0, 3.0]),
                "stride": np.array([2.0, 2.0]), "pad": np.array([0.0, 1.0, 0.0, 1.0])}

    def relu(name):
        return {"type": "relu", "name": name}

    layers = [conv("conv1", stride=2), relu("relu1"), lrn("norm1"), pool("pool1"),
              conv("conv2", pad=1, stride=2), relu("relu2"), lrn("norm2"), pool("pool2")]
    for index in (3, 4, 5):
        layers += [conv(f"conv{index}", pad=1), relu(f"relu{index}")]
    layers += [pool("pool5"), conv("fc6"), relu("relu6"), conv("fc7"), relu("relu7"), conv("fc8"),
               {"type": "softmax", "name": "prob"}]
    meta = {"normalization": {"imageSize": np.array([224.0, 224.0, 3.0]),
                              "averageImage": np.array([123.0, 117.0, 104.0])}}
    return {"layers": layers, "meta": meta}


def test_matconvnet_file_gives_the_caffemodel_outputs(tmp_path):
    """The same VGG_CNN_M_2048 weights as a MatConvNet .mat and as a .caffemodel load into ``VGGM2048`` with
    the same outputs (the .mat is the card's default source format); with preprocessing, the model takes RGB
    and subtracts the .mat's own average (the card's ``mean: 'meta'``)."""
    from converters.writers.mat import write_mat

    prototxt, _ = _prototxts("vgg_cnn/VGG_CNN_M_2048_deploy_TDD.prototxt", tmp_path)
    blobs = random_blobs(prototxt, tmp_path / "random.blobs")
    caffemodel = write_full_caffemodel(prototxt, tmp_path / "random.caffemodel", blobs=blobs)
    mat = tmp_path / "imagenet-vgg-m-2048.mat"
    write_mat(mat, _simplenn_vgg_m_2048(blobs))
    rgb = np.random.default_rng(4).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    x = rgb - np.array([123.0, 117.0, 104.0], np.float32)  # the file's meta.normalization.averageImage
    from_mat = keras_zoo.VGGM2048(weights=str(mat), include_preprocessing=False, classifier_activation=None)
    y_mat = _nchw(from_mat(x))
    del from_mat
    from_caffe_file = keras_zoo.VGGM2048(weights=str(caffemodel), include_preprocessing=False,
                                         classifier_activation=None)
    assert_close_rel(y_mat, _nchw(from_caffe_file(x)), tol=1e-5, what="VGGM2048 .mat against .caffemodel")
    del from_caffe_file
    with_preprocessing = keras_zoo.VGGM2048(weights=str(mat), classifier_activation=None)
    assert_close_rel(_nchw(with_preprocessing(rgb)), y_mat, tol=1e-5, what="VGGM2048 .mat from RGB")
