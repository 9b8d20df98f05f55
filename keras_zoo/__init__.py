"""keras_zoo: the classic Caffe and MatConvNet model zoos as Keras 3 models, with the original numbers.

    >>> import keras_zoo
    >>> model = keras_zoo.VGG16(weights="imagenet")          # original weights, verified and cached
    >>> model = keras_zoo.from_caffe("deploy.prototxt", "net.caffemodel")   # any Caffe model

Importing the package registers its custom layers, so ``keras.saving.load_model`` reads the ``.keras`` files
it writes in safe mode.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter; set it to 0 to see it

from converters.errors import ConversionError
from keras_zoo import layers  # noqa: F401  (registers the serializable custom layers)
from keras_zoo.version import __version__

# Public names, loaded from their module on first use so that `import keras_zoo` stays light.
_EXPORTS = {
    "keras_zoo.builder": ["build_model", "port_weights"],
    "keras_zoo.convert": ["from_caffe", "from_matconvnet", "convert_caffe", "convert_matconvnet"],
    "keras_zoo.folding": ["fold_batchnorm"],
    "keras_zoo.cards": ["list_models", "get_card"],
    "keras_zoo.models": [
        "get_model",
        "VGG16", "VGG19", "VGGF", "VGGM", "VGGS", "VGGM128", "VGGM1024", "VGGM2048", "VGGFace", "AlexNet",
        "CaffeNet", "RCNNILSVRC13", "GoogLeNet", "ResNet50", "ResNet101", "ResNet152", "FCN32s", "FCN16s",
        "FCN8s", "VGGFaceDescriptor",
    ],
    "keras_zoo.caffe_zoo": ["from_caffe_zoo"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = ["ConversionError", "__version__", *_WHERE]


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
