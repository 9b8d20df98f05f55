"""keras.applications-style builders of the zoo's networks, written as neutral graphs with the original layer
names (so that every weight source maps by name) and built by :func:`keras_zoo.builder.build_model`.

    >>> model = keras_zoo.models.VGG16(weights="imagenet")            # RGB 0..255 in, probabilities out
    >>> scores = keras_zoo.models.FCN8s(weights=None)(images)         # (N, H, W, 21) for any H, W
    >>> faces = keras_zoo.models.VGGFaceDescriptor()(crops)           # (N, 4096), unit length
    >>> model = keras_zoo.models.get_model("resnet-50", weights=None)  # by card name or alias

Every builder takes the arguments of keras.applications:

    include_top: whether to include the classifier; False ends the network at its features layer (named in
        the builder's docstring).
    weights: ``'imagenet'``: the card's default weight source; or another weight source of the model's card
        (``keras_zoo.get_card(name).weights``: 'caffe', 'matconvnet'...); or ``None`` or ``'none'`` (random
        initialization);
        or the path to a weights file (``.caffemodel``, ``.mat``, ``.weights.h5``, ``.keras``). Original files
        are fetched, verified and converted once (see :mod:`keras_zoo.weights`).
    input_tensor: optional Keras tensor (e.g. output of ``keras.Input()``) to use as the model's input.
    input_shape: optional ``(height, width, 3)``; fully convolutional networks take any size; the others need
        the original size with ``include_top=True`` and pretrained weights (``include_top=False`` for others).
    pooling: with ``include_top=False``: ``None`` (the 4-D features), ``'avg'`` or ``'max'`` (global pooling to
        a 2-D output).
    classes: number of classes with ``include_top=True``; another number than the original needs
        ``weights=None`` or a weights file (whose class-dependent layers are then left randomly initialized).
    classifier_activation: ``'softmax'`` or ``None`` (the scores before the softmax) on the top layer.
    include_preprocessing: ``True``: the model takes RGB images 0..255 and does the weight source's preprocessing
        inside (channel order, mean, scale); ``False``: it takes exactly what the original network took (for
        Caffe weights: BGR, mean subtracted).
    name: the model's name.
    fold_batchnorm: ``True`` (the default): an inference model, each batch norm and per-channel Scale folded
        into the convolution before it (same outputs up to float rounding, and faster: ResNet-50 runs 1.1-1.2x
        keras.applications' speed; the convolutions keep their original names, the BatchNorm and Scale layers
        are gone); ``False``: the original layers, for fine-tuning with batch norms or inspecting them.

and returns a ``keras.Model``. Family modules (``vgg``, ``vgg_cnn``, ``alexnet``, ``googlenet``, ``resnet``,
``fcn``) also have ``preprocess_input(x, model=..., weights='imagenet')`` and
``decode_predictions(preds, top=5, model=...)`` for models built with ``include_preprocessing=False``;
``*_graph`` functions give the architectures as graphs.
"""

from keras_zoo.models.alexnet import AlexNet, CaffeNet, RCNNILSVRC13, alexnet_graph
from keras_zoo.models.fcn import FCN8s, FCN16s, FCN32s, fcn_graph
from keras_zoo.models.googlenet import GoogLeNet, googlenet_graph
from keras_zoo.models.registry import get_model
from keras_zoo.models.resnet import ResNet50, ResNet101, ResNet152, resnet_graph
from keras_zoo.models.vgg import VGG16, VGG19, VGGFace, VGGFaceDescriptor, vgg_graph
from keras_zoo.models.vgg_cnn import VGGF, VGGM, VGGM128, VGGM1024, VGGM2048, VGGS, vgg_cnn_graph

__all__ = [
    "VGG16", "VGG19", "VGGF", "VGGM", "VGGS", "VGGM128", "VGGM1024", "VGGM2048", "VGGFace", "VGGFaceDescriptor",
    "AlexNet", "CaffeNet", "RCNNILSVRC13", "GoogLeNet", "ResNet50", "ResNet101", "ResNet152", "FCN32s", "FCN16s",
    "FCN8s", "alexnet_graph", "fcn_graph", "googlenet_graph", "resnet_graph", "vgg_graph", "vgg_cnn_graph",
    "get_model",
]
