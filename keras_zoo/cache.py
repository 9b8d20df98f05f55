"""Converted weights cached by layer name, with what the original file said of itself (its mean, its classes).

Where things live (``KERAS_ZOO_HOME``, see :func:`keras_zoo.downloads.home`)::

    weights/<model>-<source>.h5           converted Keras weights, one group per layer name (+ ``meta/``)
    means/<original file name>.npy        means read from MatConvNet files (``meta.normalization``)

Every file is written under a temporary name and renamed into place.
"""

import logging
import pathlib

import h5py
import numpy as np

from converters.errors import ConversionError
from keras_zoo.downloads import home
from keras_zoo.files import atomic_output

log = logging.getLogger(__name__)

CACHE_FORMAT = "keras_zoo/by-layer-name/1"


def cache_path(card, source):
    """Where the converted weights of ``source`` of ``card`` are cached."""
    return home() / "weights" / f"{card.name}-{source.name}.h5"


def save_by_name(model, path, names=None, meta=None):
    """Write the weights of ``model``'s layers (those in ``names``, default all) to ``path`` by layer name;
    ``meta``: ``{key: array}`` kept beside them (object arrays as strings)."""
    with atomic_output(pathlib.Path(path)) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = CACHE_FORMAT
        layers = f.create_group("layers")
        for layer in model.layers:
            if not layer.weights or (names is not None and layer.name not in names):
                continue
            group = layers.create_group(layer.name)
            for index, value in enumerate(layer.get_weights()):
                group.create_dataset(str(index), data=value)
        for key, value in (meta or {}).items():
            if getattr(value, "dtype", None) == object:
                f.create_dataset(f"meta/{key}", data=value, dtype=h5py.string_dtype())
            else:
                f.create_dataset(f"meta/{key}", data=value)


def is_by_name_file(path):
    """Whether ``path`` is a file :func:`save_by_name` wrote."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == CACHE_FORMAT
    except OSError:
        return False


def load_by_name(model, path, *, skip=()):
    """Load the weights saved by :func:`save_by_name` into the layers of ``model`` with the same names.

    Layers in ``skip`` or absent from the file keep their values (warned); a shape mismatch is an error
    naming the layer. Returns the names of the layers loaded.
    """
    loaded, missing = [], []
    with h5py.File(path, "r") as f:
        layers = f["layers"]
        for layer in model.layers:
            if not layer.weights or layer.name in skip:
                continue
            if layer.name not in layers:
                if any(weight.trainable for weight in layer.weights):
                    missing.append(layer.name)
                continue
            group = layers[layer.name]
            values = [group[str(index)][()] for index in range(len(group))]
            shapes = [tuple(weight.shape) for weight in layer.weights]
            if [value.shape for value in values] != shapes:
                raise ConversionError(
                    f"weights have shapes {[value.shape for value in values]}, the model's layer wants {shapes} "
                    "(pass skip= for layers you change, e.g. the classifier)", path=path, layer=layer.name)
            layer.set_weights(values)
            loaded.append(layer.name)
    if missing:
        log.warning("%s: no weights for layer(s) %s; they keep their initial values", path, ", ".join(missing))
    return loaded


def cached_meta(card, source):
    """``{'mean', 'class_names', 'class_descriptions'}`` (where present) of a converted source's cache."""
    path = cache_path(card, source)
    if not path.exists():
        return {}
    with h5py.File(path, "r") as f:
        group = f.get("meta", {})
        return {key: group[key][()] if group[key].dtype.kind != "O" else
                [item.decode() if isinstance(item, bytes) else str(item) for item in group[key][()]]
                for key in group}


def _mean_path(source):
    return home() / "means" / f"{source.file.filename}.npy"


def save_mean(source, mean):
    """Cache the mean ((C,) or (C, H, W), the network's channel order) of a source whose mean is 'meta'."""
    with atomic_output(_mean_path(source)) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(mean, dtype=np.float32))


def cached_mean(source):
    """The mean :func:`save_mean` cached for ``source``, or None."""
    path = _mean_path(source)
    return np.load(path) if path.exists() else None
