"""The one builder: a neutral :class:`converters.graph.Graph` -> a ``keras.Model`` (NHWC), and weight porting.

Every framework-specific meaning is already explicit in the graph's attributes (see converters/graph.py);
this module only maps ops onto the layers of :mod:`keras_zoo.layers` and Keras built-ins where those are exact.
"""

import logging
import mmap
import re

import keras
import numpy as np
from keras import ops

from converters.errors import ConversionError
from keras_zoo import layers as zl

log = logging.getLogger(__name__)

# Weights larger than this are assigned in slices along their last axis, to keep conversion memory lean.
CHUNK_BYTES = 64 << 20


def keras_name(original):
    """A Keras-legal layer name for an original layer or blob name ('/' and other odd characters -> '_')."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", str(original)) or "_"


def _rank(tensor):
    return len(tensor.shape)


def _channels_last_shape(nchw_shape):
    """(C, H, W...) without batch -> (H, W..., C)."""
    nchw_shape = tuple(nchw_shape)
    return nchw_shape if len(nchw_shape) <= 1 else (*nchw_shape[1:], nchw_shape[0])


def _input_shape(shape, override):
    if override is None or len(shape) < 3:
        return shape
    override = tuple(override)
    if len(override) == 2:
        return (shape[0], *override)
    if len(override) == len(shape):
        return override
    raise ValueError(f"input_shape {override} is neither (H, W) nor a full (C, H, W) shape")


def _affine_axes(node, nchw_shape):
    """The dims of a Scale/Bias parameter: ``nchw_shape[axis:axis + num_axes]`` (num_axes -1: to the end)."""
    axis = node.attrs.get("axis", 1)
    axis = axis + len(nchw_shape) if axis < 0 else axis
    num_axes = node.attrs.get("num_axes", 1)
    return tuple(nchw_shape[axis:] if num_axes == -1 else nchw_shape[axis:axis + num_axes])


def _affine_nchw_shape(node, nchw_shape):
    """The broadcast shape (without batch, channel-first) of a Scale/Bias parameter on a blob of that shape."""
    axis = node.attrs.get("axis", 1)
    axis = axis + len(nchw_shape) if axis < 0 else axis
    axes = _affine_axes(node, nchw_shape)
    shape = [1] * len(nchw_shape)
    shape[axis:axis + len(axes)] = axes
    return tuple(shape[1:])


def _nchw_shape(tensor):
    shape = tuple(tensor.shape)
    return shape if len(shape) <= 2 else (shape[0], shape[-1], *shape[1:-1])


def _conv_layer(node, name, preset=None):
    a = node.attrs
    initializers = dict(kernel_initializer=preset("kernel"), bias_initializer=preset("bias")) if preset else {}
    return zl.Conv2D(a["filters"], a["kernel"], strides=a.get("strides", 1), pads=a.get("pads", 0),
                     dilation=a.get("dilation", 1), groups=a.get("groups", 1), use_bias=a.get("use_bias", True),
                     name=name, **initializers)


def _conv(node, inputs, name, preset):
    return [_conv_layer(node, name, preset)(inputs[0])]


def _deconv(node, inputs, name, preset):
    a = node.attrs
    return [zl.Deconv2D(a["filters"], a["kernel"], strides=a.get("strides", 1), crops=a.get("pads", 0),
                        dilation=a.get("dilation", 1), groups=a.get("groups", 1), use_bias=a.get("use_bias", True),
                        kernel_initializer=preset("kernel"), bias_initializer=preset("bias"), name=name)(inputs[0])]


def _pool(node, inputs, name, preset):
    a = node.attrs
    return [zl.Pool2D(a.get("method", "max"), a.get("kernel", 1), a.get("strides", 1), pads=a.get("pads", 0),
                      rounding=a.get("rounding", "ceil"), avg_divisor=a.get("avg_divisor", "padded"),
                      global_pool=a.get("global", False), name=name)(inputs[0])]


def _lrn_layer(node, name):
    a = node.attrs
    return zl.LRN(a.get("size", 5), a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("k", 1.0),
                  region=a.get("region", "across"), name=name)


def _lrn(node, inputs, name, preset):
    return [_lrn_layer(node, name)(inputs[0])]


def _dense(node, inputs, name, preset):
    a = node.attrs
    x = inputs[0]
    axis = a.get("axis", 1)
    if axis not in (1, 1 - _rank(x)):
        raise ValueError(f"inner product from axis {axis} is not supported (only axis 1)")
    flattened = tuple(x.shape[1:]) if _rank(x) > 2 else None
    rows = _dense_kernel(np.shape(node.weights.get("kernel")), flattened)
    if flattened:
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    return [keras.layers.Dense(a["units"], use_bias=a.get("use_bias", True), name=name,
                               kernel_initializer=preset("kernel", rows), bias_initializer=preset("bias"))(x)]


def _relu(node, inputs, name, preset):
    slope = float(node.attrs.get("negative_slope", 0.0))
    return [keras.layers.ReLU(negative_slope=slope, name=name)(inputs[0])]


def _prelu(node, inputs, name, preset):
    rank = _rank(inputs[0])
    shared = list(range(1, rank - 1)) + ([rank - 1] if node.attrs.get("channel_shared") else [])
    return [keras.layers.PReLU(alpha_initializer="zeros", shared_axes=shared or None, name=name)(inputs[0])]


def _elu(node, inputs, name, preset):
    return [keras.layers.ELU(alpha=float(node.attrs.get("alpha", 1.0)), name=name)(inputs[0])]


def _power(node, inputs, name, preset):
    a = node.attrs
    return [zl.Power(a.get("power", 1.0), a.get("scale", 1.0), a.get("shift", 0.0), name=name)(inputs[0])]


def _activation(function):
    def make(node, inputs, name, preset):
        return [keras.layers.Activation(function, name=name)(inputs[0])]
    return make


def _absval(node, inputs, name, preset):
    return [zl.AbsVal(name=name)(inputs[0])]


def _softmax(node, inputs, name, preset):
    axis = zl.nchw_axis_to_nhwc(node.attrs.get("axis", 1), _rank(inputs[0]))
    return [keras.layers.Softmax(axis=axis, name=name)(inputs[0])]


def _batchnorm(node, inputs, name, preset):
    a = node.attrs
    return [zl.BatchNorm(epsilon=a.get("epsilon", 1e-5), stat=a.get("stat", "variance"),
                         use_global_stats=a.get("use_global_stats", True), center="beta" in node.weights,
                         scale="gamma" in node.weights, name=name)(inputs[0])]


def _affine(node, inputs, name, parameter, operation):
    """Caffe Scale (parameter 'gamma') or Bias ('beta'): by weights, or by a second input."""
    x = inputs[0]
    shape = _channels_last_shape(_affine_nchw_shape(node, _nchw_shape(x)))
    has_beta = parameter == "beta" or node.attrs.get("use_bias", "beta" in node.weights)
    if len(inputs) > 1:
        product = zl.Broadcast(operation, name=f"{name}_{operation}" if has_beta and parameter == "gamma" else name)
        y = product(inputs[:2])
        if parameter == "gamma" and has_beta:
            y = zl.ChannelAffine(shape, use_scale=False, name=name)(y)
        return [y]
    return [zl.ChannelAffine(shape, use_scale=parameter == "gamma", use_offset=has_beta, name=name)(x)]


def _scale(node, inputs, name, preset):
    return _affine(node, inputs, name, "gamma", "mul")


def _bias(node, inputs, name, preset):
    return _affine(node, inputs, name, "beta", "add")


def _eltwise(node, inputs, name, preset):
    operation = node.attrs.get("operation", "sum")
    coeffs = list(node.attrs.get("coeffs") or [])
    if len(inputs) > 1 and all(c == 1 for c in coeffs):
        merge = {"sum": keras.layers.Add, "prod": keras.layers.Multiply, "max": keras.layers.Maximum}[operation]
        return [merge(name=name)(inputs)]
    return [zl.Eltwise(operation, coeffs, name=name)(inputs)]


def _concat(node, inputs, name, preset):
    axis = zl.nchw_axis_to_nhwc(node.attrs.get("axis", 1), _rank(inputs[0]))
    if len(inputs) == 1:
        return [inputs[0]]
    return [keras.layers.Concatenate(axis=axis, name=name)(inputs)]


def _slice(node, inputs, name, preset):
    rank = _rank(inputs[0])
    axis = zl.nchw_axis_to_nhwc(node.attrs.get("axis", 1), rank)
    pieces = zl.Slice(axis, node.attrs.get("points") or (), num_outputs=len(node.outputs), name=name)(inputs[0])
    return list(pieces)


def _crop(node, inputs, name, preset):
    x, reference = inputs[:2]
    rank = _rank(x)
    start = node.attrs.get("axis", 2)
    start = start + rank if start < 0 else start
    offsets = list(node.attrs.get("offsets") or [0])
    cropped = list(range(start, rank))
    if len(offsets) == 1:
        offsets = offsets * len(cropped)
    if len(offsets) != len(cropped):
        raise ValueError(f"{len(offsets)} crop offsets for {len(cropped)} cropped axes")
    axes = [zl.nchw_axis_to_nhwc(axis, rank) for axis in cropped]
    return [zl.Crop(axes, offsets, name=name)([x, reference])]


def _flatten(node, inputs, name, preset):
    a = node.attrs
    spec = zl.flatten_as_reshape(a.get("axis", 1), a.get("end_axis", -1), _rank(inputs[0]))
    return [zl.CaffeReshape(**spec, name=name)(inputs[0])]


def _reshape(node, inputs, name, preset):
    a = node.attrs
    return [zl.CaffeReshape(a["shape"], a.get("axis", 0), a.get("num_axes", -1), name=name)(inputs[0])]


def _alias(node, inputs, name, preset):
    return [inputs[0]] * len(node.outputs)


_MAKERS = {
    "conv": _conv, "deconv": _deconv, "pool": _pool, "lrn": _lrn, "dense": _dense, "relu": _relu,
    "prelu": _prelu, "elu": _elu, "power": _power, "sigmoid": _activation("sigmoid"),
    "tanh": _activation("tanh"), "absval": _absval, "dropout": _alias, "identity": _alias, "split": _alias,
    "softmax": _softmax, "batchnorm": _batchnorm, "scale": _scale, "bias": _bias, "eltwise": _eltwise,
    "concat": _concat, "slice": _slice, "crop": _crop, "flatten": _flatten, "reshape": _reshape,
}


# what must agree between a weights file's layer and the model's layer of its name (port_weights checks)
_COMPARED = {"conv": (_conv_layer, ("kernel_size", "strides", "pads", "dilation")),
             "lrn": (_lrn_layer, ("size", "alpha", "beta", "k", "region"))}


def _check_configuration(graph, node, layer):
    """ConversionError where ``node`` (a convolution or LRN) computes another function than the Keras ``layer``
    it maps to: the file's network differs from the model's (e.g. other LRN constants or pads)."""
    make, keys = _COMPARED.get(node.op, (None, ()))
    if make is None:
        return
    expected = make(node, layer.name)
    if type(expected) is not type(layer):
        return  # e.g. a fully connected layer stored as a convolution: its weights' shapes are checked
    ours, theirs = layer.get_config(), expected.get_config()
    differ = [key for key in keys if not (np.allclose(ours[key], theirs[key], rtol=1e-6, atol=0)
                                          if isinstance(ours[key], float) else ours[key] == theirs[key])]
    if differ:
        found = ", ".join(f"{key}={theirs[key]!r}" for key in differ)
        wanted = ", ".join(f"{key}={ours[key]!r}" for key in differ)
        raise _error(graph, node, f"the file's layer has {found} but the Keras layer '{layer.name}' has {wanted}: "
                                  "the networks differ")


def _error(graph, node, message):
    return ConversionError(message, path=graph.source or graph.name, layer=node.name,
                           layer_type=node.source_type or node.op)


def build_model(graph, *, input_shape=None, preprocessing=None, name=None):
    """A ``keras.Model`` computing ``graph`` on NHWC input, with the graph's weights.

    ``input_shape`` (H, W) or (C, H, W) overrides the graph's image inputs' sizes (None dims stay free);
    ``preprocessing`` (a :class:`keras_zoo.preprocessing.Preprocessing`) is applied to the first input.
    """
    inputs, tensors, presets = [], {}, _Presets(graph)
    for index, (blob, shape) in enumerate(graph.inputs.items()):
        try:
            shape = _input_shape(tuple(shape), input_shape)
        except ValueError as exc:
            raise ConversionError(str(exc), path=graph.source or graph.name) from None
        tensor = keras.Input(shape=_channels_last_shape(shape), name=keras_name(blob))
        inputs.append(tensor)
        if preprocessing is not None and index == 0:
            tensor = _preprocess(graph, blob, tensor, preprocessing)
        tensors[blob] = tensor
    for node in graph.nodes:
        maker = _MAKERS.get(node.op)
        if maker is None:
            raise _error(graph, node, f"op '{node.op}' is not supported by the Keras builder")
        missing = [blob for blob in node.inputs if blob not in tensors]
        if missing:
            raise _error(graph, node, f"input blob(s) {missing} are produced by no earlier layer")
        try:
            outputs = maker(node, [tensors[blob] for blob in node.inputs], keras_name(node.name),
                            presets.factory(node))
        except (ValueError, TypeError, KeyError) as exc:
            raise _error(graph, node, f"cannot build: {exc}") from exc
        for blob, tensor in zip(node.outputs, outputs):
            tensors[blob] = tensor
    outputs = _named_outputs(graph, tensors, inputs)
    model = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                        name=keras_name(name or graph.name))
    presets.forget(model)
    _port(model, graph, rename=None, done=presets.used)
    return model


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


# ----------------------------------------------------------------------------------------------------------
# weights


def _dense_rows_order(layer):
    """(H, W, C) of the NHWC tensor flattened before ``layer`` (a Dense after a Keras Flatten), else None."""
    try:
        source = layer.input._keras_history.operation
    except (AttributeError, ValueError):
        return None
    if isinstance(source, keras.layers.Flatten):
        shape = source.input.shape
        if len(shape) >= 3:
            return tuple(shape[1:])
    return None


def _unchanged(tensor):
    return tensor


def _dense_kernel(kernel_shape, spatial_shape):
    """The transform of a dense kernel's slices (along ``out``) into rows in Keras's flatten order, for an input
    flattened from NHWC ``spatial_shape`` (H, W, C...) (None: a flat input).

    2-D (in, out) kernels have rows in (C, H, W) order, which are permuted; a 4-D (kh, kw, C, out) whole-input
    filter bank is in (H, W, C) order already (its slices are only reshaped). ValueError where such a bank does
    not cover the input.
    """
    if len(kernel_shape) == 4:
        bank = tuple(kernel_shape[:3])
        if bank != (spatial_shape or (1, 1, bank[2])):
            where = f"the input of shape {spatial_shape} (H, W, C)" if spatial_shape else "a flat input"
            raise ValueError(f"the dense filter bank {tuple(kernel_shape)} (kh, kw, C, out) does not cover {where}")
        return _unchanged
    if spatial_shape is None:
        return _unchanged
    channels_first = (spatial_shape[-1], *spatial_shape[:-1])
    order = (*range(1, len(channels_first)), 0, len(channels_first))

    def transform(block):
        columns = block.shape[-1]
        block = ops.transpose(ops.reshape(block, (*channels_first, columns)), order)
        return ops.reshape(block, (-1, columns))
    return transform


def _layer_arrays(node, layer):
    """``{variable name: (array, transform of a slice along the last axis)}`` for one node's weights."""
    weights = dict(node.weights)
    transforms = {}
    if node.op == "dense" and isinstance(layer, keras.layers.Dense):
        transforms["kernel"] = _dense_kernel(np.shape(weights.get("kernel")), _dense_rows_order(layer))
    elif node.op == "batchnorm" and not node.attrs.get("use_global_stats", True):
        for statistic in ("mean", "variance", "std"):
            weights.pop(statistic, None)  # Caffe keeps them, but batch statistics are used
    elif node.op in ("scale", "bias"):
        shape = _affine_nchw_shape(node, _nchw_shape(layer.input))
        for key, value in weights.items():
            value = np.asarray(value).reshape(shape)
            weights[key] = np.moveaxis(value, 0, -1) if value.ndim > 1 else value
    return {key: (value, transforms.get(key, _unchanged)) for key, value in weights.items()}


def _as_tensor(array):
    """A float32 backend tensor of ``array``, which may be a transposed (memory-mapped) view.

    The view's contiguous base is copied as it lies and transposed by the backend (multithreaded), much
    faster than numpy's strided copy of a large transposed array.
    """
    array = np.asarray(array)
    if array.ndim < 2 or array.flags.c_contiguous:
        return ops.convert_to_tensor(array, dtype="float32")
    order = tuple(int(axis) for axis in np.argsort(array.strides, kind="stable")[::-1])
    contiguous = array.transpose(order)
    if not contiguous.flags.c_contiguous:
        return ops.convert_to_tensor(np.ascontiguousarray(array), dtype="float32")
    return ops.transpose(ops.convert_to_tensor(contiguous, dtype="float32"), tuple(int(a) for a in np.argsort(order)))


def _blocks(array, transform, shape):
    """``(start, stop, block)``: ``transform(array)`` shaped as ``shape``, in slices along the last axis of about
    CHUNK_BYTES each (so that no second full-size copy of a large weight exists); then the file pages behind
    a memory-mapped ``array`` are released."""
    columns = shape[-1] if shape else 1
    step = max(1, columns * CHUNK_BYTES // max(int(np.prod(shape)) * 4, 1))
    for start in range(0, columns, step):
        stop = min(start + step, columns)
        part = array[..., start:stop] if shape else array
        block = transform(_as_tensor(part))
        yield start, stop, ops.reshape(block, (*shape[:-1], stop - start) if shape else ())
    _release_pages(array)


def _materialise(array, transform, shape):
    """``transform(array)`` as a float32 numpy array of ``shape``, built slice by slice."""
    value = np.empty(shape, np.float32)
    for start, stop, block in _blocks(array, transform, shape):
        if shape:
            value[..., start:stop] = ops.convert_to_numpy(block)
        else:
            value[...] = ops.convert_to_numpy(block)
    return value


def _assign(variable, array, transform):
    """Assign ``transform(array)`` to ``variable``; on TensorFlow, large ones slice by slice in place."""
    shape = tuple(variable.shape)
    if int(np.prod(shape)) * 4 <= CHUNK_BYTES or len(shape) < 2 or keras.backend.backend() != "tensorflow":
        variable.assign(_materialise(array, transform, shape))
        return
    import tensorflow as tf

    handle = variable.value.handle
    for start, stop, block in _blocks(array, transform, shape):
        tf.raw_ops.ResourceStridedSliceAssign(ref=handle, begin=[0] * (len(shape) - 1) + [start],
                                              end=[*shape[:-1], stop], strides=[1] * len(shape), value=block)


def _release_pages(array):
    """Let the OS drop the file pages behind a memory-mapped weight once it has been copied (lower RSS)."""
    base = array
    while base is not None and getattr(base, "_mmap", None) is None:
        base = getattr(base, "base", None)
    if base is not None and hasattr(base._mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        base._mmap.madvise(mmap.MADV_DONTNEED)


def _check_shape(graph, node, key, array, expected, layer_name):
    """ConversionError unless ``array`` fits a variable of shape ``expected`` (exactly, for kernels)."""
    shape = compared = tuple(np.shape(array))
    if node.op == "dense" and len(shape) == 4 and len(expected) == 2:
        compared = (int(np.prod(shape[:-1])), shape[-1])  # a whole-input filter bank; _dense_kernel checks its H, W
    exact = node.op in ("conv", "deconv", "dense")
    if (compared != tuple(expected)) if exact else (int(np.prod(shape)) != int(np.prod(expected))):
        raise _error(graph, node, f"weight '{key}' has shape {shape}, the Keras layer '{layer_name}' "
                                  f"expects {tuple(expected)}")


class _Preset(keras.initializers.Initializer):
    """An initializer giving a variable its converted weight directly (no zeros first, no second copy)."""

    def __init__(self, presets, node, key, transform):
        self.presets, self.node, self.key, self.transform = presets, node, key, transform

    def __call__(self, shape, dtype=None):
        array = self.node.weights[self.key]
        _check_shape(self.presets.graph, self.node, self.key, array, shape, keras_name(self.node.name))
        self.presets.used.add((self.node.name, self.key))
        return _materialise(array, self.transform, tuple(shape))


class _Presets:
    """The initializers of one build_model call: which weights were given at variable creation."""

    def __init__(self, graph):
        self.graph = graph
        self.used = set()
        self.layers = []

    def factory(self, node):
        def preset(key, transform=_unchanged):
            if key not in node.weights:
                return "zeros"
            self.layers.append(keras_name(node.name))
            return _Preset(self, node, key, transform)
        return preset

    def forget(self, model):
        """Replace the initializers in the built layers' configs by 'zeros' (they must not be serialised)."""
        for name in set(self.layers):
            layer = model.get_layer(name)
            for attribute in ("kernel_initializer", "bias_initializer"):
                if isinstance(getattr(layer, attribute, None), _Preset):
                    setattr(layer, attribute, keras.initializers.get("zeros"))


def port_weights(model, graph, *, rename=None):
    """Assign every weight-carrying node of ``graph`` to the layer of ``model`` with its (Keras) name.

    ``rename`` maps graph layer names to model layer names (a dict or a function) where they differ.
    Shapes are checked, and so are the convolutions' and LRNs' configurations (pads, strides, LRN constants);
    a mismatch raises :class:`ConversionError` naming the file, the layer and both values.
    """
    return _port(model, graph, rename=rename, done=())


def _port(model, graph, *, rename, done):
    """port_weights, leaving out the ``(node name, weight name)`` pairs in ``done`` (already initialised)."""
    layers = {layer.name: layer for layer in model.layers}  # get_layer scans every layer on each call
    for node in graph.nodes:
        if not node.weights and node.op not in _COMPARED:
            continue
        target = node.name
        if callable(rename):
            target = rename(node.name)
        elif rename:
            target = rename.get(node.name, node.name)
        layer = layers.get(keras_name(target))
        if not node.weights:
            if layer is not None:
                _check_configuration(graph, node, layer)
            continue
        if layer is None:
            raise _error(graph, node, f"the Keras model has no layer '{keras_name(target)}' for its weights")
        _check_configuration(graph, node, layer)
        variables = {variable.name: variable for variable in layer.weights}
        try:
            arrays = _layer_arrays(node, layer)
        except ValueError as exc:
            raise _error(graph, node, f"Keras layer '{layer.name}': {exc}") from None
        for key, (array, transform) in arrays.items():
            if (node.name, key) in done:
                continue
            variable = variables.get(key)
            if variable is None:
                raise _error(graph, node, f"weight '{key}' has no counterpart in Keras layer '{layer.name}' "
                                          f"(it has {sorted(variables)})")
            _check_shape(graph, node, key, array, variable.shape, layer.name)
            _assign(variable, array, transform)
        unassigned = sorted(set(variables) - set(arrays))
        if unassigned:
            raise _error(graph, node, f"no weights for {unassigned} of Keras layer '{layer.name}'")
    return model
