"""Rounding weights onto an int8 grid so that a layer's outputs move least: each weight's rounding error is
carried onto the weights of its row not yet rounded, in proportion to how the layer's inputs vary together on
calibration images (the second-moment matrix of the inputs; the method of GPTQ, Frantar et al. 2022).

Plain rounding to nearest makes each weight as close as it can be but lets the errors of a row add up in its
output; here the row's output error over the calibration inputs is what is made small (FSRCNN's convolutions:
7 to 165 times smaller at the same grid). The grid is the quantizers' own -- per row, symmetric, step
``max|row| / levels``, each row's largest weight on it at ``±levels`` -- so ONNX Runtime's quantizer and LiteRT's
converter, given the rounded weights, compute the same step and find every weight already on it.
"""

import collections
import dataclasses

import numpy as np
import scipy.linalg
from numpy.lib.stride_tricks import sliding_window_view

MAX_COLUMNS = 4608  # the widest rows rounded so (512 x 3 x 3); wider ones (VGG's fc6) are rounded to nearest
BLOCK = 128  # columns rounded between two updates of the rest of the row
DAMPING = 0.01  # added to the diagonal, as a share of its mean: the inverse stays well conditioned
SAMPLES_PER_COLUMN = 2  # input vectors measured per column of a row, at most (1 to 8 gave the same results)


def round_weights(weights, moments, levels):
    """``weights`` (rows, K) rounded onto the per-row grid of ``±levels`` steps (the values ``step * integer``,
    float64), each rounding error moved onto the row's later columns so that ``(W - Q) x`` stays small for the
    inputs ``x`` (K) whose mean of ``x x^T`` is ``moments`` (K, K). The updates run in float32, as the weights."""
    rest = np.array(weights, np.float32)
    rows, columns = rest.shape
    step = np.abs(rest).max(axis=1).astype(np.float64) / levels
    step[step == 0] = 1.0
    peak = np.zeros(rest.shape, bool)  # each row's largest weight stays at +-levels: the step is kept
    peak[np.arange(rows), np.abs(rest).argmax(axis=1)] = True
    peak_values = np.sign(rest) * levels * step[:, None]
    hessian = np.array(moments, np.float64)
    unused = np.diag(hessian) <= 0  # inputs always 0 on the calibration images: rounded plainly
    hessian[unused, unused] = 1.0
    hessian[np.diag_indices(columns)] += DAMPING * np.mean(np.diag(hessian))
    upper = inverse_cholesky(hessian)
    rounded = np.zeros(rest.shape)
    for start in range(0, columns, BLOCK):
        end = min(start + BLOCK, columns)
        block, inverse = rest[:, start:end].copy(), upper[start:end, start:end]
        errors = np.zeros(block.shape, np.float32)
        for j in range(end - start):
            column = np.clip(np.round(block[:, j] / step), -levels, levels) * step
            at_peak = peak[:, start + j]
            column[at_peak] = peak_values[at_peak, start + j]
            rounded[:, start + j] = column
            errors[:, j] = (block[:, j] - column) / inverse[j, j]
            block[:, j:] -= np.outer(errors[:, j], inverse[j, j:])
        rest[:, end:] -= errors @ upper[start:end, end:]
    return rounded


def inverse_cholesky(matrix):
    """The upper triangular U (float32) with ``U^T U`` the inverse of the positive definite ``matrix``, from one
    Cholesky factorization and one triangular inverse, in float64 (the damping bounds the condition number by
    100 K, 4.6e5 for 4,608 columns: near float32's limit): with J the reversal, J matrix J = L L^T gives
    U = J L^-1 J."""
    lower, info = scipy.linalg.lapack.dpotrf(np.ascontiguousarray(matrix[::-1, ::-1], np.float64), lower=1,
                                             clean=1, overwrite_a=1)
    if info == 0:
        lower, info = scipy.linalg.lapack.dtrtri(lower, lower=1, overwrite_c=1)
    if info:
        raise np.linalg.LinAlgError(f"not positive definite (LAPACK info {info})")
    return np.ascontiguousarray(lower[::-1, ::-1], np.float32)


def conv_patches(inputs, kernel, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), rng, limit):
    """At most ``limit`` of the input vectors a 2-D convolution's kernel meets, (n, C * kh * kw) float32 in the
    order of an (O, C, kh, kw) kernel (all of them in the order of the outputs, (N, H', W'), when ``limit`` allows):
    ``inputs`` NCHW, ``pads`` (top, left, bottom, right)."""
    (kh, kw), (top, left, bottom, right) = kernel, pads
    padded = np.pad(inputs, ((0, 0), (0, 0), (top, bottom), (left, right)))
    span = ((kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1)
    windows = sliding_window_view(padded, span, axis=(2, 3))[:, :, ::strides[0], ::strides[1],
                                                               ::dilations[0], ::dilations[1]]
    count, height, width = windows.shape[0], windows.shape[2], windows.shape[3]
    total = count * height * width
    chosen = np.arange(total) if limit >= total else rng.choice(total, limit, replace=False)
    n, y, x = np.unravel_index(chosen, (count, height, width))
    return windows[n, :, y, x].reshape(len(chosen), -1).astype(np.float32)


def transposed_conv_patches(inputs, kernel, *, strides=(1, 1), pads=(0, 0, 0, 0), output_padding=(0, 0), rng,
                            limit):
    """:func:`conv_patches` of the convolution a transposed convolution is (zeros between the input's pixels, the
    kernel flipped): vectors in the order of its (C, kh, kw) taps flipped in both spatial axes."""
    (kh, kw), (top, left, bottom, right) = kernel, pads
    if max(top, bottom) > kh - 1 or max(left, right) > kw - 1:
        raise ValueError(f"pads {pads} wider than the kernel {kernel} less one")
    count, channels, height, width = inputs.shape
    spread = np.zeros((count, channels, (height - 1) * strides[0] + 1, (width - 1) * strides[1] + 1), inputs.dtype)
    spread[:, :, ::strides[0], ::strides[1]] = inputs
    return conv_patches(spread, kernel, pads=(kh - 1 - top, kw - 1 - left, kh - 1 - bottom + output_padding[0],
                                              kw - 1 - right + output_padding[1]), rng=rng, limit=limit)


@dataclasses.dataclass(frozen=True)
class WeightForm:
    """How a layer's weight, in ONNX's layout, reads as rows (one per output channel) over its input vectors:
    ``op`` 'conv' (O, C / groups, kh, kw), 'transposed_conv' (C, O, kh, kw; groups 1), 'matmul' (K, O) or
    'matmul_t' (O, K); ``columns`` K, the length of a row; the convolutions' geometry, pads (top, left, bottom,
    right)."""

    op: str
    columns: int
    groups: int = 1
    kernel: tuple = ()
    strides: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    dilations: tuple = (1, 1)
    output_padding: tuple = (0, 0)


def weight_rows(form, array):
    """[(rows, K) per group] of a weight ``array``."""
    if form.op == "conv":
        return [rows.reshape(len(rows), -1) for rows in np.split(array, form.groups)]
    if form.op == "transposed_conv":  # the convolution it is: its kernel flipped, a row per output channel
        return [array[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(array.shape[1], -1)]
    return [array.T if form.op == "matmul" else array]


def from_weight_rows(form, array, rounded):
    """The weight array (``array``'s shape and type) of the rows :func:`weight_rows` gave, rounded."""
    if form.op == "conv":
        values = np.concatenate(rounded).reshape(array.shape)
    elif form.op == "transposed_conv":
        channels, outputs, height, width = array.shape
        values = rounded[0].reshape(outputs, channels, height, width).transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    else:
        values = rounded[0].T if form.op == "matmul" else rounded[0]
    return np.ascontiguousarray(values).astype(array.dtype)


def layer_inputs(form, inputs, rng, limit):
    """[(n, K) per group]: at most ``limit`` of the input vectors the rows meet in ``inputs`` (NCHW for the
    convolutions, (..., K) for the products)."""
    geometry = dict(strides=form.strides, pads=form.pads, rng=rng, limit=limit)
    if form.op == "conv":
        return [conv_patches(part, form.kernel, dilations=form.dilations, **geometry)
                for part in np.split(inputs, form.groups, axis=1)]
    if form.op == "transposed_conv":
        return [transposed_conv_patches(inputs, form.kernel, output_padding=form.output_padding, **geometry)]
    vectors = inputs.reshape(-1, form.columns)
    if limit < len(vectors):
        vectors = vectors[rng.choice(len(vectors), limit, replace=False)]
    return [vectors.astype(np.float32)]


class Moments:
    """The mean of ``x x^T`` over each layer's input vectors, gathered batch by batch (at most
    :data:`SAMPLES_PER_COLUMN` vectors per column over ``batches`` batches), and the weights rounded with it."""

    def __init__(self, batches, seed=0):
        self.batches, self.rng = batches, np.random.default_rng(seed)
        self.sums, self.counts = {}, collections.Counter()

    def add(self, key, form, inputs):
        """Count the input vectors of layer ``key`` (of :class:`WeightForm` ``form``) in ``inputs``."""
        limit = -(-SAMPLES_PER_COLUMN * form.columns // self.batches)
        for group, vectors in enumerate(layer_inputs(form, inputs, self.rng, limit)):
            self.sums[key, group] = self.sums.get((key, group), 0.0) + vectors.T @ vectors  # float32
            self.counts[key, group] += len(vectors)

    def rounded(self, key, form, array, levels):
        """Layer ``key``'s weight ``array`` rounded onto its grid of ``±levels`` steps (:func:`round_weights`)."""
        rows = weight_rows(form, array)
        return from_weight_rows(form, array, [round_weights(part, self.sums[key, group] / self.counts[key, group],
                                                            levels) for group, part in enumerate(rows)])
