"""The one helper behind every keras.applications-style builder of the zoo.

An :class:`Architecture` names the model card and a function writing the network as a neutral
:class:`~converters.graph.Graph` with the original layer names; :func:`zoo_model` adapts that graph to the
builder's arguments (include_top, pooling, classes, classifier activation, input size), builds it with
:func:`keras_zoo.builder.build_model` (preprocessing from the weight source's card) and loads the weights by
layer name with :func:`keras_zoo.weights.load_weights`.
"""

import dataclasses
import functools
import logging
import os
import pathlib
from typing import Callable

import keras
import numpy as np

from converters.graph import Node
from keras_zoo import imagenet_utils
from keras_zoo.builder import build_model, keras_name
from keras_zoo.folding import fold_batchnorm as fold_affine
from keras_zoo.preprocessing import Preprocessing
from keras_zoo.registry import get_card, get_source
from keras_zoo.weights import convert_source, load_weights, read_graph, resolve_mean, source_for_file

log = logging.getLogger(__name__)

POOLINGS = (None, "avg", "max")
ACTIVATIONS = (None, "softmax")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What a builder needs to know of one zoo network."""

    card: str                       # the registry card's name
    graph: Callable                 # graph(classes) -> Graph, original names and Caffe semantics
    classes: int                    # the class count of the original weights
    features: str                   # the last layer kept by include_top=False
    default_name: str               # the Keras model's default name
    fully_convolutional: bool = False
    activation: str = "softmax"     # what the original network ends with (None: raw scores)


def class_dependent_layers(arch, classes):
    """Layers whose configuration changes with the class count (their weights cannot be reused)."""
    original, changed = arch.graph(arch.classes), arch.graph(classes)
    return [new.name for old, new in zip(original.nodes, changed.nodes) if old.attrs != new.attrs]


def truncate(graph, last_layer):
    """``graph`` up to and including the node ``last_layer``, whose output becomes the graph's output."""
    names = [node.name for node in graph.nodes]
    if last_layer not in names:
        raise ValueError(f"{graph.name}: no layer {last_layer!r}")
    end = names.index(last_layer) + 1
    return dataclasses.replace(graph, nodes=graph.nodes[:end], outputs=[graph.nodes[end - 1].outputs[0]])


def without_layers(graph, names):
    """``graph`` without the layers ``names`` (one input, same shape out, e.g. LRN), read through: their
    readers read their input instead."""
    names = set(names)
    through = {}
    nodes = []
    for node in graph.nodes:
        inputs = [through.get(blob, blob) for blob in node.inputs]
        if node.name in names:
            if len(inputs) != 1 or len(node.outputs) != 1:
                raise ValueError(f"{graph.name}: layer {node.name!r} cannot be left out (not one input, one output)")
            through[node.outputs[0]] = inputs[0]
            continue
        nodes.append(dataclasses.replace(node, inputs=inputs))
    return dataclasses.replace(graph, nodes=nodes, outputs=[through.get(blob, blob) for blob in graph.outputs])


def _append(graph, node):
    return dataclasses.replace(graph, nodes=[*graph.nodes, node], outputs=list(node.outputs))


def set_activation(graph, activation, original):
    """End ``graph`` with ``activation`` (softmax over channels, or None: the pre-softmax scores)."""
    if activation == original:
        return graph
    if original == "softmax":  # drop the final Softmax layer
        return dataclasses.replace(graph, nodes=graph.nodes[:-1], outputs=list(graph.nodes[-1].inputs))
    return _append(graph, Node("prob", "softmax", list(graph.outputs), ["prob"], {"axis": 1}, {}, "Softmax"))


def add_global_pooling(graph, method):
    """Global ``method`` pooling then flattening: (N, C) features."""
    pooled = f"global_{method}_pool"
    graph = _append(graph, Node(pooled, "pool", list(graph.outputs), [pooled],
                                {"method": method, "kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0),
                                 "global": True, "rounding": "floor", "avg_divisor": "padded"}, {}, "Pooling"))
    return _append(graph, Node("flatten", "flatten", [pooled], ["flatten"], {"axis": 1, "end_axis": -1}, {},
                               "Flatten"))


def _is_path(weights):
    return isinstance(weights, os.PathLike) or (isinstance(weights, str) and pathlib.Path(weights).is_file())


def resolve_weights(card, weights):
    """``(source, what to load)``: the weight source describing the input the network expects, and the source
    name or file path to load (None for random weights). A file is described by the card's source of its file
    name, else of its format (the default source first)."""
    if weights is None:
        return get_source(card), None
    if _is_path(weights):
        return source_for_file(card, weights) or get_source(card), os.fspath(weights)
    if isinstance(weights, (str, os.PathLike)) and (os.sep in str(weights) or pathlib.Path(weights).suffix):
        raise ValueError(f"{card['name']}: weights file {os.fspath(weights)!r} does not exist")
    return get_source(card, weights), weights


def input_size(arch, default_hw, input_shape, input_tensor, include_top, weights):
    """(H, W) of the model's input: the original size unless asked otherwise (and allowed)."""
    if input_tensor is not None and input_shape is None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        return (None, None) if arch.fully_convolutional else default_hw
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"{arch.default_name}: input_shape must be (height, width, 3) (channels last, RGB "
                         f"or the original network's channels); got {input_shape}")
    height_width = tuple(input_shape[:2])
    fixed = include_top and not arch.fully_convolutional
    if fixed and weights is not None and height_width != tuple(default_hw):
        raise ValueError(f"{arch.default_name}: with include_top=True and pretrained weights the input must "
                         f"be the original size: input_shape should be {(*default_hw, 3)}, got {input_shape}. "
                         "Use include_top=False for other sizes.")
    if fixed and None in height_width:
        raise ValueError(f"{arch.default_name}: include_top=True needs a fixed input size, got {input_shape}")
    return height_width


def input_preprocessing(card, source, to_load):
    """The :class:`~keras_zoo.preprocessing.Preprocessing` of ``source`` with its mean resolved.

    A named source is fetched and converted first (its mean file or average image comes with it); a MatConvNet
    file given by path brings its own ``meta.normalization`` average; other means of a file's source are
    fetched. Without weights, a mean that is not cached yet is left out (with a warning), not downloaded.
    """
    spec = source["preprocessing"]
    if to_load is not None and not _is_path(to_load):
        convert_source(card, source)
    if to_load is not None and _is_path(to_load) and spec["mean"] == "meta":
        mean = ((read_graph(to_load).meta.get("normalization") or {}).get("mean")
                if str(to_load).lower().endswith(".mat") else None)
    else:
        mean = resolve_mean(source, allow_fetch=to_load is not None)
    if mean is None and spec["mean"] is not None:
        log.warning("%s: the mean of weight source %r is not available (not cached, or not in the file); the "
                    "model's preprocessing subtracts no mean", card["name"], source["name"])
    return Preprocessing.from_card({**spec, "mean": mean})


def initialize_kernels(model, layer_names=None, seed=None):
    """Glorot-uniform random kernels for the layers named, or all layers (the builder creates kernels as
    zeros, to be overwritten by weights)."""
    rng = np.random.default_rng(seed)
    wanted = None if layer_names is None else {keras_name(name) for name in layer_names}
    for layer in model.layers:
        if wanted is not None and layer.name not in wanted:
            continue
        for variable in layer.weights:
            if variable.path.rsplit("/", 1)[-1] != "kernel":
                continue
            shape = tuple(variable.shape)
            receptive_field = int(np.prod(shape[:-2]))
            limit = np.sqrt(6.0 / (receptive_field * (shape[-2] + shape[-1])))
            values = rng.random(shape, dtype=np.float32)
            values *= 2 * limit
            values -= limit
            variable.assign(values)


def attach_input(model, input_tensor, name):
    """``model`` rebuilt on ``input_tensor`` (keras.applications' ``input_tensor`` argument)."""
    if not keras.backend.is_keras_tensor(input_tensor):
        input_tensor = keras.Input(tensor=input_tensor)
    sources = keras.utils.get_source_inputs(input_tensor)
    if len(sources) == 1 and sources[0] is input_tensor:  # an Input: share the layers, keep them flat
        return keras.models.clone_model(model, input_tensors=input_tensor, clone_function=lambda layer: layer)
    return keras.Model(sources, model(input_tensor), name=name)  # an intermediate tensor: nest the model


def zoo_model(arch, *, include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
              classes=None, classifier_activation="softmax", include_preprocessing=True, name=None, head=None,
              fold_batchnorm=False):
    """Build ``arch`` keras.applications-style (see the builders' docstring for the arguments).

    ``head`` (a layer name) ends the network at that layer instead of the classifier or the features.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"{arch.default_name}: pooling must be one of {POOLINGS}, got {pooling!r}")
    if classifier_activation not in ACTIVATIONS:
        raise ValueError(f"{arch.default_name}: classifier_activation must be 'softmax' or None (pre-softmax "
                         f"scores), got {classifier_activation!r}")
    card = get_card(arch.card)
    source, to_load = resolve_weights(card, weights)
    classes = arch.classes if classes is None else int(classes)
    skip = []
    if include_top and head is None and classes != arch.classes:
        if to_load is not None and not _is_path(to_load):
            raise ValueError(f"{arch.default_name}: with weights={weights!r} and include_top=True, classes must "
                             f"be {arch.classes} (the classes of those weights), got {classes}. Use "
                             "weights=None, include_top=False, or a weights file of that many classes.")
        skip = class_dependent_layers(arch, classes)

    graph = without_layers(arch.graph(classes), source.get("missing_layers") or ())  # the source's network
    channels, *default_hw = graph.inputs["data"]
    height, width = input_size(arch, default_hw, input_shape, input_tensor, include_top or head is not None,
                               to_load)
    graph.inputs["data"] = (channels, height, width)
    if head is not None:
        graph = truncate(graph, head)
    elif include_top:
        graph = set_activation(graph, classifier_activation, arch.activation)
    else:
        graph = truncate(graph, arch.features)
        if pooling:
            graph = add_global_pooling(graph, pooling)

    preprocessing = input_preprocessing(card, source, to_load) if include_preprocessing else None
    model = build_model(graph, preprocessing=preprocessing, name=name or arch.default_name)
    if input_tensor is not None:
        model = attach_input(model, input_tensor, name or arch.default_name)
    if to_load is None or skip:
        initialize_kernels(model, None if to_load is None else skip)
    if to_load is not None:
        kept = {node.name for node in graph.nodes}
        absent = [node.name for node in arch.graph(classes).nodes if node.name not in kept]  # cut-off top
        load_weights(model, card, to_load, skip=[*skip, *absent])
    return fold_affine(model) if fold_batchnorm else model


BUILDER_DOC = """{summary}

    Args:
        include_top: whether to include the classifier ({classifier}...); False ends the network at
            ``{features}``.
        weights: ``'imagenet'``: the card's default weight source ({default});
            or another weight source of the ``{card}`` card: {sources};
            or ``None`` (random initialization);
            or the path to a weights file (``.caffemodel``, ``.mat``, ``.weights.h5``, ``.keras``).
        input_tensor: optional Keras tensor (e.g. output of ``keras.Input()``) to use as the model's input.
        input_shape: optional ``(height, width, 3)``;
            {size}.
        pooling: with ``include_top=False``: ``None`` (the 4-D ``{features}`` output), ``'avg'`` or ``'max'``
            (global pooling to a 2-D output).
        classes: number of classes with ``include_top=True`` (default {classes}); another number needs
            ``weights=None`` or a weights file (whose class-dependent layers are then left randomly
            initialized).
        classifier_activation: ``'softmax'`` or ``None`` (the scores before the softmax) on the top layer;
            default {activation!r}.
        include_preprocessing: ``True``: the model takes RGB images 0..255 and does the weight source's
            preprocessing inside (channel order, mean, scale); ``False``: it takes exactly what the original
            network took (for Caffe weights: BGR, mean subtracted).
        name: the model's name.
        fold_batchnorm: ``True``: an inference model, each batch norm and per-channel Scale folded into the
            convolution before it (same outputs, faster; those layers then do not exist); ``False``: the
            original layers.

    Returns:
        A ``keras.Model``.
"""


def make_builder(arch, builder_name, summary):
    """A keras.applications-style builder function of ``arch`` named ``builder_name``."""

    def builder(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                classes=arch.classes, classifier_activation=arch.activation, include_preprocessing=True,
                name=arch.default_name, fold_batchnorm=False):
        return zoo_model(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                         input_shape=input_shape, pooling=pooling, classes=classes,
                         classifier_activation=classifier_activation,
                         include_preprocessing=include_preprocessing, name=name, fold_batchnorm=fold_batchnorm)

    builder.__name__ = builder.__qualname__ = builder_name
    builder.__doc__ = builder_doc(arch, summary)
    return builder


def builder_doc(arch, summary):
    card = get_card(arch.card)
    classifier = class_dependent_layers(arch, arch.classes + 1)[0]
    channels, *size = arch.graph(arch.classes).inputs["data"]
    size_text = ("any size (the network is fully convolutional)" if arch.fully_convolutional else
                 f"default {(*size, 3)}; other sizes need include_top=False (or weights=None)")
    return BUILDER_DOC.format(summary=summary, classifier=classifier, features=arch.features, card=card["name"],
                              default=get_source(card)["filename"], classes=arch.classes,
                              sources=", ".join(repr(source["name"]) for source in card["weights"]),
                              size=size_text, activation=arch.activation)


def preprocess_input(x, model, weights="imagenet"):
    """RGB 0..255 images -> what ``model``'s original network took with ``weights`` (for
    ``include_preprocessing=False`` models): channel order, mean, scale (keras.applications style)."""
    return imagenet_utils.preprocess_input(x, get_source(get_card(model), weights))


def decode_predictions(preds, model, top=5, weights="imagenet"):
    """``[[(class id, label, score), ...]]``: the ``top`` classes of each row of ``model``'s predictions, in the
    class order of ``weights`` (keras.applications style)."""
    return imagenet_utils.decode_predictions(preds, top=top, source=get_source(get_card(model), weights))


def family_utils(model):
    """``preprocess_input`` and ``decode_predictions`` of a family module, for its model ``model`` by default
    (``model=`` names another of the family, e.g. ``'VGGFace'``)."""
    return (functools.partial(preprocess_input, model=model),
            functools.partial(decode_predictions, model=model))
