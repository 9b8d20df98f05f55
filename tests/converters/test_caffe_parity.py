"""Caffe parity: converted Keras models against OpenCV's DNN module running the same prototxt + caffemodel.

OpenCV (``cv2.dnn.readNetFromCaffe``, Winograd and layer fusion off) is the Caffe runtime. Every blob that a
layer writes last is compared, not only the outputs, each to max|y - y_ref| <= 1e-4 * max|y_ref|: the
pre-softmax scores, and every layer of the deepest nets.

Real trained caffemodels from the fixtures are used where they exist (on a batch of two). The classic deploy
prototxts run unmodified, every layer with its real parameters, on random well-conditioned weights
(keras_zoo/random_weights.py) and one image; only their input may be smaller than the declared one (see
``GENERATED``).
"""

import cv2
import numpy as np
import pytest

from converters.caffe import read_caffe
from keras_zoo.builder import build_model, port_weights
from keras_zoo.random_weights import deploy_graph, write_random_caffemodel
from tests.helpers import assert_close_rel, fixture_path


def last_writers(graph):
    """{blob: (layer that writes it last, output index)} (in-place layers rewrite their input blob)."""
    writers = {}
    for node in graph.nodes:
        for index, blob in enumerate(node.outputs):
            writers[blob] = (node.name, index)
    return writers


def random_inputs(graph, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {blob: rng.uniform(-100, 100, (batch, *shape)).astype(np.float32) for blob, shape in graph.inputs.items()}


def opencv_blobs(prototxt, caffemodel, inputs, writers):
    """OpenCV's values of the blobs written by ``writers`` ((layer name, output index) pairs)."""
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableWinograd(False)
    net.enableFusion(False)
    for blob, value in inputs.items():
        net.setInput(value, blob)
    layers = sorted({layer for layer, _ in writers})
    outputs = dict(zip(layers, net.forwardAndRetrieve(layers)))
    return [outputs[layer][index] for layer, index in writers]


def every_blob_as_output(graph):
    """``graph`` with every blob OpenCV keeps as an output: all but the second and later tops of a layer
    (OpenCV reuses their memory; the layers consuming them are compared instead)."""
    graph.outputs = [blob for blob, (_, index) in last_writers(graph).items()
                     if blob not in graph.inputs and index == 0]
    return graph


def assert_parity(prototxt, caffemodel, *, input_shape=None, model=None, batch=2, tol=1e-4):
    """Compare every blob of the Keras model of prototxt + caffemodel with OpenCV's.

    ``model``: an already built model of the prototxt with every blob as an output, to port the weights
    into (instead of building it from the read graph).
    """
    graph = every_blob_as_output(read_caffe(prototxt, caffemodel, input_shape=input_shape))
    writers = last_writers(graph)
    blobs = graph.outputs
    inputs = random_inputs(graph, batch)
    references = opencv_blobs(prototxt, caffemodel, inputs, [writers[blob] for blob in blobs])
    model = build_model(graph) if model is None else port_weights(model, graph)
    feed = [np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x for x in inputs.values()]
    outputs = model(feed[0] if len(feed) == 1 else feed)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    assert len(outputs) == len(references) == len(blobs)
    for blob, y, y_ref in zip(blobs, outputs, references):
        assert np.any(y_ref), f"blob '{blob}' is all zeros in OpenCV: comparing it would prove nothing"
        y = np.asarray(y)
        assert_close_rel(np.moveaxis(y, -1, 1) if y.ndim == 4 else y, y_ref, tol=tol,
                         what=f"blob '{blob}' (layer '{writers[blob][0]}')")
    return graph, model


# ------------------------------------------------------------------------------------ real caffemodels

REAL = [
    ("small_caffemodels/lenet/lenet.prototxt", "small_caffemodels/lenet/lenet_iter_10000.caffemodel", None),
    ("small_caffemodels/cifar10_quick_v1/cifar10_quick_v1_deploy.prototxt",
     "small_caffemodels/cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel", None),
    ("bvlc/examples/cifar10_quick.prototxt",
     "small_caffemodels/cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel", None),
    # LRN WITHIN_CHANNEL and AVE pooling; OpenCV agrees with Caffe here (tests/keras_zoo/test_layers.py holds the
    # NumPy restatement of both formulas).
    ("small_caffemodels/cifar10_full/cifar10_full.prototxt",
     "small_caffemodels/cifar10_full/cifar10_full_iter_70000.caffemodel", None),
    ("mtcnn/det1.prototxt", "mtcnn/det1.caffemodel", (31, 27)),  # fully convolutional: any size
    ("mtcnn/det2.prototxt", "mtcnn/det2.caffemodel", None),
    ("mtcnn/det3.prototxt", "mtcnn/det3.caffemodel", None),
    ("mtcnn/det4.prototxt", "mtcnn/det4.caffemodel", None),
]


@pytest.mark.parametrize("prototxt,caffemodel,input_shape", REAL,
                         ids=[p.split("/")[-1].replace(".prototxt", "") for p, _, _ in REAL])
def test_real_caffemodel_matches_opencv(prototxt, caffemodel, input_shape):
    assert_parity(fixture_path(prototxt), fixture_path(caffemodel), input_shape=input_shape)


# ------------------------------------------------------------------------ deploy nets, random weights

# The deploy prototxts run unmodified: every layer with its real parameters (num_output, kernels, strides,
# groups...). Only the input size may differ from the declared one (the reader's ``input_shape``; OpenCV
# reshapes the net to the input it is given), where the net allows a smaller one: fully convolutional parts
# take any size, InnerProduct layers get random weights sized for the flattened input. Some inputs are not
# square so that a height/width mix-up shows. Where a 7x7 average pooling feeds an InnerProduct, the input
# stays near the declared 224 (ResNet takes 195 and more, GoogLeNet 223 to 231).
GENERATED = [
    # name, deploy prototxt, input (H, W) (None: the declared size)
    ("caffenet_v0", "bvlc/legacy/caffenet_imagenet_deploy_v0.prototxt", (99, 131)),
    ("caffenet_v1", "bvlc/bvlc_reference_caffenet/deploy_v1_layers.prototxt", (99, 99)),
    ("caffenet_input_dim", "bvlc/bvlc_reference_caffenet/deploy_v2_input_dim.prototxt", (131, 99)),
    ("caffenet", "bvlc/bvlc_reference_caffenet/deploy.prototxt", None),
    ("alexnet_v1", "bvlc/bvlc_alexnet/deploy_v1_layers.prototxt", (99, 99)),
    ("alexnet", "bvlc/bvlc_alexnet/deploy.prototxt", (131, 163)),
    ("rcnn_ilsvrc13", "bvlc/bvlc_reference_rcnn_ilsvrc13/deploy.prototxt", (99, 99)),
    ("rcnn_pascal_v1", "rcnn/rcnn_pascal_finetune_deploy_v1.prototxt", (99, 99)),
    ("googlenet", "bvlc/bvlc_googlenet/deploy.prototxt", None),
    ("googlenet_v1", "bvlc/bvlc_googlenet/deploy_v1_layers.prototxt", (224, 227)),
    ("vgg16", "vgg/VGG_ILSVRC_16_layers_deploy.prototxt", (64, 96)),
    ("vgg19", "vgg/VGG_ILSVRC_19_layers_deploy.prototxt", (48, 48)),
    ("vgg_face", "vgg_face/VGG_FACE_deploy_newstyle.prototxt", (64, 64)),
    ("vgg_face_truncated_v1", "vgg_face/VGG_FACE_deploy_v1_truncated.prototxt", (48, 64)),
    ("vgg_cnn_m_2048", "vgg_cnn/VGG_CNN_M_2048_deploy_TDD.prototxt", (131, 131)),
    ("resnet50", "resnet/ResNet-50-deploy.prototxt", (200, 224)),
    ("resnet101", "resnet/ResNet-101-deploy.prototxt", (200, 200)),
    ("resnet152", "resnet/ResNet-152-deploy.prototxt", (200, 200)),
    ("fcn8s", "fcn/voc-fcn8s/deploy.prototxt", (16, 24)),
    ("fcn16s", "fcn/voc-fcn16s/deploy_fork_rocky-lq.prototxt", (24, 16)),
    ("fcn32s", "fcn/voc-fcn32s/deploy_fork_rocky-lq.prototxt", (16, 20)),
    ("squeezenet_1.0", "squeezenet/v1.0/deploy.prototxt", (64, 80)),
    ("squeezenet_1.1", "squeezenet/v1.1/deploy.prototxt", (64, 64)),
    ("mobilenet_v1", "other_archs/mobilenet_v1_deploy.prototxt", (96, 96)),
    ("mobilenet_v2", "other_archs/mobilenet_v2_deploy.prototxt", (96, 128)),
    # pool1 has a Caffe fork's `ceil_mode: false` (floor rounding), which OpenCV honours too
    ("densenet121", "other_archs/DenseNet_121.prototxt", (96, 96)),
    ("places_alexnet", "places365/deploy_alexnet_places365.prototxt", (99, 99)),
    ("places_vgg16", "places365/deploy_vgg16_places365.prototxt", (64, 64)),
    ("places_googlenet", "places365/deploy_googlenet_places365.prototxt", None),
    ("places_resnet152", "places365/deploy_resnet152_places365.prototxt", (200, 200)),
]


@pytest.mark.parametrize("prototxt,input_shape", [pytest.param(path, shape, id=name)
                                                   for name, path, shape in GENERATED])
def test_deploy_net_with_random_weights_matches_opencv(prototxt, input_shape, tmp_path):
    prototxt = fixture_path(prototxt)
    graph = every_blob_as_output(deploy_graph(prototxt, input_shape=input_shape))
    model = build_model(graph)
    caffemodel = write_random_caffemodel(graph, model, tmp_path / "random.caffemodel")
    # one image: these nets cost seconds each; the real caffemodels above check batches of two
    assert_parity(prototxt, caffemodel, input_shape=input_shape, model=model, batch=1)
