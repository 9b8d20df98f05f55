"""One function per Caffe layer type: a V2 ``LayerParameter`` -> a neutral :class:`~converters.graph.Node`.

Every function has the signature of :mod:`converters.layer_table`: ``fn(layer, inputs, ctx) -> (node, output
shapes)``, with ``inputs`` the batch-less (C, H, W...) shapes of the bottoms and ``ctx`` the reader's
:class:`~converters.caffe.net.ConversionContext` (``ctx.path``, ``ctx.error(layer, reason)``, the caffemodel
blobs through ``ctx.weights_of`` / ``ctx.blob_array`` / ``ctx.bias_term``). A new layer type is one function
here, registered with ``@LAYERS.register("TypeName")``; weights leave in the layouts of :mod:`converters.graph`.
"""

from __future__ import annotations

import math

import numpy as np

from converters.errors import ConversionError
from converters.graph import Node, conv_output_size, pool_output_size
from converters.layer_table import LayerTable

#: Caffe layer type -> its converter.
LAYERS = LayerTable("unsupported layer type '{type}'")


# ------------------------------------------------------------------------------------------- helpers

def _node(layer, op, attrs, weights=None):
    return Node(name=layer.name, op=op, inputs=list(layer.bottom), outputs=list(layer.top), attrs=attrs,
                weights=weights or {})


def _need_bottoms(layer, inputs, count, ctx):
    allowed = count if isinstance(count, tuple) else (count,)
    if len(inputs) not in allowed:
        wanted = " or ".join(map(str, allowed))
        raise ctx.error(layer, f"takes {wanted} bottom(s), got {len(inputs)}")
    if len(layer.top) != 1 and layer.type not in ("Slice", "Split"):
        raise ctx.error(layer, f"must have exactly one top, got {len(layer.top)}")


def _axis_index(axis, shape, layer, ctx, *, allow_end=False):
    """Index into a batch-less shape tuple of a Caffe axis (N, C, H, W numbering; negative from the end)."""
    rank = len(shape) + 1
    canonical = axis + rank if axis < 0 else axis
    upper = rank if allow_end else rank - 1
    if not 1 <= canonical <= upper:
        raise ctx.error(layer, f"axis {axis} is out of range for a {rank}-D blob (the batch axis cannot be used)")
    return canonical


def _product_or_none(dims):
    return None if any(dim is None for dim in dims) else math.prod(dims)


def _sum_or_none(values):
    values = list(values)
    return None if any(value is None for value in values) else sum(values)


def _conv_param_pair(param, layer, ctx, repeated, h_field, w_field, default, what):
    """(h, w) of a ConvolutionParameter field given as a repeated field or as its _h/_w pair."""
    if param.HasField(h_field) or param.HasField(w_field):
        if repeated is not None and len(repeated):
            raise ctx.error(layer, f"{what} is given both as {what}_size/{what} and as {h_field}/{w_field}")
        return getattr(param, h_field), getattr(param, w_field)
    values = list(repeated) if repeated is not None else []
    if not values:
        if default is None:
            raise ctx.error(layer, f"no {what} size is given")
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ctx.error(layer, f"{len(values)}-D {what} (only 2-D convolutions are supported)")


def _pool_param_pair(param, layer, ctx, field, h_field, w_field, default, what):
    """(h, w) of a PoolingParameter field given as a scalar or as its _h/_w pair."""
    if param.HasField(h_field) or param.HasField(w_field):
        return getattr(param, h_field), getattr(param, w_field)
    if param.HasField(field):
        value = getattr(param, field)
        return value, value
    if default is None:
        raise ctx.error(layer, f"no {what} size is given")
    return default, default


def _dilation(param, layer, ctx):
    values = list(param.dilation)
    if not values:
        return (1, 1)
    if len(values) > 2:
        raise ctx.error(layer, f"{len(values)}-D dilation (only 2-D convolutions are supported)")
    dilation = (values[0], values[-1])
    if min(dilation) < 1:
        raise ctx.error(layer, f"invalid dilation {dilation}")
    return dilation


def _same_shape(layer, inputs, ctx, op, attrs=None, weights=None):
    """A node whose one top has the shape of its one bottom."""
    _need_bottoms(layer, inputs, 1, ctx)
    return _node(layer, op, attrs or {}, weights), [inputs[0]]


# -------------------------------------------------------------------------------------- convolutions

def _convolution_node(layer, inputs, ctx, transposed):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.convolution_param
    if param.axis != 1:
        raise ctx.error(layer, f"convolution over axis {param.axis} is not supported")
    shape = inputs[0]
    if len(shape) != 3:
        raise ctx.error(layer, f"input has {len(shape) + 1} dimensions, a 2-D convolution needs 4")
    bias_term = ctx.bias_term(layer, param)
    refs = ctx.weights_of(layer, {1 + bias_term})
    kernel = _conv_param_pair(param, layer, ctx, param.kernel_size, "kernel_h", "kernel_w",
                              None if refs is None else 0, "kernel")
    if kernel == (0, 0) and refs is not None and len(refs[0].shape) == 4:
        kernel = tuple(refs[0].shape[2:])  # a caffemodel-embedded layer without its params
    stride = _conv_param_pair(param, layer, ctx, param.stride, "stride_h", "stride_w", 1, "stride")
    pad = _conv_param_pair(param, layer, ctx, param.pad, "pad_h", "pad_w", 0, "pad")
    dilation = _dilation(param, layer, ctx)
    filters = param.num_output
    if not filters and refs is not None and refs[0].shape:
        filters = refs[0].shape[1 if transposed else 0] * (param.group if transposed else 1)
    group = param.group
    channels = shape[0]
    if min(*kernel, *stride, filters, group) < 1:
        raise ctx.error(layer, f"invalid parameters: num_output {filters}, kernel {kernel}, stride {stride}, "
                               f"group {group}")
    if filters % group or (channels is not None and channels % group):
        raise ctx.error(layer, f"group {group} does not divide the {channels} input channels and the {filters} "
                               "outputs")
    attrs = {"filters": filters, "kernel": kernel, "strides": stride, "pads": (pad[0], pad[0], pad[1], pad[1]),
             "dilation": dilation, "groups": group, "use_bias": bias_term}
    weights = {}
    if refs is not None:
        cin = None if channels is None else channels // group
        if transposed:  # Caffe deconv weight (cin, cout/g, kh, kw) -> (kh, kw, cout/g, cin)
            blob = ctx.blob_array(layer, refs, 0, (channels, filters // group) + kernel)
        else:           # Caffe conv weight (cout, cin/g, kh, kw) -> (kh, kw, cin/g, cout)
            blob = ctx.blob_array(layer, refs, 0, (filters, cin) + kernel)
        weights["kernel"] = blob.transpose(2, 3, 1, 0)
        if bias_term:
            weights["bias"] = ctx.blob_array(layer, refs, 1, (filters,))
    if transposed:
        spatial = tuple(None if size is None else stride[i] * (size - 1) + dilation[i] * (kernel[i] - 1) + 1
                        - 2 * pad[i] for i, size in enumerate(shape[1:]))
    else:
        spatial = tuple(conv_output_size(size, kernel[i], stride[i], (pad[i], pad[i]), dilation[i])
                        for i, size in enumerate(shape[1:]))
    if any(size is not None and size < 1 for size in spatial):
        raise ctx.error(layer, f"output would be empty ({spatial}) for input {shape}")
    return _node(layer, "deconv" if transposed else "conv", attrs, weights), [(filters,) + spatial]


@LAYERS.register("Convolution")
def convolution(layer, inputs, ctx):
    return _convolution_node(layer, inputs, ctx, transposed=False)


@LAYERS.register("Deconvolution")
def deconvolution(layer, inputs, ctx):
    return _convolution_node(layer, inputs, ctx, transposed=True)


# ------------------------------------------------------------------------------- pooling, LRN, dense

@LAYERS.register("Pooling")
def pooling(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.pooling_param
    shape = inputs[0]
    if len(shape) != 3:
        raise ctx.error(layer, f"input has {len(shape) + 1} dimensions, pooling needs 4")
    if param.pool == param.STOCHASTIC:
        raise ctx.error(layer, "STOCHASTIC pooling is not supported")
    method = "max" if param.pool == param.MAX else "avg"
    rounding = "ceil" if param.round_mode == param.CEIL and param.ceil_mode else "floor"
    attrs = {"method": method, "global": bool(param.global_pooling), "rounding": rounding,
             "avg_divisor": "padded"}
    if param.global_pooling:
        attrs.update(kernel=tuple(shape[1:]), strides=(1, 1), pads=(0, 0, 0, 0))
        return _node(layer, "pool", attrs), [(shape[0], 1, 1)]
    kernel = _pool_param_pair(param, layer, ctx, "kernel_size", "kernel_h", "kernel_w", None, "kernel")
    stride = _pool_param_pair(param, layer, ctx, "stride", "stride_h", "stride_w", 1, "stride")
    pad = _pool_param_pair(param, layer, ctx, "pad", "pad_h", "pad_w", 0, "pad")
    if min(*kernel, *stride) < 1 or pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise ctx.error(layer, f"invalid parameters: kernel {kernel}, stride {stride}, pad {pad}")
    attrs.update(kernel=kernel, strides=stride, pads=(pad[0], pad[0], pad[1], pad[1]))
    spatial = tuple(pool_output_size(size, kernel[i], stride[i], (pad[i], pad[i]), rounding)
                    for i, size in enumerate(shape[1:]))
    if any(size is not None and size < 1 for size in spatial):
        raise ctx.error(layer, f"output would be empty ({spatial}) for input {shape}")
    if rounding == "ceil":
        _refuse_windows_outside(layer, ctx, shape[1:], spatial, kernel, stride, pad)
    return _node(layer, "pool", attrs), [(shape[0],) + spatial]


def _refuse_windows_outside(layer, ctx, sizes, counts, kernel, stride, pad):
    """Caffe clips a last ceil-mode window that starts beyond the input only on padded axes; unpadded, such a
    window covers nothing and its output is undefined (-FLT_MAX for MAX): refuse rather than guess."""
    for axis, (size, count) in enumerate(zip(sizes, counts)):
        if pad[axis]:
            continue
        if size is None and stride[axis] > kernel[axis]:
            raise ctx.error(layer, f"ceil-mode pooling with stride {stride[axis]} > kernel {kernel[axis]} and no "
                                   "padding covers nothing in its last window for some input sizes (Caffe's output "
                                   "there is undefined): give a fixed input size (input_shape)")
        if size is not None and (count - 1) * stride[axis] >= size:
            raise ctx.error(layer, f"the last ceil-mode window (stride {stride[axis]}, kernel {kernel[axis]}, no "
                                   f"padding) starts at {(count - 1) * stride[axis]}, beyond the input's {size} "
                                   "rows or columns: Caffe's output there is undefined")


@LAYERS.register("LRN")
def lrn(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.lrn_param
    size = param.local_size
    if size < 1 or size % 2 == 0:
        raise ctx.error(layer, f"local_size must be odd and positive, got {size}")
    if param.norm_region == param.ACROSS_CHANNELS:
        attrs = {"region": "across", "size": size, "alpha": param.alpha / size, "beta": param.beta, "k": param.k}
    else:
        attrs = {"region": "within", "size": size, "alpha": param.alpha / size ** 2, "beta": param.beta,
                 "k": 1.0}
    return _node(layer, "lrn", attrs), [inputs[0]]


@LAYERS.register("InnerProduct")
def inner_product(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.inner_product_param
    shape = inputs[0]
    axis = _axis_index(param.axis, shape, layer, ctx)
    features = _product_or_none(shape[axis - 1:])
    bias_term = ctx.bias_term(layer, param)
    refs = ctx.weights_of(layer, {1 + bias_term})
    units = param.num_output
    if not units and refs is not None and refs[0].shape:
        units = refs[0].shape[-1 if param.transpose else -2]
    if units < 1:
        raise ctx.error(layer, "num_output is missing")
    weights = {}
    if refs is not None:
        if param.transpose:  # stored (in, out) already
            weights["kernel"] = ctx.blob_array(layer, refs, 0, (features, units))
        else:
            weights["kernel"] = ctx.blob_array(layer, refs, 0, (units, features)).T
        if bias_term:
            weights["bias"] = ctx.blob_array(layer, refs, 1, (units,))
    attrs = {"units": units, "use_bias": bias_term, "axis": axis}
    return _node(layer, "dense", attrs, weights), [tuple(shape[:axis - 1]) + (units,)]


# ------------------------------------------------------------------------------------- activations

@LAYERS.register("ReLU")
def relu(layer, inputs, ctx):
    return _same_shape(layer, inputs, ctx, "relu", {"negative_slope": layer.relu_param.negative_slope})


@LAYERS.register("PReLU")
def prelu(layer, inputs, ctx):
    shared = bool(layer.prelu_param.channel_shared)
    refs = ctx.weights_of(layer, {1})
    weights = {}
    if refs is not None:
        if shared:
            if refs[0].count != 1:
                raise ConversionError(f"blob 0 has shape {refs[0].shape}, the prototxt implies (1,)",
                                      path=ctx.weight_path, layer=layer.name, layer_type=layer.type)
            weights["alpha"] = refs[0].array().reshape(1)
        else:
            channels = inputs[0][0] if inputs and inputs[0] else None
            weights["alpha"] = ctx.blob_array(layer, refs, 0, (channels,))
    return _same_shape(layer, inputs, ctx, "prelu", {"channel_shared": shared}, weights)


@LAYERS.register("ELU")
def elu(layer, inputs, ctx):
    return _same_shape(layer, inputs, ctx, "elu", {"alpha": layer.elu_param.alpha})


@LAYERS.register("Power")
def power(layer, inputs, ctx):
    param = layer.power_param
    attrs = {"power": param.power, "scale": param.scale, "shift": param.shift}
    return _same_shape(layer, inputs, ctx, "power", attrs)


@LAYERS.register("Sigmoid")
def sigmoid(layer, inputs, ctx):
    return _same_shape(layer, inputs, ctx, "sigmoid")


@LAYERS.register("TanH")
def tanh(layer, inputs, ctx):
    return _same_shape(layer, inputs, ctx, "tanh")


@LAYERS.register("AbsVal")
def absval(layer, inputs, ctx):
    return _same_shape(layer, inputs, ctx, "absval")


@LAYERS.register("Dropout")
def dropout(layer, inputs, ctx):
    param = layer.dropout_param
    if param.sample_weights_test:  # the SegNet fork's Monte Carlo dropout: random at test time too
        raise ctx.error(layer, "sample_weights_test: true (dropout sampled at test time) is not supported")
    if not param.scale_train:
        # The Fast R-CNN fork's scale_train: false: at test time the fork multiplies by 1 / scale, scale being
        # the float 1 / (1 - ratio) computed in double, and 1 / scale too.
        ratio = float(np.float32(param.dropout_ratio))
        if not 0 < ratio < 1:
            raise ctx.error(layer, f"dropout_ratio must be in (0, 1) with scale_train: false, got {ratio}")
        factor = np.float32(1.0 / float(np.float32(1.0 / (1.0 - ratio))))
        return _same_shape(layer, inputs, ctx, "power", {"power": 1.0, "scale": float(factor), "shift": 0.0})
    return _same_shape(layer, inputs, ctx, "dropout", {"rate": param.dropout_ratio})


@LAYERS.register("Softmax")
def softmax(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    axis = _axis_index(layer.softmax_param.axis, inputs[0], layer, ctx)
    return _node(layer, "softmax", {"axis": axis}), [inputs[0]]


# ---------------------------------------------------------------------------- normalisation, scaling

@LAYERS.register("BatchNorm")
def batch_norm(layer, inputs, ctx):
    param = layer.batch_norm_param
    use_global = param.use_global_stats if param.HasField("use_global_stats") else True
    refs = ctx.weights_of(layer, {3})
    weights = {}
    if refs is not None:
        channels = inputs[0][0] if inputs and inputs[0] else None
        mean = ctx.blob_array(layer, refs, 0, (channels,))
        variance = ctx.blob_array(layer, refs, 1, (mean.shape[0],))
        if refs[2].count != 1:
            raise ConversionError(f"blob 2 (the scale factor) has shape {refs[2].shape}, expected (1,)",
                                  path=ctx.weight_path, layer=layer.name, layer_type=layer.type)
        factor = float(refs[2].array()[0])
        factor = 0.0 if factor == 0 else 1.0 / factor
        weights = {"mean": (mean * factor).astype(np.float32), "variance": (variance * factor).astype(np.float32)}
    attrs = {"stat": "variance", "epsilon": param.eps, "use_global_stats": bool(use_global)}
    return _same_shape(layer, inputs, ctx, "batchnorm", attrs, weights)


def _scale_or_bias_node(layer, inputs, ctx, op):
    _need_bottoms(layer, inputs, (1, 2), ctx)
    param = layer.scale_param if op == "scale" else layer.bias_param
    shape = inputs[0]
    axis = _axis_index(param.axis, shape, layer, ctx, allow_end=True)
    if len(inputs) == 2:
        axes = tuple(inputs[1])
        num_axes = len(axes)
    else:
        num_axes = param.num_axes
        if num_axes < -1:
            raise ctx.error(layer, f"num_axes must be -1 or more, got {num_axes}")
        end = len(shape) + 1 if num_axes == -1 else axis + num_axes
        if end > len(shape) + 1:
            raise ctx.error(layer, f"axis {axis} + num_axes {num_axes} exceed the input rank")
        axes = tuple(shape[axis - 1:end - 1])
    has_bias = op == "bias" or ctx.bias_term(layer, param)
    names = [] if len(inputs) == 2 and op == "scale" else ["gamma" if op == "scale" else "beta"]
    if op == "scale" and has_bias:
        names.append("beta")
    refs = ctx.weights_of(layer, {len(names)}) if names else None
    weights = {}
    if refs is not None:
        for index, name in enumerate(names):
            weights[name] = ctx.blob_array(layer, refs, index, axes)
    attrs = {"axis": axis, "num_axes": num_axes}
    if op == "scale":
        attrs["use_bias"] = has_bias  # a Scale's own beta (bias_term), also without a caffemodel
    return _node(layer, op, attrs, weights), [shape]


@LAYERS.register("Scale")
def scale(layer, inputs, ctx):
    return _scale_or_bias_node(layer, inputs, ctx, "scale")


@LAYERS.register("Bias")
def bias(layer, inputs, ctx):
    return _scale_or_bias_node(layer, inputs, ctx, "bias")


# ----------------------------------------------------------------------------- combining and shaping

@LAYERS.register("Eltwise")
def eltwise(layer, inputs, ctx):
    param = layer.eltwise_param
    if len(inputs) < 2:
        raise ctx.error(layer, f"takes at least 2 bottoms, got {len(inputs)}")
    if any(len(shape) != len(inputs[0]) or any(a is not None and b is not None and a != b
                                               for a, b in zip(shape, inputs[0])) for shape in inputs):
        raise ctx.error(layer, f"bottom shapes differ: {inputs}")
    operation = {param.PROD: "prod", param.SUM: "sum", param.MAX: "max"}[param.operation]
    coeffs = list(param.coeff)
    if coeffs and (operation != "sum" or len(coeffs) != len(inputs)):
        raise ctx.error(layer, f"{len(coeffs)} coefficients for {len(inputs)} bottoms of a {operation}")
    return _node(layer, "eltwise", {"operation": operation, "coeffs": coeffs}), [inputs[0]]


@LAYERS.register("Concat")
def concat(layer, inputs, ctx):
    if not inputs:
        raise ctx.error(layer, "has no bottoms")
    param = layer.concat_param
    axis_value = param.concat_dim if param.HasField("concat_dim") else param.axis
    axis = _axis_index(axis_value, inputs[0], layer, ctx)
    if any(len(shape) != len(inputs[0]) for shape in inputs):
        raise ctx.error(layer, f"bottoms have different ranks: {inputs}")
    out = list(inputs[0])
    out[axis - 1] = _sum_or_none(shape[axis - 1] for shape in inputs)
    return _node(layer, "concat", {"axis": axis}), [tuple(out)]


@LAYERS.register("Slice")
def slice_(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.slice_param
    axis_value = param.slice_dim if param.HasField("slice_dim") else param.axis
    axis = _axis_index(axis_value, inputs[0], layer, ctx)
    points = list(param.slice_point)
    size = inputs[0][axis - 1]
    tops = len(layer.top)
    if points and len(points) != tops - 1:
        raise ctx.error(layer, f"{len(points)} slice points for {tops} tops")
    if points:
        bounds = [0] + points + [size]
        if points != sorted(points) or (size is not None and points[-1] > size):
            raise ctx.error(layer, f"slice points {points} do not fit the axis size {size}")
        sizes = [None if hi is None else hi - lo for lo, hi in zip(bounds, bounds[1:])]
    else:
        if size is not None and size % tops:
            raise ctx.error(layer, f"axis size {size} does not split into {tops} equal parts")
        sizes = [None if size is None else size // tops] * tops
    shapes = []
    for part in sizes:
        shape = list(inputs[0])
        shape[axis - 1] = part
        shapes.append(tuple(shape))
    return _node(layer, "slice", {"axis": axis, "points": points}), shapes


@LAYERS.register("Split")
def split(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    return _node(layer, "split", {}), [inputs[0]] * len(layer.top)


@LAYERS.register("Crop")
def crop(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 2, ctx)
    param = layer.crop_param
    shape, reference = inputs
    if len(shape) != len(reference):
        raise ctx.error(layer, f"bottoms have different ranks: {shape} and {reference}")
    axis = _axis_index(param.axis, shape, layer, ctx)
    count = len(shape) + 1 - axis
    offsets = list(param.offset)
    if len(offsets) == 0:
        offsets = [0] * count
    elif len(offsets) == 1:
        offsets = offsets * count
    elif len(offsets) != count:
        raise ctx.error(layer, f"{len(offsets)} offsets for the {count} cropped axes")
    out = tuple(shape[:axis - 1]) + tuple(reference[axis - 1:])
    for index, offset in enumerate(offsets):
        big, small = shape[axis - 1 + index], reference[axis - 1 + index]
        if big is not None and small is not None and offset + small > big:
            raise ctx.error(layer, f"crop offset {offset} + size {small} exceeds the input size {big}")
    return _node(layer, "crop", {"axis": axis, "offsets": offsets}), [out]


@LAYERS.register("Flatten")
def flatten(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.flatten_param
    shape = inputs[0]
    axis = _axis_index(param.axis, shape, layer, ctx)
    end_axis = _axis_index(param.end_axis, shape, layer, ctx)
    if end_axis < axis:
        raise ctx.error(layer, f"end_axis {param.end_axis} comes before axis {param.axis}")
    out = tuple(shape[:axis - 1]) + (_product_or_none(shape[axis - 1:end_axis]),) + tuple(shape[end_axis:])
    return _node(layer, "flatten", {"axis": axis, "end_axis": end_axis}), [out]


@LAYERS.register("Reshape")
def reshape(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.reshape_param
    shape = inputs[0]
    full = (None,) + tuple(shape)
    rank = len(full)
    start = param.axis + rank + 1 if param.axis < 0 else param.axis
    end = rank if param.num_axes == -1 else start + param.num_axes
    if not 0 <= start <= end <= rank:
        raise ctx.error(layer, f"axis {param.axis} / num_axes {param.num_axes} do not fit a {rank}-D blob")
    dims = list(param.shape.dim)
    if dims.count(-1) > 1 or any(dim < -1 for dim in dims):
        raise ctx.error(layer, f"invalid reshape dims {dims}")
    new = []
    for index, dim in enumerate(dims):
        if dim == 0:
            if start + index >= rank:
                raise ctx.error(layer, f"dim {index} copies a dimension the input does not have")
            new.append(full[start + index])
        else:
            new.append(None if dim == -1 else dim)
    out = list(full[:start]) + new + list(full[end:])
    if -1 in dims:
        known = _product_or_none(full[1:])
        rest = _product_or_none([d for i, d in enumerate(out) if i and d is not None]) if known else None
        at = start + dims.index(-1)
        if known is not None and rest:
            if known % rest:
                raise ctx.error(layer, f"cannot reshape {shape} into {dims}")
            out[at] = known // rest
    if start == 0 and dims and dims[0] not in (0, -1):
        raise ctx.error(layer, "reshaping the batch axis is not supported")
    attrs = {"shape": dims, "axis": param.axis, "num_axes": param.num_axes}
    return _node(layer, "reshape", attrs), [tuple(out[1:])]
