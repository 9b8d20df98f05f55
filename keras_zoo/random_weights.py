"""Random, well-conditioned Caffe weights for a deploy prototxt, written as a V2 binary .caffemodel: what tests
and benchmarks run the original networks on where the original weights are not at hand.

The prototxt is read with ``converters.caffe.read_caffe`` and built with keras_zoo's builder to learn every
layer's weight shapes (the caller may reuse that model and port the written weights into it); blobs are
drawn in Caffe's layouts and written with :mod:`converters.writers.caffe`. Filters are He-scaled, so activations
keep their scale through convolutions and ReLUs. Batch norms are calibrated on a random input: one pass with
every batch norm normalising by its batch's own statistics gives each one's per-channel input mean and mean
square, stored as its mean and variance. Every channel so leaves at about unit scale or less (deep residual
nets no longer double at every block), and a channel that barely varies is not magnified, rounding errors and
all, by a tiny variance. OpenCV checks the blob shapes independently when it loads the result, so this is no
circular check of the builder.
"""

import math
import pathlib

import keras
import numpy as np

from converters.caffe import read_caffe
from keras_zoo.builder import build_model, keras_name, port_weights
from converters.writers.caffe import write_caffemodel


def _nchw_shape(tensor_shape):
    shape = tuple(tensor_shape)
    return shape if len(shape) <= 2 else (shape[0], shape[-1], *shape[1:-1])


def _he(rng, shape, fan_in):
    """He-scaled filters (variance 2 / fan_in), drawn uniformly: float32 uniforms are an order of magnitude
    faster to draw than normals, which matters for the 100-million-weight layers of the real nets."""
    bound = np.float32(np.sqrt(6.0 / max(fan_in, 1)))
    weights = rng.random(shape, dtype=np.float32)
    weights *= 2 * bound
    weights -= bound
    return weights


def _small(rng, shape, scale=0.1):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _node_blobs(node, layer, rng):
    """Caffe blobs (Caffe layouts) for one node, shaped after the built Keras layer."""
    variables = {variable.name: tuple(variable.shape) for variable in layer.weights}
    if node.op == "conv":
        *spatial, cin, cout = variables["kernel"]  # 1, 2 or 3 spatial axes
        blobs = [_he(rng, (cout, cin, *spatial), cin * math.prod(spatial))]
    elif node.op == "deconv":
        *spatial, cout, cin = variables["kernel"]
        strides = node.attrs.get("strides", (1,) * len(spatial))
        blobs = [_he(rng, (cin, cout, *spatial), cin * math.prod(spatial) / math.prod(strides))]
    elif node.op == "dense":
        rows, units = variables["kernel"]
        blobs = [_he(rng, (units, rows), rows)]
    elif node.op == "prelu":
        channels = 1 if node.attrs.get("channel_shared") else _nchw_shape(layer.input.shape)[1]
        return [rng.uniform(0.0, 0.5, channels).astype(np.float32)]
    elif node.op == "batchnorm":  # unit statistics, until calibrated
        channels = _nchw_shape(layer.input.shape)[1]
        return _batchnorm_blobs(np.zeros(channels, np.float32), np.ones(channels, np.float32))
    elif node.op == "normalize":  # the SSD fork's learnt scale (SSD initialises it to 20)
        channels = 1 if node.attrs.get("channel_shared", True) else _nchw_shape(layer.input.shape)[1]
        return [rng.uniform(10.0, 30.0, channels).astype(np.float32)]
    elif node.op in ("scale", "bias"):
        shape = _nchw_shape(layer.input.shape)
        axis = node.attrs.get("axis", 1)
        num_axes = node.attrs.get("num_axes", 1)
        axes = shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes]
        blobs = []
        if node.op == "scale" and "gamma" in variables:
            blobs.append(rng.uniform(0.5, 1.5, axes).astype(np.float32))
        if "beta" in variables:
            blobs.append(_small(rng, axes))
        return blobs
    else:
        raise ValueError(f"no random weights for op {node.op!r}")
    if "bias" in variables:
        blobs.append(_small(rng, variables["bias"]))
    return blobs


WEIGHTED_OPS = ("conv", "deconv", "dense", "prelu", "batchnorm", "scale", "bias", "normalize")


def deploy_graph(prototxt, *, input_shape=None):
    """The weightless graph of ``prototxt``."""
    return read_caffe(prototxt, input_shape=input_shape)


def _batchnorm_blobs(mean, variance, factor=np.float32(0.999)):
    """A BatchNorm layer's blobs: Caffe stores the statistics multiplied by a moving-average factor."""
    return [np.float32(mean) * factor, np.float32(variance) * factor, np.array([factor], np.float32)]


def _calibration_input(graph, rng, batch=2):
    """NHWC random input for the graph's single image input: uniform in [-100, 100], like mean-subtracted
    pixels (the range the parity tests feed)."""
    if len(graph.inputs) != 1:
        raise ValueError("batch-norm calibration needs a net with one input")
    (shape,) = graph.inputs.values()
    if None in shape:
        raise ValueError(f"batch-norm calibration needs a known input size, not {shape}")
    return rng.uniform(-100, 100, (batch, *shape[1:], shape[0])).astype(np.float32)


def _input_statistics(model, layers, x):
    """[(mean, mean square)] per channel of what reaches each of ``layers`` (BatchNorm layers) when
    ``model`` runs on ``x`` with every batch norm normalising by its batch's own statistics."""
    probe = keras.Model(model.input, [layer.input for layer in layers])
    for layer in layers:
        layer.use_global_stats = False
    try:
        values = probe(x)
    finally:
        for layer in layers:
            layer.use_global_stats = True
    values = values if isinstance(values, (list, tuple)) else [values]
    statistics = []
    for value in values:
        value = np.asarray(value, np.float64)
        axes = tuple(range(value.ndim - 1))
        statistics.append((value.mean(axis=axes), np.mean(value ** 2, axis=axes)))
    return statistics


def write_random_caffemodel(graph, model, path, *, seed=0):
    """Write random weights for every weighted layer of ``graph`` (built as ``model``) to ``path``.

    For nets with (inference) batch norms the weights are first written with unit statistics and loaded
    into ``model`` (its weights are overwritten), which then runs once on a random input with every batch
    norm using its batch's statistics; the mean and mean square of each one's input are what the file stores.
    """
    rng = np.random.default_rng(seed)
    keras_layers = {layer.name: layer for layer in model.layers}
    nodes = [node for node in graph.nodes if node.op in WEIGHTED_OPS]
    batchnorms = [node for node in nodes if node.op == "batchnorm" and node.attrs.get("use_global_stats", True)]

    def draw(node):
        return node.name, node.source_type, _node_blobs(node, keras_layers[keras_name(node.name)], rng)

    if not batchnorms:  # drawn one layer at a time, as written
        return write_caffemodel(path, (draw(node) for node in nodes), net_name=graph.name)
    x = _calibration_input(graph, rng)
    layers = [draw(node) for node in nodes]
    blobs = {name: layer_blobs for name, _, layer_blobs in layers}
    path = pathlib.Path(path)
    uncalibrated = write_caffemodel(path.with_name(path.name + ".uncalibrated"), layers, net_name=graph.name)
    try:
        port_weights(model, read_caffe(graph.source, uncalibrated, input_shape=x.shape[1:3]))
    finally:
        uncalibrated.unlink()
    statistics = _input_statistics(model, [keras_layers[keras_name(node.name)] for node in batchnorms], x)
    for node, (mean, mean_square) in zip(batchnorms, statistics):
        blobs[node.name][:] = _batchnorm_blobs(mean, mean_square)
    return write_caffemodel(path, layers, net_name=graph.name)


def random_caffemodel(prototxt, path, *, input_shape=None, seed=0):
    """Write random weights for ``prototxt`` to ``path`` (reading and building it first); return ``path``."""
    graph = deploy_graph(prototxt, input_shape=input_shape)
    return write_random_caffemodel(graph, build_model(graph), path, seed=seed)
