"""Deep residual networks (He et al. 2015), the original Caffe releases ResNet-50/101/152 (bottleneck blocks,
stride on the first 1x1 convolution, BatchNorm + Scale after every convolution)."""

import functools
import string

from keras_zoo.cards.resnet import RESNET50_CARD, RESNET101_CARD, RESNET152_CARD
from keras_zoo.models.architecture import Architecture, family_utils, zoo_model
from keras_zoo.models.graph_writer import GraphWriter
from keras_zoo.models.registry import register_model

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
WIDTHS = (64, 128, 256, 512)  # bottleneck widths of stages 2..5; outputs are 4x wider


def _block_names(depth, count):
    """'a', 'b', 'c'... ; the deeper nets number long stages 'a', 'b1', 'b2'..."""
    if depth > 50 and count > 3:
        return ["a"] + [f"b{index}" for index in range(1, count)]
    return list(string.ascii_lowercase[:count])


def _conv_bn(net, suffix, bottom, filters, kernel, stride=1, pad=0, relu=True):
    blob = net.conv(f"res{suffix}", bottom, filters, kernel, stride, pad, use_bias=False)
    net.batchnorm_scale(f"bn{suffix}", f"scale{suffix}", blob)
    if relu:
        net.relu(f"res{suffix}_relu", blob)
    return blob


def _bottleneck(net, block, bottom, width, stride, project):
    shortcut = _conv_bn(net, f"{block}_branch1", bottom, 4 * width, 1, stride, relu=False) if project else bottom
    blob = _conv_bn(net, f"{block}_branch2a", bottom, width, 1, stride)
    blob = _conv_bn(net, f"{block}_branch2b", blob, width, 3, pad=1)
    blob = _conv_bn(net, f"{block}_branch2c", blob, 4 * width, 1, relu=False)
    blob = net.eltwise_sum(f"res{block}", [shortcut, blob])
    net.relu(f"res{block}_relu", blob)
    return blob


def resnet_graph(depth=50, classes=1000):
    """ResNet-``depth`` as in the authors' deploy prototxts (layers conv1, res2a_branch2a, ..., fc1000)."""
    net = GraphWriter(f"ResNet-{depth}", input_shape=(3, 224, 224))
    blob = net.conv("conv1", "data", 64, 7, 2, 3, use_bias=depth == 50)  # only ResNet-50's conv1 has a bias
    net.batchnorm_scale("bn_conv1", "scale_conv1", blob)
    net.relu("conv1_relu", blob)
    blob = net.pool("pool1", blob, "max", 3, 2)
    for stage, (count, width) in enumerate(zip(BLOCKS[depth], WIDTHS), start=2):
        for index, block in enumerate(_block_names(depth, count)):
            stride = 2 if index == 0 and stage > 2 else 1
            blob = _bottleneck(net, f"{stage}{block}", blob, width, stride, project=index == 0)
    blob = net.pool("pool5", blob, "avg", 7, 1)
    blob = net.dense("fc1000", blob, classes)
    return net.finish(net.softmax("prob", blob))


def _architecture(depth, card):
    return Architecture(card=card, graph=functools.partial(resnet_graph, depth), classes=1000, features="res5c_relu")


RESNET50_ARCH = _architecture(50, RESNET50_CARD)
RESNET101_ARCH = _architecture(101, RESNET101_CARD)
RESNET152_ARCH = _architecture(152, RESNET152_CARD)


@register_model(RESNET50_CARD)
def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", include_preprocessing=True, name="resnet50", fold_batchnorm=True):
    """ResNet-50 (He et al. 2015), the original Caffe model: 224x224 input, 1000 ImageNet classes; the top is
    ``pool5``, ``fc1000`` and ``prob``, the features end at ``res5c_relu``. Weights: ``'imagenet'``
    (= ``'matconvnet'``, MatConvNet's import), ``'caffe'`` (MSRA's caffemodel), None or a file. Arguments: see
    :mod:`keras_zoo.models`."""
    return zoo_model(RESNET50_ARCH, **locals())


@register_model(RESNET101_CARD)
def ResNet101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, name="resnet101", fold_batchnorm=True):
    """ResNet-101 (He et al. 2015), the original Caffe model: as :func:`ResNet50`, 23 blocks in stage 4."""
    return zoo_model(RESNET101_ARCH, **locals())


@register_model(RESNET152_CARD)
def ResNet152(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, name="resnet152", fold_batchnorm=True):
    """ResNet-152 (He et al. 2015), the original Caffe model: as :func:`ResNet50`, 8 blocks in stage 3 and 36
    in stage 4."""
    return zoo_model(RESNET152_ARCH, **locals())


preprocess_input, decode_predictions = family_utils(RESNET50_CARD)
