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
normalize  ``scale`` (C,), or (1,) when ``channel_shared``
embed      ``kernel`` (input_dim, units): row i is the vector of index i; ``bias`` (units,) when ``use_bias``
parameter  ``value``: the blob without its leading 1, channel-first (e.g. (C, H, W))
batched_parameter  ``value``: the whole blob, channel-first, its first axis included (e.g. (4, 3), (2, C, H, W))
muladd     ``gamma`` (multiplier 'weight') and ``beta`` (offset 'weight'): batch-less channel-first broadcast
           arrays ((c, h, w) or (c,), each size 1 or the input's)
pdist      ``target`` (x0, when target is 'weight') and ``instance_weights`` (when 'weight'): as muladd's
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
dense      units, use_bias, axis (flatten from this axis on; default 1): y has the input's axes before ``axis``
           and ``units`` in place of the flattened ones; ``in`` enumerates the flattened axes in (C, H, W) order
relu       negative_slope
prelu      channel_shared
elu        alpha
power      power, scale, shift: y = (shift + scale * x) ** power
sigmoid, tanh, absval, dropout (rate; identity at inference), identity
softmax    axis
batchnorm  stat ('variance' | 'std'), epsilon, use_global_stats (False: normalise with the batch's own
           biased mean and variance, as Caffe does when it is set false)
scale      axis, num_axes, use_bias (whether a ``beta`` comes with ``gamma``). With two inputs the second one
           (batch included) multiplies the first: its batch axis on the first's, its other axes on the
           first's axes [axis, axis + num_axes), broadcast over the rest (Caffe's axis-0 Scale, axis = 1)
bias       axis, num_axes (two inputs: as scale)
eltwise    operation ('sum' | 'prod' | 'max'), coeffs (list, for 'sum'; empty = all ones)
concat     axis (0: the batches one after the other)
slice      axis, points (split positions; len(outputs) = len(points) + 1, or equal parts when empty)
split      (copies the input to every output)
crop       axis, offsets: crops inputs[0] to the size of inputs[1] on every axis >= axis (0: the batch too)
flatten    axis, end_axis (axis 0: the batch axis merged with the next ones, e.g. (N*C, H, W))
reshape    shape (0 copies a dim, -1 infers one), axis, num_axes
interp     zoom, shrink, size ((h, w) or None), pad_beg, pad_end (both <= 0: rows and columns cropped at the start
           and at the end of each spatial axis): bilinear resizing with corners aligned (PSPNet/DeepLab's Interp).
           The cropped input has H' = H + pad_beg + pad_end rows; out = size when given, else
           ((H' - 1) // shrink) * zoom + 1; output row i samples row i * float32((H' - 1) / (out - 1))
shuffle_channel  group: channel i * (C / group) + j goes to j * group + i (ShuffleNet's ShuffleChannel)
axpy       inputs (a, x, y): y + a * x, ``a`` one value per sample and channel, (N, C) or (N, C, 1, 1) (SENet)
permute    order: a permutation of the N, C, H, W... axes with order[0] = 0 (the SSD fork's Permute)
normalize  across_spatial, channel_shared, eps: y = x / sqrt(sum(x^2) + eps) * scale, the sum over C, H, W per
           sample (across_spatial) or over C at each position (the SSD fork's Normalize)
priorbox   min_sizes, max_sizes (the fork computes with them truncated to integers), aspect_ratios (Caffe's
           expanded list: 1, then each new ratio and, when flipped, its inverse), clip, variances (1 or 4 values),
           img_size ((h, w) or None: the size of inputs[1]), step ((h, w) or None: image size / feature map size),
           offset. The output (2, H*W*priors*4) holds each prior's (xmin, ymin, xmax, ymax), then their variances:
           a constant of the model for fixed input sizes (the SSD fork's PriorBox; one set for the batch, repeated
           over it)
detection_output  num_classes, share_location, background_label_id, code_type ('corner' | 'center_size' |
           'corner_size'), variance_encoded_in_target, confidence_threshold (None: none), nms_threshold, eta,
           top_k and keep_top_k (-1: no limit), rows: inputs (loc, conf, priors) -> (1, rows, 7) per sample,
           rows (image_id, label, confidence, xmin, ymin, xmax, ymax) ordered by label, then by falling
           confidence, padded after the sample's detections with (image_id, -1, -1, -1, -1, -1, -1)
           (the SSD fork's DetectionOutput, NMS included)
upsample   scale (sh, sw): nearest neighbour, out[i, j] = in[i // sh, j // sw] (the YOLOv3 ports' Upsample)
roi_pool   pooled (ph, pw), spatial_scale: inputs (data, rois: R rows (batch index, x1, y1, x2, y2)) -> (C, ph, pw)
           for each roi: Fast R-CNN's max over rounded bins (empty bins 0); the output's batch axis counts rois
bnll       y = x + log(1 + exp(-x)) for x > 0, log(1 + exp(x)) otherwise
clip       min, max: y = max(min, min(x, max))
exp        base (-1: e), scale, shift: y = base ** (shift + scale * x)
log        base (-1: e), scale, shift: y = log_base(shift + scale * x)
threshold  threshold: y = 1 where x > threshold, else 0
swish      beta: y = x * sigmoid(beta * x)
mvn        normalize_variance, across_channels, eps: y = x - mean, divided by (sqrt(variance) + eps) when
           normalize_variance; mean and (biased) variance over each (sample, channel)'s H, W..., or over each
           sample's C, H, W... when across_channels
reduction  operation ('sum' | 'asum' | 'sumsq' | 'mean'), axis, coeff: ``coeff`` times the reduction over every
           axis from ``axis`` on; axis 0 reduces the whole batch to one value (shape (1,))
argmax     top_k, out_max_val, axis (None: over each sample's flattened C, H, W..., the output (N, 1 or 2, top_k,
           1...) holding the indices, then the values when out_max_val; else along ``axis``: the indices, or the
           values when out_max_val). Equal values: the higher index first (Caffe's pair ordering)
tile       axis, tiles: the input repeated ``tiles`` times along ``axis`` (numpy.tile)
embed      units, input_dim, use_bias: y = kernel[int(x)] (+ bias), a new last axis of ``units`` after x's axes
parameter  shape (the blob's shape without its leading 1): the ``value`` weight repeated over the batch of
           inputs[0], which only gives the batch size
batched_parameter  shape (the whole blob's, e.g. (4, 3)): the ``value`` weight itself, its first axis the output's
           batch axis whatever the batch of inputs[0] (which only places it in the graph; Caffe's Parameter)
muladd     multiplier ('input' | 'weight'), offset ('input' | 'weight' | 'none'): y = x * m (+ b), NumPy broadcasting
           (bsxfun, batch included), m and b the next inputs or the weights (MatConvNet's dagnn.Scale in general)
pdist      p, no_root, target ('input' | 'weight'), instance_weights ('input' | 'weight' | 'none'):
           y = (sum over C |x - x0|^p)^(1/p) (no_root: no 1/p power) times the instance weights, one channel
           (MatConvNet's vl_nnpdist)
spatial_norm  size (ph, pw), alpha, beta: y = x (1 + alpha N2)^(-beta), N2 the mean of x^2 over the in-image
           cells of a ph x pw window padded (p - 1) // 2 before and p - 1 - that after (MatConvNet's vl_nnspnorm)
norm_offset  scale, power, floor: y = x - scale * max(sum over C of x^2, floor)^power (MatConvNet's vl_nnnoffset)
roi_pool_affine  pooled (ph, pw), transform [a b c d e f], method ('max' | 'avg'), flatten: inputs (data, rois),
           rois R groups of 5 values [t u0 v0 u1 v1] in MATLAB's column-major order of the array (a 5 x R array
           is a (1, 5, R) blob), image t and corners counted from 1, corners mapped u' = a u + c v + e,
           v' = b u + d v + f and rounded (halves away from zero); the bins as roi_pool's; 'avg' divides by the
           bin's cells; -> (C, ph, pw) per roi, or (ph*pw*C, 1, 1) in MATLAB's order when flatten
           (MatConvNet's vl_nnroipool)
bilinear_sampler  inputs (x, grid): grid (Wo, 2, Ho) (MatConvNet's 2 x Ho x Wo x N array: vertical, then
           horizontal coordinates in [-1, 1] from the first to the last pixel centre) -> (C, Ho, Wo); bilinear,
           cells outside the image 0; a grid batch k times x's samples image n with grids [n k, (n + 1) k)
           (MatConvNet's vl_nnbilinearsampler)
affine_grid, scaling_grid  height, width: (6, 1, 1) affine transforms or (3, 1, 1) [s ty tx] -> the (width, 2,
           height) grid of bilinear_sampler (MatConvNet's AffineGridGenerator, UniformScalingGridGenerator)
=========  =====================================================================================================

Axis 0 (the batch axis) in softmax, concat, slice, crop, flatten, argmax and tile computes across the samples:
the output's batch size may differ from the input's (concat: the sum; slice: the parts; argmax: top_k; tile:
tiles times; flatten: the product), and a model holding one must be run on the whole batch at once.

A 3-D ``conv`` or ``deconv`` (a (C, D, H, W) input) has kernel, strides and dilation (d, h, w), pads (front, back,
top, bottom, left, right) and weights (kd, kh, kw, ...); its output is (F, D', H', W'). ``attrs['axis']`` > 1 (Caffe's
ConvolutionParameter.axis: the channel axis) makes the axes between the batch and it more samples: the input
(A..., C, spatial...) is convolved as (N*A..., C, spatial...) and the output is (A..., F, spatial'...).

A 1-D ``conv`` or ``deconv`` (a (C, L) input, Caffe's N-D convolution with one spatial axis) is a 2-D one of
width 1: kernel (k, 1), strides (s, 1), pads (p, p, 0, 0), dilation (d, 1), weights (k, 1, ...); its output is
(F, L').

``pool`` ``method`` may also be 'stochastic': Caffe's test-time STOCHASTIC pooling, each window's sum of squares
divided by its sum (0 where that sum is not positive), windows [i*s, min(i*s + k, H)) (no padding).

Shared weights: a node with ``attrs['shares'] = NAME`` has no weights of its own: it computes with the very
weights (one variable) of the earlier node NAME, which has the same op and attributes (Caffe's ``param { name }``
sharing, MatConvNet's parameters reused by name); the builder calls that node's Keras layer(s) again.

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
    "interp", "shuffle_channel", "axpy", "permute", "normalize", "priorbox", "detection_output", "upsample",
    "roi_pool",
    "bnll", "clip", "exp", "log", "threshold", "swish", "mvn", "reduction", "argmax", "tile", "embed", "parameter",
    "batched_parameter",
    "muladd", "pdist", "spatial_norm", "norm_offset", "roi_pool_affine", "bilinear_sampler", "affine_grid",
    "scaling_grid",
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
