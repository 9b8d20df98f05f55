"""Model surgery for the dense protocol and whole images: fully connected layers run as convolutions, and
models re-run on inputs of free height and width."""

import keras
import numpy as np

from keras_zoo.evaluate.outputs import class_scores, run_model

_LAYOUT_WORDS = ("flatten", "reshape", "permute", "transpose")


def _is_layout_layer(layer):
    """A weightless layer that only rearranges values (Flatten, Permute, Reshape, or a custom one so named)."""
    return not layer.weights and any(word in type(layer).__name__.lower() for word in _LAYOUT_WORDS)


def _producer(tensor):
    """``(layer, node)``: the layer that computed ``tensor`` and its call (node) that did."""
    operation, node_index, _ = tensor._keras_history
    return operation, operation._inbound_nodes[node_index]


def _calls(model):
    """``{id(layer): node}``: each layer's call inside ``model`` (a layer shared with another model has several
    calls; only this model's counts)."""
    return {id(node.operation): node for nodes in model._nodes_by_depth.values() for node in nodes}


def _flatten_source(layer, node):
    """``(tensor, chain)``: what feeds a rank-2 Dense ``layer`` (called as ``node``), walking back through
    single-input weightless layers: another Dense's output, or the image-shaped (N, H, W, C) tensor whose
    flattening it reads (with the layers on the way, e.g. Permute + Flatten, in ``chain``)."""
    chain, tensor = [], node.input_tensors[0]
    while len(tensor.shape) == 2:
        producer, call = _producer(tensor)
        if isinstance(producer, keras.layers.Dense):
            return tensor, chain
        if isinstance(producer, keras.layers.InputLayer) or len(call.input_tensors) != 1 or producer.weights:
            raise ValueError(f"cannot run layer '{layer.name}' as a convolution: its input does not come from "
                             f"an image-shaped tensor through weightless layers")
        chain.append((producer, call))
        tensor = call.input_tensors[0]
    while len(tensor.shape) == 4 and _is_layout_layer(_producer(tensor)[0]):  # e.g. NHWC -> NCHW first
        chain.append(_producer(tensor))
        tensor = chain[-1][1].input_tensors[0]
    return tensor, chain


def _head_plan(model):
    """``(bypass, kernels)``: the flattening layers to skip and, per Dense layer to convert, its kernel and bias.

    A Dense after global pooling (a weightless layer that is not a mere rearrangement) works at any input size
    and stays as it is, and so do the Dense layers it feeds.
    """
    bypass, kernels, calls = set(), {}, _calls(model)
    for layer in model.layers:
        node = calls.get(id(layer))
        if not isinstance(layer, keras.layers.Dense) or len(node.input_tensors[0].shape) != 2:
            continue
        weights = [np.asarray(w) for w in layer.get_weights()]
        kernel, bias = weights[0], (weights[1] if layer.use_bias else None)
        tensor, chain = _flatten_source(layer, node)
        if len(tensor.shape) == 2:  # fed by another Dense: a 1x1 convolution when that one is converted
            if _producer(tensor)[0].name in kernels:
                kernels[layer.name] = (kernel.reshape(1, 1, *kernel.shape), bias)
            continue
        if any(len(call.input_tensors[0].shape) > 2 and not _is_layout_layer(op) for op, call in chain):
            continue  # global pooling: already independent of the input size
        layout = [op for op, _ in reversed(chain) if _is_layout_layer(op)]
        height, width, channels = (int(d) for d in tensor.shape[1:])
        probe = np.arange(height * width * channels, dtype=np.float32).reshape(1, height, width, channels)
        for op in layout:
            probe = op(probe)
        order = np.rint(np.asarray(probe)).astype(np.int64).reshape(-1)
        if order.size != kernel.shape[0] or not np.array_equal(np.sort(order), np.arange(order.size)):
            raise ValueError(f"cannot run layer '{layer.name}' as a convolution: its input is not a "
                             f"rearrangement of a {height}x{width}x{channels} tensor")
        conv_kernel = np.empty_like(kernel)
        conv_kernel[order] = kernel
        kernels[layer.name] = (conv_kernel.reshape(height, width, channels, -1), bias)
        bypass.update(id(op) for op in layout)
    return bypass, kernels


def to_fully_convolutional(model, *, verify=True):
    """An equivalent model whose Dense layers are convolutions, taking images of any size.

    The first Dense layer over a flattened (H, W, C) tensor becomes an H x W convolution (its kernel rows
    re-ordered to whatever flattening order the model used, e.g. Caffe's C, H, W), later Dense layers 1 x 1
    convolutions; the flattening layers are skipped and softmax layers act on the channel axis. Other layers are
    shared with ``model``. With ``verify``, both forms are compared at the model's own input size.
    """
    bypass, kernels = _head_plan(model)
    calls = _calls(model)

    def call(layer, *args, **kwargs):
        if id(layer) in bypass:
            return args[0]
        if layer.name in kernels:
            kernel, bias = kernels[layer.name]
            conv = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], use_bias=bias is not None,
                                       activation=layer.activation, name=layer.name, dtype=layer.dtype_policy)
            conv.build((None, None, None, kernel.shape[2]))
            conv.set_weights([kernel] if bias is None else [kernel, bias])
            return conv(args[0])
        if isinstance(layer, keras.layers.Softmax) and len(calls[id(layer)].input_tensors[0].shape) == 2:
            return keras.layers.Softmax(axis=-1, name=layer.name)(args[0])
        return layer(*args, **kwargs)

    converted = _rebuilt_on_free_size(model, call)
    if verify:
        _verify_same(model, converted)
    return converted


def _verify_same(model, converted, tol=1e-4):
    """Raise ValueError unless ``converted`` computes what ``model`` does at the model's input size."""
    shape = model.inputs[0].shape
    if any(d is None for d in shape[1:]):
        return
    sample = np.random.default_rng(0).uniform(0, 255, (1, *shape[1:])).astype(np.float32)
    reference = class_scores(run_model(model, sample))
    result = class_scores(run_model(converted, sample))
    error = np.abs(result - reference).max() if result.shape == reference.shape else np.inf
    if error > tol * max(np.abs(reference).max(), 1e-12):
        raise ValueError(f"the fully convolutional form of '{model.name}' disagrees with the model "
                         f"(max abs difference {error:.3g})")


def _rebuilt_on_free_size(model, call_function=None):
    """``model``'s graph (its own layers, shared) re-run on inputs of free height and width."""
    inputs = [keras.Input(shape=(None, None, t.shape[-1]), name=t.name, dtype=t.dtype) for t in model.inputs]
    return keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                    clone_function=lambda layer: layer, call_function=call_function)


def with_free_input_size(model):
    """The model on an input of free height and width (same layers); the model itself when already free."""
    if all(d is None for t in model.inputs for d in t.shape[1:3]):
        return model
    return _rebuilt_on_free_size(model)
