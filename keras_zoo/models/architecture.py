"""One zoo network built keras.applications-style: the :class:`Architecture` record and :func:`zoo_model`.

An Architecture names the model card and a function writing the network as a neutral
:class:`~converters.graph.Graph` with the original layer names; :func:`zoo_model` adapts that graph to the
builder's arguments (include_top, pooling, classes, classifier activation, input size), builds it with
:func:`keras_zoo.builder.build_model` (preprocessing from the weight source's card) and loads the weights by
layer name with :func:`keras_zoo.weights.load_weights`, giving it the source's original network to convert
into. A builder passes its arguments on as they are: ``return zoo_model(ARCH, **locals())``.
"""

import dataclasses
import functools
import logging
import pathlib
from typing import Callable

import keras
import numpy as np

from converters.graph import Node
from keras_zoo import folding, imagenet_utils
from keras_zoo.builder import build_model, keras_name
from keras_zoo.cards import ModelCard, get_card
from keras_zoo.porting import read_graph
from keras_zoo.preprocessing import Preprocessing
from keras_zoo.weights import convert_source, load_weights, names_a_file, resolve_mean, source_for_file, untrained

log = logging.getLogger(__name__)

POOLINGS = (None, "avg", "max")
ACTIVATIONS = (None, "softmax")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What a builder needs to know of one zoo network besides its arguments."""

    card: ModelCard                 # the model's card
    graph: Callable                 # graph(classes) -> Graph, original names and Caffe semantics
    classes: int                    # the class count of the original weights
    features: str                   # the last layer kept by include_top=False
    fully_convolutional: bool = False
    activation: str | None = "softmax"  # what the original network ends with (None: raw scores)


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


def resolve_weights(card, weights):
    """``(source, what to load)``: the weight source describing the input the network expects, and the source
    name or file path to load (None for random weights: ``weights`` None or 'none'). A file is described by the
    card's source of its file name, else of its format (the default source first)."""
    if untrained(weights):
        return card.source(), None
    if names_a_file(weights):
        path = pathlib.Path(weights)
        if not path.is_file():
            raise ValueError(f"{card.name}: weights file {str(weights)!r} does not exist")
        return source_for_file(card, path) or card.source(), path
    return card.source(weights), weights


def input_size(arch, name, default_hw, input_shape, input_tensor, include_top, weights):
    """(H, W) of the model's input: the original size unless asked otherwise (and allowed)."""
    if input_tensor is not None and input_shape is None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        return (None, None) if arch.fully_convolutional else default_hw
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"{name}: input_shape must be (height, width, 3) (channels last, RGB or the original "
                         f"network's channels); got {input_shape}")
    height_width = tuple(input_shape[:2])
    fixed = include_top and not arch.fully_convolutional
    if fixed and weights is not None and height_width != tuple(default_hw):
        raise ValueError(f"{name}: with include_top=True and pretrained weights the input must be the original "
                         f"size: input_shape should be {(*default_hw, 3)}, got {input_shape}. Use "
                         "include_top=False for other sizes.")
    if fixed and None in height_width:
        raise ValueError(f"{name}: include_top=True needs a fixed input size, got {input_shape}")
    return height_width


def reference_model(arch, source):
    """The original network of ``source`` (its classes, its classifier, no preprocessing), untrained: what the
    source's file is converted into."""
    return build_model(without_layers(arch.graph(arch.classes), source.port.missing_layers))


def input_preprocessing(arch, source, to_load):
    """The :class:`~keras_zoo.preprocessing.Preprocessing` of ``source`` with its mean resolved.

    A named source is fetched and converted first (its mean file or average image comes with it); a MatConvNet
    file given by path brings its own ``meta.normalization`` average; other means of a file's source are
    fetched. Without weights, a mean that is not cached yet is left out, not downloaded (a warning names the
    source only where weights were asked for: untrained weights have no source to speak of).
    """
    card, expected = arch.card, source.input
    if to_load is not None and not names_a_file(to_load):
        convert_source(card, source, reference=functools.partial(reference_model, arch, source))
    if to_load is not None and names_a_file(to_load) and expected.mean == "meta":
        mean = ((read_graph(to_load).meta.get("normalization") or {}).get("mean")
                if str(to_load).lower().endswith(".mat") else None)
    else:
        mean = resolve_mean(source, allow_fetch=to_load is not None)
    if mean is None and expected.mean is not None:
        say = log.debug if to_load is None else log.warning  # untrained: no source was asked for
        say("%s: the mean of weight source %r is not available (not cached, or not in the file); the model's "
            "preprocessing subtracts no mean", card.name, source.name)
    return Preprocessing.from_card(expected, mean)


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
              classes=None, classifier_activation="softmax", include_preprocessing=True, name, head=None,
              fold_batchnorm=True):
    """Build ``arch`` keras.applications-style (the arguments: see :mod:`keras_zoo.models`).

    ``head`` (a layer name) ends the network at that layer instead of the classifier or the features.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"{name}: pooling must be one of {POOLINGS}, got {pooling!r}")
    if classifier_activation not in ACTIVATIONS:
        raise ValueError(f"{name}: classifier_activation must be 'softmax' or None (pre-softmax scores), got "
                         f"{classifier_activation!r}")
    card = arch.card
    source, to_load = resolve_weights(card, weights)
    classes = arch.classes if classes is None else int(classes)
    skip = []
    if include_top and head is None and classes != arch.classes:
        if to_load is not None and not names_a_file(to_load):
            raise ValueError(f"{name}: with weights={weights!r} and include_top=True, classes must be "
                             f"{arch.classes} (the classes of those weights), got {classes}. Use weights=None, "
                             "include_top=False, or a weights file of that many classes.")
        skip = class_dependent_layers(arch, classes)

    graph = without_layers(arch.graph(classes), source.port.missing_layers)  # the source's network
    channels, *default_hw = graph.inputs["data"]
    height, width = input_size(arch, name, default_hw, input_shape, input_tensor, include_top or head is not None,
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

    preprocessing = input_preprocessing(arch, source, to_load) if include_preprocessing else None
    model = build_model(graph, preprocessing=preprocessing, name=name)
    if input_tensor is not None:
        model = attach_input(model, input_tensor, name)
    if to_load is None or skip:
        initialize_kernels(model, None if to_load is None else skip)
    if to_load is not None:
        kept = {node.name for node in graph.nodes}
        absent = [node.name for node in arch.graph(classes).nodes if node.name not in kept]  # cut-off top
        load_weights(model, card, to_load, reference=functools.partial(reference_model, arch, source),
                     skip=[*skip, *absent])
    if fold_batchnorm and folding.fold_plan(model):  # an inference model: nothing else to fold in VGG & co.
        model = folding.fold_batchnorm(model)
    return model


def preprocess_input(x, model, weights="imagenet"):
    """RGB 0..255 images -> what ``model``'s original network took with ``weights`` (for
    ``include_preprocessing=False`` models): channel order, mean, scale (keras.applications style)."""
    return imagenet_utils.preprocess_input(x, get_card(model).source(weights))


def decode_predictions(preds, model, top=5, weights="imagenet"):
    """``[[(class id, label, score), ...]]``: the ``top`` classes of each row of ``model``'s predictions, in the
    class order of ``weights`` (keras.applications style)."""
    return imagenet_utils.decode_predictions(preds, top=top, source=get_card(model).source(weights))


def family_utils(card):
    """``preprocess_input`` and ``decode_predictions`` of a family module, for ``card``'s model by default
    (``model=`` names another of the family, e.g. ``'VGGFace'``)."""
    return (functools.partial(preprocess_input, model=card.name),
            functools.partial(decode_predictions, model=card.name))
