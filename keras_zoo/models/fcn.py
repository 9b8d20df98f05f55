"""Fully convolutional networks for semantic segmentation (Long, Shelhamer & Darrell 2015): FCN-32s, FCN-16s
and FCN-8s on the VGG-16 body, as the PASCAL VOC deploy nets define them (input padded by 100, Crop offsets)."""

import functools

from keras_zoo.cards.fcn import FCN8S_CARD, FCN16S_CARD, FCN32S_CARD
from keras_zoo.models.architecture import Architecture, family_utils, zoo_model
from keras_zoo.models.graph_writer import GraphWriter
from keras_zoo.models.registry import register_model
from keras_zoo.models.vgg import vgg_body

# stride: [(skip layer, pooled blob, crop offset of its scores)], final upsampling (kernel, stride), final offset
SKIPS = {32: ([], 64, 19), 16: ([("pool4", 5)], 32, 27), 8: ([("pool4", 5), ("pool3", 9)], 16, 31)}


def fcn_graph(stride=8, classes=21):
    """FCN-``stride``s: per-pixel class scores ``score`` of the input's size, for any input size."""
    net = GraphWriter(f"voc-fcn{stride}s", input_shape=(3, None, None))
    blob = vgg_body(net, 16, first_pad=100)
    for index, kernel in ((6, 7), (7, 1)):
        blob = net.conv(f"fc{index}", blob, 4096, kernel)
        net.relu(f"relu{index}", blob)
    blob = net.conv("score_fr", blob, classes, 1)
    skips, last_kernel, last_offset = SKIPS[stride]
    for position, (pooled, offset) in enumerate(skips):
        upsampled = net.deconv("upscore2" if position == 0 else "upscore_pool4", blob, classes, 4, 2)
        scores = net.conv(f"score_{pooled}", pooled, classes, 1)
        cropped = net.crop(f"score_{pooled}c", scores, upsampled, offset)
        blob = net.eltwise_sum(f"fuse_{pooled}", [upsampled, cropped])
    upsampled = net.deconv("upscore" if stride == 32 else f"upscore{stride}", blob, classes, last_kernel,
                           last_kernel // 2)
    return net.finish(net.crop("score", upsampled, "data", last_offset))


def _architecture(stride, card):
    return Architecture(card=card, graph=functools.partial(fcn_graph, stride), classes=21, features="pool5",
                        fully_convolutional=True, activation=None)


FCN32S_ARCH = _architecture(32, FCN32S_CARD)
FCN16S_ARCH = _architecture(16, FCN16S_CARD)
FCN8S_ARCH = _architecture(8, FCN8S_CARD)


@register_model(FCN32S_CARD)
def FCN32s(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=21,
           classifier_activation=None, include_preprocessing=True, name="fcn32s", fold_batchnorm=True):
    """FCN-32s (Long et al. 2015) for PASCAL VOC: any input size, per-pixel scores ``score`` (N, H, W, 21) of
    the input's size (``classifier_activation='softmax'``: per-pixel probabilities); the features end at
    ``pool5``. Weights: ``'imagenet'`` (= ``'caffe'``, the 'heavy' caffemodel), ``'matconvnet'``, None or a
    file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(FCN32S_ARCH, **locals())


@register_model(FCN16S_CARD)
def FCN16s(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=21,
           classifier_activation=None, include_preprocessing=True, name="fcn16s", fold_batchnorm=True):
    """FCN-16s (Long et al. 2015): as :func:`FCN32s`, with the pool4 skip."""
    return zoo_model(FCN16S_ARCH, **locals())


@register_model(FCN8S_CARD)
def FCN8s(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=21,
          classifier_activation=None, include_preprocessing=True, name="fcn8s", fold_batchnorm=True):
    """FCN-8s (Long et al. 2015): as :func:`FCN32s`, with the pool4 and pool3 skips; weights also ``'tvg'``
    (the Torr Vision Group's FCN-8s of CRF-RNN)."""
    return zoo_model(FCN8S_ARCH, **locals())


preprocess_input, decode_predictions = family_utils(FCN8S_CARD)
