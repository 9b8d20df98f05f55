"""VGG very deep nets (Simonyan & Zisserman 2014: VGG-16, VGG-19) and VGG-Face (Parkhi et al. 2015)."""

import functools

import keras

from keras_zoo.cards.vgg import VGG16_CARD, VGG19_CARD, VGGFACE_CARD
from keras_zoo.models.architecture import Architecture, family_utils, zoo_model
from keras_zoo.models.graph_writer import GraphWriter
from keras_zoo.models.registry import register_model

WIDTHS = (64, 128, 256, 512, 512)
CONVS_PER_STAGE = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def vgg_body(net, depth, first_pad=1):
    """The conv1_1 ... pool5 stages (3x3 convolutions, 2x2 max pooling); returns 'pool5'."""
    blob = "data"
    for stage, (width, convs) in enumerate(zip(WIDTHS, CONVS_PER_STAGE[depth]), start=1):
        for index in range(1, convs + 1):
            pad = first_pad if (stage, index) == (1, 1) else 1
            blob = net.conv(f"conv{stage}_{index}", blob, width, 3, pad=pad)
            net.relu(f"relu{stage}_{index}", blob)
        blob = net.pool(f"pool{stage}", blob, "max", 2, 2)
    return blob


def vgg_graph(depth=16, classes=1000, name=None):
    """VGG-16 or VGG-19 as in the VGG team's deploy prototxts (VGG-Face is VGG-16 with 2622 classes)."""
    net = GraphWriter(name or f"VGG_ILSVRC_{depth}_layers", input_shape=(3, 224, 224))
    blob = vgg_body(net, depth)
    for index, units in ((6, 4096), (7, 4096)):
        blob = net.dense(f"fc{index}", blob, units)
        net.relu(f"relu{index}", blob)
        net.dropout(f"drop{index}", blob, 0.5)
    blob = net.dense("fc8", blob, classes)
    return net.finish(net.softmax("prob", blob))


VGG16_ARCH = Architecture(card=VGG16_CARD, graph=functools.partial(vgg_graph, 16), classes=1000, features="pool5")
VGG19_ARCH = Architecture(card=VGG19_CARD, graph=functools.partial(vgg_graph, 19), classes=1000, features="pool5")
VGG_FACE_ARCH = Architecture(card=VGGFACE_CARD, graph=functools.partial(vgg_graph, 16, name="VGG_FACE_16_layers"),
                             classes=2622, features="pool5")


@register_model(VGG16_CARD)
def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", include_preprocessing=True, name="vgg16", fold_batchnorm=True):
    """VGG-16 (Simonyan & Zisserman 2014): 224x224 input, 1000 ImageNet classes; the top is fc6, fc7, ``fc8``
    and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'caffe'``, the VGG team's
    caffemodel), ``'matconvnet'``, ``'matconvnet-trained'``, None or a file. Arguments: see
    :mod:`keras_zoo.models`."""
    return zoo_model(VGG16_ARCH, **locals())


@register_model(VGG19_CARD)
def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", include_preprocessing=True, name="vgg19", fold_batchnorm=True):
    """VGG-19 (Simonyan & Zisserman 2014): 224x224 input, 1000 ImageNet classes; the top is fc6, fc7, ``fc8``
    and ``prob``, the features end at ``pool5``. Weights: ``'imagenet'`` (= ``'caffe'``), ``'matconvnet'``, None
    or a file. Arguments: see :mod:`keras_zoo.models`."""
    return zoo_model(VGG19_ARCH, **locals())


@register_model(VGGFACE_CARD)
def VGGFace(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=2622,
            classifier_activation="softmax", include_preprocessing=True, name="vggface", fold_batchnorm=True):
    """VGG-Face (Parkhi et al. 2015): VGG-16 scoring 2622 identities (``fc8``) on 224x224 face crops.
    Weights: ``'imagenet'`` (= ``'matconvnet'``, the VGG team's .mat), ``'caffe'``, None or a file. Arguments:
    see :mod:`keras_zoo.models`. For face verification use :func:`VGGFaceDescriptor`."""
    return zoo_model(VGG_FACE_ARCH, **locals())


def VGGFaceDescriptor(weights="imagenet", input_tensor=None, input_shape=None, include_preprocessing=True,
                      name="vggface_descriptor"):
    """VGG-Face's face descriptor for verification: the 4096-D ``fc7`` output (after ``relu7``, as Caffe's
    in-place blob holds it), L2-normalised; compare two faces by the Euclidean distance (or dot product) of
    their descriptors. Arguments as :func:`VGGFace` (the input keeps the original 224x224 size)."""
    model = zoo_model(VGG_FACE_ARCH, weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                      include_preprocessing=include_preprocessing, name=name, head="relu7")
    descriptor = keras.layers.UnitNormalization(axis=-1, name="fc7_l2norm")(model.outputs[0])
    return keras.Model(model.inputs[0], descriptor, name=name)


preprocess_input, decode_predictions = family_utils(VGG16_CARD)
