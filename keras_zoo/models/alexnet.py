"""AlexNet (Krizhevsky et al. 2012) and its Caffe variants: CaffeNet and the R-CNN ILSVRC-13 detector."""

import functools

from keras_zoo.cards.alexnet import ALEXNET_CARD, CAFFENET_CARD, RCNN_CARD
from keras_zoo.models.architecture import Architecture, family_utils, zoo_model
from keras_zoo.models.graph_writer import GraphWriter
from keras_zoo.models.registry import register_model

# variant: (network name, LRN before pooling, classifier layer, default classes, ends with softmax)
VARIANTS = {
    "alexnet": ("AlexNet", True, "fc8", 1000, True),
    "caffenet": ("CaffeNet", False, "fc8", 1000, True),
    "rcnn": ("R-CNN-ilsvrc13", False, "fc-rcnn", 200, False),
}
# conv2, conv4 and conv5 are split in two groups (the original two-GPU layout)
CONVS = ((3, 384, 1), (4, 384, 2), (5, 256, 2))


def alexnet_graph(variant="alexnet", classes=None):
    """The BVLC deploy nets: 'alexnet' (LRN then pooling), 'caffenet' (pooling then LRN), 'rcnn' (CaffeNet
    body with the 200-way ILSVRC-13 detection SVM layer ``fc-rcnn``, no softmax)."""
    net_name, norm_first, classifier, default_classes, with_softmax = VARIANTS[variant]
    net = GraphWriter(net_name, input_shape=(3, 227, 227))
    blob = "data"
    for index, (filters, kernel, stride, pad, groups) in enumerate(((96, 11, 4, 0, 1), (256, 5, 1, 2, 2)), 1):
        blob = net.conv(f"conv{index}", blob, filters, kernel, stride, pad, groups)
        net.relu(f"relu{index}", blob)
        steps = [("norm", f"norm{index}"), ("pool", f"pool{index}")]
        for kind, layer in steps if norm_first else steps[::-1]:
            blob = net.lrn(layer, blob, 5, 1e-4, 0.75) if kind == "norm" else net.pool(layer, blob, "max", 3, 2)
    for index, filters, groups in CONVS:
        blob = net.conv(f"conv{index}", blob, filters, 3, pad=1, groups=groups)
        net.relu(f"relu{index}", blob)
    blob = net.pool("pool5", blob, "max", 3, 2)
    for index in (6, 7):
        blob = net.dense(f"fc{index}", blob, 4096)
        net.relu(f"relu{index}", blob)
        net.dropout(f"drop{index}", blob, 0.5)
    blob = net.dense(classifier, blob, classes or default_classes)
    return net.finish(net.softmax("prob", blob) if with_softmax else blob)


ALEXNET_ARCH = Architecture(card=ALEXNET_CARD, graph=functools.partial(alexnet_graph, "alexnet"), classes=1000,
                            features="pool5")
CAFFENET_ARCH = Architecture(card=CAFFENET_CARD, graph=functools.partial(alexnet_graph, "caffenet"), classes=1000,
                             features="pool5")
RCNN_ARCH = Architecture(card=RCNN_CARD, graph=functools.partial(alexnet_graph, "rcnn"), classes=200,
                         features="pool5", activation=None)


@register_model(ALEXNET_CARD)
def AlexNet(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
            classifier_activation="softmax", include_preprocessing=True, name="alexnet", fold_batchnorm=True):
    """AlexNet (Krizhevsky et al. 2012) as BVLC's Caffe replication: 227x227 input, grouped convolutions, LRN
    before pooling, 1000 ImageNet classes; the top is fc6, fc7, ``fc8`` and ``prob``, the features end at
    ``pool5``. Weights: ``'imagenet'`` (= ``'caffe'``, bvlc_alexnet), ``'matconvnet'``, ``'matconvnet-trained'``,
    None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(ALEXNET_ARCH, **locals())


@register_model(CAFFENET_CARD)
def CaffeNet(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", include_preprocessing=True, name="caffenet", fold_batchnorm=True):
    """CaffeNet (bvlc_reference_caffenet): AlexNet with pooling before LRN, 227x227 input, 1000 ImageNet
    classes; the top is fc6, fc7, ``fc8`` and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'``
    (= ``'caffe'``), ``'matconvnet'``, None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(CAFFENET_ARCH, **locals())


@register_model(RCNN_CARD)
def RCNNILSVRC13(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                 classes=200, classifier_activation=None, include_preprocessing=True, name="rcnn_ilsvrc13",
                 fold_batchnorm=True):
    """R-CNN's ILSVRC-2013 detector (Girshick et al. 2014): CaffeNet scoring warped 227x227 region proposals for
    200 detection classes with the linear SVMs as layer ``fc-rcnn`` (no softmax by default); the features end
    at ``pool5``. Weights: ``'imagenet'`` (= ``'caffe'``), None or a file. Arguments: see
    :mod:`keras_zoo.models`."""
    return zoo_model(RCNN_ARCH, **locals())


preprocess_input, decode_predictions = family_utils(ALEXNET_CARD)
