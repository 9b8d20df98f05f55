"""The VGG "Return of the Devil in the Details" nets (Chatfield et al. 2014): CNN-F, CNN-M (and its
M-2048/1024/128 low-dimensional fc7 variants) and CNN-S, as their Caffe releases define them."""

import functools

from keras_zoo.models.common import Architecture, family_utils, make_builder
from keras_zoo.models.graph_writer import GraphWriter

# Per conv layer: (filters, kernel, stride, pad, LRN after it, max pooling (kernel, stride) or None).
# LRN: local_size 5, alpha 5e-4 (Caffe's per-window value), beta 0.75, k 2 (Krizhevsky's constants).
_F = ((64, 11, 4, 0, True, (3, 2)), (256, 5, 1, 2, True, (3, 2)),
      (256, 3, 1, 1, False, None), (256, 3, 1, 1, False, None), (256, 3, 1, 1, False, (3, 2)))
_M = ((96, 7, 2, 0, True, (3, 2)), (256, 5, 2, 1, True, (3, 2)),
      (512, 3, 1, 1, False, None), (512, 3, 1, 1, False, None), (512, 3, 1, 1, False, (3, 2)))
_S = ((96, 7, 2, 0, True, (3, 3)), (256, 5, 1, 0, False, (2, 2)),
      (512, 3, 1, 1, False, None), (512, 3, 1, 1, False, None), (512, 3, 1, 1, False, (3, 3)))

# variant: (Caffe network name, conv table, fc7 width)
VARIANTS = {
    "f": ("VGG_CNN_F", _F, 4096),
    "m": ("VGG_CNN_M", _M, 4096),
    "s": ("VGG_CNN_S", _S, 4096),
    "m-2048": ("VGG_CNN_M_2048", _M, 2048),
    "m-1024": ("VGG_CNN_M_1024", _M, 1024),
    "m-128": ("VGG_CNN_M_128", _M, 128),
}


def vgg_cnn_graph(variant="m", classes=1000):
    """One of the VGG_CNN_* classifiers on 224x224 inputs (layers conv1..conv5, fc6..fc8, prob)."""
    net_name, convs, fc7_width = VARIANTS[variant]
    net = GraphWriter(net_name, input_shape=(3, 224, 224))
    blob = "data"
    for index, (filters, kernel, stride, pad, with_lrn, pooling) in enumerate(convs, start=1):
        blob = net.conv(f"conv{index}", blob, filters, kernel, stride, pad)
        net.relu(f"relu{index}", blob)
        if with_lrn:
            blob = net.lrn(f"norm{index}", blob, 5, 5e-4, 0.75, k=2.0)
        if pooling:
            blob = net.pool(f"pool{index}", blob, "max", *pooling)
    for index, units in ((6, 4096), (7, fc7_width)):
        blob = net.dense(f"fc{index}", blob, units)
        net.relu(f"relu{index}", blob)
        net.dropout(f"drop{index}", blob, 0.5)
    blob = net.dense("fc8", blob, classes)
    return net.finish(net.softmax("prob", blob))


def _architecture(variant, builder_name):
    return Architecture(builder_name, functools.partial(vgg_cnn_graph, variant), 1000, "pool5",
                        f"vgg_cnn_{variant.replace('-', '_')}")


_SUMMARY = ("{} (Chatfield et al. 2014, 'Return of the Devil in the Details'): 224x224 input, 1000 ImageNet "
            "classes.")
VGGF = make_builder(_architecture("f", "VGGF"), "VGGF", _SUMMARY.format("VGG CNN-F (fast)"))
VGGM = make_builder(_architecture("m", "VGGM"), "VGGM", _SUMMARY.format("VGG CNN-M (medium)"))
VGGS = make_builder(_architecture("s", "VGGS"), "VGGS", _SUMMARY.format("VGG CNN-S (slow)"))
VGGM128 = make_builder(_architecture("m-128", "VGGM128"), "VGGM128",
                       _SUMMARY.format("VGG CNN-M with a 128-D fc7"))
VGGM1024 = make_builder(_architecture("m-1024", "VGGM1024"), "VGGM1024",
                        _SUMMARY.format("VGG CNN-M with a 1024-D fc7"))
VGGM2048 = make_builder(_architecture("m-2048", "VGGM2048"), "VGGM2048",
                        _SUMMARY.format("VGG CNN-M with a 2048-D fc7"))

preprocess_input, decode_predictions = family_utils("VGGM")
