"""GoogLeNet (Szegedy et al. 2014) as BVLC's Caffe replication (bvlc_googlenet) defines it."""

from keras_zoo.cards.googlenet import GOOGLENET_CARD
from keras_zoo.models.architecture import Architecture, family_utils, zoo_model
from keras_zoo.models.graph_writer import GraphWriter
from keras_zoo.models.registry import register_model

# module: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection); a max pooling 3x3/2 precedes 4a and 5a
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
POOL_BEFORE = {"4a": "pool3/3x3_s2", "5a": "pool4/3x3_s2"}


def _conv_relu(net, prefix, branch, bottom, filters, kernel, pad=0, stride=1):
    """Convolution '{prefix}/{branch}' and its ReLU '{prefix}/relu_{branch}' (the stride suffix dropped)."""
    blob = net.conv(f"{prefix}/{branch}", bottom, filters, kernel, stride, pad)
    net.relu(f"{prefix}/relu_{branch.removesuffix('_s2')}", blob)
    return blob


def _inception(net, module, bottom):
    prefix = f"inception_{module}"
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = INCEPTION[module]
    branch1 = _conv_relu(net, prefix, "1x1", bottom, n1x1, 1)
    reduce3 = _conv_relu(net, prefix, "3x3_reduce", bottom, n3x3_reduce, 1)
    branch3 = _conv_relu(net, prefix, "3x3", reduce3, n3x3, 3, pad=1)
    reduce5 = _conv_relu(net, prefix, "5x5_reduce", bottom, n5x5_reduce, 1)
    branch5 = _conv_relu(net, prefix, "5x5", reduce5, n5x5, 5, pad=2)
    pooled = net.pool(f"{prefix}/pool", bottom, "max", 3, 1, pad=1)
    projected = _conv_relu(net, prefix, "pool_proj", pooled, pool_proj, 1)
    return net.concat(f"{prefix}/output", [branch1, branch3, branch5, projected])


def googlenet_graph(classes=1000):
    """bvlc_googlenet's deploy net (main classifier only; the training-time auxiliary heads are absent)."""
    net = GraphWriter("GoogleNet", input_shape=(3, 224, 224))
    blob = _conv_relu(net, "conv1", "7x7_s2", "data", 64, 7, pad=3, stride=2)
    blob = net.pool("pool1/3x3_s2", blob, "max", 3, 2)
    blob = net.lrn("pool1/norm1", blob, 5, 1e-4, 0.75)
    blob = _conv_relu(net, "conv2", "3x3_reduce", blob, 64, 1)
    blob = _conv_relu(net, "conv2", "3x3", blob, 192, 3, pad=1)
    blob = net.lrn("conv2/norm2", blob, 5, 1e-4, 0.75)
    blob = net.pool("pool2/3x3_s2", blob, "max", 3, 2)
    for module in INCEPTION:
        if module in POOL_BEFORE:
            blob = net.pool(POOL_BEFORE[module], blob, "max", 3, 2)
        blob = _inception(net, module, blob)
    blob = net.pool("pool5/7x7_s1", blob, "avg", 7, 1)
    net.dropout("pool5/drop_7x7_s1", blob, 0.4)
    blob = net.dense("loss3/classifier", blob, classes)
    return net.finish(net.softmax("prob", blob))


GOOGLENET_ARCH = Architecture(card=GOOGLENET_CARD, graph=googlenet_graph, classes=1000, features="inception_5b/output")


@register_model(GOOGLENET_CARD)
def GoogLeNet(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", include_preprocessing=True, name="googlenet", fold_batchnorm=True):
    """GoogLeNet (Szegedy et al. 2014) as bvlc_googlenet: 224x224 input, 1000 ImageNet classes; the top is
    ``loss3/classifier`` and ``prob``, the features end at ``inception_5b/output``. Weights: ``'imagenet'``
    (= ``'caffe'``, bvlc_googlenet), ``'matconvnet'`` (the Princeton GoogLeNet), None or a file. Arguments: see
    :mod:`keras_zoo.models`."""
    return zoo_model(GOOGLENET_ARCH, **locals())


preprocess_input, decode_predictions = family_utils(GOOGLENET_CARD)
