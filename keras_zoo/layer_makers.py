"""One function per Graph op making its Keras layer(s), registered in :data:`MAKERS`; Keras layer names.

A maker is ``make(node, inputs, name, initializer) -> [output tensors]``: the node, its input tensors (NHWC), the
Keras name of its layer and ``initializer(key, flattened=None)``, which gives the initializer of the node's weight
``key`` (``flattened``: the (H, W, C) shape a dense layer's input is flattened from). Every framework-specific
meaning is already explicit in the node's attributes (see converters/graph.py); the makers only map ops onto the
layers of :mod:`keras_zoo.layers` and Keras built-ins where those are exact.
"""

import re

import keras

from converters.errors import ConversionError
from converters.layer_table import LayerTable
from keras_zoo import layers as zoo_layers
from keras_zoo.layers import quad

MAKERS = LayerTable("op '{type}' is not supported by the Keras builder")


def keras_name(original):
    """A Keras-legal layer name for an original layer or blob name ('/' and other odd characters -> '_')."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", str(original)) or "_"


def node_error(graph, node, message):
    """The ConversionError naming ``graph``'s file, ``node`` and its layer type."""
    return ConversionError(message, path=graph.source or graph.name, layer=node.name,
                           layer_type=node.source_type or node.op)


def rank(tensor):
    return len(tensor.shape)


def channels_last_shape(nchw_shape):
    """(C, H, W...) without batch -> (H, W..., C)."""
    nchw_shape = tuple(nchw_shape)
    return nchw_shape if len(nchw_shape) <= 1 else (*nchw_shape[1:], nchw_shape[0])


def nchw_shape(tensor):
    """The shape of an NHWC tensor in channel-first order (batch first)."""
    shape = tuple(tensor.shape)
    return shape if len(shape) <= 2 else (shape[0], shape[-1], *shape[1:-1])


def _affine_axes(node, shape):
    """The dims of a Scale/Bias parameter: ``shape[axis:axis + num_axes]`` (num_axes -1: to the end)."""
    axis = node.attrs.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    num_axes = node.attrs.get("num_axes", 1)
    return tuple(shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes])


def affine_nchw_shape(node, shape):
    """The broadcast shape (without batch, channel-first) of a Scale/Bias parameter on a blob of NCHW ``shape``."""
    axis = node.attrs.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    axes = _affine_axes(node, shape)
    broadcast = [1] * len(shape)
    broadcast[axis:axis + len(axes)] = axes
    return tuple(broadcast[1:])


def conv_layer(node, name, initializer=None):
    """The Conv2D (Conv3D for a 3-D kernel) layer of a 'conv' node (initialized by ``initializer``, else the Keras
    defaults)."""
    a = node.attrs
    initializers = (dict(kernel_initializer=initializer("kernel"), bias_initializer=initializer("bias"))
                    if initializer else {})
    layer_class = zoo_layers.Conv3D if len(a["kernel"]) == 3 else zoo_layers.Conv2D
    return layer_class(a["filters"], a["kernel"], strides=a.get("strides", 1), pads=a.get("pads", 0),
                       dilation=a.get("dilation", 1), groups=a.get("groups", 1), use_bias=a.get("use_bias", True),
                       name=name, **initializers)


def lrn_layer(node, name):
    """The LRN layer of an 'lrn' node."""
    a = node.attrs
    return zoo_layers.LRN(a.get("size", 5), a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("k", 1.0),
                          region=a.get("region", "across"), name=name)


# what must agree between a weights file's layer and the model's layer of its name (port_weights checks):
# op -> (the layer the file's node makes, the config keys compared)
CONFIGURATION_CHECKS = {"conv": (conv_layer, ("kernel_size", "strides", "pads", "dilation")),
                        "lrn": (lrn_layer, ("size", "alpha", "beta", "k", "region"))}


def _as_2d(layer, x, name):
    """``layer`` (a 2-D convolution) on ``x``; a rank-3 x (N, L, C), a 1-D convolution's input, runs as
    (N, L, 1, C) with the kernel's width 1, and leaves as (N, L', F)."""
    if rank(x) != 3:
        return layer(x)
    y = layer(keras.layers.Reshape((-1, 1, x.shape[-1]), name=f"{name}_2d")(x))
    return keras.layers.Reshape((-1, y.shape[-1]), name=f"{name}_1d")(y)


def _on_channel_axis(node, x, name, convolve):
    """``convolve(x)`` with Caffe's channel axis ``attrs['axis']`` (default 1): for axis > 1 the axes between the
    batch and it join the batch first (N*A..., C, spatial...) and leave it after, (N, A..., F, spatial'...)."""
    axis = node.attrs.get("axis", 1)
    if axis == 1:
        return convolve(x)
    lead = nchw_shape(x)[1:axis]
    merged = zoo_layers.CaffeReshape((-1,), 0, axis, name=f"{name}_samples")(x)
    y = convolve(merged)
    return zoo_layers.CaffeReshape((-1, *lead), 0, 1, name=f"{name}_unsamples")(y)


@MAKERS.register("conv")
def _conv(node, inputs, name, initializer):
    layer = conv_layer(node, name, initializer)
    return [_on_channel_axis(node, inputs[0], name, lambda x: _as_2d(layer, x, name))]


@MAKERS.register("deconv")
def _deconv(node, inputs, name, initializer):
    a = node.attrs
    layer_class = zoo_layers.Deconv3D if len(a["kernel"]) == 3 else zoo_layers.Deconv2D
    layer = layer_class(a["filters"], a["kernel"], strides=a.get("strides", 1), crops=a.get("pads", 0),
                        dilation=a.get("dilation", 1), groups=a.get("groups", 1), use_bias=a.get("use_bias", True),
                        kernel_initializer=initializer("kernel"), bias_initializer=initializer("bias"), name=name)
    return [_on_channel_axis(node, inputs[0], name, lambda x: _as_2d(layer, x, name))]


@MAKERS.register("pool")
def _pool(node, inputs, name, initializer):
    a = node.attrs
    if a.get("method") == "stochastic":
        if any(quad(a.get("pads", 0))):
            raise ValueError("STOCHASTIC pooling takes no padding")
        return [zoo_layers.StochasticPool2D(a.get("kernel", 1), a.get("strides", 1), rounding=a.get("rounding", "ceil"),
                                            global_pool=a.get("global", False), name=name)(inputs[0])]
    return [zoo_layers.Pool2D(a.get("method", "max"), a.get("kernel", 1), a.get("strides", 1), pads=a.get("pads", 0),
                              rounding=a.get("rounding", "ceil"), avg_divisor=a.get("avg_divisor", "padded"),
                              global_pool=a.get("global", False), name=name)(inputs[0])]


@MAKERS.register("lrn")
def _lrn(node, inputs, name, initializer):
    return [lrn_layer(node, name)(inputs[0])]


@MAKERS.register("dense")
def _dense(node, inputs, name, initializer):
    a = node.attrs
    x = inputs[0]
    axis = a.get("axis", 1)
    axis = axis + rank(x) if axis < 0 else axis
    if not 1 <= axis < rank(x):
        raise ValueError(f"inner product from axis {a.get('axis')} of a rank-{rank(x)} input")
    if axis > 1:  # the axes before `axis` kept: Caffe's InnerProduct over the trailing axes
        return [zoo_layers.InnerProduct(a["units"], axis, use_bias=a.get("use_bias", True), name=name,
                                        kernel_initializer=initializer("kernel"),
                                        bias_initializer=initializer("bias"))(x)]
    flattened = tuple(x.shape[1:]) if rank(x) > 2 else None
    kernel_initializer = initializer("kernel", flattened)
    if flattened:
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    return [keras.layers.Dense(a["units"], use_bias=a.get("use_bias", True), name=name,
                               kernel_initializer=kernel_initializer, bias_initializer=initializer("bias"))(x)]


@MAKERS.register("relu")
def _relu(node, inputs, name, initializer):
    slope = float(node.attrs.get("negative_slope", 0.0))
    return [keras.layers.ReLU(negative_slope=slope, name=name)(inputs[0])]


@MAKERS.register("prelu")
def _prelu(node, inputs, name, initializer):
    x_rank = rank(inputs[0])
    shared = list(range(1, x_rank - 1)) + ([x_rank - 1] if node.attrs.get("channel_shared") else [])
    return [keras.layers.PReLU(alpha_initializer="zeros", shared_axes=shared or None, name=name)(inputs[0])]


@MAKERS.register("elu")
def _elu(node, inputs, name, initializer):
    return [keras.layers.ELU(alpha=float(node.attrs.get("alpha", 1.0)), name=name)(inputs[0])]


@MAKERS.register("power")
def _power(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.Power(a.get("power", 1.0), a.get("scale", 1.0), a.get("shift", 0.0), name=name)(inputs[0])]


@MAKERS.register("sigmoid", "tanh")
def _activation(node, inputs, name, initializer):
    """The op is the name of the Keras activation."""
    return [keras.layers.Activation(node.op, name=name)(inputs[0])]


@MAKERS.register("absval")
def _absval(node, inputs, name, initializer):
    return [zoo_layers.AbsVal(name=name)(inputs[0])]


@MAKERS.register("softmax")
def _softmax(node, inputs, name, initializer):
    axis = zoo_layers.nchw_axis_to_nhwc(node.attrs.get("axis", 1), rank(inputs[0]))
    return [keras.layers.Softmax(axis=axis, name=name)(inputs[0])]


@MAKERS.register("batchnorm")
def _batchnorm(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.BatchNorm(epsilon=a.get("epsilon", 1e-5), stat=a.get("stat", "variance"),
                                 use_global_stats=a.get("use_global_stats", True), center="beta" in node.weights,
                                 scale="gamma" in node.weights, name=name)(inputs[0])]


def _affine(node, inputs, name, parameter, operation):
    """Caffe Scale (parameter 'gamma') or Bias ('beta'): by weights, or by a second input."""
    x = inputs[0]
    shape = channels_last_shape(affine_nchw_shape(node, nchw_shape(x)))
    has_beta = parameter == "beta" or node.attrs.get("use_bias", "beta" in node.weights)
    if len(inputs) > 1:
        product = zoo_layers.Broadcast(operation, axis=node.attrs.get("axis", 1),
                                       name=f"{name}_{operation}" if has_beta and parameter == "gamma" else name)
        y = product(inputs[:2])
        if parameter == "gamma" and has_beta:
            y = zoo_layers.ChannelAffine(shape, use_scale=False, name=name)(y)
        return [y]
    return [zoo_layers.ChannelAffine(shape, use_scale=parameter == "gamma", use_offset=has_beta, name=name)(x)]


@MAKERS.register("scale")
def _scale(node, inputs, name, initializer):
    return _affine(node, inputs, name, "gamma", "mul")


@MAKERS.register("bias")
def _bias(node, inputs, name, initializer):
    return _affine(node, inputs, name, "beta", "add")


@MAKERS.register("eltwise")
def _eltwise(node, inputs, name, initializer):
    operation = node.attrs.get("operation", "sum")
    coeffs = list(node.attrs.get("coeffs") or [])
    if len(inputs) > 1 and all(c == 1 for c in coeffs):
        merge = {"sum": keras.layers.Add, "prod": keras.layers.Multiply, "max": keras.layers.Maximum}[operation]
        return [merge(name=name)(inputs)]
    return [zoo_layers.Eltwise(operation, coeffs, name=name)(inputs)]


@MAKERS.register("concat")
def _concat(node, inputs, name, initializer):
    axis = zoo_layers.nchw_axis_to_nhwc(node.attrs.get("axis", 1), rank(inputs[0]))
    if len(inputs) == 1:
        return [inputs[0]]
    return [keras.layers.Concatenate(axis=axis, name=name)(inputs)]


@MAKERS.register("slice")
def _slice(node, inputs, name, initializer):
    axis = zoo_layers.nchw_axis_to_nhwc(node.attrs.get("axis", 1), rank(inputs[0]))
    pieces = zoo_layers.Slice(axis, node.attrs.get("points") or (), num_outputs=len(node.outputs),
                              name=name)(inputs[0])
    return list(pieces)


@MAKERS.register("crop")
def _crop(node, inputs, name, initializer):
    x, reference = inputs[:2]
    x_rank = rank(x)
    start = node.attrs.get("axis", 2)
    start = start + x_rank if start < 0 else start
    offsets = list(node.attrs.get("offsets") or [0])
    cropped = list(range(start, x_rank))
    if len(offsets) == 1:
        offsets = offsets * len(cropped)
    if len(offsets) != len(cropped):
        raise ValueError(f"{len(offsets)} crop offsets for {len(cropped)} cropped axes")
    axes = [zoo_layers.nchw_axis_to_nhwc(axis, x_rank) for axis in cropped]
    return [zoo_layers.Crop(axes, offsets, name=name)([x, reference])]


@MAKERS.register("flatten")
def _flatten(node, inputs, name, initializer):
    a = node.attrs
    reshape = zoo_layers.flatten_as_reshape(a.get("axis", 1), a.get("end_axis", -1), rank(inputs[0]))
    return [zoo_layers.CaffeReshape(**reshape, name=name)(inputs[0])]


@MAKERS.register("reshape")
def _reshape(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.CaffeReshape(a["shape"], a.get("axis", 0), a.get("num_axes", -1), name=name)(inputs[0])]


@MAKERS.register("dropout", "identity", "split")
def _alias(node, inputs, name, initializer):
    """Identity at inference: every output is the input."""
    return [inputs[0]] * len(node.outputs)


@MAKERS.register("interp")
def _interp(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.Interp(a.get("zoom", 1), a.get("shrink", 1), a.get("size"), a.get("pad_beg", 0),
                              a.get("pad_end", 0), name=name)(inputs[0])]


@MAKERS.register("shuffle_channel")
def _shuffle_channel(node, inputs, name, initializer):
    return [zoo_layers.ShuffleChannel(node.attrs["group"], name=name)(inputs[0])]


@MAKERS.register("axpy")
def _axpy(node, inputs, name, initializer):
    return [zoo_layers.Axpy(name=name)(inputs[:3])]


@MAKERS.register("permute")
def _permute(node, inputs, name, initializer):
    return [zoo_layers.Permute(node.attrs["order"], name=name)(inputs[0])]


@MAKERS.register("normalize")
def _normalize(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.Normalize(a.get("across_spatial", True), a.get("channel_shared", True), a.get("eps", 1e-10),
                                 name=name)(inputs[0])]


@MAKERS.register("priorbox")
def _priorbox(node, inputs, name, initializer):
    a = node.attrs
    layer = zoo_layers.PriorBox(a["min_sizes"], a.get("max_sizes", ()), a.get("aspect_ratios", (1.0,)),
                                a.get("clip", False), a.get("variances", (0.1,)), a.get("img_size"), a.get("step"),
                                a.get("offset", 0.5), name=name)
    return [layer(inputs[:2] if a.get("img_size") is None else inputs[:1])]


@MAKERS.register("detection_output")
def _detection_output(node, inputs, name, initializer):
    a = node.attrs
    layer = zoo_layers.DetectionOutput(
        a["num_classes"], a["rows"], share_location=a.get("share_location", True),
        background_label_id=a.get("background_label_id", 0), code_type=a.get("code_type", "corner"),
        variance_encoded_in_target=a.get("variance_encoded_in_target", False),
        confidence_threshold=a.get("confidence_threshold"), nms_threshold=a.get("nms_threshold", 0.3),
        eta=a.get("eta", 1.0), top_k=a.get("top_k", -1), keep_top_k=a.get("keep_top_k", -1), name=name)
    return [layer(inputs[:3])]


@MAKERS.register("upsample")
def _upsample(node, inputs, name, initializer):
    return [zoo_layers.Upsample(node.attrs.get("scale", 2), name=name)(inputs[0])]


@MAKERS.register("roi_pool")
def _roi_pool(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.ROIPooling(a["pooled"], a.get("spatial_scale", 1.0), name=name)(inputs[:2])]


# ------------------------------------------------------------------------- more of BVLC Caffe's layers

_ELEMENTWISE = {  # op -> (layer class, its arguments from the node's attributes)
    "bnll": (zoo_layers.BNLL, lambda a: {}),
    "clip": (zoo_layers.Clip, lambda a: {"min_value": a["min"], "max_value": a["max"]}),
    "exp": (zoo_layers.Exp, lambda a: {"base": a.get("base", -1.0), "scale": a.get("scale", 1.0),
                                       "shift": a.get("shift", 0.0)}),
    "log": (zoo_layers.Log, lambda a: {"base": a.get("base", -1.0), "scale": a.get("scale", 1.0),
                                       "shift": a.get("shift", 0.0)}),
    "threshold": (zoo_layers.Threshold, lambda a: {"threshold": a.get("threshold", 0.0)}),
    "swish": (zoo_layers.Swish, lambda a: {"beta": a.get("beta", 1.0)}),
    "mvn": (zoo_layers.MVN, lambda a: {"normalize_variance": a.get("normalize_variance", True),
                                       "across_channels": a.get("across_channels", False),
                                       "eps": a.get("eps", 1e-9)}),
}


@MAKERS.register(*_ELEMENTWISE)
def _elementwise(node, inputs, name, initializer):
    layer_class, arguments = _ELEMENTWISE[node.op]
    return [layer_class(**arguments(node.attrs), name=name)(inputs[0])]


@MAKERS.register("reduction")
def _reduction(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.Reduction(a.get("operation", "sum"), a.get("axis", 0), a.get("coeff", 1.0),
                                 name=name)(inputs[0])]


@MAKERS.register("argmax")
def _argmax(node, inputs, name, initializer):
    a = node.attrs
    axis = a.get("axis")
    if axis is not None and axis < 0:
        axis += rank(inputs[0])
    return [zoo_layers.ArgMax(a.get("top_k", 1), a.get("out_max_val", False), axis, name=name)(inputs[0])]


@MAKERS.register("tile")
def _tile(node, inputs, name, initializer):
    axis = zoo_layers.nchw_axis_to_nhwc(node.attrs.get("axis", 1), rank(inputs[0]))
    return [zoo_layers.Tile(axis, node.attrs["tiles"], name=name)(inputs[0])]


@MAKERS.register("embed")
def _embed(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.Embed(a["input_dim"], a["units"], use_bias=a.get("use_bias", True), name=name,
                             kernel_initializer=initializer("kernel"), bias_initializer=initializer("bias"))(inputs[0])]


@MAKERS.register("parameter")
def _parameter(node, inputs, name, initializer):
    if not inputs:
        raise ValueError("a Parameter layer needs a graph input to take the batch size from")
    shape = channels_last_shape(node.attrs["shape"])
    return [zoo_layers.ParameterBlob(shape, name=name)(inputs[0])]


@MAKERS.register("batched_parameter")
def _batched_parameter(node, inputs, name, initializer):
    if not inputs:
        raise ValueError("a Parameter layer needs a graph input to place it in the model")
    return [zoo_layers.BatchedParameter(node.attrs["shape"], name=name)(inputs[0])]


# ------------------------------------------------------------------------ MatConvNet's other blocks
def _weight_shape(node, key):
    return tuple(node.weights[key].shape) if key in node.weights else None


@MAKERS.register("muladd")
def _muladd(node, inputs, name, initializer):
    a = node.attrs
    layer = zoo_layers.MulAdd(a.get("multiplier", "input"), a.get("offset", "none"),
                              gamma_shape=_weight_shape(node, "gamma"), beta_shape=_weight_shape(node, "beta"),
                              name=name)
    return [layer(inputs if len(inputs) > 1 else inputs[0])]


@MAKERS.register("pdist")
def _pdist(node, inputs, name, initializer):
    a = node.attrs
    layer = zoo_layers.PDist(a.get("p", 2.0), a.get("no_root", False), a.get("target", "input"),
                             a.get("instance_weights", "none"), target_shape=_weight_shape(node, "target"),
                             instance_weights_shape=_weight_shape(node, "instance_weights"), name=name)
    return [layer(inputs if len(inputs) > 1 else inputs[0])]


@MAKERS.register("spatial_norm")
def _spatial_norm(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.SpatialNorm(a["size"], a["alpha"], a["beta"], name=name)(inputs[0])]


@MAKERS.register("norm_offset")
def _norm_offset(node, inputs, name, initializer):
    a = node.attrs
    return [zoo_layers.NormOffset(a["scale"], a["power"], a.get("floor", 1e-8), name=name)(inputs[0])]


@MAKERS.register("roi_pool_affine")
def _roi_pool_affine(node, inputs, name, initializer):
    a = node.attrs
    layer = zoo_layers.ROIPoolAffine(a["pooled"], a.get("transform", (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)),
                                     a.get("method", "max"), a.get("flatten", False), name=name)
    return [layer(inputs[:2])]


@MAKERS.register("bilinear_sampler")
def _bilinear_sampler(node, inputs, name, initializer):
    return [zoo_layers.BilinearSampler(name=name)(inputs[:2])]


@MAKERS.register("affine_grid", "scaling_grid")
def _sampling_grid(node, inputs, name, initializer):
    kind = "affine" if node.op == "affine_grid" else "scaling"
    return [zoo_layers.SamplingGrid(node.attrs["height"], node.attrs["width"], kind, name=name)(inputs[0])]
