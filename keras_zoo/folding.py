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


def _folded_layer(layer, affines):
    """A copy of ``layer`` (same name and config, with a bias) holding the folded weights."""
    kernel, bias = _folded_arrays(layer, affines)
    folded = layer.__class__.from_config({**layer.get_config(), "use_bias": True})
    folded.build(layer.input.shape)
    folded.set_weights([kernel.astype(layer.kernel.dtype), bias.astype(layer.kernel.dtype)])
    return folded


def fold_batchnorm(model):
    """An inference copy of ``model`` with its batch norms and per-channel Scale/Bias layers folded into the
    convolution or dense layer before them (those layers no longer exist in the copy).

    Exact up to float rounding; layers that cannot fold (a shared output, batch statistics, a Scale over
    other axes) stay as they are. The copy shares the weights of every layer it does not change, so
    ``model`` itself is best discarded. Returns ``model`` unchanged when nothing folds.
    """
    functional = hasattr(model, "_run_through_graph") and not isinstance(model, keras.Sequential)
    if not functional:
        raise ValueError(f"fold_batchnorm takes a functional keras.Model, got {type(model).__name__}")
    plan = fold_plan(model)
    if not plan:
        return model
    removed = {affine.name for affines in plan.values() for affine in affines}

    def clone(layer):
        return _folded_layer(layer, plan[layer.name]) if layer.name in plan else layer

    def call(layer, *args, **kwargs):
        return args[0] if layer.name in removed else layer(*args, **kwargs)

    folded = keras.models.clone_model(model, clone_function=clone, call_function=call)
    log.info("%s: folded %d batch-norm/scale layers into %d layers", model.name, len(removed), len(plan))
    return folded
