"""Folding inference batch norms and per-channel scales into the convolution or dense layer before them.

Caffe's ResNets follow every convolution with BatchNorm (global statistics) and Scale; at inference both
are a per-channel ``y = x * a + c``, which the convolution can absorb: ``W' = W * a`` per output channel,
``b' = b * a + c``. The folded model computes the same function (up to float rounding) with one layer
instead of three, which lets the backend fuse convolution, bias and ReLU.
"""

import logging

import keras
import numpy as np

from keras_zoo import layers as zoo_layers

log = logging.getLogger(__name__)

FOLDS_INTO = (zoo_layers.Conv2D, keras.layers.Conv2D, keras.layers.Dense)


def _per_channel(array, channels):
    """``array`` as a (channels,) vector when it broadcasts over the last axis only, else None."""
    array = np.asarray(array, dtype=np.float64)
    if array.size != channels or any(size != 1 for size in array.shape[:-1]):
        return None
    return array.reshape(channels)


def affine_coefficients(layer, channels):
    """``(a, c)``, float64 vectors with ``layer(x) = x * a + c`` per channel, or None when ``layer`` is not
    such a per-channel affine map (a batch norm with batch statistics, a Scale over other axes...)."""
    if isinstance(layer, zoo_layers.BatchNorm) and layer.use_global_stats:
        spread = np.asarray(layer.spread, dtype=np.float64)
        std = spread if layer.stat == "std" else np.sqrt(spread + layer.epsilon)
        a = 1.0 / std
        c = -np.asarray(layer.mean, dtype=np.float64) * a
        if layer.scale:
            gamma = np.asarray(layer.gamma, dtype=np.float64)
            a, c = a * gamma, c * gamma
        if layer.center:
            c = c + np.asarray(layer.beta, dtype=np.float64)
        return _per_channel(a, channels), _per_channel(c, channels)
    if isinstance(layer, zoo_layers.ChannelAffine):
        a = _per_channel(layer.gamma, channels) if layer.use_scale else np.ones(channels)
        c = _per_channel(layer.beta, channels) if layer.use_offset else np.zeros(channels)
        return None if a is None or c is None else (a, c)
    return None


def _consumers(model):
    """id(tensor) -> number of layer calls reading it."""
    counts = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                counts[id(tensor)] = counts.get(id(tensor), 0) + 1
    return counts


def fold_plan(model):
    """``{target layer name: [affine layers folded into it, in order]}`` for a functional ``model``.

    An affine layer folds when it is called once, on the output of a foldable layer (or of an affine layer
    already folded into one) that nothing else reads and that is not a model output.
    """
    readers = _consumers(model)
    outputs = {id(tensor) for tensor in model.outputs}
    plan, root_of = {}, {}
    for layer in model.layers:
        if not isinstance(layer, (zoo_layers.BatchNorm, zoo_layers.ChannelAffine)) or len(layer._inbound_nodes) != 1:
            continue
        inputs = layer._inbound_nodes[0].input_tensors
        if len(inputs) != 1 or readers.get(id(inputs[0])) != 1 or id(inputs[0]) in outputs:
            continue
        producer = inputs[0]._keras_history.operation
        root = root_of.get(producer.name)
        if root is None and isinstance(producer, FOLDS_INTO) and len(producer._inbound_nodes) == 1:
            root = producer
        if root is None or affine_coefficients(layer, root.kernel.shape[-1]) is None:
            continue
        plan.setdefault(root.name, []).append(layer)
        root_of[layer.name] = root
    return plan


def _folded_arrays(layer, affines):
    kernel = np.asarray(layer.kernel, dtype=np.float64)
    channels = kernel.shape[-1]
    bias = np.asarray(layer.bias, dtype=np.float64) if layer.use_bias else np.zeros(channels)
    for affine in affines:
        a, c = affine_coefficients(affine, channels)
        kernel, bias = kernel * a, bias * a + c
    return kernel, bias


def _folded_values(layer, affines):
    """The folded layer's ``[(name, value)]``: kernel and bias (in ``layer``'s dtype)."""
    kernel, bias = _folded_arrays(layer, affines)
    dtype = layer.kernel.dtype
    return [("kernel", kernel.astype(dtype)), ("bias", bias.astype(dtype))]


def _own_copy(layer, values=None, **changes):
    """A new layer of ``layer``'s class and config (``changes`` applied to the config), built as ``layer`` was,
    its variables created holding ``values`` (``[(variable name, array or tensor)]`` in ``layer.weights``'
    order; default: ``layer``'s current weights): one copy of each weight, no initializer run, nothing shared.
    """
    new = layer.__class__.from_config({**layer.get_config(), **changes})
    build = layer.get_build_config() if layer.built else None
    if values is None:
        values = [(variable.name, variable) for variable in layer.weights]
    if not build and values:
        if len(layer._inbound_nodes) != 1 or len(layer._inbound_nodes[0].input_tensors) != 1:
            raise ValueError(f"cannot copy layer '{layer.name}': it has weights but no build config")
        build = {"input_shape": tuple(layer.input.shape)}
    if not build:
        return new  # no weights: built when called
    pending = list(values)
    add_weight = new.add_weight

    def seeded_add_weight(*args, **kwargs):
        shape = tuple(kwargs.get("shape", args[0] if args else None) or ())
        for index, (name, value) in enumerate(pending):
            if name == kwargs.get("name") and tuple(value.shape) == shape:
                del pending[index]
                kwargs["initializer"] = _Value(value)
                break
        return add_weight(*args, **kwargs)

    object.__setattr__(new, "add_weight", seeded_add_weight)  # only while building (Layer tracks setattr)
    try:
        new.build_from_config(build)
    finally:
        object.__delattr__(new, "add_weight")
    if pending or len(new.weights) != len(values):  # variables made another way (sublayers...): assign them
        new.set_weights([keras.ops.convert_to_numpy(value) for _, value in values])
    return new


class _Value:
    """An initializer returning a given value (a backend tensor or array: copied once into the variable)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        value, self.value = self.value, None  # once: the variable must not keep the source alive
        return keras.ops.convert_to_tensor(value, dtype=dtype)


def fold_batchnorm(model):
    """An inference copy of ``model`` with its batch norms and per-channel Scale/Bias layers folded into the
    convolution or dense layer before them (those layers no longer exist in the copy).

    Exact up to float rounding; layers that cannot fold (a shared output, batch statistics, a Scale over
    other axes) stay as they are. The copy owns its layers and weights (each copied at most once; TensorFlow
    shares a buffer until either model writes to it): changing one model changes nothing in the other, and
    ``copy.get_layer(name).output`` belongs to the copy's graph.
    """
    functional = hasattr(model, "_run_through_graph") and not isinstance(model, keras.Sequential)
    if not functional:
        raise ValueError(f"fold_batchnorm takes a functional keras.Model, got {type(model).__name__}")
    plan = {id(model.get_layer(name)): affines for name, affines in fold_plan(model).items()}
    removed = {id(affine) for affines in plan.values() for affine in affines}

    def clone(layer):
        if id(layer) in removed:
            return layer  # never called: its function is in the layer it folds into
        if id(layer) in plan:
            return _own_copy(layer, _folded_values(layer, plan[id(layer)]), use_bias=True)
        return _own_copy(layer)

    def call(layer, *args, **kwargs):
        return args[0] if id(layer) in removed else layer(*args, **kwargs)

    folded = keras.models.clone_model(model, clone_function=clone, call_function=call, recursive=True)
    log.info("%s: folded %d batch-norm/scale layers into %d layers", model.name, len(removed), len(plan))
    return folded
