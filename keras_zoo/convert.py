"""Convert any Caffe or MatConvNet model: foreign files -> neutral Graph -> Keras model -> ``.keras`` file."""

import datetime
import json
import logging
import pathlib
import re

import h5py
import keras
import numpy as np

from converters.caffe import read_caffe
from converters.errors import ConversionError
from converters.matconvnet import read_matconvnet
from keras_zoo import folding
from keras_zoo.builder import build_model
from keras_zoo.files import atomic_output, write_stored_zip
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


def from_matconvnet(path, *, input_shape=None, normalize=False, scale=1.0, name=None, fold_batchnorm=False,
                    outputs=None):
    """A Keras model computing what MatConvNet computes for the network in ``path`` (SimpleNN or DagNN).

    ``input_shape``: (H, W) or (C, H, W) of the image inputs, or ``{input name: shape}``. ``outputs``: the
    variables the model returns, in that order (default: the net's outputs without its training losses); only the
    layers they need are converted, so a custom loss or metric class off their path does not matter. The inputs
    are the variables those layers read that no layer writes, in the order first read; inputs and outputs are named
    after the variables. ``normalize=True`` bakes the file's ``meta.normalization`` (average image or pixel) into
    the model (on the first input); ``scale`` multiplies the first input after that (1/255: a net of 0..1 images
    then takes 0..255, as the exporters' photos are); ``fold_batchnorm`` as in :func:`from_caffe`.
    """
    graph = read_matconvnet(path, input_shape=input_shape, outputs=outputs)
    preprocessing = None
    if normalize or scale != 1.0:
        preprocessing = Preprocessing.from_normalization(graph.meta.get("normalization") if normalize else None,
                                                         scale=scale)
    model = build_model(graph, preprocessing=preprocessing, name=name)
    return folding.fold_batchnorm(model) if fold_batchnorm else model


def save_model(model, output):
    """Write ``model`` to ``output`` (.keras, or .weights.h5) atomically: a temporary name, then a rename.

    A functional or sequential model whose variables are all its layers' own (no optimizer, assets or nested
    layers: every converted model) is written as Keras writes it, the same archive members and weights layout,
    with each weight written once, straight from its variable into the archive; any other goes through
    ``model.save``."""
    output = pathlib.Path(output)
    with atomic_output(output) as tmp:
        if output.name.endswith(".weights.h5"):
            model.save_weights(tmp, overwrite=True)
        elif output.suffix == ".keras" and (variables := _layer_variables(model)) is not None:
            _write_keras(model, variables, tmp)
        else:
            model.save(tmp, overwrite=True)
    log.info("wrote %s (%.1f MB)", output, output.stat().st_size / 1e6)
    return output


def _layer_variables(model):
    """``{(group, layer name): {'0': variable, ...}}`` for every layer, in Keras's ``.keras`` weights layout (groups
    ``layers/<class name in snake case, numbered from its second>``, each layer's ``save_own_variables``), or None
    where Keras would save more than that (an optimizer, assets, variables of nested layers or seed generators) or
    other than float32 arrays."""
    if type(model).__name__ not in ("Functional", "Sequential") or getattr(model, "compiled", True):
        return None
    layers, used, count = {}, {}, 0
    for layer in model.layers:
        if hasattr(layer, "save_assets"):
            return None
        name = re.sub(r"\W+", "", type(layer).__name__)  # as keras.src.utils.naming.to_snake_case
        name = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)).lower()
        used[name] = used.get(name, -1) + 1
        store = layers[(f"layers/{name}_{used[name]}" if used[name] else f"layers/{name}", layer.name)] = {}
        layer.save_own_variables(store)
        count += len(store)
    kinds = {keras.backend.standardize_dtype(value.dtype) for store in layers.values() for value in store.values()}
    if count != len(model.variables) or not kinds <= {"float32"}:
        return None
    return layers


def _host_array(variable):
    """A variable's values as a numpy array, sharing the variable's memory where the backend lets it (TensorFlow
    and JAX on the CPU)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # only with the TensorFlow backend

        return np.asarray(tf.convert_to_tensor(variable.value))
    return np.asarray(variable.value) if backend == "jax" else keras.ops.convert_to_numpy(variable)


def _write_keras(model, variables, path):
    """Write ``model`` as a ``.keras`` archive (metadata.json, config.json, model.weights.h5, stored) to ``path``,
    the weights (``variables``, from :func:`_layer_variables`) written by h5py into the archive in place."""
    metadata = {"keras_version": keras.version(), "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    members = {"metadata.json": json.dumps(metadata).encode(),
               "config.json": json.dumps(keras.saving.serialize_keras_object(model)).encode()}

    def write_weights(handle):
        with h5py.File(handle, "w") as weights:
            weights.create_group("vars").attrs["name"] = model.name
            for (path, name), store in variables.items():
                group = weights.create_group(f"{path}/vars")
                group.attrs["name"] = name
                for key, variable in store.items():
                    group[key] = _host_array(variable)

    write_stored_zip(path, members, "model.weights.h5", write_weights)


def convert_caffe(prototxt, caffemodel, output, **kwargs):
    """Convert a Caffe model to a ``.keras`` file; keyword arguments as :func:`from_caffe`."""
    return save_model(from_caffe(prototxt, caffemodel, **kwargs), output)


def convert_matconvnet(path, output, **kwargs):
    """Convert a MatConvNet ``.mat`` to a ``.keras`` file; keyword arguments as :func:`from_matconvnet`."""
    return save_model(from_matconvnet(path, **kwargs), output)


__all__ = ["ConversionError", "from_caffe", "from_matconvnet", "convert_caffe", "convert_matconvnet",
           "save_model"]
