"""Original weights files onto the builders' models: read a file's Graph, adapt it by a weight source's
:class:`~keras_zoo.cards.records.PortRules`, assign it by layer name."""

import dataclasses
import logging
import pathlib

import numpy as np

from converters.caffe import read_caffemodel_weights
from converters.errors import ConversionError
from converters.graph import Node
from converters.matconvnet import read_matconvnet
from keras_zoo.builder import keras_name, port_weights
from keras_zoo.cards.records import PortRules
from keras_zoo.layers import Preprocess

log = logging.getLogger(__name__)

FORMATS = {".caffemodel": "caffemodel", ".mat": "mat"}


def file_format(path):
    """'caffemodel' or 'mat' by the file's suffix, else None."""
    return FORMATS.get(pathlib.Path(path).suffix.lower())


def read_graph(path, fmt=None):
    """The neutral Graph (with weights) of an original ``.caffemodel`` or ``.mat`` file (``fmt``: by its
    suffix unless given), for porting by layer name: a caffemodel is read as Caffe loads one, layer by layer
    without assembling its net (:func:`~converters.caffe.read_caffemodel_weights`), so weights-only files
    load too."""
    path = pathlib.Path(path)
    fmt = fmt or file_format(path)
    if fmt == "caffemodel":
        return read_caffemodel_weights(path)
    if fmt == "mat":
        return read_matconvnet(path)
    raise ConversionError(f"unknown weights format {fmt!r} (expected .caffemodel or .mat)", path=path)


def graph_meta(graph):
    """What a MatConvNet file says of itself, kept with the cache: its mean and its class list."""
    normalization = graph.meta.get("normalization") or {}
    classes = graph.meta.get("classes") or {}
    meta = {}
    if normalization.get("mean") is not None:
        meta["mean"] = np.asarray(normalization["mean"], dtype=np.float32)
    for key in ("names", "descriptions"):
        if classes.get(key):
            meta[f"class_{key}"] = np.array(classes[key], dtype=object)
    return meta


def port_by_rules(model, graph, rules=PortRules(), skip=()):
    """Assign the graph's weights to ``model`` by layer name, the file's layers mapped onto the builder's as
    ``rules`` say; layers in ``skip`` (builder names) are left alone. As Caffe loads trained weights, a file's
    layer the model does not have is ignored (logged). Returns the names of the Keras layers that got weights
    (see :func:`unloaded_layers` for the others)."""
    adapted = adapt_graph(graph, rules, model)
    names = {layer.name for layer in model.layers}
    ignored = [node.name for node in adapted.nodes if node.weights and keras_name(node.name) not in names
               and node.name not in skip]
    if ignored:
        log.info("%s: layer(s) %s are not in %s; ignored", graph.source, ", ".join(ignored), model.name)
    adapted.nodes = [node for node in adapted.nodes
                     if node.name not in skip and (not node.weights or keras_name(node.name) in names)]
    port_weights(model, adapted)
    return {keras_name(node.name) for node in adapted.nodes if node.weights}


def unloaded_layers(model, loaded, skip=()):
    """The names of ``model``'s weighted layers (its preprocessing aside) that are neither in ``loaded`` nor
    in ``skip`` (original or Keras names): what a file read by layer name did not give weights."""
    skipped = {keras_name(name) for name in skip}
    return [layer.name for layer in model.layers
            if layer.weights and not isinstance(layer, Preprocess) and layer.name not in loaded
            and layer.name not in skipped]


def adapt_graph(graph, rules, model):
    """A copy of ``graph`` whose weighted nodes carry the builder's (``model``'s) layer names and layouts.

    Driven by the weight source's :class:`~keras_zoo.cards.records.PortRules`: ``rename`` (file layer ->
    builder layer), ``unused`` (file layers the builder does not have, e.g. auxiliary classifiers; dropped),
    ``batchnorm_scale`` (a (batch-norm prefix, scale prefix) pair: a batch norm of the file that carries gamma
    and beta, as MatConvNet's import merges Caffe's BatchNorm + Scale, feeds the builder's BatchNorm ``bnX`` and
    Scale ``scaleX``), ``bias_moves`` (file layer -> file layer: a bias the builder's layer lacks is added to the
    bias of a layer whose output is summed with it, which is exact) and ``missing_layers`` (builder layer -> why
    the file's network lacks it: a model built with that layer computes another function, so the file is
    refused, naming the layer; the builders leave such layers out when built for that source).
    The statistics follow the target layer's form (variance or standard deviation, its epsilon), a fully
    connected layer stored as a convolution (or the reverse) is reshaped to the target layer, and a bias of
    zeros is dropped where the target layer has none (any other such bias is an error).
    """
    _refuse_missing_layers(graph, rules, model)
    unused = set(rules.unused)
    nodes = []
    for node in _move_biases(graph, rules.bias_moves):
        if node.name in unused:
            log.info("%s: layer '%s' has no counterpart in the builder; not loaded", graph.source, node.name)
            continue
        file_name = node.name
        node = dataclasses.replace(node, name=rules.rename.get(node.name, node.name), weights=dict(node.weights))
        layer = _layer_or_none(model, keras_name(node.name))
        if layer is None or not node.weights:
            nodes.append(node)
        elif node.op == "batchnorm":
            nodes.extend(_batchnorm_for(node, layer, rules.batchnorm_scale, graph))
        elif node.op in ("conv", "dense", "deconv"):
            node = _without_zero_bias(node, file_name, layer, graph)
            nodes.append(_fully_connected_for(node, layer, graph) if node.op != "deconv" else node)
        else:
            nodes.append(node)
    return dataclasses.replace(graph, nodes=nodes)


def _refuse_missing_layers(graph, rules, model):
    """ConversionError for the first builder layer the rules say the file's network lacks (and it does)."""
    present = {keras_name(rules.rename.get(node.name, node.name)) for node in graph.nodes}
    for name, why in rules.missing_layers.items():
        if _layer_or_none(model, keras_name(name)) is not None and keras_name(name) not in present:
            raise ConversionError(f"the file's network has no layer '{name}', which the builder's {model.name} "
                                  f"has ({why}); it computes another function, so it is not loaded",
                                  path=graph.source, layer=name)


def _move_biases(graph, moves):
    """The graph's nodes with the bias of each ``moves`` key (where it has one) added to the bias of its value
    (both file layers whose outputs are summed, so the sum is unchanged)."""
    nodes = {node.name: node for node in graph.nodes}
    moved = {}
    for origin, target in moves.items():
        if origin not in nodes or "bias" not in nodes[origin].weights:
            continue
        if "bias" not in getattr(nodes.get(target), "weights", {}):
            raise ConversionError(f"the weight source moves its bias into '{target}', which has no bias in the "
                                  "file", path=graph.source, layer=origin)
        bias, into = nodes[origin].weights["bias"], nodes[target].weights["bias"]
        if np.shape(bias) != np.shape(into):
            raise ConversionError(f"its bias {np.shape(bias)} cannot move into the bias {np.shape(into)} of "
                                  f"'{target}'", path=graph.source, layer=origin)
        moved[origin] = _without_bias(nodes[origin])
        moved[target] = dataclasses.replace(nodes[target], weights={
            **nodes[target].weights, "bias": np.asarray(into, np.float32) + np.asarray(bias, np.float32)})
    return [moved.get(node.name, node) for node in graph.nodes]


def _without_zero_bias(node, file_name, layer, graph):
    """The node without its bias where the Keras ``layer`` has none: only a bias of zeros may go."""
    if "bias" not in node.weights or "bias" in _variable_shapes(layer):
        return node
    if np.any(np.asarray(node.weights["bias"]) != 0):
        raise ConversionError(f"it has a non-zero bias, but the builder's layer '{layer.name}' has none: the "
                              "file's network differs from the builder's", path=graph.source, layer=file_name,
                              layer_type=node.source_type)
    log.info("%s: layer '%s' has a bias of zeros, which the builder's '%s' lacks; dropped", graph.source,
             file_name, layer.name)
    return _without_bias(node)


def _without_bias(node):
    attrs = {**node.attrs, "use_bias": False} if "use_bias" in node.attrs else node.attrs
    return dataclasses.replace(node, attrs=attrs, weights={k: v for k, v in node.weights.items() if k != "bias"})


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _variable_shapes(layer):
    return {variable.name: tuple(variable.shape) for variable in layer.weights}


def _batchnorm_for(node, layer, scale_rule, graph):
    """The batch-norm node in the form of the Keras ``layer`` (and a Scale node for gamma and beta where the
    layer has none)."""
    shapes = _variable_shapes(layer)
    weights, attrs = node.weights, dict(node.attrs)
    stat, epsilon = attrs.get("stat", "variance"), float(attrs.get("epsilon", 1e-5))
    target_stat = getattr(layer, "stat", stat)
    target_epsilon = float(getattr(layer, "epsilon", epsilon))
    spread = weights.pop("std" if stat == "std" else "variance", None)
    same_form = stat == target_stat and (stat == "std" or np.float32(epsilon) == np.float32(target_epsilon))
    if spread is not None and not same_form:
        # exact in float64: the layer's sqrt(variance + epsilon) reproduces the file's division by std
        std = np.asarray(spread, np.float64) if stat == "std" else np.sqrt(np.asarray(spread, np.float64) + epsilon)
        spread = std if target_stat == "std" else std ** 2 - target_epsilon
        spread = np.asarray(spread, np.float32)
    if spread is not None:
        weights["std" if target_stat == "std" else "variance"] = spread
    attrs.update(stat=target_stat, epsilon=target_epsilon)
    affine = {key: weights.pop(key) for key in ("gamma", "beta") if key in weights and key not in shapes}
    batchnorm = dataclasses.replace(node, attrs=attrs, weights=weights)
    if not affine or _is_identity(affine):
        return [batchnorm]
    prefix, scale_prefix = scale_rule or (None, None)
    if prefix is None or not node.name.startswith(prefix):
        raise ConversionError(f"the batch norm carries {sorted(affine)} but the builder's layer '{layer.name}' "
                              "has none and the weight source names no Scale layer for it (batchnorm_scale)",
                              path=graph.source, layer=node.name, layer_type=node.source_type)
    scale = Node(name=scale_prefix + node.name[len(prefix):], op="scale", inputs=list(node.outputs),
                 outputs=list(node.outputs), attrs={"axis": 1, "num_axes": 1, "use_bias": "beta" in affine},
                 weights={"gamma": affine.get("gamma", np.ones_like(affine["beta"])),
                          **({"beta": affine["beta"]} if "beta" in affine else {})},
                 source_type=node.source_type)
    return [batchnorm, scale]


def _is_identity(affine):
    return (np.all(np.asarray(affine.get("gamma", 1.0)) == 1.0)
            and np.all(np.asarray(affine.get("beta", 0.0)) == 0.0))


def _fully_connected_for(node, layer, graph):
    """A convolution covering its whole input as the Keras ``layer``'s dense kernel, or the reverse."""
    target = _variable_shapes(layer).get("kernel")
    kernel = node.weights.get("kernel")
    if target is None or kernel is None or kernel.ndim == len(target):
        return node
    if kernel.ndim == 4 and len(target) == 2:  # a whole-input filter bank is a dense kernel as it is
        op, attrs = "dense", {"units": int(kernel.shape[-1]), "use_bias": "bias" in node.weights, "axis": 1}
    elif kernel.ndim == 2 and len(target) == 4:
        height, width, channels, units = target
        if kernel.shape != (channels * height * width, units):
            return node  # port_weights reports the mismatch
        kernel = np.ascontiguousarray(np.transpose(kernel.reshape(channels, height, width, units), (1, 2, 0, 3)),
                                      np.float32)
        op, attrs = "conv", {"filters": units, "kernel": (height, width), "strides": (1, 1),
                             "pads": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1,
                             "use_bias": "bias" in node.weights}
    else:
        return node
    log.info("%s: layer '%s' converted from %s to %s for the builder", graph.source, node.name, node.op, op)
    return dataclasses.replace(node, op=op, attrs=attrs,
                               weights={**node.weights, "kernel": kernel})
