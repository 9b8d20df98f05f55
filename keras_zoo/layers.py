"""Custom Keras layers with the exact semantics of Caffe and MatConvNet (keras.ops only, serializable).

Tensors are NHWC. Layers that take an ``axis`` documented as "NHWC" expect it already mapped from the original
NCHW numbering (:func:`nchw_axis_to_nhwc`); the builder does that mapping.
"""

import math

import keras
import numpy as np
from keras import ops

from converters.graph import pair

PACKAGE = "keras_zoo"
register = keras.saving.register_keras_serializable(package=PACKAGE)


def quad(value):
    """``(top, bottom, left, right)`` from an int, ``(ph, pw)`` or four ints."""
    if isinstance(value, int):
        return (value,) * 4
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 4
    if len(value) == 2:
        return (value[0], value[0], value[1], value[1])
    return value


def nchw_axis_to_nhwc(axis, rank):
    """Map an axis in the original N, C, H, W numbering onto the Keras (channels-last) tensor of ``rank``."""
    if axis < 0:
        axis += rank
    if not 0 <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for a rank-{rank} tensor")
    if rank <= 2 or axis == 0:
        return axis
    return rank - 1 if axis == 1 else axis - 1


def channels_first(x):
    """NHWC (any rank >= 3) -> NCHW."""
    rank = len(x.shape)
    return x if rank <= 2 else ops.transpose(x, (0, rank - 1, *range(1, rank - 1)))


def channels_last(x):
    """NCHW (any rank >= 3) -> NHWC."""
    rank = len(x.shape)
    return x if rank <= 2 else ops.transpose(x, (0, *range(2, rank), 1))


def _is_static(value):
    return isinstance(value, (int, np.integer))


def _dim(x, axis):
    """Size of ``axis``: a Python int when known, else a scalar tensor."""
    static = x.shape[axis]
    return static if static is not None else ops.shape(x)[axis]


def _pad_hw(x, top, bottom, left, right, value=0.0):
    if not any((top, bottom, left, right)):
        return x
    return ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=value)


def _pad_below_max(x, top, bottom, left, right):
    """Pad for max pooling with the tensor's own minimum, not -inf: exact (every pooling window holds a real
    cell) and it keeps the tensor's range finite, which int8 quantization needs."""
    if not any((top, bottom, left, right)):
        return x
    border = _pad_hw(ops.zeros_like(x), top, bottom, left, right, 1.0)
    return _pad_hw(x, top, bottom, left, right) + border * ops.min(x)


def _dilate_kernel(kernel, dilation):
    """Insert ``d - 1`` zeros between the taps of an HW.. kernel (exact, for ops without native dilation)."""
    dh, dw = dilation
    if dh == dw == 1:
        return kernel
    kh, kw = kernel.shape[0], kernel.shape[1]
    rest = tuple(kernel.shape[2:])
    kernel = ops.reshape(kernel, (kh, 1, kw, 1, *rest))
    kernel = ops.pad(kernel, [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1]] + [[0, 0]] * len(rest))
    kernel = ops.reshape(kernel, (kh * dh, kw * dw, *rest))
    return kernel[: (kh - 1) * dh + 1, : (kw - 1) * dw + 1]


class _SameShape:
    """Mixin of the layers whose output has the shape of their (first) input."""

    def compute_output_shape(self, input_shape):
        return input_shape


class _FirstInputShape:
    """Mixin of the layers with several inputs whose output has the shape of the first."""

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


class _WeightedLayer(keras.layers.Layer):
    """Common config of the layers with a kernel and an optional bias."""

    def __init__(self, filters, kernel_size, strides=1, dilation=1, groups=1, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size)
        self.strides = pair(strides)
        self.dilation = pair(dilation)
        self.groups = int(groups)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _add_kernel(self, shape):
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)

    def _check_groups(self, channels, what):
        if channels is None:
            raise ValueError(f"{self.name}: the number of input channels must be known")
        if channels % self.groups or self.filters % self.groups:
            raise ValueError(f"{self.name}: {what} {channels} input channels and {self.filters} filters "
                             f"are not divisible into {self.groups} groups")

    def _add_bias(self, y):
        return y + self.bias if self.use_bias else y

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      dilation=self.dilation, groups=self.groups, use_bias=self.use_bias,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                      bias_initializer=keras.initializers.serialize(self.bias_initializer))
        return config


@register
class Conv2D(_WeightedLayer):
    """Convolution with explicit per-side zero pads, dilation and groups (run as depthwise or split/concat).

    Weights: ``kernel`` (kh, kw, cin // groups, filters), ``bias`` (filters,).
    """

    def __init__(self, filters, kernel_size, strides=1, pads=(0, 0, 0, 0), dilation=1, groups=1,
                 use_bias=True, **kwargs):
        super().__init__(filters, kernel_size, strides, dilation, groups, use_bias, **kwargs)
        self.pads = quad(pads)

    def build(self, input_shape):
        channels = input_shape[-1]
        self._check_groups(channels, "conv with")
        self._add_kernel((*self.kernel_size, channels // self.groups, self.filters))

    def _pads_are_same(self):
        """Whether the pads equal 'same' padding: stride 1, half the (dilated) kernel on every side."""
        halves = [dilation * (kernel - 1) // 2 for kernel, dilation in zip(self.kernel_size, self.dilation)]
        spans_even = all(dilation * (kernel - 1) % 2 == 0 for kernel, dilation in zip(self.kernel_size,
                                                                                          self.dilation))
        return self.strides == (1, 1) and spans_even and self.pads == (halves[0], halves[0], halves[1], halves[1])

    def call(self, x):
        padding = "same" if any(self.pads) and self._pads_are_same() else "valid"  # no separate pad op
        if padding == "valid":
            x = _pad_hw(x, *self.pads)
        kernel = self.kernel
        strides, dilation = self.strides, self.dilation
        if max(strides) > 1 and max(dilation) > 1:  # backends reject strides and dilation together
            kernel, dilation = _dilate_kernel(kernel, dilation), (1, 1)
        channels = x.shape[-1]
        conv = dict(strides=strides, padding=padding, dilation_rate=dilation)
        if self.groups == 1:
            y = ops.conv(x, kernel, **conv)
        elif self.groups == channels:
            depthwise = ops.reshape(kernel, (*kernel.shape[:2], channels, self.filters // channels))
            y = ops.depthwise_conv(x, depthwise, **conv)
        else:
            xs = ops.split(x, self.groups, axis=-1)
            ks = ops.split(kernel, self.groups, axis=-1)
            y = ops.concatenate([ops.conv(xg, kg, **conv) for xg, kg in zip(xs, ks)], axis=-1)
        return self._add_bias(y)

    def compute_output_shape(self, input_shape):
        sizes = []
        for size, kernel, stride, dilation, before, after in zip(
                input_shape[1:3], self.kernel_size, self.strides, self.dilation, self.pads[0::2], self.pads[1::2]):
            span = dilation * (kernel - 1) + 1
            sizes.append(None if size is None else (size + before + after - span) // stride + 1)
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        return {**super().get_config(), "pads": self.pads}


@register
class Deconv2D(_WeightedLayer):
    """Transposed convolution (Caffe Deconvolution, MatConvNet convt): out = s*(H-1) + d*(k-1) + 1 - crops.

    Weights: ``kernel`` (kh, kw, filters // groups, cin), ``bias`` (filters,); ``crops`` = (top, bottom, left,
    right) rows/columns removed from the full output.
    """

    def __init__(self, filters, kernel_size, strides=1, crops=(0, 0, 0, 0), dilation=1, groups=1,
                 use_bias=True, **kwargs):
        super().__init__(filters, kernel_size, strides, dilation, groups, use_bias, **kwargs)
        self.crops = quad(crops)

    def build(self, input_shape):
        channels = input_shape[-1]
        self._check_groups(channels, "deconv with")
        self._add_kernel((*self.kernel_size, self.filters // self.groups, channels))

    def call(self, x):
        kernel = _dilate_kernel(self.kernel, self.dilation)
        if self.groups == 1:
            y = self._full(x, kernel)
        else:
            xs = ops.split(x, self.groups, axis=-1)
            ks = ops.split(kernel, self.groups, axis=-1)
            y = ops.concatenate([self._full(xg, kg) for xg, kg in zip(xs, ks)], axis=-1)
        top, bottom, left, right = self.crops
        height, width = _dim(y, 1), _dim(y, 2)
        if any(self.crops):
            y = y[:, top:height - bottom, left:width - right, :]
        return self._add_bias(y)

    def _full(self, x, kernel):
        """The uncropped transposed convolution: s*(H-1) + k_eff rows."""
        return ops.conv_transpose(x, kernel, strides=self.strides, padding="valid", output_padding=0)

    def compute_output_shape(self, input_shape):
        sizes = []
        for size, kernel, stride, dilation, before, after in zip(
                input_shape[1:3], self.kernel_size, self.strides, self.dilation, self.crops[0::2], self.crops[1::2]):
            full = None if size is None else stride * (size - 1) + dilation * (kernel - 1) + 1
            sizes.append(None if full is None else full - before - after)
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        return {**super().get_config(), "crops": self.crops}


def _pool_extent(size, kernel, stride, before, after, rounding):
    """Number of pooling windows along one axis (``size`` an int or a scalar tensor), Caffe or floor rule."""
    span = size + before + after - kernel
    if rounding == "floor":
        return span // stride + 1
    count = -((-span) // stride) + 1  # ceil
    last_starts_outside = (count - 1) * stride >= size + before
    if _is_static(count):
        return count - int(last_starts_outside)
    return count - ops.cast(last_starts_outside, count.dtype)


def _window_counts(xp, count, size, kernel, stride, before, after, divisor):
    """Per-window divisor along one axis: Caffe's clipped padded window or the number of in-image cells."""
    start = xp.arange(count) * stride - before
    if divisor == "padded":
        return xp.minimum(start + kernel, size + after) - start
    return xp.minimum(start + kernel, size) - xp.maximum(start, 0)


def _is_same_padding(size, count, kernel, stride, before, after, tail):
    """Whether pooling windows along an axis of static ``size`` are those of 'same' padding."""
    if not (_is_static(size) and _is_static(count)) or count != -(-size // stride):
        return False
    total = max((count - 1) * stride + kernel - size, 0)
    return (before, tail) == (total // 2, total - total // 2)


@register
class Pool2D(keras.layers.Layer):
    """Max or average pooling with explicit pads, Caffe's ceil rule or floor rounding, and either divisor.

    ``rounding='ceil'``: out = ceil((H+t+b-k)/s)+1, less one when the last window would start at or beyond H+t
    (Caffe); ``'floor'``: floor((H+t+b-k)/s)+1 (MatConvNet). Max ignores padded cells. ``avg_divisor='padded'``
    divides by the window clipped to [-t, H+b) (Caffe's AVE); ``'valid'`` by its in-image cells (MatConvNet).
    ``global_pool`` pools the whole plane. Spatial sizes may be unknown.
    """

    def __init__(self, method, pool_size=1, strides=1, pads=(0, 0, 0, 0), rounding="ceil",
                 avg_divisor="padded", global_pool=False, **kwargs):
        super().__init__(**kwargs)
        if method not in ("max", "avg"):
            raise ValueError(f"pooling method must be 'max' or 'avg', not {method!r}")
        if rounding not in ("ceil", "floor"):
            raise ValueError(f"rounding must be 'ceil' or 'floor', not {rounding!r}")
        if avg_divisor not in ("padded", "valid"):
            raise ValueError(f"avg_divisor must be 'padded' or 'valid', not {avg_divisor!r}")
        self.method = method
        self.pool_size = pair(pool_size)
        self.strides = pair(strides)
        self.pads = quad(pads)
        self.rounding = rounding
        self.avg_divisor = avg_divisor
        self.global_pool = bool(global_pool)

    def call(self, x):
        if self.global_pool:
            reduce = ops.max if self.method == "max" else ops.mean
            return reduce(x, axis=(1, 2), keepdims=True)
        axes = []
        for axis, kernel, stride, before, after in zip(
                (1, 2), self.pool_size, self.strides, self.pads[0::2], self.pads[1::2]):
            size = _dim(x, axis)
            count = _pool_extent(size, kernel, stride, before, after, self.rounding)
            # pad after the input so that `count` valid windows fit (an upper bound when the size is unknown)
            tail = (count - 1) * stride + kernel - size - before if _is_static(count) else after + stride - 1
            axes.append((size, count, kernel, stride, before, after, max(tail, 0)))
        (_, rows, *_, pad_bottom), (_, cols, *_, pad_right) = axes
        pads = (self.pads[0], pad_bottom, self.pads[2], pad_right)
        if self.method == "max" and all(_is_same_padding(*axis) for axis in axes):
            return ops.max_pool(x, self.pool_size, self.strides, padding="same")  # no separate pad op
        x = _pad_below_max(x, *pads) if self.method == "max" else _pad_hw(x, *pads)
        if self.method == "max":
            y = ops.max_pool(x, self.pool_size, self.strides, padding="valid")
        else:
            y = ops.average_pool(x, self.pool_size, self.strides, padding="valid")
        if not (_is_static(rows) and _is_static(cols)):
            y = y[:, :rows, :cols, :]
        if self.method == "avg":
            y = y * self._divisor_correction(axes, y.dtype)
        return y

    def _divisor_correction(self, axes, dtype):
        """kh*kw / divisor per output cell (average pooling divided by the full window)."""
        static = all(_is_static(size) for size, *_ in axes)
        xp = np if static else ops
        (hs, ws) = (_window_counts(xp, count, size, kernel, stride, before, after, self.avg_divisor)
                    for size, count, kernel, stride, before, after, _ in axes)
        area = float(self.pool_size[0] * self.pool_size[1])
        if static:
            factor = area / (hs[:, None] * ws[None, :]).astype("float64")
            if np.all(factor == 1.0):
                return 1.0
            return ops.convert_to_tensor(factor[:, :, None], dtype=dtype)
        counts = ops.cast(hs[:, None] * ws[None, :], dtype)
        return ops.expand_dims(area / counts, -1)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        if self.global_pool:
            return (batch, 1, 1, channels)
        rows, cols = (None if size is None else _pool_extent(size, kernel, stride, before, after, self.rounding)
                      for size, kernel, stride, before, after in zip(
                          (height, width), self.pool_size, self.strides, self.pads[0::2], self.pads[1::2]))
        return (batch, rows, cols, channels)

    def get_config(self):
        config = super().get_config()
        config.update(method=self.method, pool_size=self.pool_size, strides=self.strides, pads=self.pads,
                      rounding=self.rounding, avg_divisor=self.avg_divisor, global_pool=self.global_pool)
        return config


@register
class LRN(_SameShape, keras.layers.Layer):
    """Local response normalisation: y = x / (k + alpha * S)^beta, S the plain sum of squares in the window.

    ``region='across'``: channels [c - (size-1)//2, c + size//2]; ``'within'``: a size x size zero-padded
    spatial window. ``alpha`` is per element (see converters/graph.py).
    """

    def __init__(self, size, alpha, beta, k=1.0, region="across", **kwargs):
        super().__init__(**kwargs)
        if region not in ("across", "within"):
            raise ValueError(f"LRN region must be 'across' or 'within', not {region!r}")
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)
        self.region = region

    def call(self, x):
        squares = ops.square(x)
        before, after = (self.size - 1) // 2, self.size // 2
        if self.region == "across":
            channels = x.shape[-1]
            padded = ops.pad(squares, [[0, 0]] * (len(x.shape) - 1) + [[before, after]])
            total = padded[..., 0:channels]
            for offset in range(1, self.size):
                total = total + padded[..., offset:offset + channels]
        else:
            padded = _pad_hw(squares, before, after, before, after)
            window = (self.size, self.size)
            total = ops.average_pool(padded, window, 1, padding="valid") * float(self.size * self.size)
        return x / ops.power(self.k + self.alpha * total, self.beta)

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, alpha=self.alpha, beta=self.beta, k=self.k, region=self.region)
        return config


@register
class BatchNorm(_SameShape, keras.layers.Layer):
    """Inference batch normalisation over the last axis with the original statistics.

    ``stat='variance'``: y = (x - mean) / sqrt(variance + epsilon); ``'std'``: y = (x - mean) / std. Then
    ``* gamma + beta`` when ``scale``/``center``. ``use_global_stats=False`` normalises with the batch's own
    biased mean and variance over every axis but the last (Caffe's BatchNorm with use_global_stats false);
    it then has no mean/variance weights.
    """

    def __init__(self, epsilon=1e-5, stat="variance", use_global_stats=True, center=False, scale=False,
                 **kwargs):
        super().__init__(**kwargs)
        if stat not in ("variance", "std"):
            raise ValueError(f"stat must be 'variance' or 'std', not {stat!r}")
        self.epsilon = float(epsilon)
        self.stat = stat
        self.use_global_stats = bool(use_global_stats)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        shape = (input_shape[-1],)
        if self.use_global_stats:
            self.mean = self.add_weight(name="mean", shape=shape, initializer="zeros", trainable=False)
            self.spread = self.add_weight(name=self.stat, shape=shape, initializer="ones", trainable=False)
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones")
        if self.center:
            self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros")

    def call(self, x):
        if self.use_global_stats:
            mean, spread = self.mean, self.spread
        else:
            mean, spread = ops.moments(x, axes=tuple(range(len(x.shape) - 1)))
        if self.stat == "variance" or not self.use_global_stats:
            multiplier = ops.rsqrt(spread + self.epsilon)
        else:
            multiplier = 1.0 / spread
        offset = -mean * multiplier  # per channel: the image itself sees one multiply and one add
        if self.scale:
            multiplier, offset = multiplier * self.gamma, offset * self.gamma
        if self.center:
            offset = offset + self.beta
        return x * multiplier + offset

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, stat=self.stat, use_global_stats=self.use_global_stats,
                      center=self.center, scale=self.scale)
        return config


@register
class ChannelAffine(_SameShape, keras.layers.Layer):
    """y = x * gamma + beta with weights broadcast over the trailing axes (Caffe Scale and Bias).

    ``shape`` is the weights' shape in the tensor's (channels-last) layout, e.g. (C,) for per-channel.
    """

    def __init__(self, shape, use_scale=True, use_offset=True, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(s) for s in shape)
        self.use_scale = bool(use_scale)
        self.use_offset = bool(use_offset)

    def build(self, input_shape):
        if self.use_scale:
            self.gamma = self.add_weight(name="gamma", shape=self.shape, initializer="ones")
        if self.use_offset:
            self.beta = self.add_weight(name="beta", shape=self.shape, initializer="zeros")

    def call(self, x):
        if self.use_scale:
            x = x * self.gamma
        if self.use_offset:
            x = x + self.beta
        return x

    def get_config(self):
        config = super().get_config()
        config.update(shape=self.shape, use_scale=self.use_scale, use_offset=self.use_offset)
        return config


@register
class Broadcast(_FirstInputShape, keras.layers.Layer):
    """``x * y`` or ``x + y`` where y spans the leading axes after the batch (Caffe's two-input Scale/Bias).

    A rank-2 y (N, C) is applied per channel of an NHWC x.
    """

    def __init__(self, operation="mul", **kwargs):
        super().__init__(**kwargs)
        if operation not in ("mul", "add"):
            raise ValueError(f"operation must be 'mul' or 'add', not {operation!r}")
        self.operation = operation

    def call(self, inputs):
        x, y = inputs
        if len(y.shape) == 2 and len(x.shape) > 2:
            y = ops.reshape(y, (-1,) + (1,) * (len(x.shape) - 2) + (y.shape[-1],))
        return x * y if self.operation == "mul" else x + y

    def get_config(self):
        return {**super().get_config(), "operation": self.operation}


@register
class Eltwise(_FirstInputShape, keras.layers.Layer):
    """Caffe Eltwise: 'sum' (with optional coefficients), 'prod' or 'max' of all inputs."""

    def __init__(self, operation="sum", coeffs=(), **kwargs):
        super().__init__(**kwargs)
        if operation not in ("sum", "prod", "max"):
            raise ValueError(f"eltwise operation must be 'sum', 'prod' or 'max', not {operation!r}")
        self.operation = operation
        self.coeffs = tuple(float(c) for c in coeffs)

    def call(self, inputs):
        if self.coeffs and len(self.coeffs) != len(inputs):
            raise ValueError(f"{self.name}: {len(self.coeffs)} coefficients for {len(inputs)} inputs")
        result = inputs[0] * self.coeffs[0] if self.coeffs else inputs[0]
        for index, x in enumerate(inputs[1:], start=1):
            if self.operation == "sum":
                result = result + (x * self.coeffs[index] if self.coeffs else x)
            elif self.operation == "prod":
                result = result * x
            else:
                result = ops.maximum(result, x)
        return result

    def get_config(self):
        return {**super().get_config(), "operation": self.operation, "coeffs": self.coeffs}


@register
class Crop(keras.layers.Layer):
    """Crop ``inputs[0]`` to the size of ``inputs[1]`` on ``axes`` (channels-last axes), from ``offsets``."""

    def __init__(self, axes=(1, 2), offsets=(0, 0), **kwargs):
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)
        self.offsets = tuple(int(o) for o in offsets)
        if len(self.offsets) != len(self.axes):
            raise ValueError(f"{len(self.offsets)} crop offsets for {len(self.axes)} axes")

    def call(self, inputs):
        x, reference = inputs
        index = [slice(None)] * len(x.shape)
        for axis, offset in zip(self.axes, self.offsets):
            index[axis] = slice(offset, offset + _dim(reference, axis))
        return x[tuple(index)]

    def compute_output_shape(self, input_shapes):
        shape, reference = (list(s) for s in input_shapes)
        for axis in self.axes:
            shape[axis] = reference[axis]
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "offsets": self.offsets}


@register
class Slice(keras.layers.Layer):
    """Split along ``axis`` (channels-last) at ``points``, or into ``num_outputs`` equal parts when empty."""

    def __init__(self, axis=-1, points=(), num_outputs=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.points = tuple(int(p) for p in points)
        self.num_outputs = int(num_outputs) if num_outputs is not None else len(self.points) + 1

    def _bounds(self, size):
        if self.points:
            edges = (0, *self.points, size)
        else:
            if size % self.num_outputs:
                raise ValueError(f"{self.name}: axis of size {size} does not split into "
                                 f"{self.num_outputs} equal parts")
            step = size // self.num_outputs
            edges = tuple(range(0, size + 1, step))
        return list(zip(edges[:-1], edges[1:]))

    def call(self, x):
        size = x.shape[self.axis]
        if size is None:
            raise ValueError(f"{self.name}: the sliced axis must have a known size")
        pieces = []
        for start, stop in self._bounds(size):
            index = [slice(None)] * len(x.shape)
            index[self.axis] = slice(start, stop)
            pieces.append(x[tuple(index)])
        return pieces

    def compute_output_shape(self, input_shape):
        shapes = []
        for start, stop in self._bounds(input_shape[self.axis]):
            shape = list(input_shape)
            shape[self.axis] = stop - start
            shapes.append(tuple(shape))
        return shapes

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "points": self.points,
                "num_outputs": self.num_outputs}


def caffe_reshape_dims(in_dims, shape, axis=0, num_axes=-1):
    """Caffe's Reshape on channel-first dims: ``in_dims[axis:axis+num_axes]`` replaced by ``shape``.

    ``0`` in ``shape`` copies the input dim at that position (ints or tensors); ``-1`` is left for the
    reshape to infer.
    """
    rank = len(in_dims)
    start = axis + rank + 1 if axis < 0 else axis
    end = rank if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= rank:
        raise ValueError(f"reshape axis {axis} / num_axes {num_axes} do not fit {rank} input axes")
    if len(shape) > end - start and any(d == 0 for d in shape[end - start:]):
        raise ValueError(f"reshape dim 0 at a position with no input dim to copy (shape {list(shape)})")
    middle = [in_dims[start + i] if d == 0 else d for i, d in enumerate(shape)]
    return [*in_dims[:start], *middle, *in_dims[end:]]


@register
class CaffeReshape(keras.layers.Layer):
    """Caffe's Reshape (and Flatten) in the original channel-first order on a channels-last tensor.

    The input is viewed as N, C, H, W..., reshaped there, and returned channels-last again.
    """

    def __init__(self, shape, axis=0, num_axes=-1, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(d) for d in shape)
        self.axis = int(axis)
        self.num_axes = int(num_axes)
        if sum(d == -1 for d in self.shape) > 1:
            raise ValueError(f"reshape shape {list(self.shape)} has more than one -1")

    def call(self, x):
        x = channels_first(x)
        in_dims = [_dim(x, axis) for axis in range(len(x.shape))]
        dims = caffe_reshape_dims(in_dims, self.shape, self.axis, self.num_axes)
        rest = dims[1:]
        if dims[0] is in_dims[0] and all(_is_static(d) for d in in_dims[1:] + rest):
            # batch copied and everything else known: infer -1 here so that the static shape survives
            if -1 in rest:
                known = math.prod(d for d in rest if d != -1)
                rest[rest.index(-1)] = math.prod(in_dims[1:]) // max(known, 1)
            dims = [-1, *rest]
        return channels_last(ops.reshape(x, dims))

    def get_config(self):
        return {**super().get_config(), "shape": self.shape, "axis": self.axis, "num_axes": self.num_axes}


def flatten_as_reshape(axis=1, end_axis=-1, rank=4):
    """Arguments of :class:`CaffeReshape` equal to Caffe's Flatten(axis, end_axis) on a rank-``rank`` blob."""
    start = axis % rank
    stop = end_axis % rank
    return {"shape": (-1,), "axis": start, "num_axes": stop - start + 1}


@register
class Power(_SameShape, keras.layers.Layer):
    """y = (shift + scale * x) ** power."""

    def __init__(self, power=1.0, scale=1.0, shift=0.0, **kwargs):
        super().__init__(**kwargs)
        self.power = float(power)
        self.scale = float(scale)
        self.shift = float(shift)

    def call(self, x):
        if self.scale != 1.0:
            x = x * self.scale
        if self.shift != 0.0:
            x = x + self.shift
        return x if self.power == 1.0 else ops.power(x, self.power)

    def get_config(self):
        return {**super().get_config(), "power": self.power, "scale": self.scale, "shift": self.shift}


@register
class AbsVal(_SameShape, keras.layers.Layer):
    """y = |x|."""

    def call(self, x):
        return ops.abs(x)


@register
class Preprocess(keras.layers.Layer):
    """``(flip(x) - mean) * scale`` on NHWC input; a mean image is a non-trainable weight, centre-cropped.

    Built by :meth:`keras_zoo.preprocessing.Preprocessing.layer`.
    """

    def __init__(self, flip_channels=False, mean_values=None, scale=1.0, mean_image_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.flip_channels = bool(flip_channels)
        self.mean_values = None if mean_values is None else [float(v) for v in mean_values]
        self.scale = float(scale)
        self.mean_image_shape = None if mean_image_shape is None else tuple(int(d) for d in mean_image_shape)

    def build(self, input_shape):
        if self.mean_image_shape is not None:
            self.mean_image = self.add_weight(name="mean_image", shape=self.mean_image_shape,
                                              initializer="zeros", trainable=False)

    def call(self, x):
        if self.flip_channels:  # a gather rather than a reversal: TFLite's int8 quantizer scales it right
            x = ops.take(x, list(range(x.shape[-1] - 1, -1, -1)), axis=-1)
        if self.mean_values is not None:
            x = x - ops.convert_to_tensor(np.asarray(self.mean_values, dtype=np.float32), dtype=x.dtype)
        if self.mean_image_shape is not None:
            x = x - self._cropped_mean(x)
        if self.scale != 1.0:
            x = x * self.scale
        return x

    def compute_output_shape(self, input_shape):
        if self.mean_image_shape is not None:
            self._check_size(input_shape[1], input_shape[2])
        return input_shape

    def _check_size(self, height, width):
        mean_h, mean_w = self.mean_image_shape[:2]
        if (isinstance(height, int) and height > mean_h) or (isinstance(width, int) and width > mean_w):
            raise ValueError(f"{self.name}: input {height}x{width} is larger than the mean image "
                             f"{mean_h}x{mean_w}")

    def _cropped_mean(self, x):
        mean_h, mean_w = self.mean_image_shape[:2]
        height, width = _dim(x, 1), _dim(x, 2)
        self._check_size(height, width)
        top, left = (mean_h - height) // 2, (mean_w - width) // 2
        return self.mean_image[top:top + height, left:left + width, :]

    def get_config(self):
        config = super().get_config()
        config.update(flip_channels=self.flip_channels, mean_values=self.mean_values, scale=self.scale,
                      mean_image_shape=self.mean_image_shape)
        return config
