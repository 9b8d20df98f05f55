"""The one builder: a neutral :class:`converters.graph.Graph` -> a ``keras.Model`` (NHWC), with its weights.

Each node becomes Keras layers through its op's maker (:mod:`keras_zoo.layer_makers`); the weights are given
at variable creation and checked (:mod:`keras_zoo.weight_assignment`), and so is the memory the parameters and
one sample's activations need, before anything that cannot fit is allocated. ``port_weights`` and
``keras_name`` are importable from here too.
"""

import logging

import keras

from converters.errors import ConversionError
from keras_zoo.layer_makers import MAKERS, channels_last_shape, keras_name, node_error
from keras_zoo.weight_assignment import InitialWeights, port_weights

log = logging.getLogger(__name__)

__all__ = ["build_model", "port_weights", "keras_name"]


def _input_shape(shape, override):
    if override is None or len(shape) < 3:
        return shape
    override = tuple(override)
    if len(override) == 2:
        return (shape[0], *override)
    if len(override) == len(shape):
        return override
    raise ValueError(f"input_shape {override} is neither (H, W) nor a full (C, H, W) shape")


def build_model(graph, *, input_shape=None, preprocessing=None, name=None):
    """A ``keras.Model`` computing ``graph`` on NHWC input, with the graph's weights.

    ``input_shape`` (H, W) or (C, H, W) overrides the graph's image inputs' sizes (None dims stay free);
    ``preprocessing`` (a :class:`keras_zoo.preprocessing.Preprocessing`) is applied to the first input.
    A layer whose parameters (with the ones before it), or one sample's activations at it, need more than the
    available memory is a ConversionError naming it and the bytes, raised before the memory is allocated.
    """
    inputs, tensors, initial = [], {}, InitialWeights(graph)
    for index, (blob, shape) in enumerate(graph.inputs.items()):
        try:
            shape = _input_shape(tuple(shape), input_shape)
        except ValueError as exc:
            raise ConversionError(str(exc), path=graph.source or graph.name) from None
        tensor = keras.Input(shape=channels_last_shape(shape), name=keras_name(blob))
        inputs.append(tensor)
        initial.budget.check_activations(_InputNode(blob), [tensor], what="the input")
        if preprocessing is not None and index == 0:
            tensor = _preprocess(graph, blob, tensor, preprocessing)
        tensors[blob] = tensor
    shared = {node.attrs["shares"] for node in graph.nodes if node.attrs.get("shares")}
    made = {}  # node whose weights later nodes share -> its Keras layers
    for node in graph.nodes:
        make = MAKERS.lookup(node.op, path=graph.source or graph.name, layer=node.name,
                             layer_type=node.source_type or node.op)
        missing = [blob for blob in node.inputs if blob not in tensors]
        if missing:
            raise node_error(graph, node, f"input blob(s) {missing} are produced by no earlier layer")
        node_inputs = [tensors[blob] for blob in node.inputs]
        try:
            if node.attrs.get("shares"):
                outputs = _call_shared(graph, node, made, node_inputs)
            else:
                outputs = make(node, node_inputs, keras_name(node.name), initial.initializer_for(node))
        except (ValueError, TypeError, KeyError) as exc:
            raise node_error(graph, node, f"cannot build: {exc}") from exc
        if node.name in shared:
            made[node.name] = _layer_chain(graph, node, node_inputs, outputs)
        initial.budget.check_activations(node, [tensors[blob] for blob in node.inputs] + list(outputs))
        for blob, tensor in zip(node.outputs, outputs):
            tensors[blob] = tensor
    outputs = _named_outputs(graph, tensors, inputs)
    model = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                        name=keras_name(name or graph.name))
    initial.detach(model)
    port_weights(model, graph, assigned=initial.assigned, nonfinite=initial.nonfinite)
    initial.nonfinite.warn()
    return model


def _layer_chain(graph, node, inputs, outputs):
    """The Keras layers, in order, computing ``outputs`` from ``inputs`` (each feeding the next): those of a node
    whose weights later nodes share, which call them again."""
    refuse = node_error(graph, node, f"other layers share its weights, but its op '{node.op}' is not a chain of "
                                     "Keras layers that they could call again")
    if len(outputs) != 1:
        raise refuse
    if any(outputs[0] is tensor for tensor in inputs):
        return []  # an identity at inference: nothing to call
    chain, tensor = [], outputs[0]
    for _ in range(16):
        layer = tensor._keras_history.operation
        called_on = layer.input
        called_on = list(called_on) if isinstance(called_on, (list, tuple)) else [called_on]
        chain.append(layer)
        if len(called_on) == len(inputs) and all(a is b for a, b in zip(called_on, inputs)):
            return chain[::-1]
        if len(called_on) != 1:
            raise refuse
        tensor = called_on[0]
    raise refuse


def _call_shared(graph, node, made, inputs):
    """``node`` computed by the Keras layers of the earlier node it shares its weights with (one variable each)."""
    chain = made.get(node.attrs["shares"])
    if chain is None:
        raise node_error(graph, node, f"shares the weights of '{node.attrs['shares']}', which is no earlier layer")
    if not chain:
        return [inputs[0]]
    tensor = chain[0](inputs[0] if len(inputs) == 1 else inputs)
    for layer in chain[1:]:
        tensor = layer(tensor)
    return [tensor]


class _InputNode:
    """An input blob where a message names a layer."""

    def __init__(self, blob):
        self.name, self.op, self.source_type = blob, "input", "Input"


def _preprocess(graph, blob, tensor, preprocessing):
    channels = tensor.shape[-1]
    mean = preprocessing.mean
    where = graph.source or graph.name
    if mean is not None and mean.shape[0] != channels:
        raise ConversionError(f"the preprocessing mean has {mean.shape[0]} channels, input '{blob}' has "
                              f"{channels}", path=where)
    if preprocessing.flip_channels and channels != 3:
        raise ConversionError(f"cannot reverse the channels of input '{blob}': it has {channels}, not 3",
                              path=where)
    try:
        return preprocessing.layer()(tensor)
    except ValueError as exc:
        raise ConversionError(f"preprocessing of input '{blob}': {exc}", path=where) from None


def _named_outputs(graph, tensors, inputs):
    """The output tensors, each produced by a layer named after its blob (an Identity layer where needed)."""
    taken = set()
    layer_names = {keras_name(node.name) for node in graph.nodes} | {keras_name(blob) for blob in graph.inputs}
    outputs = []
    for blob in graph.outputs:
        if blob not in tensors:
            raise ConversionError(f"output blob '{blob}' is produced by no layer", path=graph.source or graph.name)
        tensor = tensors[blob]
        wanted = keras_name(blob)
        producer = tensor._keras_history.operation
        if producer.name == wanted and wanted not in taken and not any(tensor is i for i in inputs):
            outputs.append(tensor)
        else:
            if wanted in taken or wanted in layer_names:
                wanted = f"{wanted}_output"
                log.info("output blob '%s' is named '%s' (a layer has its name)", blob, wanted)
            outputs.append(keras.layers.Identity(name=wanted)(tensor))
        taken.add(wanted)
    return outputs
