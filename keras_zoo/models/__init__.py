"""keras.applications-style builders of the zoo's networks, written as neutral graphs with the original layer
names (so that every weight source maps by name) and built by :func:`keras_zoo.builder.build_model`.

    >>> model = keras_zoo.models.VGG16(weights="imagenet")            # RGB 0..255 in, probabilities out
    >>> scores = keras_zoo.models.FCN8s(weights=None)(images)         # (N, H, W, 21) for any H, W
    >>> faces = keras_zoo.models.VGGFaceDescriptor()(crops)           # (N, 4096), unit length

Family modules (``vgg``, ``vgg_cnn``, ``alexnet``, ``googlenet``, ``resnet``, ``fcn``) also have
``preprocess_input(x, model=..., weights='imagenet')`` and ``decode_predictions(preds, top=5, model=...)``
for models built with ``include_preprocessing=False``; ``*_graph`` functions give the architectures as graphs.
"""

from keras_zoo.models.alexnet import AlexNet, CaffeNet, RCNNILSVRC13, alexnet_graph
from keras_zoo.models.fcn import FCN8s, FCN16s, FCN32s, fcn_graph
from keras_zoo.models.googlenet import GoogLeNet, googlenet_graph
from keras_zoo.models.resnet import ResNet50, ResNet101, ResNet152, resnet_graph
from keras_zoo.models.vgg import VGG16, VGG19, VGGFace, VGGFaceDescriptor, vgg_graph
from keras_zoo.models.vgg_cnn import VGGF, VGGM, VGGM128, VGGM1024, VGGM2048, VGGS, vgg_cnn_graph

__all__ = [
    "VGG16", "VGG19", "VGGF", "VGGM", "VGGS", "VGGM128", "VGGM1024", "VGGM2048", "VGGFace", "VGGFaceDescriptor",
    "AlexNet", "CaffeNet", "RCNNILSVRC13", "GoogLeNet", "ResNet50", "ResNet101", "ResNet152", "FCN32s", "FCN16s",
    "FCN8s", "alexnet_graph", "fcn_graph", "googlenet_graph", "resnet_graph", "vgg_graph", "vgg_cnn_graph",
]
