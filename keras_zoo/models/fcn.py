"""Fully convolutional networks for semantic segmentation (Long, Shelhamer & Darrell 2015): FCN-32s, FCN-16s
and FCN-8s on the VGG-16 body, as the PASCAL VOC deploy nets define them (input padded by 100, Crop offsets)."""

import functools

from keras_zoo.models.common import Architecture, family_utils, make_builder
from keras_zoo.models.graph_writer import GraphWriter
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


def _architecture(stride):
    return Architecture(f"FCN{stride}s", functools.partial(fcn_graph, stride), 21, "pool5", f"fcn{stride}s",
                        fully_convolutional=True, activation=None)


_SUMMARY = ("FCN-{}s (Long et al. 2015) for PASCAL VOC: any input size, per-pixel scores (N, H, W, 21) of the "
            "input's size\n    (``classifier_activation='softmax'`` gives per-pixel probabilities).")
FCN32s = make_builder(_architecture(32), "FCN32s", _SUMMARY.format(32))
FCN16s = make_builder(_architecture(16), "FCN16s", _SUMMARY.format(16))
FCN8s = make_builder(_architecture(8), "FCN8s", _SUMMARY.format(8))

preprocess_input, decode_predictions = family_utils("FCN8s")
