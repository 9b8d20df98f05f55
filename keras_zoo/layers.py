"""Custom Keras layers with the exact semantics of Caffe and MatConvNet (keras.ops only, serializable).

Tensors are NHWC. Layers that take an ``axis`` documented as "NHWC" expect it already mapped from the original
NCHW numbering (:func:`nchw_axis_to_nhwc`); the builder does that mapping.
"""

import math

import keras
import numpy as np
from keras import ops

from converters.graph import conv_output_size, pair

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
    """Insert ``d - 1`` zeros between the taps of a (spatial..., in, out) kernel along each of its ``len(dilation)``
    spatial axes (exact, for ops without native dilation)."""
    for axis, d in enumerate(dilation):
        if d == 1:
            continue
        shape = tuple(kernel.shape)
        size, before, after = shape[axis], math.prod(shape[:axis]), math.prod(shape[axis + 1:])
        spread = ops.pad(ops.reshape(kernel, (before, size, 1, after)), [[0, 0], [0, 0], [0, d - 1], [0, 0]])
        kernel = ops.reshape(spread, (*shape[:axis], size * d, *shape[axis + 1:]))
        kernel = kernel[(slice(None),) * axis + (slice(None, (size - 1) * d + 1),)]
    return kernel


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
        if self.groups == channels and self.groups > 1:
            depthwise = ops.reshape(kernel, (*kernel.shape[:2], channels, self.filters // channels))
            y = ops.depthwise_conv(x, depthwise, **conv)
        else:
            y = _grouped(lambda xg, kg: ops.conv(xg, kg, **conv), x, kernel, self.groups)
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
        y = _grouped(self._full, x, kernel, self.groups)
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

def _triple(value):
    """``(d, h, w)`` from an int or a sequence of one or three ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * 3
    value = tuple(int(v) for v in value)
    return value * 3 if len(value) == 1 else value


def _sides(value, axes=3):
    """``(before, after)`` per spatial axis, flat, from an int, one value per axis or both sides of each."""
    value = (int(value),) if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
    if len(value) == 1:
        value = value * axes
    return tuple(side for size in value for side in (size, size)) if len(value) == axes else value


def _pad_spatial(x, pads):
    """``x`` (channels-last) zero-padded by ``pads`` (before, after per spatial axis)."""
    if not any(pads):
        return x
    return ops.pad(x, [[0, 0], *([pads[i], pads[i + 1]] for i in range(0, len(pads), 2)), [0, 0]])


def _grouped(convolve, x, kernel, groups):
    """``convolve(x, kernel)`` by ``groups`` along the channels (the kernel's last axis split alike)."""
    if groups == 1:
        return convolve(x, kernel)
    pieces = zip(ops.split(x, groups, axis=-1), ops.split(kernel, groups, axis=-1))
    return ops.concatenate([convolve(xg, kg) for xg, kg in pieces], axis=-1)


@register
class Conv3D(_WeightedLayer):
    """3-D convolution (Caffe's N-D Convolution of an (N, C, D, H, W) blob) with explicit zero pads (front, back,
    top, bottom, left, right), dilation and groups; NDHWC. The dilation is built into the kernel (exact; TensorFlow's
    CPU Conv3D has none). Weights: ``kernel`` (kd, kh, kw, cin // groups, filters), ``bias`` (filters,)."""

    def __init__(self, filters, kernel_size, strides=1, pads=0, dilation=1, groups=1, use_bias=True, **kwargs):
        super().__init__(filters, _triple(kernel_size), _triple(strides), _triple(dilation), groups, use_bias,
                         **kwargs)
        self.pads = _sides(pads)

    def build(self, input_shape):
        channels = input_shape[-1]
        self._check_groups(channels, "conv with")
        self._add_kernel((*self.kernel_size, channels // self.groups, self.filters))

    def call(self, x):
        kernel = _dilate_kernel(self.kernel, self.dilation)
        y = _grouped(lambda xg, kg: ops.conv(xg, kg, strides=self.strides, padding="valid"),
                     _pad_spatial(x, self.pads), kernel, self.groups)
        return self._add_bias(y)

    def compute_output_shape(self, input_shape):
        sizes = [conv_output_size(size, kernel, stride, self.pads[2 * axis:2 * axis + 2], dilation)
                 for axis, (size, kernel, stride, dilation) in enumerate(zip(input_shape[1:4], self.kernel_size,
                                                                             self.strides, self.dilation))]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        return {**super().get_config(), "pads": self.pads}


@register
class Deconv3D(_WeightedLayer):
    """3-D transposed convolution (Caffe's N-D Deconvolution): out = s*(D-1) + d*(k-1) + 1 - crops on each axis;
    NDHWC. Weights: ``kernel`` (kd, kh, kw, filters // groups, cin), ``bias`` (filters,); ``crops`` (front, back,
    top, bottom, left, right) removed from the full output."""

    def __init__(self, filters, kernel_size, strides=1, crops=0, dilation=1, groups=1, use_bias=True, **kwargs):
        super().__init__(filters, _triple(kernel_size), _triple(strides), _triple(dilation), groups, use_bias,
                         **kwargs)
        self.crops = _sides(crops)

    def build(self, input_shape):
        channels = input_shape[-1]
        self._check_groups(channels, "deconv with")
        self._add_kernel((*self.kernel_size, self.filters // self.groups, channels))

    def call(self, x):
        kernel = _dilate_kernel(self.kernel, self.dilation)
        y = _grouped(lambda xg, kg: ops.conv_transpose(xg, kg, strides=self.strides, padding="valid",
                                                       output_padding=0), x, kernel, self.groups)
        if any(self.crops):
            y = y[(slice(None), *(slice(self.crops[2 * axis], _dim(y, axis + 1) - self.crops[2 * axis + 1])
                                  for axis in range(3)))]
        return self._add_bias(y)

    def compute_output_shape(self, input_shape):
        sizes = []
        for axis, (size, kernel, stride, dilation) in enumerate(zip(input_shape[1:4], self.kernel_size, self.strides,
                                                                    self.dilation)):
            full = None if size is None else stride * (size - 1) + dilation * (kernel - 1) + 1
            sizes.append(None if full is None else full - self.crops[2 * axis] - self.crops[2 * axis + 1])
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

    A rank-2 y (N, C) is applied per channel of an NHWC x. With ``axis`` (the original N, C, H, W numbering) y's
    axes after its batch axis lie on x's axes [axis, axis + rank(y) - 1) of the original order (y (N, C, H) on
    an (N, C, H, W) x with axis 1: broadcast over W), whatever the ranks.
    """

    def __init__(self, operation="mul", axis=None, **kwargs):
        super().__init__(**kwargs)
        if operation not in ("mul", "add"):
            raise ValueError(f"operation must be 'mul' or 'add', not {operation!r}")
        self.operation = operation
        self.axis = None if axis is None else int(axis)

    def call(self, inputs):
        x, y = inputs
        if self.axis is not None:
            y = self._aligned(y, len(x.shape))
        elif len(y.shape) == 2 and len(x.shape) > 2:
            y = ops.reshape(y, (-1,) + (1,) * (len(x.shape) - 2) + (y.shape[-1],))
        return x * y if self.operation == "mul" else x + y

    def _aligned(self, y, rank):
        """y (channels-last) reshaped to broadcast against a rank-``rank`` channels-last x from ``axis`` on."""
        y = channels_first(y)
        dims = [_dim(y, axis) for axis in range(1, len(y.shape))]
        after = rank - self.axis - len(dims)
        if self.axis < 1 or after < 0:
            raise ValueError(f"{self.name}: a rank-{len(y.shape)} input from axis {self.axis} exceeds rank {rank}")
        if after or self.axis > 1:
            y = ops.reshape(y, [-1, *([1] * (self.axis - 1)), *dims, *([1] * after)])
        return channels_last(y)

    def get_config(self):
        return {**super().get_config(), "operation": self.operation, "axis": self.axis}


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
            size, wanted = _dim(x, axis), _dim(reference, axis)
            if _is_static(size) and _is_static(wanted) and offset + wanted > size:  # the batch axis, at run time
                raise ValueError(f"{self.name}: crop offset {offset} + size {wanted} exceeds the size {size} of axis "
                                 f"{axis}")
            index[axis] = slice(offset, offset + wanted)
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
    """Split along ``axis`` (channels-last) at ``points``, or into ``num_outputs`` equal parts when empty. The
    axis may have a size known only at run time (the batch axis): then the last part runs to its end."""

    def __init__(self, axis=-1, points=(), num_outputs=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.points = tuple(int(p) for p in points)
        self.num_outputs = int(num_outputs) if num_outputs is not None else len(self.points) + 1

    def _bounds(self, size):
        if self.points:
            if _is_static(size) and self.points[-1] > size:
                raise ValueError(f"{self.name}: slice point {self.points[-1]} is beyond the axis size {size}")
            edges = (0, *self.points, size)
        elif _is_static(size):
            if size % self.num_outputs:
                raise ValueError(f"{self.name}: axis of size {size} does not split into "
                                 f"{self.num_outputs} equal parts")
            step = size // self.num_outputs
            edges = tuple(range(0, size + 1, step))
        else:
            step = size // self.num_outputs
            edges = tuple(step * index for index in range(self.num_outputs + 1))
        return list(zip(edges[:-1], edges[1:]))

    def call(self, x):
        size = _dim(x, self.axis)
        pieces = []
        for start, stop in self._bounds(size):
            index = [slice(None)] * len(x.shape)
            index[self.axis] = slice(start, stop)
            pieces.append(x[tuple(index)])
        return pieces

    def compute_output_shape(self, input_shape):
        shapes = []
        size = input_shape[self.axis]
        for start, stop in self._bounds(size) if size is not None else [(None, None)] * self.num_outputs:
            shape = list(input_shape)
            shape[self.axis] = None if size is None else stop - start
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

    def compute_output_shape(self, input_shape):
        """The static shape (None where unknown): -1 is inferred when every unknown input dim is copied to the
        output (0 keeps a dim in place), else unknown (e.g. a batch axis merged with others)."""
        nchw = list(input_shape) if len(input_shape) <= 2 else [input_shape[0], input_shape[-1], *input_shape[1:-1]]
        dims = caffe_reshape_dims(nchw, self.shape, self.axis, self.num_axes)
        if -1 in dims:
            known = [d for d in dims if d not in (-1, None)]
            inferable = nchw.count(None) == dims.count(None)
            dims[dims.index(-1)] = math.prod(d for d in nchw if d is not None) // max(math.prod(known), 1) \
                if inferable else None
        return tuple(dims) if len(dims) <= 2 else (dims[0], *dims[2:], dims[1])

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


# ------------------------------------------------------------------------- more of BVLC Caffe's layers

@register
class BNLL(_SameShape, keras.layers.Layer):
    """Caffe BNLL: y = x + log(1 + exp(-x)) for x > 0, else log(1 + exp(x))."""

    def call(self, x):
        return ops.maximum(x, 0.0) + ops.log1p(ops.exp(-ops.abs(x)))  # both branches at once, never overflowing


@register
class Clip(_SameShape, keras.layers.Layer):
    """Caffe Clip: y = max(min, min(x, max))."""

    def __init__(self, min_value, max_value, **kwargs):
        super().__init__(**kwargs)
        self.min_value, self.max_value = float(min_value), float(max_value)

    def call(self, x):
        return ops.maximum(self.min_value, ops.minimum(x, self.max_value))

    def get_config(self):
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}


def _log_of_base(base):
    """Caffe's log(base) of the Exp and Log layers: base -1 means e (log 1)."""
    return 1.0 if base == -1 else math.log(base)


@register
class Exp(_SameShape, keras.layers.Layer):
    """Caffe Exp: y = base ** (shift + scale * x), computed as Caffe does: outer * exp(inner * x) with
    inner = log(base) * scale, outer = base ** shift (base -1: e)."""

    def __init__(self, base=-1.0, scale=1.0, shift=0.0, **kwargs):
        super().__init__(**kwargs)
        self.base, self.scale, self.shift = float(base), float(scale), float(shift)

    def call(self, x):
        inner = float(np.float32(np.float32(_log_of_base(self.base)) * np.float32(self.scale)))
        outer = 1.0 if self.shift == 0 else (math.exp(self.shift) if self.base == -1
                                             else math.pow(self.base, self.shift))
        y = ops.exp(x if inner == 1.0 else x * inner)
        return y if outer == 1.0 else y * float(np.float32(outer))

    def get_config(self):
        return {**super().get_config(), "base": self.base, "scale": self.scale, "shift": self.shift}


@register
class Log(_SameShape, keras.layers.Layer):
    """Caffe Log: y = log(shift + scale * x) / log(base) (base -1: e)."""

    def __init__(self, base=-1.0, scale=1.0, shift=0.0, **kwargs):
        super().__init__(**kwargs)
        self.base, self.scale, self.shift = float(base), float(scale), float(shift)

    def call(self, x):
        if self.scale != 1.0:
            x = x * self.scale
        if self.shift != 0.0:
            x = x + self.shift
        y = ops.log(x)
        base_scale = float(np.float32(1.0 / np.float32(_log_of_base(self.base))))
        return y if base_scale == 1.0 else y * base_scale

    def get_config(self):
        return {**super().get_config(), "base": self.base, "scale": self.scale, "shift": self.shift}


@register
class Threshold(_SameShape, keras.layers.Layer):
    """Caffe Threshold: y = 1 where x > threshold, else 0."""

    def __init__(self, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def call(self, x):
        return ops.cast(x > self.threshold, x.dtype)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@register
class Swish(_SameShape, keras.layers.Layer):
    """Caffe Swish: y = x * sigmoid(beta * x)."""

    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = float(beta)

    def call(self, x):
        return x * ops.sigmoid(x if self.beta == 1.0 else x * self.beta)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@register
class MVN(_SameShape, keras.layers.Layer):
    """Caffe MVN on a channels-last tensor: x - mean, divided by (sqrt(variance) + eps) when
    ``normalize_variance``; per (sample, channel) over the other axes, or per sample when ``across_channels``."""

    def __init__(self, normalize_variance=True, across_channels=False, eps=1e-9, **kwargs):
        super().__init__(**kwargs)
        self.normalize_variance = bool(normalize_variance)
        self.across_channels = bool(across_channels)
        self.eps = float(eps)

    def call(self, x):
        rank = len(x.shape)
        axes = tuple(range(1, rank if self.across_channels else rank - 1))  # rank 2, per channel: nothing

        def mean(value):
            return ops.mean(value, axis=axes, keepdims=True) if axes else value

        y = x - mean(x)
        if self.normalize_variance:
            y = y / (ops.sqrt(mean(ops.square(y))) + self.eps)
        return y

    def get_config(self):
        return {**super().get_config(), "normalize_variance": self.normalize_variance,
                "across_channels": self.across_channels, "eps": self.eps}


@register
class Reduction(keras.layers.Layer):
    """Caffe Reduction: ``coeff`` times the sum ('sum'), sum of absolute values ('asum'), of squares ('sumsq') or
    mean ('mean') over every axis from ``axis`` (original N, C, H, W numbering) on; axis 0 reduces the batch
    too, to shape (1,)."""

    def __init__(self, operation="sum", axis=0, coeff=1.0, **kwargs):
        super().__init__(**kwargs)
        if operation not in ("sum", "asum", "sumsq", "mean"):
            raise ValueError(f"reduction must be 'sum', 'asum', 'sumsq' or 'mean', not {operation!r}")
        self.operation, self.axis, self.coeff = operation, int(axis), float(coeff)

    def call(self, x):
        x = channels_first(x)
        axes = tuple(range(self.axis, len(x.shape)))
        if self.operation == "asum":
            x = ops.abs(x)
        elif self.operation == "sumsq":
            x = ops.square(x)
        coeff = self.coeff
        y = ops.sum(x, axis=axes)
        if self.operation == "mean":
            count = 1
            for axis in axes:
                count = count * _dim(x, axis)
            coeff = float(np.float32(coeff) / np.float32(count)) if _is_static(count) else \
                coeff / ops.cast(count, x.dtype)
        if not (isinstance(coeff, float) and coeff == 1.0):
            y = y * coeff
        if self.axis == 0:
            return ops.reshape(y, (1,))
        return channels_last(y)

    def compute_output_shape(self, input_shape):
        if self.axis == 0:
            return (1,)
        nchw = (input_shape[0], input_shape[-1], *input_shape[1:-1]) if len(input_shape) > 2 else input_shape
        kept = tuple(nchw[:self.axis])
        return kept if len(kept) <= 2 else (kept[0], *kept[2:], kept[1])

    def get_config(self):
        return {**super().get_config(), "operation": self.operation, "axis": self.axis, "coeff": self.coeff}


def _top_k_high_index_first(x, k):
    """The k largest values along the last axis and their indices (float), equal values with the higher index
    first (Caffe's ArgMax sorts (value, index) pairs in descending order)."""
    size = _dim(x, len(x.shape) - 1)
    values, indices = ops.top_k(ops.flip(x, axis=-1), k, sorted=True)
    return values, ops.cast(size - 1 - indices, x.dtype)


@register
class ArgMax(keras.layers.Layer):
    """Caffe ArgMax. ``axis`` None: over each sample's values in the original (C, H, W) order, output (N, 1, k)
    of the indices (N, 2, k: indices then values with ``out_max_val``), padded with unit axes to the input's
    rank (at least 3) in the original order; else along ``axis`` (original numbering): indices, or values with
    ``out_max_val``. Output channels-last, as every tensor."""

    def __init__(self, top_k=1, out_max_val=False, axis=None, **kwargs):
        super().__init__(**kwargs)
        self.top_k, self.out_max_val = int(top_k), bool(out_max_val)
        self.axis = None if axis is None else int(axis)

    def call(self, x):
        x = channels_first(x)
        rank = len(x.shape)
        if self.axis is None:
            flat = ops.reshape(x, (-1, math.prod(x.shape[1:])))
            values, indices = _top_k_high_index_first(flat, self.top_k)
            y = ops.stack([indices, values], axis=1) if self.out_max_val else ops.expand_dims(indices, 1)
            y = ops.reshape(y, (-1, 1 + self.out_max_val, self.top_k) + (1,) * (max(rank, 3) - 3))
        else:
            moved = ops.moveaxis(x, self.axis, -1)
            values, indices = _top_k_high_index_first(moved, self.top_k)
            y = ops.moveaxis(values if self.out_max_val else indices, -1, self.axis)
        return channels_last(y)

    def compute_output_shape(self, input_shape):
        nchw = (input_shape[0], input_shape[-1], *input_shape[1:-1]) if len(input_shape) > 2 else tuple(input_shape)
        if self.axis is None:
            out = (nchw[0], 1 + self.out_max_val, self.top_k) + (1,) * (max(len(nchw), 3) - 3)
        else:
            out = nchw[:self.axis] + (self.top_k,) + nchw[self.axis + 1:]
        return out if len(out) <= 2 else (out[0], *out[2:], out[1])

    def get_config(self):
        return {**super().get_config(), "top_k": self.top_k, "out_max_val": self.out_max_val, "axis": self.axis}


@register
class Tile(keras.layers.Layer):
    """Caffe Tile: the input repeated ``tiles`` times along ``axis`` (channels-last), as numpy.tile."""

    def __init__(self, axis=-1, tiles=1, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.tiles = int(axis), int(tiles)

    def call(self, x):
        reps = [1] * len(x.shape)
        reps[self.axis] = self.tiles
        return ops.tile(x, reps)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self.axis] = None if shape[self.axis] is None else shape[self.axis] * self.tiles
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "tiles": self.tiles}


class _KernelBias(keras.layers.Layer):
    """A ``kernel`` of ``kernel_shape`` and an optional ``bias`` (units,), from initializers."""

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        self.units, self.use_bias = int(units), bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _add(self, kernel_shape):
        self.kernel = self.add_weight(name="kernel", shape=kernel_shape, initializer=self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer=self.bias_initializer)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


@register
class Embed(_KernelBias):
    """Caffe Embed: y = kernel[int(x)] (+ bias), a new last axis of ``units`` after x's axes in the original
    order (returned channels-last). Weights: ``kernel`` (input_dim, units), ``bias`` (units,)."""

    def __init__(self, input_dim, units, use_bias=True, **kwargs):
        super().__init__(units, use_bias, **kwargs)
        self.input_dim = int(input_dim)

    def build(self, input_shape):
        self._add((self.input_dim, self.units))

    def call(self, x):
        indices = ops.cast(channels_first(x), "int32")  # Caffe's static_cast<int>: truncation
        y = ops.take(self.kernel, indices, axis=0)
        if self.use_bias:
            y = y + self.bias
        return channels_last(y)

    def compute_output_shape(self, input_shape):
        nchw = (input_shape[0], input_shape[-1], *input_shape[1:-1]) if len(input_shape) > 2 else input_shape
        out = (*nchw, self.units)
        return (out[0], *out[2:], out[1])

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim}


@register
class InnerProduct(_KernelBias):
    """Caffe InnerProduct from ``axis`` >= 2 (original numbering): the axes from ``axis`` on, flattened in the
    original order, times ``kernel`` (in, units); the axes before kept. Returned channels-last."""

    def __init__(self, units, axis=2, use_bias=True, **kwargs):
        super().__init__(units, use_bias, **kwargs)
        self.axis = int(axis)

    def build(self, input_shape):
        nchw = (input_shape[0], input_shape[-1], *input_shape[1:-1]) if len(input_shape) > 2 else input_shape
        features = nchw[self.axis:]
        if any(size is None for size in features):
            raise ValueError(f"{self.name}: the flattened axes {features} must have known sizes")
        self._add((math.prod(features), self.units))

    def call(self, x):
        x = channels_first(x)
        lead = [_dim(x, axis) for axis in range(1, self.axis)]
        y = ops.matmul(ops.reshape(x, [-1, *lead, math.prod(x.shape[self.axis:])]), self.kernel)
        if self.use_bias:
            y = y + self.bias
        return channels_last(y)

    def compute_output_shape(self, input_shape):
        nchw = (input_shape[0], input_shape[-1], *input_shape[1:-1]) if len(input_shape) > 2 else input_shape
        out = (*nchw[:self.axis], self.units)
        return out if len(out) <= 2 else (out[0], *out[2:], out[1])

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@register
class ParameterBlob(keras.layers.Layer):
    """Caffe Parameter: a learned ``value`` (channels-last ``shape``) repeated over the batch of its input, which
    only gives the batch size."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(size) for size in shape)

    def build(self, input_shape):
        self.value = self.add_weight(name="value", shape=self.shape, initializer="zeros")

    def call(self, reference):
        return ops.broadcast_to(ops.expand_dims(self.value, 0), (ops.shape(reference)[0], *self.shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.shape)

    def get_config(self):
        return {**super().get_config(), "shape": self.shape}


@register
class BatchedParameter(keras.layers.Layer):
    """Caffe Parameter of a blob whose first axis is not 1 (e.g. (4, 3), (2, C, H, W)): the learned ``value``
    (the whole blob, channel-first, ``shape``) returned channels-last, its first axis the batch axis whatever the
    batch of its input, which only places it in the graph."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(size) for size in shape)

    def build(self, input_shape):
        self.value = self.add_weight(name="value", shape=self.shape, initializer="zeros")

    def call(self, reference):
        return channels_last(ops.convert_to_tensor(self.value))

    def compute_output_shape(self, input_shape):
        return self.shape if len(self.shape) <= 2 else (self.shape[0], *self.shape[2:], self.shape[1])

    def get_config(self):
        return {**super().get_config(), "shape": self.shape}


@register
class StochasticPool2D(keras.layers.Layer):
    """Caffe's STOCHASTIC pooling at test time: per window [i*s, min(i*s + k, H)), the sum of squares over the
    sum, 0 where the sum is not positive (the activation-weighted average). No padding; ``rounding`` as
    :class:`Pool2D` (Caffe: 'ceil'); ``global_pool`` one window over the whole plane."""

    def __init__(self, pool_size=1, strides=1, rounding="ceil", global_pool=False, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides = pair(pool_size), pair(strides)
        self.rounding, self.global_pool = rounding, bool(global_pool)

    def call(self, x):
        if self.global_pool:
            sums = ops.sum(x, axis=(1, 2), keepdims=True)
            squares = ops.sum(ops.square(x), axis=(1, 2), keepdims=True)
        else:
            counts, tails = [], []
            for axis, kernel, stride in zip((1, 2), self.pool_size, self.strides):
                size = _dim(x, axis)
                count = _pool_extent(size, kernel, stride, 0, 0, self.rounding)
                counts.append(count)
                tails.append(max((count - 1) * stride + kernel - size, 0) if _is_static(count) else stride - 1)
            padded = _pad_hw(x, 0, tails[0], 0, tails[1])  # zeros add nothing to either sum
            sums = ops.average_pool(padded, self.pool_size, self.strides, padding="valid")
            squares = ops.average_pool(ops.square(padded), self.pool_size, self.strides, padding="valid")
            if not all(_is_static(count) for count in counts):
                sums, squares = sums[:, :counts[0], :counts[1], :], squares[:, :counts[0], :counts[1], :]
        positive = sums > 0
        return ops.where(positive, squares / ops.where(positive, sums, ops.ones_like(sums)), ops.zeros_like(sums))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        if self.global_pool:
            return (batch, 1, 1, channels)
        rows, cols = (None if size is None else _pool_extent(size, kernel, stride, 0, 0, self.rounding)
                      for size, kernel, stride in zip((height, width), self.pool_size, self.strides))
        return (batch, rows, cols, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "rounding": self.rounding, "global_pool": self.global_pool}


# -------------------------------------------------------------------------------- the forks' layers

def _interp_taps(size_in, size_out):
    """Caffe interp.cpp's bilinear taps along one axis, in float32 as the fork computes them: output i samples
    ``i * r`` with r = float32(size_in - 1) / (size_out - 1) (0 for one output): rows (lower, upper) and the
    weights (1 - lambda, lambda). Python ints give NumPy constants, tensors give tensors."""
    static = _is_static(size_in) and _is_static(size_out)
    xp = np if static else ops
    f32 = np.float32 if static else (lambda value: ops.cast(value, "float32"))
    if static:
        ratio = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    else:
        ratio = ops.where(size_out > 1, f32(size_in - 1) / f32(ops.maximum(size_out - 1, 1)), f32(0))
    source = ratio * f32(xp.arange(size_out))
    lower = xp.floor(source).astype("int32") if static else ops.cast(source, "int32")  # source >= 0: truncation
    upper = lower + (lower < size_in - 1).astype("int32") if static else lower + ops.cast(lower < size_in - 1,
                                                                                            "int32")
    weight = source - f32(lower)
    return lower, upper, f32(1) - weight, weight


@register
class Interp(keras.layers.Layer):
    """PSPNet/DeepLab's Interp: crop ``-pad_beg`` rows/columns at the start and ``-pad_end`` at the end, then
    resize bilinearly with corners aligned to ``size`` (h, w), or to ((H' - 1) // shrink) * zoom + 1 on each axis.

    The taps and weights are the fork's float32 ones (caffe_cpu_interp2); each output is
    h0 * (w0 * a + w1 * b) + h1 * (w0 * c + w1 * d), as there. Spatial sizes may be unknown.
    """

    def __init__(self, zoom=1, shrink=1, size=None, pad_beg=0, pad_end=0, **kwargs):
        super().__init__(**kwargs)
        self.zoom = int(zoom)
        self.shrink = int(shrink)
        self.size = None if size is None else pair(size)
        self.pad_beg = int(pad_beg)
        self.pad_end = int(pad_end)
        if self.pad_beg > 0 or self.pad_end > 0 or min(self.zoom, self.shrink) < 1:
            raise ValueError(f"Interp needs pad_beg, pad_end <= 0 and zoom, shrink >= 1, got {self.get_config()}")

    def _output_size(self, cropped, axis):
        if self.size is not None:
            return self.size[axis]
        if cropped is None:
            return None
        return ((cropped - 1) // self.shrink) * self.zoom + 1

    def call(self, x):
        height, width = _dim(x, 1), _dim(x, 2)
        x = x[:, -self.pad_beg:height + self.pad_end, -self.pad_beg:width + self.pad_end, :]
        height, width = height + self.pad_beg + self.pad_end, width + self.pad_beg + self.pad_end
        out_h, out_w = self._output_size(height, 0), self._output_size(width, 1)
        if _is_static(height) and _is_static(width) and (height, width) == (out_h, out_w):
            return x  # the fork's special case: a copy
        for axis, size_in, size_out in ((2, width, out_w), (1, height, out_h)):
            lower, upper, weight0, weight1 = _interp_taps(size_in, size_out)
            shape = [1, 1, 1, 1]
            shape[axis] = -1
            weight0 = ops.reshape(ops.cast(weight0, x.dtype), shape)
            weight1 = ops.reshape(ops.cast(weight1, x.dtype), shape)
            x = ops.take(x, lower, axis=axis) * weight0 + ops.take(x, upper, axis=axis) * weight1
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        cropped = [None if size is None else size + self.pad_beg + self.pad_end for size in (height, width)]
        return (batch, self._output_size(cropped[0], 0), self._output_size(cropped[1], 1), channels)

    def get_config(self):
        return {**super().get_config(), "zoom": self.zoom, "shrink": self.shrink, "size": self.size,
                "pad_beg": self.pad_beg, "pad_end": self.pad_end}


@register
class ShuffleChannel(_SameShape, keras.layers.Layer):
    """ShuffleNet's channel shuffle on the last axis: channel i * (C / group) + j moves to j * group + i."""

    def __init__(self, group, **kwargs):
        super().__init__(**kwargs)
        self.group = int(group)

    def call(self, x):
        channels = x.shape[-1]
        if channels is None or channels % self.group:
            raise ValueError(f"{self.name}: {channels} channels do not split into {self.group} groups")
        per_group = channels // self.group
        source = [i * per_group + j for j in range(per_group) for i in range(self.group)]
        return ops.take(x, source, axis=-1)

    def get_config(self):
        return {**super().get_config(), "group": self.group}


@register
class Axpy(keras.layers.Layer):
    """SENet's Axpy: inputs (a, x, y) -> a * x + y, ``a`` (N, C) or (N, 1, 1, C), one value per channel."""

    def call(self, inputs):
        scale, x, y = inputs
        scale = ops.reshape(scale, (-1,) + (1,) * (len(x.shape) - 2) + (x.shape[-1],))
        return scale * x + y

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]


def permute_axes(order, rank):
    """The one transposition of a channels-last tensor equal to Caffe's Permute(order) of its NCHW blob."""
    if rank <= 2:
        return tuple(order)
    to_nchw = (0, rank - 1, *range(1, rank - 1))
    to_nhwc = (0, *range(2, rank), 1)
    return tuple(to_nchw[order[to_nhwc[axis]]] for axis in range(rank))


@register
class Permute(keras.layers.Layer):
    """The SSD fork's Permute: the NCHW blob's axes reordered by ``order`` (order[0] = 0), channels-last again."""

    def __init__(self, order, **kwargs):
        super().__init__(**kwargs)
        self.order = tuple(int(axis) for axis in order)
        if sorted(self.order) != list(range(len(self.order))) or self.order[0] != 0:
            raise ValueError(f"permute order {self.order} is no permutation keeping the batch axis first")

    def call(self, x):
        if len(x.shape) != len(self.order):
            raise ValueError(f"{self.name}: order {self.order} for a rank-{len(x.shape)} tensor")
        return ops.transpose(x, permute_axes(self.order, len(self.order)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[axis] for axis in permute_axes(self.order, len(self.order)))

    def get_config(self):
        return {**super().get_config(), "order": self.order}


@register
class Normalize(_SameShape, keras.layers.Layer):
    """The SSD fork's Normalize: y = x / sqrt(sum(x^2) + eps) * scale, the sum over a sample's every value
    (``across_spatial``) or over the channels at each position; ``scale`` one value or one per channel.

    Weights: ``scale`` (1,) when ``channel_shared``, else (C,).
    """

    def __init__(self, across_spatial=True, channel_shared=True, eps=1e-10, **kwargs):
        super().__init__(**kwargs)
        self.across_spatial = bool(across_spatial)
        self.channel_shared = bool(channel_shared)
        self.eps = float(eps)

    def build(self, input_shape):
        shape = (1,) if self.channel_shared else (input_shape[-1],)
        self.scale = self.add_weight(name="scale", shape=shape, initializer="ones")

    def call(self, x):
        squares = ops.square(x)
        if self.across_spatial:  # the fork scales by the reciprocal of the sample's norm
            axes = tuple(range(1, len(x.shape)))
            y = x * (1.0 / ops.sqrt(ops.sum(squares, axis=axes, keepdims=True) + self.eps))
        else:
            y = x / ops.sqrt(ops.sum(squares, axis=-1, keepdims=True) + self.eps)
        return y * self.scale

    def get_config(self):
        return {**super().get_config(), "across_spatial": self.across_spatial,
                "channel_shared": self.channel_shared, "eps": self.eps}


def prior_boxes(feature_size, image_size, min_sizes, max_sizes=(), aspect_ratios=(1.0,), clip=False,
                variances=(0.1,), step=None, offset=0.5):
    """The SSD fork's PriorBox output (2, H * W * priors * 4), float32: each cell's priors' (xmin, ymin, xmax,
    ymax), normalised by the image size, then their variances; its float and double arithmetic kept, and its
    sizes truncated to integers (``int min_size_ = min_sizes_[s]``)."""
    (rows, cols), (image_h, image_w) = feature_size, image_size
    f32 = np.float32
    step_h, step_w = (f32(image_h) / f32(rows), f32(image_w) / f32(cols)) if step is None else map(f32, step)
    centre_x = (np.arange(cols, dtype=f32) + f32(offset)) * step_w
    centre_y = (np.arange(rows, dtype=f32) + f32(offset)) * step_h
    sizes = []  # (width, height) of each prior of a cell, float32 as the fork stores them
    for index, min_size in enumerate(min_sizes):
        min_size = int(min_size)
        sizes.append((f32(min_size), f32(min_size)))
        if max_sizes:
            side = f32(math.sqrt(min_size * int(max_sizes[index])))
            sizes.append((side, side))
        for ratio in aspect_ratios:
            if abs(ratio - 1.0) < 1e-6:
                continue
            sizes.append((f32(min_size * math.sqrt(f32(ratio))), f32(min_size / math.sqrt(f32(ratio)))))
    widths = np.array([width for width, _ in sizes], np.float64)
    heights = np.array([height for _, height in sizes], np.float64)
    cx = centre_x.astype(np.float64)[None, :, None]
    cy = centre_y.astype(np.float64)[:, None, None]
    boxes = np.stack(np.broadcast_arrays((cx - widths / 2.0) / image_w, (cy - heights / 2.0) / image_h,
                                         (cx + widths / 2.0) / image_w, (cy + heights / 2.0) / image_h),
                     axis=-1).astype(f32).reshape(-1)
    if clip:
        boxes = np.minimum(np.maximum(boxes, f32(0)), f32(1))
    variance = np.resize(np.asarray(variances, f32), boxes.shape)
    return np.stack([boxes, variance])


@register
class PriorBox(keras.layers.Layer):
    """The SSD fork's PriorBox: a constant (batch, H * W * priors * 4, 2) tensor, the (2, L) blob channels-last
    and repeated over the batch, computed by :func:`prior_boxes` from the static sizes of the feature map
    (inputs[0]) and of the image (``img_size``, else inputs[1])."""

    def __init__(self, min_sizes, max_sizes=(), aspect_ratios=(1.0,), clip=False, variances=(0.1,), img_size=None,
                 step=None, offset=0.5, **kwargs):
        super().__init__(**kwargs)
        self.min_sizes = tuple(float(size) for size in min_sizes)
        self.max_sizes = tuple(float(size) for size in max_sizes)
        self.aspect_ratios = tuple(float(ratio) for ratio in aspect_ratios)
        self.clip = bool(clip)
        self.variances = tuple(float(value) for value in variances)
        self.img_size = None if img_size is None else pair(img_size)
        self.step = None if step is None else tuple(float(value) for value in step)
        self.offset = float(offset)

    def _priors(self, shapes):
        feature = tuple(shapes[0][1:3])
        image = self.img_size or (tuple(shapes[1][1:3]) if len(shapes) > 1 else (None, None))
        if None in feature or None in image:
            raise ValueError(f"{self.name}: the priors are a constant of the input size, which must be fixed "
                             f"(feature map {feature}, image {image})")
        return prior_boxes(feature, image, self.min_sizes, self.max_sizes, self.aspect_ratios, self.clip,
                           self.variances, self.step, self.offset)

    def call(self, inputs):
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        priors = self._priors([tuple(x.shape) for x in inputs])
        batch = ops.zeros_like(inputs[0][:, :1, 0, 0])[:, :, None]  # (N, 1, 1): the batch size
        return batch + ops.convert_to_tensor(priors.T[None], dtype=inputs[0].dtype)

    def compute_output_shape(self, input_shapes):
        shapes = input_shapes if isinstance(input_shapes[0], (list, tuple)) else [input_shapes]
        return (shapes[0][0], self._priors(shapes).shape[1], 2)

    def get_config(self):
        return {**super().get_config(), "min_sizes": self.min_sizes, "max_sizes": self.max_sizes,
                "aspect_ratios": self.aspect_ratios, "clip": self.clip, "variances": self.variances,
                "img_size": self.img_size, "step": self.step, "offset": self.offset}


_FLT_MAX = float(np.finfo(np.float32).max)


def decode_boxes(loc, priors, variances, code_type, variance_encoded_in_target):
    """The SSD fork's DecodeBBox on (..., 4) offsets against (..., 4) priors and variances (float32)."""
    lx, ly, lw, lh = (loc[..., i] for i in range(4))
    xmin, ymin, xmax, ymax = (priors[..., i] for i in range(4))
    v0, v1, v2, v3 = (1.0, 1.0, 1.0, 1.0) if variance_encoded_in_target else (variances[..., i] for i in range(4))
    if code_type == "corner":
        boxes = (xmin + v0 * lx, ymin + v1 * ly, xmax + v2 * lw, ymax + v3 * lh)
    elif code_type == "corner_size":
        width, height = xmax - xmin, ymax - ymin
        boxes = (xmin + v0 * lx * width, ymin + v1 * ly * height, xmax + v2 * lw * width, ymax + v3 * lh * height)
    elif code_type == "center_size":
        width, height = xmax - xmin, ymax - ymin
        centre_x, centre_y = (xmin + xmax) / 2.0, (ymin + ymax) / 2.0
        centre_x, centre_y = v0 * lx * width + centre_x, v1 * ly * height + centre_y
        width, height = ops.exp(v2 * lw) * width, ops.exp(v3 * lh) * height
        boxes = (centre_x - width / 2.0, centre_y - height / 2.0, centre_x + width / 2.0, centre_y + height / 2.0)
    else:
        raise ValueError(f"unknown code_type {code_type!r}")
    return ops.stack(boxes, axis=-1)


def _box_sizes(boxes):
    """BBoxSize: width * height, 0 for a box with xmax < xmin or ymax < ymin."""
    width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return ops.where((width < 0) | (height < 0), 0.0, width * height)


def jaccard_overlaps(boxes):
    """The SSD fork's JaccardOverlap of every pair of (..., K, 4) boxes: (..., K, K), 0 where they do not
    overlap with a positive width and height."""
    a, b = boxes[..., :, None, :], boxes[..., None, :, :]
    width = ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0])
    height = ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1])
    overlap = (width > 0) & (height > 0)
    intersection = ops.where(overlap, width * height, 0.0)
    sizes = _box_sizes(boxes)
    union = sizes[..., :, None] + sizes[..., None, :] - intersection
    return ops.where(overlap, intersection / ops.where(overlap, union, 1.0), 0.0)


def greedy_nms(overlaps, valid, threshold, eta=1.0):
    """The SSD fork's ApplyNMSFast on candidates sorted by falling score: ``keep`` (..., K), each valid candidate
    kept when its overlap with every kept one is <= the threshold, which falls by ``eta`` after each kept box
    while above 0.5."""
    count = overlaps.shape[-1]
    positions = ops.arange(count)

    def step(index, state):
        keep, limit = state
        column = ops.take(overlaps, index, axis=-1)
        clear = ops.all(ops.logical_or(ops.logical_not(keep), column <= limit[..., None]), axis=-1)
        kept = ops.logical_and(ops.take(valid, index, axis=-1), clear)
        keep = ops.where(positions == index, kept[..., None], keep)
        if eta < 1:
            limit = ops.where(ops.logical_and(kept, limit > 0.5), limit * eta, limit)
        return keep, limit

    keep = ops.zeros_like(valid)
    limit = ops.zeros_like(ops.cast(valid[..., 0], "float32")) + threshold
    keep, _ = ops.fori_loop(0, count, step, (keep, limit))
    return keep


@register
class DetectionOutput(keras.layers.Layer):
    """The SSD fork's DetectionOutput as a fixed-size head: inputs (loc, conf, priors) -> (N, rows, 7, 1), the
    (1, rows, 7) blob of each sample channels-last.

    Per sample: the offsets decoded against the priors (``code_type``, ``variance_encoded_in_target``), then for
    each class but the background: the scores above ``confidence_threshold`` (None: every score), the ``top_k``
    best (-1: all), greedy NMS (``nms_threshold``, ``eta``); of what every class keeps the ``keep_top_k`` best
    (-1: all). Rows (image_id, label, confidence, xmin, ymin, xmax, ymax) by label, then falling confidence (equal
    scores: the lower prior first), as the fork writes them; the rows after a sample's detections are padding,
    (image_id, -1, -1, -1, -1, -1, -1). The priors are the first sample's (Caffe's PriorBox blob has one).
    NMS holds the overlaps of every class's candidates, (N, classes, K, K) values for K = top_k (all priors
    without it), and runs one step per candidate.
    """

    def __init__(self, num_classes, rows, share_location=True, background_label_id=0, code_type="corner",
                 variance_encoded_in_target=False, confidence_threshold=None, nms_threshold=0.3, eta=1.0, top_k=-1,
                 keep_top_k=-1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.rows = int(rows)
        self.share_location = bool(share_location)
        self.background_label_id = int(background_label_id)
        self.code_type = str(code_type)
        self.variance_encoded_in_target = bool(variance_encoded_in_target)
        self.confidence_threshold = None if confidence_threshold is None else float(confidence_threshold)
        self.nms_threshold = float(nms_threshold)
        self.eta = float(eta)
        self.top_k = int(top_k)
        self.keep_top_k = int(keep_top_k)
        self.labels = [c for c in range(self.num_classes) if c != self.background_label_id]

    def call(self, inputs):
        loc, conf, priors = (channels_first(x) for x in inputs)
        priors = priors[0]
        count = priors.shape[-1] // 4
        loc_classes = 1 if self.share_location else self.num_classes
        prior_boxes_ = ops.reshape(priors[0], (count, 1, 4))
        variances = ops.reshape(priors[1], (count, 1, 4))
        boxes = decode_boxes(ops.reshape(loc, (-1, count, loc_classes, 4)), prior_boxes_, variances,
                             self.code_type, self.variance_encoded_in_target)  # (N, P, loc classes, 4)
        labels = np.asarray(self.labels, "int32")
        scores = ops.take(ops.transpose(ops.reshape(conf, (-1, count, self.num_classes)), (0, 2, 1)), labels,
                          axis=1)  # (N, F, P)
        boxes = ops.transpose(ops.take(boxes, np.zeros_like(labels) if self.share_location else labels, axis=2),
                              (0, 2, 1, 3))  # (N, F, P, 4)
        threshold = -_FLT_MAX if self.confidence_threshold is None else self.confidence_threshold
        candidates = count if self.top_k < 0 else min(self.top_k, count)
        scores, order = ops.top_k(ops.where(scores > threshold, scores, -np.inf), candidates)  # (N, F, K)
        valid = scores > -np.inf
        boxes = ops.take_along_axis(boxes, ops.expand_dims(order, -1), axis=2)
        keep = greedy_nms(jaccard_overlaps(boxes), valid, self.nms_threshold, self.eta)
        total = len(self.labels) * candidates
        scores, keep = ops.reshape(scores, (-1, total)), ops.reshape(keep, (-1, total))
        boxes = ops.reshape(boxes, (-1, total, 4))
        if -1 < self.keep_top_k < total:  # the keep_top_k best of what the classes keep
            ranking = ops.top_k(ops.where(keep, scores, -np.inf), total)[1]
            keep = ops.logical_and(keep, ops.argsort(ranking, axis=-1) < self.keep_top_k)
        taken = min(self.rows, total)  # the kept candidates in (label, score) order: first positions first
        key, index = ops.top_k(ops.where(keep, np.arange(total, 0, -1, dtype="float32"), 0.0), taken)
        found = ops.expand_dims(key > 0, -1)
        label = ops.take(np.repeat(labels, candidates).astype("float32"), index)
        columns = [ops.expand_dims(label, -1), ops.expand_dims(ops.take_along_axis(scores, index, axis=1), -1),
                   ops.take_along_axis(boxes, ops.expand_dims(index, -1), axis=1)]
        detections = ops.where(found, ops.concatenate(columns, axis=-1), -1.0)
        if taken < self.rows:
            detections = ops.pad(detections, [[0, 0], [0, self.rows - taken], [0, 0]], constant_values=-1.0)
        image_id = ops.cast(ops.arange(ops.shape(detections)[0]), detections.dtype)
        image_id = ops.zeros_like(detections[..., :1]) + image_id[:, None, None]
        return ops.expand_dims(ops.concatenate([image_id, detections], axis=-1), -1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], self.rows, 7, 1)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "rows": self.rows,
                "share_location": self.share_location, "background_label_id": self.background_label_id,
                "code_type": self.code_type, "variance_encoded_in_target": self.variance_encoded_in_target,
                "confidence_threshold": self.confidence_threshold, "nms_threshold": self.nms_threshold,
                "eta": self.eta, "top_k": self.top_k, "keep_top_k": self.keep_top_k}


@register
class Upsample(keras.layers.Layer):
    """Nearest-neighbour upsampling by integer factors (sh, sw): out[i, j] = in[i // sh, j // sw]."""

    def __init__(self, scale=2, **kwargs):
        super().__init__(**kwargs)
        self.scale = pair(scale)

    def call(self, x):
        return ops.repeat(ops.repeat(x, self.scale[0], axis=1), self.scale[1], axis=2)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, *(None if size is None else size * factor for size, factor in zip((height, width), self.scale)),
                channels)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _round_half_away(x):
    """C's round(): halves away from zero (ops.round rounds them to even), exact for float32 values."""
    magnitude = ops.abs(x)
    whole = ops.floor(magnitude)
    return ops.sign(x) * (whole + ops.cast(magnitude - whole >= 0.5, x.dtype))


def _roi_bins(start, length, bins, size):
    """Fast R-CNN's bins along one axis: [floor(p * b), ceil((p + 1) * b)) + start clipped to [0, size), b the
    float32 length / bins, as (R, bins) int32 starts and ends."""
    bin_size = ops.cast(length, "float32") / float(bins)
    steps = np.arange(bins + 1, dtype="float32")
    starts = ops.cast(ops.floor(steps[None, :-1] * bin_size[:, None]), "int32") + start[:, None]
    ends = ops.cast(ops.ceil(steps[None, 1:] * bin_size[:, None]), "int32") + start[:, None]
    return ops.clip(starts, 0, size), ops.clip(ends, 0, size)


@register
class ROIPooling(keras.layers.Layer):
    """Fast R-CNN's ROIPooling: inputs (features (N, H, W, C), rois (R, 5): batch index, x1, y1, x2, y2 in image
    pixels) -> (R, ph, pw, C), each bin the max of its cells, 0 for an empty bin.

    Roi corners are ``round(coordinate * spatial_scale)`` (halves away from zero), an roi at least 1 x 1 cell;
    bin p along an axis covers [floor(p * b), ceil((p + 1) * b)) from the roi's start, b = size / pooled, clipped
    to the feature map (roi_pooling_layer.cpp). The batch of the output counts the rois; a batch index outside
    the features is an error (TensorFlow's gather), as Caffe's CHECK.
    """

    def __init__(self, pooled, spatial_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.pooled = pair(pooled)
        self.spatial_scale = float(spatial_scale)

    def call(self, inputs):
        features, rois = inputs
        rois = ops.reshape(channels_first(rois), (-1, 5))
        height, width = _dim(features, 1), _dim(features, 2)
        corners = ops.cast(_round_half_away(rois[:, 1:] * self.spatial_scale), "int32")
        x1, y1, x2, y2 = (corners[:, i] for i in range(4))
        rows = _roi_bins(y1, ops.maximum(y2 - y1 + 1, 1), self.pooled[0], height)
        cols = _roi_bins(x1, ops.maximum(x2 - x1 + 1, 1), self.pooled[1], width)
        cells = ops.take(features, ops.cast(rois[:, 0], "int32"), axis=0)  # (R, H, W, C)
        lowest = ops.cast(-_FLT_MAX, features.dtype)

        def inside(bins, size, index):  # (R, size): the cells of bin ``index``
            where = ops.arange(size)[None, :]
            return ops.logical_and(where >= bins[0][:, index:index + 1], where < bins[1][:, index:index + 1])

        columns = ops.stack([ops.max(ops.where(inside(cols, width, j)[:, None, :, None], cells, lowest), axis=2)
                             for j in range(self.pooled[1])], axis=2)  # (R, H, pw, C)
        pooled = ops.stack([ops.max(ops.where(inside(rows, height, i)[:, :, None, None], columns, lowest), axis=1)
                            for i in range(self.pooled[0])], axis=1)  # (R, ph, pw, C)
        empty = ops.logical_or((rows[1] <= rows[0])[:, :, None], (cols[1] <= cols[0])[:, None, :])
        return ops.where(empty[..., None], ops.zeros_like(pooled), pooled)

    def compute_output_shape(self, input_shapes):
        features, rois = input_shapes
        return (rois[0], *self.pooled, features[-1])

    def get_config(self):
        return {**super().get_config(), "pooled": self.pooled, "spatial_scale": self.spatial_scale}


# ------------------------------------------------------------------------ MatConvNet's other blocks
def _channels_last_param(value):
    """A batch-less channel-first broadcast weight (C, H, W) as (H, W, C); a (C,) one unchanged."""
    rank = len(value.shape)
    return value if rank <= 1 else ops.transpose(value, (*range(1, rank), 0))


def _broadcast_shape(*shapes):
    """NumPy's broadcast of Keras shapes of one rank (None: unknown; a 1 takes the other size)."""
    result = []
    for sizes in zip(*shapes):
        known = [size for size in sizes if size is not None and size != 1]
        result.append(known[0] if known else (None if None in sizes else 1))
    return tuple(result)


def _as_list(inputs):
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


@register
class MulAdd(keras.layers.Layer):
    """MatConvNet's dagnn.Scale in general: y = x * m (+ b) with NumPy (bsxfun) broadcasting, ``m`` and ``b``
    further inputs ('input') or weights ('weight': ``gamma``, ``beta``, stored channel-first (C, H, W) or (C,) as
    in the neutral graph); ``offset`` 'none': no b."""

    def __init__(self, multiplier="input", offset="none", gamma_shape=None, beta_shape=None, **kwargs):
        super().__init__(**kwargs)
        if multiplier not in ("input", "weight") or offset not in ("input", "weight", "none"):
            raise ValueError(f"multiplier must be 'input' or 'weight' and offset 'input', 'weight' or 'none', "
                             f"not {multiplier!r}, {offset!r}")
        self.multiplier, self.offset = multiplier, offset
        self.gamma_shape = None if gamma_shape is None else tuple(int(s) for s in gamma_shape)
        self.beta_shape = None if beta_shape is None else tuple(int(s) for s in beta_shape)

    def build(self, input_shape):
        if self.multiplier == "weight":
            self.gamma = self.add_weight(name="gamma", shape=self.gamma_shape, initializer="ones")
        if self.offset == "weight":
            self.beta = self.add_weight(name="beta", shape=self.beta_shape, initializer="zeros")

    def _operands(self, inputs):
        x, *rest = _as_list(inputs)
        m = rest.pop(0) if self.multiplier == "input" else _channels_last_param(self.gamma)
        b = rest.pop(0) if self.offset == "input" else (
            _channels_last_param(self.beta) if self.offset == "weight" else None)
        return x, m, b

    def call(self, inputs):
        x, m, b = self._operands(inputs)
        y = x * m
        return y if b is None else y + b

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape] if isinstance(input_shape, list) else [tuple(input_shape)]
        rank = len(shapes[0])
        for shape in (self.gamma_shape if self.multiplier == "weight" else None,
                      self.beta_shape if self.offset == "weight" else None):
            if shape is not None:
                nhwc = shape if len(shape) <= 1 else (*shape[1:], shape[0])
                shapes.append((1,) * (rank - len(nhwc)) + tuple(nhwc))
        return _broadcast_shape(*shapes)

    def get_config(self):
        return {**super().get_config(), "multiplier": self.multiplier, "offset": self.offset,
                "gamma_shape": self.gamma_shape, "beta_shape": self.beta_shape}


@register
class PDist(keras.layers.Layer):
    """vl_nnpdist: y = (sum over channels |x - x0|^p)^(1/p) (``no_root``: without the 1/p power), times the
    instance weights; x0 and the instance weights are inputs or weights (``target``, ``instance_weights``,
    channel-first as in the neutral graph), as ``target`` / ``instance_weights`` say ('input' | 'weight', and
    'none' for the instance weights). The output has one channel."""

    def __init__(self, p=2.0, no_root=False, target="input", instance_weights="none", target_shape=None,
                 instance_weights_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.p, self.no_root = float(p), bool(no_root)
        self.target, self.instance_weights = target, instance_weights
        self.target_shape = None if target_shape is None else tuple(int(s) for s in target_shape)
        self.instance_weights_shape = (None if instance_weights_shape is None
                                       else tuple(int(s) for s in instance_weights_shape))

    def build(self, input_shape):
        if self.target == "weight":
            self.target_value = self.add_weight(name="target", shape=self.target_shape, initializer="zeros")
        if self.instance_weights == "weight":
            self.instance_value = self.add_weight(name="instance_weights", shape=self.instance_weights_shape,
                                                  initializer="ones")

    def call(self, inputs):
        x, *rest = _as_list(inputs)
        x0 = rest.pop(0) if self.target == "input" else _channels_last_param(self.target_value)
        d = x - x0
        if self.p == 1.0:
            y = ops.sum(ops.abs(d), axis=-1, keepdims=True)
        elif self.p == 2.0:
            y = ops.sum(d * d, axis=-1, keepdims=True)
            y = y if self.no_root else ops.sqrt(y)
        else:
            y = ops.sum(ops.power(ops.abs(d), self.p), axis=-1, keepdims=True)
            y = y if self.no_root else ops.power(y, 1.0 / self.p)
        if self.instance_weights == "input":
            y = y * rest.pop(0)
        elif self.instance_weights == "weight":
            y = y * _channels_last_param(self.instance_value)
        return y

    def get_config(self):
        return {**super().get_config(), "p": self.p, "no_root": self.no_root, "target": self.target,
                "instance_weights": self.instance_weights, "target_shape": self.target_shape,
                "instance_weights_shape": self.instance_weights_shape}


@register
class SpatialNorm(_SameShape, keras.layers.Layer):
    """vl_nnspnorm: y = x (1 + alpha N2)^(-beta), N2 the mean of x^2 over the in-image cells of a ph x pw window
    padded (p - 1) // 2 before and the rest after (vl_nnpool 'avg' divides by the in-image cells)."""

    def __init__(self, size=(2, 2), alpha=10.0, beta=2.0, **kwargs):
        super().__init__(**kwargs)
        self.size = pair(size)
        self.alpha, self.beta = float(alpha), float(beta)

    def call(self, x):
        (ph, pw) = self.size
        top, left = (ph - 1) // 2, (pw - 1) // 2
        pads = (top, ph - 1 - top, left, pw - 1 - left)
        total = ops.average_pool(_pad_hw(x * x, *pads), (ph, pw), 1, padding="valid")
        count = ops.average_pool(_pad_hw(ops.ones_like(x[..., :1]), *pads), (ph, pw), 1, padding="valid")
        return ops.power(1.0 + self.alpha * (total / count), -self.beta) * x

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta}


@register
class NormOffset(_SameShape, keras.layers.Layer):
    """vl_nnnoffset: y = x - scale * max(sum over channels x^2, floor)^power."""

    def __init__(self, scale=1.0, power=0.5, floor=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.power, self.floor = float(scale), float(power), float(floor)

    def call(self, x):
        norm = ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), self.floor)
        return x - self.scale * ops.power(norm, self.power)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "power": self.power, "floor": self.floor}


@register
class ROIPoolAffine(keras.layers.Layer):
    """MatConvNet's vl_nnroipool: inputs (features (N, H, W, C), rois) -> (R, ph, pw, C), or (R, 1, 1, ph*pw*C)
    when ``flatten`` (the tiles in MATLAB's order: rows fastest, then columns, then channels).

    ``rois`` holds R groups of 5 values [t u0 v0 u1 v1] in MATLAB's (column-major) order of the H x W x C x N array
    the tensor stands for (a 5 x R array is a (1, 5, R, 1) tensor): image t (from 1, clamped), corners (u
    horizontal, v vertical, from 1) mapped by ``transform`` [a b c d e f] (u' = a u + c v + e, v' = b u + d v + f),
    rounded halves away from zero; the tiles as Fast R-CNN's; 'max' or 'avg' over each tile's cells; 0 for an
    empty tile.
    """

    def __init__(self, pooled, transform=(1.0, 0.0, 0.0, 1.0, 0.0, 0.0), method="max", flatten=False, **kwargs):
        super().__init__(**kwargs)
        if method not in ("max", "avg"):
            raise ValueError(f"ROI pooling method must be 'max' or 'avg', not {method!r}")
        self.pooled = pair(pooled)
        self.transform = tuple(float(v) for v in transform)
        if len(self.transform) != 6:
            raise ValueError(f"transform must hold 6 numbers, got {len(self.transform)}")
        self.method, self.flatten = method, bool(flatten)

    def call(self, inputs):
        features, rois = inputs
        rank = len(rois.shape)
        if rank > 2:
            rois = ops.transpose(rois, (0, *range(rank - 1, 0, -1)))  # MATLAB's linear order
        rois = ops.reshape(rois, (-1, 5))
        a, b, c, d, e, f = self.transform
        u1, v1, u2, v2 = (rois[:, i] for i in range(1, 5))
        corner = [ops.cast(_round_half_away(value), "int32") - 1
                  for value in (a * u1 + c * v1 + e, b * u1 + d * v1 + f, a * u2 + c * v2 + e, b * u2 + d * v2 + f)]
        x1, y1, x2, y2 = corner
        height, width = _dim(features, 1), _dim(features, 2)
        rows = _roi_bins(y1, ops.maximum(y2 - y1 + 1, 1), self.pooled[0], height)
        cols = _roi_bins(x1, ops.maximum(x2 - x1 + 1, 1), self.pooled[1], width)
        image = ops.clip(ops.cast(rois[:, 0], "int32") - 1, 0, ops.shape(features)[0] - 1)
        cells = ops.take(features, image, axis=0)  # (R, H, W, C)

        def inside(bins, size):  # (R, bins, size): the cells of each bin
            where = ops.arange(size)[None, None, :]
            return ops.logical_and(where >= bins[0][:, :, None], where < bins[1][:, :, None])

        in_rows, in_cols = inside(rows, height), inside(cols, width)
        if self.method == "max":
            lowest = ops.cast(-_FLT_MAX, features.dtype)
            columns = ops.stack([ops.max(ops.where(in_cols[:, j][:, None, :, None], cells, lowest), axis=2)
                                 for j in range(self.pooled[1])], axis=2)  # (R, H, pw, C)
            pooled = ops.stack([ops.max(ops.where(in_rows[:, i][:, :, None, None], columns, lowest), axis=1)
                                for i in range(self.pooled[0])], axis=1)  # (R, ph, pw, C)
        else:
            columns = ops.einsum("rjw,rhwc->rhjc", ops.cast(in_cols, features.dtype), cells)
            sums = ops.einsum("rih,rhjc->rijc", ops.cast(in_rows, features.dtype), columns)
            counts = (rows[1] - rows[0])[:, :, None] * (cols[1] - cols[0])[:, None, :]
            pooled = sums * (1.0 / ops.cast(ops.maximum(counts, 1), features.dtype))[..., None]
        empty = ops.logical_or((rows[1] <= rows[0])[:, :, None], (cols[1] <= cols[0])[:, None, :])
        pooled = ops.where(empty[..., None], ops.zeros_like(pooled), pooled)
        if self.flatten:
            pooled = ops.reshape(ops.transpose(pooled, (0, 3, 2, 1)), (-1, 1, 1, self._flat_size(features.shape)))
        return pooled

    def _flat_size(self, features_shape):
        channels = features_shape[-1]
        return -1 if channels is None else self.pooled[0] * self.pooled[1] * channels

    def compute_output_shape(self, input_shapes):
        features, _ = input_shapes
        if self.flatten:
            size = self._flat_size(features)
            return (None, 1, 1, None if size == -1 else size)
        return (None, *self.pooled, features[-1])

    def get_config(self):
        return {**super().get_config(), "pooled": self.pooled, "transform": self.transform, "method": self.method,
                "flatten": self.flatten}


@register
class BilinearSampler(keras.layers.Layer):
    """vl_nnbilinearsampler: inputs (x (N, H, W, C), grid (No, 2, Ho, Wo): MatConvNet's 2 x Ho x Wo x No array,
    vertical then horizontal coordinates in [-1, 1] from the first to the last pixel centre) -> (No, Ho, Wo, C).

    A point at (y, x) = ((g + 1) / 2 (H - 1), ...) takes the bilinear mix of the (up to) four pixels around it,
    those outside the image counting 0, and 0 unless -1 <= floor(y) < H and -1 <= floor(x) < W. With No a
    multiple of N, grids [k No/N, (k+1) No/N) sample image k.
    """

    def call(self, inputs):
        x, grid = inputs
        height, width = _dim(x, 1), _dim(x, 2)
        channels = x.shape[-1] if x.shape[-1] is not None else ops.shape(x)[-1]
        n_out = ops.shape(grid)[0]
        group = n_out // ops.shape(x)[0]
        py = (0.5 * (grid[:, 0] + 1.0)) * (ops.cast(height, x.dtype) - 1.0)
        px = (0.5 * (grid[:, 1] + 1.0)) * (ops.cast(width, x.dtype) - 1.0)
        fy, fx = ops.floor(py), ops.floor(px)
        wy, wx = py - fy, px - fx
        sy, sx = ops.cast(fy, "int32"), ops.cast(fx, "int32")
        near = (sy >= -1) & (sy < height) & (sx >= -1) & (sx < width)
        base = (ops.arange(n_out) // group) * (height * width)
        flat = ops.reshape(x, (-1, channels))
        total = None
        for j in (0, 1):  # as vl_nnbilinearsampler: columns outside, rows inside
            for i in (0, 1):
                yy, xx = sy + i, sx + j
                inside = near & (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
                weight = (wx if j else 1.0 - wx) * (wy if i else 1.0 - wy)
                index = base[:, None, None] + ops.clip(yy, 0, height - 1) * width + ops.clip(xx, 0, width - 1)
                term = ops.where(inside, weight, 0.0)[..., None] * ops.take(flat, index, axis=0)
                total = term if total is None else total + term
        return total

    def compute_output_shape(self, input_shapes):
        x, grid = input_shapes
        return (grid[0], grid[2], grid[3], x[-1])


def _matlab_linspace(count):
    """MATLAB's linspace(-1, 1, count) (count 1 gives the end point, 1)."""
    if count == 1:
        return np.ones(1, np.float32)
    values = -1.0 + np.arange(count, dtype=np.float64) * (2.0 / (count - 1))
    values[-1] = 1.0
    return values.astype(np.float32)


@register
class SamplingGrid(keras.layers.Layer):
    """MatConvNet's grid generators: (N, 1, 1, 6) affine transforms [c1 ... c6] ('affine':
    dagnn.AffineGridGenerator) or (N, 1, 1, 3) [s ty tx] ('scaling': dagnn.UniformScalingGridGenerator) ->
    the (N, 2, height, width) grid of BilinearSampler: with v, u = linspace(-1, 1) over the rows and columns,
    vertical c1 v + c2 u + c5 and horizontal c3 v + c4 u + c6 (affine), or s v + ty and s u + tx (scaling)."""

    def __init__(self, height, width, kind="affine", **kwargs):
        super().__init__(**kwargs)
        if kind not in ("affine", "scaling"):
            raise ValueError(f"kind must be 'affine' or 'scaling', not {kind!r}")
        self.height, self.width, self.kind = int(height), int(width), kind

    def call(self, transforms):
        count = 6 if self.kind == "affine" else 3
        c = ops.reshape(transforms, (-1, count))
        v = ops.convert_to_tensor(_matlab_linspace(self.height)[None, :, None], dtype=transforms.dtype)
        u = ops.convert_to_tensor(_matlab_linspace(self.width)[None, None, :], dtype=transforms.dtype)
        k = [c[:, i][:, None, None] for i in range(count)]
        if self.kind == "affine":
            rows, cols = v * k[0] + u * k[1] + k[4], v * k[2] + u * k[3] + k[5]
        else:
            rows, cols = v * k[0] + k[1], u * k[0] + k[2]
        shape = (ops.shape(c)[0], self.height, self.width)
        return ops.stack([ops.broadcast_to(rows, shape), ops.broadcast_to(cols, shape)], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "kind": self.kind}


def batch_mixing(layer):
    """What makes ``layer``'s output batch other than its input's sample by sample (Caffe's axis-0 forms of Concat,
    Slice, Crop, Flatten, Softmax, ArgMax, Tile and Reduction; a Parameter blob of its own batch; a pooling of
    regions of interest), or None for a layer computing each sample on its own. A model holding such a layer is
    exact only when run on the whole batch at once."""
    axis = getattr(layer, "axis", None)
    if isinstance(layer, (keras.layers.Concatenate, keras.layers.Softmax, Slice, Tile, ArgMax)) and (
            axis == 0 or isinstance(axis, (tuple, list)) and 0 in axis):
        return f"{type(layer).__name__} along the batch axis"
    if isinstance(layer, Crop) and 0 in layer.axes:
        return "Crop of the batch axis"
    if isinstance(layer, CaffeReshape) and layer.axis == 0 and layer.shape == (-1,) and layer.num_axes != 1:
        return "Flatten from the batch axis"
    if isinstance(layer, Reduction) and layer.axis == 0:
        return "Reduction of the whole batch"
    if isinstance(layer, BatchedParameter):
        return f"a Parameter blob of its own batch of {layer.shape[0]}"
    if isinstance(layer, (ROIPooling, ROIPoolAffine)):
        return "one output per region of interest (its output's batch axis counts the rois)"
    return None
