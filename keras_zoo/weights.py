"""Weights for the zoo's builders: a weight source fetched and converted once into the cache, then loaded by
layer name; a weights file given by path loaded directly; the mean a source subtracts.

Converting a source needs the builder's model (to learn its layer names and shapes): the caller passes
``reference``, a callable returning that model for the card (untrained, without preprocessing); it is called
only when a source is not cached yet. Nothing here builds models or knows the builders.
"""

import logging
import os
import pathlib
import warnings
import zipfile

import keras
import numpy as np

from converters.caffe import read_mean_file
from converters.errors import ConversionError
from keras_zoo import cache
from keras_zoo.cards import MEANS, MeanRef, PortRules
from keras_zoo.downloads import downloads_dir, fetch, file_lock
from keras_zoo.porting import file_format, graph_meta, port_by_rules, read_graph, unloaded_layers

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".caffemodel", ".mat", ".weights.h5", ".keras")
# what Keras' warning says where a load it completes leaves layers as built (a file without their group)
KERAS_KEPT_INITIAL = "freshly-initialized weights"


def untrained(weights):
    """Whether a ``weights`` argument asks for no trained weights: None, or 'none' in any case (how a command
    line spells None)."""
    return weights is None or (isinstance(weights, str) and weights.strip().lower() == "none")


def names_a_file(weights):
    """Whether a ``weights`` argument names a file rather than a weight source: a path object, or a string with
    a suffix or a directory separator (source names have neither)."""
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (os.sep in weights or bool(pathlib.PurePath(weights).suffix))


def source_for_file(card, path):
    """The card's weight source that describes a weights file: the one of its file name, else the card's
    default source if it has the file's format, else the first of that format; None if no source has it."""
    path = pathlib.Path(path)
    same_format = [source for source in card.weights if source.format == file_format(path)]
    default = next((source for source in card.weights if source.default), None)
    return next((source for source in same_format if source.file.filename == path.name),
                default if default in same_format else (same_format[0] if same_format else None))


def convert_source(card, source, *, reference, progress=True):
    """Fetch and convert ``source`` of ``card`` once into the cache (``reference()``: the builder's model to
    convert into); returns the cache path."""
    path = cache.cache_path(card, source)
    with file_lock(path):
        if path.exists():
            return path
        original = fetch(source.file, progress=progress)
        graph = read_graph(original, source.format)
        log.info("converting %s for %s (once; cached as %s)", original.name, card.name, path)
        model = reference()
        names = port_by_rules(model, graph, source.port)
        _refuse_unloaded(model, names, (), original)
        meta = graph_meta(graph)
        cache.save_by_name(model, path, names, meta=meta)
        if "mean" in meta:
            cache.save_mean(source, meta["mean"])
    return path


def _load_file(model, card, path, skip):
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise ConversionError("no such weights file", path=path)
    name = path.name.lower()
    if name.endswith((".caffemodel", ".mat")):
        source = source_for_file(card, path)
        loaded = port_by_rules(model, read_graph(path), source.port if source else PortRules(), skip)
        _refuse_unloaded(model, loaded, skip, path)
    elif name.endswith(".weights.h5") and cache.is_by_name_file(path):
        cache.load_by_name(model, path, skip=skip)
    elif name.endswith((".weights.h5", ".keras")):
        load_keras_file(path, into=model)
    else:
        raise ConversionError("weights must be a .caffemodel, .mat, .weights.h5 or .keras file", path=path)


def load_keras_file(path, *, into=None):
    """The model of the ``.keras`` file ``path``, or ``into`` given the weights of a ``.keras`` / ``.weights.h5``
    file. Every failure is one ConversionError naming the file, and so is a load Keras completes with layers left
    at their initial values (a file without their weights' group: Keras only warns, and its model computes
    something else)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConversionError("no such Keras file", path=path)
    if path.name.lower().endswith(".keras") and not zipfile.is_zipfile(path):
        raise ConversionError("not a .keras archive: no complete zip file (truncated, or another format)", path=path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if into is None:
                model = keras.saving.load_model(path)
            else:
                model = into
                into.load_weights(path)
        except (ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as error:
            target = f"into {into.name}" if into is not None else "the model"
            raise ConversionError(f"cannot load {target}: {error}", path=path) from None
    kept = [str(warning.message) for warning in caught if KERAS_KEPT_INITIAL in str(warning.message)]
    if kept:
        raise ConversionError(f"the file leaves layers of {model.name} at their initial values (Keras: "
                              f"{kept[0]})", path=path)
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return model


def _refuse_unloaded(model, loaded, skip, path):
    """ConversionError naming the model's weighted layers the file gave nothing (files are read by layer name,
    as Caffe reads them): they would keep their initial values."""
    unloaded = unloaded_layers(model, loaded, skip)
    if unloaded:
        raise ConversionError(f"the file has no weights for the model's layer(s) {', '.join(unloaded)} (layers are "
                              "matched by name): it holds another network", path=path)


def load_weights(model, card, weights, *, reference=None, skip=(), progress=True):
    """Give ``model`` (a builder's model for ``card``) the weights ``weights`` names; returns the source used.

    ``weights``: None or 'none' (nothing), 'imagenet' (the card's default source), a source name ('caffe',
    'matconvnet'...), or a path to a ``.caffemodel``, ``.mat``, ``.weights.h5`` or ``.keras`` file. A source is
    fetched and converted on first use (into ``reference()``, see the module docstring), then read from the
    cache by layer name, so models without the top, with another input size or other classes load the layers
    they have; ``skip`` names layers to leave alone. Returns the WeightSource, or None for None and for paths.
    """
    if untrained(weights):
        return None
    if names_a_file(weights):
        _load_file(model, card, weights, set(skip))
        return None
    source = card.source(weights)
    if reference is None:
        raise ValueError(f"{card.name}: converting weight source {source.name!r} needs the reference model")
    cache.load_by_name(model, convert_source(card, source, reference=reference, progress=progress), skip=set(skip))
    return source


def resolve_mean(source, *, allow_fetch=True, progress=True):
    """The mean a source's input spec subtracts, as float32: (C,) per channel, or (C, H, W) an image.

    A :class:`~keras_zoo.cards.records.MeanRef` fetches that mean file (:data:`keras_zoo.cards.MEANS`);
    ``'meta'`` reads the ``meta.normalization.averageImage`` of the source's own .mat (once; then cached).
    Returns None where ``allow_fetch`` is False and the file is not downloaded yet.
    """
    mean = source.input.mean
    if mean is None or isinstance(mean, tuple):
        return None if mean is None else np.asarray(mean, dtype=np.float32)
    if isinstance(mean, MeanRef):
        file = MEANS[mean.id].file
        if not allow_fetch and not (downloads_dir() / file.filename).exists():
            return None
        return np.asarray(read_mean_file(fetch(file, progress=progress)), dtype=np.float32)
    cached = cache.cached_mean(source)
    if cached is None:
        if not allow_fetch and not (downloads_dir() / source.file.filename).exists():
            return None
        meta = graph_meta(read_graph(fetch(source.file, progress=progress), source.format))
        if "mean" not in meta:
            raise ConversionError("meta.normalization.averageImage is absent", path=source.file.filename)
        cache.save_mean(source, meta["mean"])
        cached = cache.cached_mean(source)
    return cached
