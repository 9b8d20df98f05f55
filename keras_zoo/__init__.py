"""keras_zoo: the classic Caffe and MatConvNet model zoos as Keras 3 models, with the original numbers.

    >>> import keras_zoo
    >>> model = keras_zoo.VGG16(weights="imagenet")          # original weights, verified and cached
    >>> model = keras_zoo.from_caffe("deploy.prototxt", "net.caffemodel")   # any Caffe model

Importing the package imports neither Keras nor TensorFlow (``python -m keras_zoo list`` needs neither); it
registers its custom layers as soon as Keras is imported, before or after it, so that
``keras.saving.load_model`` reads the ``.keras`` files it writes in safe mode, and keeps TensorFlow's start-up
banners off stderr (``TF_CPP_MIN_LOG_LEVEL=0`` shows them): see :mod:`keras_zoo.startup`.
"""

import importlib
import importlib.util

from keras_zoo import startup

startup.install()  # the layers registered when Keras arrives; TensorFlow's start-up lines filtered

from converters.errors import ConversionError  # noqa: E402
from keras_zoo.version import __version__  # noqa: E402

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
    "keras_zoo.extensions": ["register_caffe_layer", "register_matconvnet_layer"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = ["ConversionError", "__version__", *_WHERE]


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"keras_zoo.{name}") is not None:
            return importlib.import_module(f"keras_zoo.{name}")  # a submodule: keras_zoo.layers, keras_zoo.models...
        raise AttributeError(f"module 'keras_zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
