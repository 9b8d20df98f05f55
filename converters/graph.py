"""The neutral graph: what every reader (Caffe, MatConvNet) yields and the one Keras builder consumes.

A :class:`Graph` is an ordered list of :class:`Node` objects over named blobs (Caffe blobs, MatConvNet
variables). Readers make every framework-specific semantic explicit in ``attrs`` and convert every weight
array ONCE into the layouts below; the builder never asks which framework a node came from.

Conventions
-----------
* Blob names are the original names. A node may write a blob that already exists (Caffe in-place layers,
  ``top == bottom``): later readers of that name see the new value.
* ``Graph.inputs`` maps input blob names to their shape WITHOUT the batch dimension, in the original
  channel-first order ``(C, H, W)`` (or ``(C,)``, ``(C, H)``...); an unknown dimension is ``None``.
* Every ``axis`` attribute counts in the original N, C, H, W numbering (0 = batch, 1 = channels, 2 = height,
  3 = width; negative values count from the end of the original rank). The builder maps it onto NHWC.
* Weight arrays are numpy float32 arrays (or lazily loaded ``np.memmap`` views) in these layouts:

=========  =====================================================================================================
op         weights (layout)
=========  =====================================================================================================
conv       ``kernel`` (kh, kw, cin // groups, cout); ``bias`` (cout,) when ``use_bias``
deconv     ``kernel`` (kh, kw, cout // groups, cin); ``bias`` (cout,) when ``use_bias``
dense      ``kernel`` (in, out), ``in`` enumerating the flattened input in channel-major (C, H, W) order, or
           (kh, kw, C, out): a filter bank covering the whole (H, W, C) = (kh, kw, C) input (1, 1, C for a
           flat input), e.g. a column-major file view that is never reordered; ``bias`` (out,)
prelu      ``alpha`` (C,) or (1,) when ``channel_shared``
batchnorm  ``mean`` (C,) and ``variance`` (C,) when ``attrs['stat'] == 'variance'`` (y uses sqrt(var + eps)),
           or ``std`` (C,) when ``attrs['stat'] == 'std'`` (y divides by std, no epsilon);
           optional ``gamma`` (C,) and ``beta`` (C,)
scale      ``gamma`` shaped like the scaled axes (e.g. (C,)); optional ``beta`` of the same shape.
           With two inputs the second input is the multiplier and ``gamma`` is absent.
bias       ``beta`` shaped like the biased axes; with two inputs the second input is the bias.
=========  =====================================================================================================

Ops and their attributes
------------------------
conv       filters, kernel (kh, kw), strides (sh, sw), pads (top, bottom, left, right), dilation (dh, dw),
           groups, use_bias
deconv     filters, kernel, strides, pads (top, bottom, left, right: rows/cols cropped from the full output,
           i.e. out = s*(H-1) + d*(k-1) + 1 - top - bottom), dilation, groups, use_bias
pool       method ('max' | 'avg'), kernel, strides, pads (t, b, l, r), global (bool: kernel = input size,
           no padding; kernel is (None, None) where the reader does not know the size),
           rounding ('ceil': Caffe's out = ceil((H+t+b-k)/s)+1, less one when the last window
           would start at or beyond H+t; 'floor': floor((H+t+b-k)/s)+1), avg_divisor ('padded': Caffe's window
           clipped to [-t, H+b), padding counted; 'valid': number of in-image cells, MatConvNet)
lrn        region ('across' | 'within'), size, alpha, beta, k:
           y = x / (k + alpha * S)^beta with S the plain sum of squares over the window: channels
           [c - (size-1)//2, c + size//2] for 'across', a size x size spatial window (zero padded) for 'within'.
           alpha is per element: Caffe ACROSS gives alpha/size, Caffe WITHIN alpha/size**2 (and k = 1),
           MatConvNet gives its alpha unchanged.
dense      units, use_bias, axis (flatten from this axis on; default 1)
relu       negative_slope
prelu      channel_shared
elu        alpha
power      power, scale, shift: y = (shift + scale * x) ** power
sigmoid, tanh, absval, dropout (rate; identity at inference), identity
softmax    axis
batchnorm  stat ('variance' | 'std'), epsilon, use_global_stats (False: normalise with the batch's own
           biased mean and variance, as Caffe does when it is set false)
scale      axis, num_axes, use_bias (whether a ``beta`` comes with ``gamma``)
bias       axis, num_axes
eltwise    operation ('sum' | 'prod' | 'max'), coeffs (list, for 'sum'; empty = all ones)
concat     axis
slice      axis, points (split positions; len(outputs) = len(points) + 1, or equal parts when empty)
split      (copies the input to every output)
crop       axis, offsets: crops inputs[0] to the size of inputs[1] on every axis >= axis
flatten    axis, end_axis
reshape    shape (0 copies a dim, -1 infers one), axis, num_axes
=========  =====================================================================================================

A node with ``attrs['described'] = False`` comes from a file recording that layer's weights but not its parameters
(a weights-only caffemodel, read by :func:`converters.caffe.read_caffemodel_weights`): its other attributes are
defaults, not the file's, so they are not compared with a model's; such graphs are ported by layer name, not built.

``Graph.meta`` keys a reader may set: ``framework`` ('caffe' | 'matconvnet'), ``format`` (the file format
variant read), ``net_name``, ``data_layers`` (train/val data layers replaced by inputs), ``caffemodel``,
``normalization`` (MatConvNet: ``mean`` as (C,) or (C, H, W) in the network's channel order, ``image_size``,
``interpolation``, ``keep_aspect``, ``border``, ``crop_size``) and ``classes`` (``names``, ``descriptions``).

Shape helpers shared by the readers and the builder: :func:`pair`, :func:`conv_output_size` and
:func:`pool_output_size` (one spatial axis each, ``None`` for an unknown size).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

OPS = frozenset({
    "conv", "deconv", "pool", "lrn", "dense", "relu", "prelu", "elu", "power", "sigmoid", "tanh",
    "absval", "dropout", "identity", "softmax", "batchnorm", "scale", "bias", "eltwise", "concat",
    "slice", "split", "crop", "flatten", "reshape",
})


@dataclasses.dataclass
class Node:
    """One layer of the original network, in neutral form."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    weights: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    source_type: str = ""  # the original type name ('Convolution', 'dagnn.Conv'), for messages

    def describe(self):
        return f"layer '{self.name}' ({self.source_type or self.op})"


@dataclasses.dataclass
class Graph:
    """An ordered network over named blobs, with its inputs, outputs and metadata."""

    name: str
    inputs: dict[str, tuple]
    nodes: list[Node]
    outputs: list[str]
    source: str = ""  # the file the graph was read from, for messages
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def node(self, name):
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def weights_by_layer(self):
        """``{layer name: {weight name: array}}`` of every node that carries weights."""
        return {node.name: node.weights for node in self.nodes if node.weights}


def pair(value):
    """``(a, b)`` from an int or a sequence of one or two ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    return value * 2 if len(value) == 1 else value


def conv_output_size(size, kernel, stride=1, pads=(0, 0), dilation=1):
    """Output length of a convolution along one axis: floor((size + before + after - span) / stride) + 1, with
    span = dilation * (kernel - 1) + 1 and ``pads`` = (before, after); None where ``size`` is None."""
    if size is None:
        return None
    before, after = pads
    return (size + before + after - (dilation * (kernel - 1) + 1)) // stride + 1


def pool_output_size(size, kernel, stride, pads, rounding):
    """Number of pooling windows along one axis (``pads`` = (before, after)); None where ``size`` is None.

    ``rounding='floor'``: floor((size + before + after - kernel) / stride) + 1. ``'ceil'`` (Caffe's Pooling):
    ceil((size + before + after - kernel) / stride) + 1, less one when the axis is padded and the last window
    would start at or beyond size + before.
    """
    if rounding == "floor":
        return conv_output_size(size, kernel, stride, pads)
    if size is None:
        return None
    before, after = pads
    count = -(-(size + before + after - kernel) // stride) + 1
    if (before or after) and (count - 1) * stride >= size + before:
        count -= 1
    return count
