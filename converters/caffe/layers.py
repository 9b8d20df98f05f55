"""One function per Caffe layer type: a V2 ``LayerParameter`` -> a neutral :class:`~converters.graph.Node`.

Every function has the signature of :mod:`converters.layer_table`: ``fn(layer, inputs, ctx) -> (node, output
shapes)``, with ``inputs`` the batch-less (C, H, W...) shapes of the bottoms and ``ctx`` the reader's
:class:`~converters.caffe.net.ConversionContext` (``ctx.path``, ``ctx.error(layer, reason)``, the caffemodel
blobs through ``ctx.weights_of`` / ``ctx.blob_array`` / ``ctx.bias_term``). A new layer type is one function
here, registered with ``@LAYERS.register("TypeName")``; weights leave in the layouts of :mod:`converters.graph`.
A function may return a list of nodes instead of one (SPP: its poolings, flattens and concat), the one carrying
the weights named after the layer. Axis arguments count in Caffe's N, C, H, W numbering; the converter treats
every blob's first axis as the batch axis, so an option that would reach across it is refused by name.
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


def _axis_index(axis, shape, layer, ctx, *, allow_end=False, batch=False):
    """Index into a batch-less shape tuple of a Caffe axis (N, C, H, W numbering; negative from the end);
    ``batch``: the batch axis 0 is allowed too (a layer whose Keras form may change the batch size)."""
    rank = len(shape) + 1
    canonical = axis + rank if axis < 0 else axis
    upper = rank if allow_end else rank - 1
    if not (0 if batch else 1) <= canonical <= upper:
        reason = "" if batch else " (the batch axis cannot be used)"
        raise ctx.error(layer, f"axis {axis} is out of range for a {rank}-D blob{reason}")
    return canonical


def _product_or_none(dims):
    return None if any(dim is None for dim in dims) else math.prod(dims)


def _sum_or_none(values):
    values = list(values)
    return None if any(value is None for value in values) else sum(values)


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


def _same_shape(layer, inputs, ctx, op, attrs=None, weights=None):
    """A node whose one top has the shape of its one bottom."""
    _need_bottoms(layer, inputs, 1, ctx)
    return _node(layer, op, attrs or {}, weights), [inputs[0]]


# -------------------------------------------------------------------------------------- convolutions

def _conv_param_axes(param, layer, ctx, field, default, spatial_axes, *, hw=True):
    """One value per spatial axis of a ConvolutionParameter field (as Caffe's BaseConvolutionLayer reads it):
    the repeated ``field`` given once or once per spatial axis, ``default`` when absent (None: required), or,
    for 2-D convolutions only, its _h/_w pair."""
    what = field.split("_")[0]
    h_field, w_field = f"{what}_h", f"{what}_w"
    values = list(getattr(param, field))
    if hw and (param.HasField(h_field) or param.HasField(w_field)):
        if spatial_axes != 2:
            raise ctx.error(layer, f"{h_field}/{w_field} on a convolution with {spatial_axes} spatial axes: Caffe "
                                   "takes them for 2-D convolutions only")
        if values:
            raise ctx.error(layer, f"{what} is given both as {field} and as {h_field}/{w_field}")
        return (getattr(param, h_field), getattr(param, w_field))
    if not values:
        if default is None:
            raise ctx.error(layer, f"no {what} size is given")
        return (default,) * spatial_axes
    if len(values) == 1:
        return (values[0],) * spatial_axes
    if len(values) == spatial_axes:
        return tuple(values)
    raise ctx.error(layer, f"{field} is given {len(values)} times for {spatial_axes} spatial axes (Caffe takes one "
                           "value, or one per spatial axis)")


def _convolution_node(layer, inputs, ctx, transposed):
    """Caffe's N-D (De)Convolution with 1, 2 or 3 spatial axes: those after the channel axis ``axis``. The axes
    between the batch and the channel axis (``axis`` > 1) are more samples to Caffe (attrs['axis'])."""
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.convolution_param
    rank = len(inputs[0]) + 1
    channel_axis = _caffe_axis(param.axis, rank, layer, ctx)
    if channel_axis == 0:
        raise ctx.error(layer, f"axis {param.axis} makes the batch axis the channel axis (Caffe would convolve the "
                               "whole batch as one sample of N channels), which is not supported")
    lead, shape = tuple(inputs[0][:channel_axis - 1]), tuple(inputs[0][channel_axis - 1:])
    if None in lead:
        raise ctx.error(layer, f"axis {param.axis}: the axes before the channel axis, {lead}, must have known sizes")
    spatial_axes = len(shape) - 1
    if not 1 <= spatial_axes <= 3:
        raise ctx.error(layer, f"{spatial_axes} spatial axes after channel axis {channel_axis} of a {rank}-D input: "
                               "1-D, 2-D and 3-D convolutions are supported")
    bias_term = ctx.bias_term(layer, param)
    refs = ctx.weights_of(layer, {1 + bias_term})
    kernel = _conv_param_axes(param, layer, ctx, "kernel_size", None if refs is None else 0, spatial_axes)
    if not any(kernel) and refs is not None and len(refs[0].shape) == 2 + spatial_axes:
        kernel = tuple(refs[0].shape[2:])  # an embedded layer without its params
    stride = _conv_param_axes(param, layer, ctx, "stride", 1, spatial_axes)
    pad = _conv_param_axes(param, layer, ctx, "pad", 0, spatial_axes)
    dilation = _conv_param_axes(param, layer, ctx, "dilation", 1, spatial_axes, hw=False)
    filters = param.num_output
    if not filters and refs is not None and refs[0].shape:
        filters = refs[0].shape[1 if transposed else 0] * (param.group if transposed else 1)
    group = param.group
    channels = shape[0]
    if min(*kernel, *stride, *dilation, filters, group) < 1 or min(pad) < 0:
        raise ctx.error(layer, f"invalid parameters: num_output {filters}, kernel {kernel}, stride {stride}, "
                               f"pad {pad}, dilation {dilation}, group {group}")
    if filters % group or (channels is not None and channels % group):
        raise ctx.error(layer, f"group {group} does not divide the {channels} input channels and the {filters} "
                               "outputs")
    if transposed:
        spatial = tuple(None if size is None else stride[i] * (size - 1) + dilation[i] * (kernel[i] - 1) + 1
                        - 2 * pad[i] for i, size in enumerate(shape[1:]))
    else:
        spatial = tuple(conv_output_size(size, kernel[i], stride[i], (pad[i], pad[i]), dilation[i])
                        for i, size in enumerate(shape[1:]))
    if any(size is not None and size < 1 for size in spatial):
        raise ctx.error(layer, f"output would be empty ({spatial}) for input {shape}")
    weights = {}
    if refs is not None:
        cin = None if channels is None else channels // group
        if transposed:  # Caffe deconv weight (cin, cout/g, k...) -> (k..., cout/g, cin)
            blob = ctx.blob_array(layer, refs, 0, (channels, filters // group) + kernel)
        else:           # Caffe conv weight (cout, cin/g, k...) -> (k..., cin/g, cout)
            blob = ctx.blob_array(layer, refs, 0, (filters, cin) + kernel)
        if spatial_axes == 1:  # run as a 2-D one of width 1
            blob = blob[..., None]
        weights["kernel"] = blob.transpose(*range(2, blob.ndim), 1, 0)
        if bias_term:
            weights["bias"] = ctx.blob_array(layer, refs, 1, (filters,))
    if spatial_axes == 1:
        kernel, stride, pad, dilation = kernel + (1,), stride + (1,), pad + (0,), dilation + (1,)
    attrs = {"filters": filters, "kernel": kernel, "strides": stride,
             "pads": tuple(side for size in pad for side in (size, size)), "dilation": dilation, "groups": group,
             "use_bias": bias_term}
    if channel_axis != 1:
        attrs["axis"] = channel_axis
    return _node(layer, "deconv" if transposed else "conv", attrs, weights), [lead + (filters,) + spatial]


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
    method = {param.MAX: "max", param.AVE: "avg", param.STOCHASTIC: "stochastic"}[param.pool]
    if param.global_pooling and (_pool_param_pair(param, layer, ctx, "pad", "pad_h", "pad_w", 0, "pad") != (0, 0)
                                 or _pool_param_pair(param, layer, ctx, "stride", "stride_h", "stride_w", 1,
                                                     "stride") != (1, 1)):
        raise ctx.error(layer, "global_pooling takes only pad 0 and stride 1 (as Caffe checks)")
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
    if method == "stochastic" and any(pad):
        raise ctx.error(layer, f"STOCHASTIC pooling with pad {pad}: Caffe implements padding only for MAX and AVE")
    attrs.update(kernel=kernel, strides=stride, pads=(pad[0], pad[0], pad[1], pad[1]))
    spatial = tuple(pool_output_size(size, kernel[i], stride[i], (pad[i], pad[i]), rounding)
                    for i, size in enumerate(shape[1:]))
    if any(size is not None and size < 1 for size in spatial):
        raise ctx.error(layer, f"output would be empty ({spatial}) for input {shape}")
    if rounding == "ceil" and method != "stochastic":  # an empty STOCHASTIC window is 0 in Caffe
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
    axis = _axis_index(layer.softmax_param.axis, inputs[0], layer, ctx, batch=True)  # 0: across the batch
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


def _caffe_axis(axis, rank, layer, ctx, what="axis"):
    """Caffe's CanonicalAxisIndex: ``axis`` (negative from the end) as 0 .. rank - 1, batch axis included."""
    canonical = axis + rank if axis < 0 else axis
    if not 0 <= canonical < rank:
        raise ctx.error(layer, f"{what} {axis} is out of range for a {rank}-D blob")
    return canonical


def _scale_or_bias_node(layer, inputs, ctx, op):
    """Caffe Scale / Bias. One bottom: a learned blob of the shape of the bottom's axes [axis, axis + num_axes)
    (num_axes 0: a scalar; -1: to the end). Two bottoms: the second is the factor (Scale) or the addend (Bias),
    its shape equal to the first's from ``axis`` on. On axis 0 the blob's (or second bottom's) first axis is the
    batch axis: a learned blob must have size 1 there (one value for every sample), a second bottom is per
    sample (the squeeze-and-excitation gate: (N, C) times (N, C, H, W))."""
    _need_bottoms(layer, inputs, (1, 2), ctx)
    param = layer.scale_param if op == "scale" else layer.bias_param
    shape = inputs[0]
    rank = len(shape) + 1
    axis = _caffe_axis(param.axis, rank, layer, ctx)
    if len(inputs) == 2:
        other = tuple(inputs[1])
        if axis != 0:
            raise ctx.error(layer, f"a second bottom on axis {param.axis}: Caffe lines its FIRST axis up with axis "
                                   f"{axis} of bottom '{layer.bottom[0]}', but the converter treats the first axis of "
                                   "every blob as the batch; only axis 0 is supported with two bottoms (e.g. an "
                                   "(N, C) gate times (N, C, H, W) features)")
        mismatch = next((index for index, (a, b) in enumerate(zip(other, shape))
                         if a is not None and b is not None and a != b), None)
        if len(other) + 1 > rank or mismatch is not None:
            got, want = (f"(N, {', '.join(map(str, dims))})" for dims in (other, shape))
            why = (f"its {len(other) + 1} axes exceed the {rank} of bottom '{layer.bottom[0]}'" if mismatch is None
                   else f"its axis {mismatch + 1} has size {other[mismatch]}, not {shape[mismatch]}")
            fix = (f" Flatten or Reshape the second bottom to (N, {', '.join(map(str, other[:mismatch]))}) first "
                   "(Flatten makes an (N, C, 1, 1) gate (N, C))" if mismatch else "")
            raise ctx.error(layer, f"bottom '{layer.bottom[1]}' has shape {got} and bottom '{layer.bottom[0]}' {want}. "
                                   "BVLC Caffe refuses this too: its ScaleLayer/BiasLayer::Reshape checks every axis "
                                   "of the second bottom against the first's from axis 0 on, exactly (no "
                                   f"broadcasting), and {why}.{fix}")
        axis, num_axes, axes = 1, len(other), other  # the batch axes together, the rest from axis 1
        blob_axes = (1,) + axes  # a Scale's own bias blob spans the second bottom's axes, batch axis included
    else:
        num_axes = param.num_axes
        if num_axes < -1:
            raise ctx.error(layer, f"num_axes must be -1 or more, got {num_axes}")
        end = rank if num_axes == -1 else axis + num_axes
        if end > rank:
            raise ctx.error(layer, f"axis {axis} + num_axes {num_axes} exceed the input rank {rank}")
        if num_axes == 0:
            axis, axes, blob_axes = 1, (), ()  # a scalar (Caffe sets axis 0: the same)
        elif axis == 0:
            axes = tuple(shape[:end - 1])
            blob_axes = (1,) + axes
            axis, num_axes = 1, -1 if num_axes == -1 else num_axes - 1
        else:
            axes = blob_axes = tuple(shape[axis - 1:end - 1])
    has_bias = op == "bias" or ctx.bias_term(layer, param)
    names = [] if len(inputs) == 2 and op == "scale" else ["gamma" if op == "scale" else "beta"]
    if op == "scale" and has_bias:
        names.append("beta")
    if len(inputs) == 2 and op == "bias":
        names = []
    refs = ctx.weights_of(layer, {len(names)}) if names else None
    weights = {}
    if refs is not None:
        for index, name in enumerate(names):
            actual = tuple(refs[index].shape)
            if len(blob_axes) > len(axes) and not refs[index].legacy and len(actual) == len(blob_axes) \
                    and actual[0] != 1:
                raise ConversionError(f"blob {index} has shape {actual}: on axis 0 its first axis is the batch axis, "
                                      f"of size {actual[0]}; only 1 (one value for every sample) is supported",
                                      path=ctx.weight_path, layer=layer.name, layer_type=layer.type)
            array = ctx.blob_array(layer, refs, index, blob_axes)
            weights[name] = array.reshape(array.shape[len(blob_axes) - len(axes):])
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
    axis = _axis_index(axis_value, inputs[0], layer, ctx, batch=True)  # 0: the samples of every bottom in turn
    if any(len(shape) != len(inputs[0]) for shape in inputs):
        raise ctx.error(layer, f"bottoms have different ranks: {inputs}")
    for index in range(len(inputs[0])):
        if index != axis - 1 and len({shape[index] for shape in inputs} - {None}) > 1:
            raise ctx.error(layer, f"bottoms differ on axis {index + 1}, which is not the concatenation axis {axis}: "
                                   f"{inputs}")
    out = list(inputs[0])
    if axis:
        out[axis - 1] = _sum_or_none(shape[axis - 1] for shape in inputs)
    return _node(layer, "concat", {"axis": axis}), [tuple(out)]


@LAYERS.register("Slice")
def slice_(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.slice_param
    axis_value = param.slice_dim if param.HasField("slice_dim") else param.axis
    axis = _axis_index(axis_value, inputs[0], layer, ctx, batch=True)  # 0: the batch in parts (sizes at run time)
    points = list(param.slice_point)
    size = inputs[0][axis - 1] if axis else None
    tops = len(layer.top)
    if points and len(points) != tops - 1:
        raise ctx.error(layer, f"{len(points)} slice points for {tops} tops")
    if points:
        bounds = [0] + points + [size]
        if any(lo >= hi for lo, hi in zip([0] + points, points)) or (size is not None and points[-1] > size):
            raise ctx.error(layer, f"slice points {points} must rise from above 0 to at most the axis size {size} "
                                   "(as Caffe checks)")
        sizes = [None if hi is None else hi - lo for lo, hi in zip(bounds, bounds[1:])]
    else:
        if size is not None and size % tops:
            raise ctx.error(layer, f"axis size {size} does not split into {tops} equal parts")
        sizes = [None if size is None else size // tops] * tops
    shapes = []
    for part in sizes:
        shape = list(inputs[0])
        if axis:
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
    axis = _axis_index(param.axis, shape, layer, ctx, batch=True)  # 0: the batch cropped too
    count = len(shape) + 1 - axis
    offsets = list(param.offset)
    if len(offsets) == 0:
        offsets = [0] * count
    elif len(offsets) == 1:
        offsets = offsets * count
    elif len(offsets) != count:
        raise ctx.error(layer, f"{len(offsets)} offsets for the {count} cropped axes")
    out = tuple(shape[:max(axis - 1, 0)]) + tuple(reference[max(axis - 1, 0):])
    for index, offset in enumerate(offsets[1:] if axis == 0 else offsets):
        big, small = shape[max(axis - 1, 0) + index], reference[max(axis - 1, 0) + index]
        if big is not None and small is not None and offset + small > big:
            raise ctx.error(layer, f"crop offset {offset} + size {small} exceeds the input size {big}")
    return _node(layer, "crop", {"axis": axis, "offsets": offsets}), [out]


@LAYERS.register("Flatten")
def flatten(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.flatten_param
    shape = inputs[0]
    axis = _axis_index(param.axis, shape, layer, ctx, batch=True)  # 0: the batch axis merged with the next ones
    end_axis = _axis_index(param.end_axis, shape, layer, ctx, batch=True)
    if end_axis < axis:
        raise ctx.error(layer, f"end_axis {param.end_axis} comes before axis {param.axis}")
    if axis == 0:
        out = tuple(shape[end_axis:])
    else:
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


# ------------------------------------------------------------------ more BVLC layers: neurons, reductions...

def _same_shape_neuron(op, attrs_of=None):
    """Register-ready converter of a one-bottom, one-top elementwise layer (``attrs_of(layer, ctx)``)."""
    def convert(layer, inputs, ctx):
        return _same_shape(layer, inputs, ctx, op, attrs_of(layer, ctx) if attrs_of else {})
    return convert


LAYERS.register("BNLL")(_same_shape_neuron("bnll"))
LAYERS.register("Threshold")(_same_shape_neuron(
    "threshold", lambda layer, ctx: {"threshold": layer.threshold_param.threshold}))
LAYERS.register("Swish")(_same_shape_neuron("swish", lambda layer, ctx: {"beta": layer.swish_param.beta}))


@LAYERS.register("Clip")
def clip(layer, inputs, ctx):
    param = layer.clip_param
    missing = [field for field in ("min", "max") if not param.HasField(field)]
    if missing:
        raise ctx.error(layer, f"clip_param needs {' and '.join(missing)} (required fields)")
    return _same_shape(layer, inputs, ctx, "clip", {"min": param.min, "max": param.max})


def _exp_or_log(layer, inputs, ctx, op):
    param = layer.exp_param if op == "exp" else layer.log_param
    base = float(np.float32(param.base))
    if base != -1 and not base > 0:
        raise ctx.error(layer, f"base must be strictly positive (or -1 for e), got {param.base}")
    if op == "log" and base == 1:
        raise ctx.error(layer, "base 1 has no logarithm (1 / log(1) is infinite)")
    return _same_shape(layer, inputs, ctx, op, {"base": param.base, "scale": param.scale, "shift": param.shift})


@LAYERS.register("Exp")
def exp_layer(layer, inputs, ctx):
    return _exp_or_log(layer, inputs, ctx, "exp")


@LAYERS.register("Log")
def log_layer(layer, inputs, ctx):
    return _exp_or_log(layer, inputs, ctx, "log")


@LAYERS.register("MVN")
def mvn(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    if len(inputs[0]) > 3:
        raise ctx.error(layer, f"input has {len(inputs[0]) + 1} dimensions; Caffe's MVN takes at most 4")
    param = layer.mvn_param
    attrs = {"normalize_variance": bool(param.normalize_variance), "across_channels": bool(param.across_channels),
             "eps": param.eps}
    return _node(layer, "mvn", attrs), [inputs[0]]


_REDUCTIONS = {1: "sum", 2: "asum", 3: "sumsq", 4: "mean"}


@LAYERS.register("Reduction")
def reduction(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.reduction_param
    shape = inputs[0]
    axis = _caffe_axis(param.axis, len(shape) + 1, layer, ctx)
    attrs = {"operation": _REDUCTIONS[param.operation], "axis": axis, "coeff": param.coeff}
    return _node(layer, "reduction", attrs), [tuple(shape[:max(axis - 1, 0)])]


@LAYERS.register("ArgMax")
def argmax(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.argmax_param
    shape = inputs[0]
    top_k = param.top_k
    if top_k < 1:
        raise ctx.error(layer, f"top_k must be 1 or more, got {top_k}")
    if param.HasField("axis"):
        axis = _axis_index(param.axis, shape, layer, ctx, batch=True)  # 0: top_k "samples" out of the batch
        size = shape[axis - 1] if axis else None
        if size is not None and top_k > size:
            raise ctx.error(layer, f"top_k {top_k} exceeds the {size} entries of axis {axis}")
        out = list(shape)
        if axis:
            out[axis - 1] = top_k
        out = tuple(out)
    else:
        axis = None
        size = _product_or_none(shape)
        if size is not None and top_k > size:
            raise ctx.error(layer, f"top_k {top_k} exceeds the {size} values of a sample")
        out = (2 if param.out_max_val else 1, top_k) + (1,) * (max(len(shape) + 1, 3) - 3)
    attrs = {"top_k": top_k, "out_max_val": bool(param.out_max_val), "axis": axis}
    return _node(layer, "argmax", attrs), [out]


@LAYERS.register("Tile")
def tile(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.tile_param
    if not param.HasField("tiles") or param.tiles < 1:
        raise ctx.error(layer, "tile_param needs tiles, a positive number")
    shape = inputs[0]
    axis = _axis_index(param.axis, shape, layer, ctx, batch=True)  # 0: the batch repeated
    out = list(shape)
    if axis:
        out[axis - 1] = None if shape[axis - 1] is None else shape[axis - 1] * param.tiles
    return _node(layer, "tile", {"axis": axis, "tiles": param.tiles}), [tuple(out)]


@LAYERS.register("Embed")
def embed(layer, inputs, ctx):
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.embed_param
    units, input_dim = param.num_output, param.input_dim
    refs = ctx.weights_of(layer, {1 + bool(param.bias_term)})
    if refs is not None and len(refs[0].shape) == 2 and not (units and input_dim):
        input_dim, units = input_dim or refs[0].shape[0], units or refs[0].shape[1]
    if units < 1 or input_dim < 1:
        raise ctx.error(layer, f"num_output ({units}) and input_dim ({input_dim}) must be positive")
    weights = {}
    if refs is not None:
        weights["kernel"] = ctx.blob_array(layer, refs, 0, (input_dim, units))
        if param.bias_term:
            weights["bias"] = ctx.blob_array(layer, refs, 1, (units,))
    attrs = {"units": units, "input_dim": input_dim, "use_bias": bool(param.bias_term)}
    return _node(layer, "embed", attrs, weights), [tuple(inputs[0]) + (units,)]


@LAYERS.register("Parameter")
def parameter(layer, inputs, ctx):
    """A learned blob as a top. Shaped (1, ...): the blob is repeated over the batch (the converter's first axis),
    which the node takes from a graph input (its only input). Any other shape, e.g. (4, 3) or (2, C, H, W): the
    blob itself, its first axis the output's batch axis whatever the input batch (as Caffe's Parameter)."""
    if inputs:
        raise ctx.error(layer, f"takes no bottoms, got {len(inputs)}")
    if len(layer.top) != 1:
        raise ctx.error(layer, f"must have exactly one top, got {len(layer.top)}")
    shape = tuple(layer.parameter_param.shape.dim)
    if not shape or min(shape) < 1:
        raise ctx.error(layer, f"a Parameter of shape {shape}: a blob with at least one axis and no empty one is "
                               "supported")
    refs = ctx.weights_of(layer, {1})
    weights = {}
    whole = shape[0] != 1
    if refs is not None:
        value = ctx.blob_array(layer, refs, 0, shape)
        weights["value"] = value if whole else value.reshape(shape[1:])
    reference = next(iter(getattr(ctx, "graph_inputs", None) or {}), None)
    node = Node(name=layer.name, op="batched_parameter" if whole else "parameter",
                inputs=[] if reference is None else [reference], outputs=list(layer.top),
                attrs={"shape": shape if whole else shape[1:]}, weights=weights)
    return node, [shape[1:]]


@LAYERS.register("SPP")
def spp(layer, inputs, ctx):
    """Caffe's spatial pyramid pooling as the nodes Caffe builds it of: per level i, a pooling into 2^i x 2^i
    bins (kernel ceil(H / 2^i), pad (kernel * 2^i - H + 1) // 2, stride = kernel), flattened; concatenated.
    One level: that pooling alone, not flattened. Needs a fixed input size."""
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.spp_param
    shape = inputs[0]
    if len(shape) != 3:
        raise ctx.error(layer, f"input has {len(shape) + 1} dimensions, SPP needs 4")
    if param.pyramid_height < 1:
        raise ctx.error(layer, "pyramid_height must be 1 or more")
    channels, height, width = shape
    if height is None or width is None:
        raise ctx.error(layer, "SPP's pooling windows depend on the input size: give a fixed input size "
                               "(input_shape)")
    method = {0: "max", 1: "avg", 2: "stochastic"}[param.pool]
    nodes, pieces, total = [], [], 0
    for level in range(param.pyramid_height):
        bins = 2 ** level
        kernel = (-(-height // bins), -(-width // bins))
        pad = ((kernel[0] * bins - height + 1) // 2, (kernel[1] * bins - width + 1) // 2)
        if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
            raise ctx.error(layer, f"level {level}: pad {pad} is not below the kernel {kernel} for a "
                                   f"{height}x{width} input (Caffe refuses it)")
        if method == "stochastic" and any(pad):
            raise ctx.error(layer, f"level {level} needs pad {pad}: STOCHASTIC pooling takes no padding")
        spatial = tuple(pool_output_size(size, kernel[i], kernel[i], (pad[i], pad[i]), "ceil")
                        for i, size in enumerate((height, width)))
        attrs = {"method": method, "global": False, "rounding": "ceil", "avg_divisor": "padded", "kernel": kernel,
                 "strides": kernel, "pads": (pad[0], pad[0], pad[1], pad[1])}
        if param.pyramid_height == 1:
            return _node(layer, "pool", attrs), [(channels,) + spatial]
        pooled, flat = f"{layer.name}/pool{level}", f"{layer.name}/flatten{level}"
        nodes.append(Node(name=pooled, op="pool", inputs=list(layer.bottom), outputs=[pooled], attrs=attrs))
        nodes.append(Node(name=flat, op="flatten", inputs=[pooled], outputs=[flat], attrs={"axis": 1, "end_axis": 3}))
        pieces.append(flat)
        total = None if channels is None or total is None else total + channels * spatial[0] * spatial[1]
    nodes.append(Node(name=layer.name, op="concat", inputs=pieces, outputs=list(layer.top), attrs={"axis": 1}))
    for node in nodes:
        node.source_type = layer.type
    return nodes, [(total,)]


# ------------------------------------------------------------------------------------- fork layers
# The layers of the Caffe forks published models need, read with the fields the schema gives them (see
# converters/caffe/schema.py for the forks and their numbering); each follows its fork's .cpp.

@LAYERS.register("Interp")
def interp(layer, inputs, ctx):
    """PSPNet/DeepLab's Interp (interp_param): the output size by PSPNet's rule, which reads, in this order, a
    shrink_factor alone, a zoom_factor alone, height and width, then shrink_factor and zoom_factor together;
    pad_beg/pad_end (<= 0) crop the input first."""
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.interp_param
    shape = inputs[0]
    if len(shape) != 3:
        raise ctx.error(layer, f"the input must be (N, C, H, W), got {len(shape) + 1} axes")
    if param.pad_beg > 0 or param.pad_end > 0:
        raise ctx.error(layer, f"pad_beg {param.pad_beg} and pad_end {param.pad_end} must be <= 0 (cropping), as "
                               "the fork requires")
    zoom, shrink = param.HasField("zoom_factor"), param.HasField("shrink_factor")
    attrs = {"zoom": 1, "shrink": 1, "size": None, "pad_beg": param.pad_beg, "pad_end": param.pad_end}
    if zoom != shrink or (zoom and shrink and not (param.HasField("height") and param.HasField("width"))):
        attrs["zoom"] = param.zoom_factor if zoom else 1
        attrs["shrink"] = param.shrink_factor if shrink else 1
        if min(attrs["zoom"], attrs["shrink"]) < 1:
            raise ctx.error(layer, f"zoom_factor and shrink_factor must be positive, got {param.zoom_factor} and "
                                   f"{param.shrink_factor}")
    elif param.HasField("height") and param.HasField("width"):
        attrs["size"] = (param.height, param.width)
    else:
        raise ctx.error(layer, "gives no output size (zoom_factor, shrink_factor, or height and width)")
    spatial = []
    for axis, size in enumerate(shape[1:]):
        cropped = None if size is None else size + param.pad_beg + param.pad_end
        if cropped is not None and cropped < 1:
            raise ctx.error(layer, f"pad_beg {param.pad_beg} and pad_end {param.pad_end} crop all of {size}")
        if attrs["size"] is not None:
            spatial.append(attrs["size"][axis])
        else:
            spatial.append(None if cropped is None else ((cropped - 1) // attrs["shrink"]) * attrs["zoom"] + 1)
    if any(size is not None and size < 1 for size in spatial):
        raise ctx.error(layer, f"the output size {tuple(spatial)} must be positive")
    return _node(layer, "interp", attrs), [(shape[0], *spatial)]


@LAYERS.register("ConvolutionDepthwise", "DepthwiseConvolution")
def depthwise_convolution(layer, inputs, ctx):
    """A convolution with one filter per input channel (groups = channels = outputs): the MobileNet ports'
    ConvolutionDepthwise (weights (C, 1, kh, kw); it reads neither num_output nor group) and its other name
    DepthwiseConvolution. A num_output or group other than the channel count is refused."""
    _need_bottoms(layer, inputs, 1, ctx)
    channels = inputs[0][0] if inputs[0] else None
    refs = ctx.blobs.get(layer.name) if ctx.blobs is not None else None
    if channels is None and refs:
        channels = refs[0].shape[0]
    if channels is None:
        raise ctx.error(layer, "the number of input channels must be known (a depthwise convolution has one filter "
                               "per channel)")
    param = layer.convolution_param
    for field in ("num_output", "group"):
        if param.HasField(field) and getattr(param, field) != channels:
            raise ctx.error(layer, f"{field} {getattr(param, field)} differs from the {channels} input channels "
                                   "(a depthwise convolution has one filter per channel)")
    depthwise = type(layer)()
    depthwise.CopyFrom(layer)
    depthwise.convolution_param.num_output = channels
    depthwise.convolution_param.group = channels
    return _convolution_node(depthwise, inputs, ctx, transposed=False)


@LAYERS.register("ReLU6")
def relu6(layer, inputs, ctx):
    """min(max(x, 0), 6) (the MobileNet-v2 ports' ReLU6, which reads no parameter)."""
    if layer.relu_param.negative_slope:
        raise ctx.error(layer, f"negative_slope {layer.relu_param.negative_slope}: ReLU6 has no negative slope")
    return _same_shape(layer, inputs, ctx, "clip", {"min": 0.0, "max": 6.0})


@LAYERS.register("ShuffleChannel")
def shuffle_channel(layer, inputs, ctx):
    """ShuffleNet's channel shuffle (farmingyard/ShuffleNet's ShuffleChannel, shuffle_channel_param.group)."""
    _need_bottoms(layer, inputs, 1, ctx)
    group = layer.shuffle_channel_param.group
    channels = inputs[0][0] if inputs[0] else None
    if group < 1 or (channels is not None and channels % group):
        raise ctx.error(layer, f"group {group} does not divide the {channels} channels")
    return _node(layer, "shuffle_channel", {"group": group}), [inputs[0]]


@LAYERS.register("Axpy")
def axpy(layer, inputs, ctx):
    """SENet's Axpy: bottoms (a, x, y) -> a * x + y, ``a`` one value per sample and channel."""
    _need_bottoms(layer, inputs, 3, ctx)
    scale, x, y = inputs
    if len(x) < 1 or len(scale) not in (1, 3) or len(scale) == 3 and tuple(scale[1:]) != (1, 1):
        raise ctx.error(layer, f"the first bottom must be (N, C) or (N, C, 1, 1), got (N, {', '.join(map(str, scale))})"
                               f" for x of shape (N, {', '.join(map(str, x))})")
    if None not in (scale[0], x[0]) and scale[0] != x[0]:
        raise ctx.error(layer, f"{scale[0]} scales for {x[0]} channels")
    if len(x) != len(y) or any(a is not None and b is not None and a != b for a, b in zip(x, y)):
        raise ctx.error(layer, f"the second and third bottoms differ in shape: {x} and {y}")
    return _node(layer, "axpy", {}), [x]


@LAYERS.register("Permute")
def permute(layer, inputs, ctx):
    """The SSD fork's Permute: the axes in ``order``, the ones it leaves out following in their order."""
    _need_bottoms(layer, inputs, 1, ctx)
    full = (None,) + tuple(inputs[0])
    order = list(layer.permute_param.order)
    if any(axis >= len(full) for axis in order) or len(set(order)) != len(order):
        raise ctx.error(layer, f"order {order} is no permutation of the {len(full)} axes")
    order += [axis for axis in range(len(full)) if axis not in order]
    if order[0] != 0:
        raise ctx.error(layer, f"order {order} moves the batch axis, which is not supported")
    return _node(layer, "permute", {"order": order}), [tuple(full[axis] for axis in order[1:])]


@LAYERS.register("Normalize")
def normalize(layer, inputs, ctx):
    """The SSD fork's L2 Normalize (norm_param), with its learnt ``scale`` blob."""
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.norm_param
    shape = inputs[0]
    if not shape:
        raise ctx.error(layer, "the input needs a channel axis")
    refs = ctx.weights_of(layer, {1})
    weights = {}
    if refs is not None:
        if param.channel_shared:
            if refs[0].count != 1:
                raise ConversionError(f"blob 0 (the scale) has shape {refs[0].shape}, channel_shared implies one "
                                      "value", path=ctx.weight_path, layer=layer.name, layer_type=layer.type)
            weights["scale"] = refs[0].array().reshape(1)
        else:
            weights["scale"] = ctx.blob_array(layer, refs, 0, (shape[0],))
    attrs = {"across_spatial": bool(param.across_spatial), "channel_shared": bool(param.channel_shared),
             "eps": float(param.eps)}
    return _node(layer, "normalize", attrs, weights), [shape]


def _prior_aspect_ratios(param):
    """The SSD fork's list of ratios: 1, then each ratio not yet in it (to 1e-6) and, with flip, its inverse."""
    ratios = [1.0]
    for ratio in param.aspect_ratio:
        ratio = float(np.float32(ratio))
        if all(abs(ratio - known) >= 1e-6 for known in ratios):
            ratios.append(ratio)
            if param.flip:
                ratios.append(float(np.float32(1.0 / ratio)))
    return ratios


def _optional_pair(param, layer, ctx, field, h_field, w_field, what):
    """(h, w) of a PriorBox size given as ``field`` or as its _h/_w pair (not both), or None."""
    if param.HasField(h_field) or param.HasField(w_field):
        if param.HasField(field):
            raise ctx.error(layer, f"either {field} or {h_field}/{w_field} should be given, not both")
        value = (getattr(param, h_field), getattr(param, w_field))
    elif param.HasField(field):
        value = (getattr(param, field),) * 2
    else:
        return None
    if min(value) <= 0:
        raise ctx.error(layer, f"{what} {value} must be positive")
    return value


@LAYERS.register("PriorBox")
def prior_box(layer, inputs, ctx):
    """The SSD fork's PriorBox: the default boxes of a feature map (bottom 0) over the image (bottom 1)."""
    _need_bottoms(layer, inputs, (1, 2), ctx)
    param = layer.prior_box_param
    feature = inputs[0]
    if len(feature) != 3:
        raise ctx.error(layer, f"the feature map must be (N, C, H, W), got {len(feature) + 1} axes")
    if not param.min_size or min(param.min_size) <= 0:
        raise ctx.error(layer, f"min_size must be given and positive, got {list(param.min_size)}")
    min_sizes = [float(size) for size in param.min_size]
    max_sizes = [float(size) for size in param.max_size]
    if max_sizes and (len(max_sizes) != len(min_sizes)
                      or any(high <= low for low, high in zip(param.min_size, param.max_size))):
        raise ctx.error(layer, f"max_size {list(param.max_size)} must give one size greater than each min_size "
                               f"{list(param.min_size)}")
    variances = [float(value) for value in param.variance] or [0.1]
    if len(variances) not in (1, 4) or min(variances) <= 0:
        raise ctx.error(layer, f"variance must be one or four positive values, got {list(param.variance)}")
    img_size = _optional_pair(param, layer, ctx, "img_size", "img_h", "img_w", "the image size")
    step = _optional_pair(param, layer, ctx, "step", "step_h", "step_w", "the step")
    if img_size is None and len(inputs) < 2:
        raise ctx.error(layer, "without img_size (or img_h/img_w) the image must be the second bottom")
    ratios = _prior_aspect_ratios(param)
    priors = len(ratios) * len(min_sizes) + len(max_sizes)
    attrs = {"min_sizes": min_sizes, "max_sizes": max_sizes, "aspect_ratios": ratios, "clip": bool(param.clip),
             "variances": variances, "img_size": img_size, "step": step, "offset": float(param.offset)}
    cells = _product_or_none(feature[1:])
    return _node(layer, "priorbox", attrs), [(2, None if cells is None else cells * priors * 4)]


_CODE_TYPES = {1: "corner", 2: "center_size", 3: "corner_size"}


@LAYERS.register("DetectionOutput")
def detection_output(layer, inputs, ctx):
    """The SSD fork's DetectionOutput (decoding, per-class NMS, keep_top_k) as a fixed-size head: ``rows`` rows
    per sample, keep_top_k (or, without it, what NMS can keep at most), padded (see converters/graph.py).
    Its visualisation and result files (visualize, save_output_param) change no output and are not made."""
    _need_bottoms(layer, inputs, 3, ctx)
    param = layer.detection_output_param
    if not param.HasField("num_classes") or param.num_classes < 1:
        raise ctx.error(layer, "num_classes must be given")
    loc, conf, priors = inputs
    if len(priors) != 2 or priors[0] != 2:
        raise ctx.error(layer, f"the third bottom must be PriorBox's (1, 2, priors * 4) blob, got (N, "
                               f"{', '.join(map(str, priors))})")
    classes = param.num_classes
    loc_classes = 1 if param.share_location else classes
    count = None if priors[1] is None else priors[1] // 4
    for name, shape, per_prior in (("location", loc, loc_classes * 4), ("confidence", conf, classes)):
        if count is not None and (shape[0] != count * per_prior or _product_or_none(shape) not in (None, shape[0])):
            raise ctx.error(layer, f"the {name} predictions (N, {', '.join(map(str, shape))}) do not hold "
                                   f"{per_prior} values for each of the {count} priors")
    nms = param.nms_param
    if nms.nms_threshold < 0 or not 0 < nms.eta <= 1:
        raise ctx.error(layer, f"nms_threshold {nms.nms_threshold} must be >= 0 and eta {nms.eta} in (0, 1]")
    if param.code_type not in _CODE_TYPES:
        raise ctx.error(layer, f"unknown code_type {param.code_type}")
    top_k = nms.top_k if nms.HasField("top_k") else -1
    foreground = classes - (1 if 0 <= param.background_label_id < classes else 0)
    if param.keep_top_k > -1:
        rows = param.keep_top_k
    elif count is None:
        raise ctx.error(layer, "without keep_top_k the number of detections depends on the number of priors, "
                               "unknown here: give a fixed input size (input_shape)")
    else:
        rows = foreground * (count if top_k < 0 else min(top_k, count))
    attrs = {"num_classes": classes, "share_location": bool(param.share_location),
             "background_label_id": param.background_label_id, "code_type": _CODE_TYPES[param.code_type],
             "variance_encoded_in_target": bool(param.variance_encoded_in_target),
             "confidence_threshold": (float(param.confidence_threshold) if param.HasField("confidence_threshold")
                                      else None),
             "nms_threshold": float(nms.nms_threshold), "eta": float(nms.eta), "top_k": top_k,
             "keep_top_k": param.keep_top_k, "rows": max(rows, 1)}
    return _node(layer, "detection_output", attrs), [(1, max(rows, 1), 7)]


@LAYERS.register("Upsample")
def upsample(layer, inputs, ctx):
    """The YOLOv3 ports' one-bottom Upsample: nearest neighbour by an integer ``scale`` (default 1 there).
    SegNet's two-bottom Upsample (max-unpooling by the pooling's indices) and its other fields are refused."""
    if len(inputs) == 2:
        raise ctx.error(layer, "SegNet's Upsample (max-unpooling with the indices of a pooling layer's second top) "
                               "is not supported")
    _need_bottoms(layer, inputs, 1, ctx)
    param = layer.upsample_param
    for field in ("scale_h", "scale_w", "pad_out_h", "pad_out_w", "upsample_h", "upsample_w"):
        if param.HasField(field):
            raise ctx.error(layer, f"{field} belongs to SegNet's two-bottom Upsample; a one-bottom Upsample takes "
                                   "only scale")
    scale = param.scale if param.HasField("scale") else 1
    shape = inputs[0]
    if scale < 1 or len(shape) != 3:
        raise ctx.error(layer, f"needs a positive scale and an (N, C, H, W) input, got scale {scale} and "
                               f"{len(shape) + 1} axes")
    out = (shape[0],) + tuple(None if size is None else size * scale for size in shape[1:])
    return _node(layer, "upsample", {"scale": (scale, scale)}), [out]


@LAYERS.register("ROIPooling")
def roi_pooling(layer, inputs, ctx):
    """Fast R-CNN's ROIPooling: bottoms (features, rois (R, 5)) -> (R, C, pooled_h, pooled_w)."""
    _need_bottoms(layer, inputs, 2, ctx)
    param = layer.roi_pooling_param
    data, rois = inputs
    if len(data) != 3:
        raise ctx.error(layer, f"the features must be (N, C, H, W), got {len(data) + 1} axes")
    if _product_or_none(rois) not in (None, 5):
        raise ctx.error(layer, f"each roi must hold 5 values (batch index, x1, y1, x2, y2), got {rois}")
    if param.pooled_h < 1 or param.pooled_w < 1:
        raise ctx.error(layer, f"pooled_h and pooled_w must be positive, got {param.pooled_h} and "
                               f"{param.pooled_w}")
    attrs = {"pooled": (param.pooled_h, param.pooled_w), "spatial_scale": float(param.spatial_scale)}
    return _node(layer, "roi_pool", attrs), [(data[0], param.pooled_h, param.pooled_w)]
