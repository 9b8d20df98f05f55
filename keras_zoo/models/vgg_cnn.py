"""The VGG "Return of the Devil in the Details" nets (Chatfield et al. 2014): CNN-F, CNN-M (and its
M-2048/1024/128 low-dimensional fc7 variants) and CNN-S, as their Caffe releases define them."""

import functools

from keras_zoo.cards.vgg_cnn import VGGF_CARD, VGGM1024_CARD, VGGM128_CARD, VGGM2048_CARD, VGGM_CARD, VGGS_CARD
from keras_zoo.models.architecture import Architecture, family_utils, zoo_model
from keras_zoo.models.graph_writer import GraphWriter
from keras_zoo.models.registry import register_model

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


def _architecture(variant, card):
    return Architecture(card=card, graph=functools.partial(vgg_cnn_graph, variant), classes=1000, features="pool5")


VGGF_ARCH = _architecture("f", VGGF_CARD)
VGGM_ARCH = _architecture("m", VGGM_CARD)
VGGS_ARCH = _architecture("s", VGGS_CARD)
VGGM128_ARCH = _architecture("m-128", VGGM128_CARD)
VGGM1024_ARCH = _architecture("m-1024", VGGM1024_CARD)
VGGM2048_ARCH = _architecture("m-2048", VGGM2048_CARD)


@register_model(VGGF_CARD)
def VGGF(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
         classes=1000, classifier_activation="softmax", include_preprocessing=True, name="vgg_cnn_f",
         fold_batchnorm=True):
    """VGG CNN-F, fast (Chatfield et al. 2014): 224x224 input, 1000 ImageNet classes in Caffe's order; the top
    is fc6, fc7, ``fc8`` and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'matconvnet'``,
    MatConvNet's import), ``'matconvnet-trained'``, None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(VGGF_ARCH, **locals())


@register_model(VGGM_CARD)
def VGGM(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
         classes=1000, classifier_activation="softmax", include_preprocessing=True, name="vgg_cnn_m",
         fold_batchnorm=True):
    """VGG CNN-M, medium (Chatfield et al. 2014): 224x224 input, 1000 ImageNet classes; the top is fc6, fc7,
    ``fc8`` and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'matconvnet'``, MatConvNet's
    import), ``'matconvnet-trained'``, None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(VGGM_ARCH, **locals())


@register_model(VGGS_CARD)
def VGGS(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
         classes=1000, classifier_activation="softmax", include_preprocessing=True, name="vgg_cnn_s",
         fold_batchnorm=True):
    """VGG CNN-S, slow (Chatfield et al. 2014): 224x224 input, 1000 ImageNet classes; the top is fc6, fc7,
    ``fc8`` and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'matconvnet'``, MatConvNet's
    import), ``'matconvnet-trained'``, None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(VGGS_ARCH, **locals())


@register_model(VGGM128_CARD)
def VGGM128(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", include_preprocessing=True, name="vgg_cnn_m_128",
            fold_batchnorm=True):
    """VGG CNN-M with a 128-D fc7 (Chatfield et al. 2014): 224x224 input, 1000 ImageNet classes; the top is
    fc6, fc7, ``fc8`` and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'matconvnet'``,
    MatConvNet's import), None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(VGGM128_ARCH, **locals())


@register_model(VGGM1024_CARD)
def VGGM1024(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", include_preprocessing=True, name="vgg_cnn_m_1024",
             fold_batchnorm=True):
    """VGG CNN-M with a 1024-D fc7 (Chatfield et al. 2014): 224x224 input, 1000 ImageNet classes; the top is
    fc6, fc7, ``fc8`` and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'matconvnet'``,
    MatConvNet's import), None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(VGGM1024_ARCH, **locals())


@register_model(VGGM2048_CARD)
def VGGM2048(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", include_preprocessing=True, name="vgg_cnn_m_2048",
             fold_batchnorm=True):
    """VGG CNN-M with a 2048-D fc7 (Chatfield et al. 2014): 224x224 input, 1000 ImageNet classes; the top is
    fc6, fc7, ``fc8`` and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'matconvnet'``,
    MatConvNet's import), None or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(VGGM2048_ARCH, **locals())


preprocess_input, decode_predictions = family_utils(VGGM_CARD)
