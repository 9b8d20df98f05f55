"""Convert any Caffe or MatConvNet model: foreign files -> neutral Graph -> Keras model -> ``.keras`` file."""

import logging
import pathlib

from converters.caffe import read_caffe
from converters.errors import ConversionError
from converters.matconvnet import read_matconvnet
from keras_zoo import folding
from keras_zoo.builder import build_model
from keras_zoo.files import atomic_output
from keras_zoo.preprocessing import Preprocessing

log = logging.getLogger(__name__)


def from_caffe(prototxt, caffemodel=None, *, input_shape=None, preprocessing=None, name=None,
               fold_batchnorm=False, allow_unknown_fields=False):
    """A Keras model computing what Caffe computes for ``prototxt`` with the weights of ``caffemodel``.

    ``input_shape`` is (H, W) (or (C, H, W)) for nets whose input size the prototxt does not fix (train/val
    nets with data layers). ``preprocessing`` is a :class:`~keras_zoo.preprocessing.Preprocessing` (or None:
    the model takes exactly what the Caffe net took, NHWC). ``fold_batchnorm`` folds batch norms and
    per-channel Scale layers into the convolution before them (:func:`keras_zoo.fold_batchnorm`). A prototxt field
    Caffe does not know (a misspelling) is a ConversionError; ``allow_unknown_fields=True`` makes it one warning
    per field, the field skipped.
    """
    graph = read_caffe(prototxt, caffemodel, input_shape=input_shape, allow_unknown_fields=allow_unknown_fields)
    model = build_model(graph, preprocessing=preprocessing, name=name)
    return folding.fold_batchnorm(model) if fold_batchnorm else model


def from_matconvnet(path, *, input_shape=None, normalize=False, name=None, fold_batchnorm=False, outputs=None):
    """A Keras model computing what MatConvNet computes for the network in ``path`` (SimpleNN or DagNN).

    ``input_shape``: (H, W) or (C, H, W) of the image inputs, or ``{input name: shape}``. ``outputs``: the
    variables the model returns, in that order (default: the net's outputs without its training losses); only the
    layers they need are converted, so a custom loss or metric class off their path does not matter. The inputs
    are the variables those layers read that no layer writes, in the order first read; inputs and outputs are named
    after the variables. ``normalize=True`` bakes the file's ``meta.normalization`` (average image or pixel) into
    the model (on the first input); ``fold_batchnorm`` as in :func:`from_caffe`.
    """
    graph = read_matconvnet(path, input_shape=input_shape, outputs=outputs)
    preprocessing = Preprocessing.from_normalization(graph.meta.get("normalization")) if normalize else None
    model = build_model(graph, preprocessing=preprocessing, name=name)
    return folding.fold_batchnorm(model) if fold_batchnorm else model


def save_model(model, output):
    """Write ``model`` to ``output`` (.keras, or .weights.h5) atomically: a temporary name, then a rename."""
    output = pathlib.Path(output)
    weights_only = output.name.endswith(".weights.h5")
    with atomic_output(output) as tmp:
        if weights_only:
            model.save_weights(tmp, overwrite=True)
        else:
            model.save(tmp, overwrite=True)
    log.info("wrote %s (%.1f MB)", output, output.stat().st_size / 1e6)
    return output


def convert_caffe(prototxt, caffemodel, output, **kwargs):
    """Convert a Caffe model to a ``.keras`` file; keyword arguments as :func:`from_caffe`."""
    return save_model(from_caffe(prototxt, caffemodel, **kwargs), output)


def convert_matconvnet(path, output, **kwargs):
    """Convert a MatConvNet ``.mat`` to a ``.keras`` file; keyword arguments as :func:`from_matconvnet`."""
    return save_model(from_matconvnet(path, **kwargs), output)


__all__ = ["ConversionError", "from_caffe", "from_matconvnet", "convert_caffe", "convert_matconvnet",
           "save_model"]
