"""keras_zoo.layers' Caffe-fork layers against NumPy restatements of the forks' .cpp loops (written here, NCHW).

Interp: PSPNet's interp_layer.cpp + DeepLab's util/interp.cpp (caffe_cpu_interp2); ShuffleChannel: farmingyard/
ShuffleNet; Axpy: SENet; Permute, Normalize, PriorBox, DetectionOutput: weiliu89/caffe (branch ssd:
prior_box_layer.cpp, normalize_layer.cpp, detection_output_layer.cpp, util/bbox_util.cpp); Upsample: the YOLOv3
ports' upsample_layer.cpp; ROIPooling: rbgirshick/caffe-fast-rcnn's roi_pooling_layer.cpp. OpenCV's DNN module is
the second reference, in tests/converters/test_caffe_fork_layers.py.
"""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_zoo  # noqa: F401  (registers the layers for safe-mode loading)
from keras_zoo import layers as zl
from tests.helpers import ROOT, assert_close_rel
from tests.keras_zoo.test_layers import nchw, nhwc, run

F32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)


# ------------------------------------------------------------------------------------------ Interp

def pspnet_interp_size(size, zoom=None, shrink=None, explicit=None, pad_beg=0, pad_end=0):
    """PSPNet's InterpLayer::Reshape along one axis (its order of the four rules)."""
    cropped = size + pad_beg + pad_end
    if shrink is not None and zoom is None:
        return (cropped - 1) // shrink + 1
    if zoom is not None and shrink is None:
        return cropped + (cropped - 1) * (zoom - 1)
    if explicit is not None:
        return explicit
    shrunk = (cropped - 1) // shrink + 1
    return shrunk + (shrunk - 1) * (zoom - 1)


def ref_interp(x, out_h, out_w, pad_beg=0, pad_end=0):
    """caffe_cpu_interp2 (not packed) over the crop [-pad_beg, H + pad_end) of each plane, in float32."""
    n, c, height, width = x.shape
    h1, w1 = height + pad_beg + pad_end, width + pad_beg + pad_end
    x0 = y0 = -pad_beg
    if (h1, w1) == (out_h, out_w):
        return x[:, :, y0:y0 + h1, x0:x0 + w1].copy()
    rheight = F32(h1 - 1) / F32(out_h - 1) if out_h > 1 else F32(0)
    rwidth = F32(w1 - 1) / F32(out_w - 1) if out_w > 1 else F32(0)
    y = np.empty((n, c, out_h, out_w), F32)
    for i in range(out_h):
        h1r = F32(rheight * F32(i))
        h = int(h1r)
        hp = 1 if h < h1 - 1 else 0
        h1l = F32(h1r - F32(h))
        h0l = F32(1) - h1l
        for j in range(out_w):
            w1r = F32(rwidth * F32(j))
            w = int(w1r)
            wp = 1 if w < w1 - 1 else 0
            w1l = F32(w1r - F32(w))
            w0l = F32(1) - w1l
            top = x[:, :, y0 + h, x0 + w] * w0l + x[:, :, y0 + h, x0 + w + wp] * w1l
            bottom = x[:, :, y0 + h + hp, x0 + w] * w0l + x[:, :, y0 + h + hp, x0 + w + wp] * w1l
            y[:, :, i, j] = h0l * top + h1l * bottom
    return y


INTERP_CASES = [
    # (zoom, shrink, size, pad_beg, pad_end), on a (2, 3, 7, 9) input
    dict(zoom=2), dict(zoom=3), dict(shrink=2), dict(shrink=3), dict(zoom=3, shrink=2), dict(size=(5, 13)),
    dict(size=(1, 1)), dict(size=(7, 9)), dict(size=(7, 20)), dict(zoom=2, pad_beg=-1, pad_end=-2),
    dict(shrink=2, pad_end=-1), dict(size=(11, 4), pad_beg=-2),
]


@pytest.mark.parametrize("case", INTERP_CASES, ids=[str(case) for case in INTERP_CASES])
def test_interp_is_the_forks_bilinear_with_corners_aligned(case, rng):
    x = rng.standard_normal((2, 3, 7, 9)).astype(F32)
    pad_beg, pad_end = case.get("pad_beg", 0), case.get("pad_end", 0)
    size = case.get("size") or (None, None)
    out_h, out_w = (pspnet_interp_size(dim, case.get("zoom"), case.get("shrink"), explicit, pad_beg, pad_end)
                    for dim, explicit in zip(x.shape[2:], size))
    layer = zl.Interp(case.get("zoom", 1), case.get("shrink", 1), case.get("size"), pad_beg, pad_end)
    y = run(layer, x)
    assert y.shape == (2, 3, out_h, out_w)
    assert_close_rel(y, ref_interp(x, out_h, out_w, pad_beg, pad_end), tol=1e-6)


def test_interp_of_one_row_and_of_unknown_sizes(rng):
    x = rng.standard_normal((1, 2, 1, 5)).astype(F32)  # one row: every output row is that row
    assert_close_rel(run(zl.Interp(size=(4, 9)), x), ref_interp(x, 4, 9), tol=1e-6)
    x = rng.standard_normal((2, 7, 9, 3)).astype(F32)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, zl.Interp(zoom=3, shrink=2, pad_beg=-1)(inputs))
    assert model.output.shape == (None, None, None, 3)
    assert_close_rel(model(x), nhwc(ref_interp(nchw(x), 7, 10, -1, 0)), tol=1e-6)


def test_interp_refuses_positive_pads():
    with pytest.raises(ValueError, match="pad_beg"):
        zl.Interp(zoom=2, pad_beg=1)


# ----------------------------------------------------------------------- channel shuffle, axpy, permute

def ref_shuffle_channel(x, group):
    """ShuffleChannelLayer::Resize_cpu: out[j * group + i] = in[i * (C / group) + j]."""
    n, c = x.shape[:2]
    y = np.empty_like(x)
    for i in range(group):
        for j in range(c // group):
            y[:, j * group + i] = x[:, i * (c // group) + j]
    return y


@pytest.mark.parametrize("group", [1, 2, 3, 6])
def test_shuffle_channel(group, rng):
    x = rng.standard_normal((2, 6, 3, 4)).astype(F32)
    assert_close_rel(run(zl.ShuffleChannel(group), x), ref_shuffle_channel(x, group), tol=0)
    flat = rng.standard_normal((2, 6)).astype(F32)
    assert_close_rel(run(zl.ShuffleChannel(group), flat), ref_shuffle_channel(flat, group), tol=0)


def test_axpy_scales_each_channel(rng):
    x, y = rng.standard_normal((2, 2, 3, 4, 5)).astype(F32)
    for scale in (rng.standard_normal((2, 3)).astype(F32), rng.standard_normal((2, 3, 1, 1)).astype(F32)):
        per_channel = scale.reshape(2, 3, 1, 1)
        expected = np.zeros_like(x)
        for n in range(2):
            for c in range(3):
                expected[n, c] = per_channel[n, c, 0, 0] * x[n, c] + y[n, c]
        assert_close_rel(run(zl.Axpy(), scale, x, y), expected, tol=1e-6)


@pytest.mark.parametrize("order", [(0, 2, 3, 1), (0, 3, 1, 2), (0, 1, 3, 2), (0, 3, 2, 1), (0, 1, 2, 3)])
def test_permute_reorders_the_nchw_blob(order, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(F32)
    y = np.asarray(zl.Permute(order)(nhwc(x)))
    assert_close_rel(nchw(y) if y.ndim == 4 else y, np.transpose(x, order), tol=0)
    x3 = rng.standard_normal((2, 3, 4)).astype(F32)  # (N, C, H): channels-last (N, H, C)
    y3 = np.asarray(zl.Permute((0, 2, 1))(np.transpose(x3, (0, 2, 1))))
    assert_close_rel(np.transpose(y3, (0, 2, 1)), np.transpose(x3, (0, 2, 1)), tol=0)


# ------------------------------------------------------------------------------------------ Normalize

def ref_normalize(x, scale, across_spatial, channel_shared, eps):
    """NormalizeLayer::Forward_cpu: norm sqrt(sum of squares + eps) per sample or per position, then the scale."""
    x = x.astype(np.float64)
    if across_spatial:
        norm = np.sqrt((x ** 2).sum(axis=tuple(range(1, x.ndim)), keepdims=True) + eps)
    else:
        norm = np.sqrt((x ** 2).sum(axis=1, keepdims=True) + eps)
    factor = scale[0] if channel_shared else scale.reshape((1, -1) + (1,) * (x.ndim - 2))
    return x / norm * factor


@pytest.mark.parametrize("across_spatial", [True, False])
@pytest.mark.parametrize("channel_shared", [True, False])
def test_normalize(across_spatial, channel_shared, rng):
    x = rng.standard_normal((2, 4, 3, 5)).astype(F32)
    scale = rng.uniform(5, 20, 1 if channel_shared else 4).astype(F32)
    layer = zl.Normalize(across_spatial, channel_shared, eps=1e-3)
    layer.build((None, 3, 5, 4))
    layer.scale.assign(scale)
    assert_close_rel(run(layer, x), ref_normalize(x, scale, across_spatial, channel_shared, 1e-3))
    flat = rng.standard_normal((2, 4)).astype(F32)  # a 2-D blob: one position per sample
    assert_close_rel(run(layer, flat), ref_normalize(flat, scale, across_spatial, channel_shared, 1e-3))


# ------------------------------------------------------------------------------------------- PriorBox

def ssd_aspect_ratios(ratios, flip):
    """PriorBoxLayer::LayerSetUp's list: 1, then each new ratio (to 1e-6) and, with flip, its inverse."""
    result = [1.0]
    for ratio in ratios:
        ratio = float(F32(ratio))
        if not any(abs(ratio - known) < 1e-6 for known in result):
            result.append(ratio)
            if flip:
                result.append(float(F32(1.0 / ratio)))
    return result


def ref_prior_box(layer_h, layer_w, img_h, img_w, min_sizes, max_sizes=(), ratios=(), flip=True, clip=False,
                  variance=(0.1,), step=None, offset=0.5):
    """PriorBoxLayer::Forward_cpu's loops (sizes truncated to int, centres in float, corners in double)."""
    aspect_ratios = ssd_aspect_ratios(ratios, flip)
    if step is None:
        step_w, step_h = F32(img_w) / F32(layer_w), F32(img_h) / F32(layer_h)
    else:
        step_h, step_w = F32(step[0]), F32(step[1])
    out = []
    for h in range(layer_h):
        for w in range(layer_w):
            center_x = float(F32(F32(w) + F32(offset)) * step_w)
            center_y = float(F32(F32(h) + F32(offset)) * step_h)
            boxes = []
            for s, min_value in enumerate(min_sizes):
                min_size = int(min_value)
                boxes.append((min_size, min_size))
                if max_sizes:
                    side = float(F32(math.sqrt(min_size * int(max_sizes[s]))))
                    boxes.append((side, side))
                for ratio in aspect_ratios:
                    if abs(ratio - 1.0) < 1e-6:
                        continue
                    boxes.append((float(F32(min_size * math.sqrt(ratio))), float(F32(min_size / math.sqrt(ratio)))))
            for box_w, box_h in boxes:
                out += [F32((center_x - box_w / 2.0) / img_w), F32((center_y - box_h / 2.0) / img_h),
                        F32((center_x + box_w / 2.0) / img_w), F32((center_y + box_h / 2.0) / img_h)]
    out = np.array(out, F32)
    if clip:
        out = np.minimum(np.maximum(out, F32(0)), F32(1))
    variances = np.full(out.shape, variance[0], F32) if len(variance) == 1 else np.tile(np.array(variance, F32),
                                                                                         len(out) // 4)
    return np.stack([out, variances])


PRIOR_CASES = [
    dict(min_sizes=(30.0,), max_sizes=(60.0,), ratios=(2.0,), variance=(0.1, 0.1, 0.2, 0.2), step=(8.0, 8.0)),
    dict(min_sizes=(10.0, 15.0), max_sizes=(20.0, 25.0), ratios=(2.0, 3.0), flip=False, clip=True),
    dict(min_sizes=(12.0,), ratios=(2.0, 0.5, 2.0), variance=(0.2,), step=(7.0, 5.0), offset=0.3),
    dict(min_sizes=(12.7,), max_sizes=(30.2,), ratios=(1.0, 3.0), img_size=(64, 48)),  # sizes truncated
]


@pytest.mark.parametrize("case", PRIOR_CASES, ids=[str(i) for i in range(len(PRIOR_CASES))])
def test_prior_box_is_a_constant_of_the_sizes(case, rng):
    feature = keras.Input((5, 4, 3), batch_size=None)
    image = keras.Input((40, 30, 3))
    ratios = ssd_aspect_ratios(case.get("ratios", ()), case.get("flip", True))
    layer = zl.PriorBox(case["min_sizes"], case.get("max_sizes", ()), ratios, case.get("clip", False),
                        case.get("variance", (0.1,)), case.get("img_size"), case.get("step"),
                        case.get("offset", 0.5))
    model = keras.Model([feature, image], layer([feature, image]))
    img_h, img_w = case.get("img_size") or (40, 30)
    expected = ref_prior_box(5, 4, img_h, img_w, case["min_sizes"], case.get("max_sizes", ()),
                             case.get("ratios", ()), case.get("flip", True), case.get("clip", False),
                             case.get("variance", (0.1,)), case.get("step"), case.get("offset", 0.5))
    y = np.asarray(model([np.zeros((3, 5, 4, 3), F32), np.zeros((3, 40, 30, 3), F32)]))
    assert y.shape == (3, expected.shape[1], 2)  # the (2, L) blob channels-last, once per sample
    for sample in y:
        assert_close_rel(sample.T, expected, tol=1e-6)


def test_prior_box_needs_fixed_sizes():
    feature = keras.Input((None, None, 3))
    with pytest.raises(ValueError, match="fixed"):
        zl.PriorBox((10.0,), img_size=(32, 32))(feature)


# ------------------------------------------------------------------------------------ DetectionOutput

def ref_decode(prior, variance, loc, code_type, encoded):
    """DecodeBBox in float32."""
    pxmin, pymin, pxmax, pymax = prior
    v = np.ones(4, F32) if encoded else variance
    if code_type == "corner":
        return prior + v * loc
    width, height = F32(pxmax - pxmin), F32(pymax - pymin)
    if code_type == "corner_size":
        return prior + v * loc * np.array([width, height, width, height], F32)
    cx, cy = F32((pxmin + pxmax) / F32(2)), F32((pymin + pymax) / F32(2))
    dcx, dcy = F32(v[0] * loc[0] * width + cx), F32(v[1] * loc[1] * height + cy)
    dw, dh = F32(np.exp(F32(v[2] * loc[2])) * width), F32(np.exp(F32(v[3] * loc[3])) * height)
    return np.array([dcx - dw / F32(2), dcy - dh / F32(2), dcx + dw / F32(2), dcy + dh / F32(2)], F32)


def ref_size(box):
    return F32(0) if box[2] < box[0] or box[3] < box[1] else F32((box[2] - box[0]) * (box[3] - box[1]))


def ref_jaccard(a, b):
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return F32(0)
    width = F32(min(a[2], b[2]) - max(a[0], b[0]))
    height = F32(min(a[3], b[3]) - max(a[1], b[1]))
    if width > 0 and height > 0:
        inter = F32(width * height)
        return F32(inter / F32(ref_size(a) + ref_size(b) - inter))
    return F32(0)


def ref_detection_output(loc, conf, priors, num_classes, share_location=True, background_label_id=0,
                         code_type="corner", variance_encoded_in_target=False, confidence_threshold=None,
                         nms_threshold=0.3, eta=1.0, top_k=-1, keep_top_k=-1):
    """DetectionOutputLayer::Forward_cpu (GetMaxScoreIndex's stable sort, ApplyNMSFast, keep_top_k): the rows."""
    count = priors.shape[-1] // 4
    boxes_p, variances = priors[0].reshape(count, 4), priors[1].reshape(count, 4)
    loc_classes = 1 if share_location else num_classes
    threshold = F32(-FLT_MAX if confidence_threshold is None else confidence_threshold)  # a float, as in Caffe
    rows = []
    for i in range(loc.shape[0]):
        offsets = loc[i].reshape(count, loc_classes, 4)
        scores = conf[i].reshape(count, num_classes)
        decoded = [[ref_decode(boxes_p[p], variances[p], offsets[p, c], code_type, variance_encoded_in_target)
                    for c in range(loc_classes)] for p in range(count)]
        indices = {}
        for c in range(num_classes):
            if c == background_label_id:
                continue
            boxes = [decoded[p][0 if share_location else c] for p in range(count)]
            pairs = sorted([(scores[p, c], p) for p in range(count) if scores[p, c] > threshold],
                           key=lambda pair: -pair[0])
            if -1 < top_k < len(pairs):
                pairs = pairs[:top_k]
            kept, adaptive = [], F32(nms_threshold)
            for _, p in pairs:
                keep = all(ref_jaccard(boxes[p], boxes[k]) <= adaptive for k in kept)
                if keep:
                    kept.append(p)
                if keep and eta < 1 and adaptive > 0.5:
                    adaptive = F32(adaptive * F32(eta))
            indices[c] = kept
        if -1 < keep_top_k < sum(len(kept) for kept in indices.values()):
            pairs = sorted([(scores[p, c], c, p) for c, kept in indices.items() for p in kept],
                           key=lambda pair: -pair[0])[:keep_top_k]
            indices = {}
            for _, c, p in pairs:
                indices.setdefault(c, []).append(p)
        for c in sorted(indices):
            for p in indices[c]:
                rows.append([i, c, scores[p, c], *decoded[p][0 if share_location else c]])
    return np.array(rows, np.float64).reshape(-1, 7)


def detections(y):
    """The detection rows of a (N, rows, 7, 1) output, the padding left out (every sample's in turn)."""
    y = np.asarray(y)[..., 0].reshape(-1, 7)
    return y[y[:, 1] >= 0]


def detection_inputs(rng, batch, count, classes, loc_classes, spread=0.3):
    """Random offsets, softmax scores and CENTER-like priors of ``count`` boxes."""
    loc = (rng.standard_normal((batch, count * loc_classes * 4)) * spread).astype(F32)
    logits = rng.standard_normal((batch, count, classes)) * 2
    conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(F32).reshape(batch, -1)
    centre = rng.uniform(0.1, 0.9, (count, 2))
    size = rng.uniform(0.05, 0.4, (count, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], -1).astype(F32).reshape(-1)
    priors = np.stack([boxes, np.tile(np.array([0.1, 0.1, 0.2, 0.2], F32), count)])
    return loc, conf, priors


DETECTION_CASES = [
    dict(code_type="center_size", confidence_threshold=0.2, nms_threshold=0.45, top_k=30, keep_top_k=20),
    dict(code_type="corner", share_location=False, confidence_threshold=0.1, nms_threshold=0.3, top_k=50,
         keep_top_k=25),
    dict(code_type="corner_size", background_label_id=-1, confidence_threshold=0.3, nms_threshold=0.5),
    dict(code_type="center_size", background_label_id=1, nms_threshold=0.4, eta=0.8, top_k=40, keep_top_k=30,
         confidence_threshold=0.05),
    dict(code_type="center_size", variance_encoded_in_target=True, confidence_threshold=0.2, nms_threshold=0.45,
         top_k=30, keep_top_k=100),
    dict(code_type="center_size", nms_threshold=0.45, top_k=30, keep_top_k=20),  # no confidence threshold
    dict(code_type="corner", confidence_threshold=0.99, nms_threshold=0.45, keep_top_k=10),  # few or none
]


@pytest.mark.parametrize("case", DETECTION_CASES, ids=[str(i) for i in range(len(DETECTION_CASES))])
def test_detection_output_decodes_and_suppresses_as_the_fork(case, rng):
    classes, count = 3, 60
    loc, conf, priors = detection_inputs(rng, 2, count, classes, 1 if case.get("share_location", True) else 3)
    expected = ref_detection_output(loc, conf, priors, classes, **case)
    keep_top_k, top_k = case.get("keep_top_k", -1), case.get("top_k", -1)
    foreground = classes - (1 if 0 <= case.get("background_label_id", 0) < classes else 0)
    rows = keep_top_k if keep_top_k > -1 else foreground * (count if top_k < 0 else min(top_k, count))
    layer = zl.DetectionOutput(classes, rows, **case)
    y = np.asarray(layer([loc, conf, np.repeat(priors.T[None], 2, axis=0)]))
    assert y.shape == (2, rows, 7, 1)
    found = detections(y)
    assert found.shape == expected.shape
    if len(expected):
        assert_close_rel(found, expected, tol=1e-6)  # the same rows in the same order
    for sample in range(2):  # the rows after a sample's detections: (image_id, -1 ...)
        block = y[sample, :, :, 0]
        padding = block[block[:, 1] < 0]
        assert np.all(padding[:, 0] == sample) and np.all(padding[:, 1:] == -1)
        assert np.all(block[:len(block) - len(padding), 1] >= 0)


def test_detection_output_without_any_detection_gives_padding_rows(rng):
    loc, conf, priors = detection_inputs(rng, 2, 10, 2, 1)
    y = np.asarray(zl.DetectionOutput(2, 5, confidence_threshold=1.0)([loc, conf, np.repeat(priors.T[None], 2, 0)]))
    expected = np.full((2, 5, 7), -1.0)
    expected[:, :, 0] = [[0], [1]]
    np.testing.assert_array_equal(y[..., 0], expected)


def test_jaccard_and_nms_follow_the_fork_at_the_edges():
    boxes = np.array([[[0, 0, 1, 1], [1, 0, 2, 1], [0.5, 0, 1.5, 1], [0, 0, 1, 1], [0.2, 0.2, 0.2, 0.2]]], F32)
    overlaps = np.asarray(zl.jaccard_overlaps(boxes))[0]
    for i in range(5):
        for j in range(5):
            assert overlaps[i, j] == pytest.approx(float(ref_jaccard(boxes[0, i], boxes[0, j])), abs=1e-7), (i, j)
    valid = np.ones((1, 5), bool)
    keep = np.asarray(zl.greedy_nms(overlaps[None], valid, 0.3))[0]
    # box 2 overlaps box 0 by 1/3 > 0.3, box 3 is box 0, box 1 only touches box 0, the point has no area
    assert keep.tolist() == [True, True, False, False, True]
    keep = np.asarray(zl.greedy_nms(overlaps[None], valid, 0.34))[0]
    assert keep.tolist() == [True, True, True, False, True]


# ---------------------------------------------------------------------------------- Upsample, ROIPooling

@pytest.mark.parametrize("scale", [1, 2, 3, (2, 3)])
def test_upsample_repeats_each_cell(scale, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(F32)
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    out = np.empty((2, 3, 4 * sh, 5 * sw), F32)
    for h in range(4 * sh):
        for w in range(5 * sw):
            out[:, :, h, w] = x[:, :, h // sh, w // sw]
    assert_close_rel(run(zl.Upsample(scale), x), out, tol=0)


def c_round(value):
    """C's round(): halves away from zero."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def ref_roi_pool(data, rois, pooled_h, pooled_w, spatial_scale):
    """ROIPoolingLayer::Forward_cpu."""
    _, channels, height, width = data.shape
    out = np.full((len(rois), channels, pooled_h, pooled_w), -FLT_MAX, F32)
    for n, roi in enumerate(rois):
        batch = int(roi[0])
        start_w, start_h, end_w, end_h = (c_round(float(F32(F32(value) * F32(spatial_scale)))) for value in roi[1:])
        roi_h, roi_w = max(end_h - start_h + 1, 1), max(end_w - start_w + 1, 1)
        bin_h, bin_w = F32(roi_h) / F32(pooled_h), F32(roi_w) / F32(pooled_w)
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                hstart = min(max(int(math.floor(F32(ph) * bin_h)) + start_h, 0), height)
                hend = min(max(int(math.ceil(F32(ph + 1) * bin_h)) + start_h, 0), height)
                wstart = min(max(int(math.floor(F32(pw) * bin_w)) + start_w, 0), width)
                wend = min(max(int(math.ceil(F32(pw + 1) * bin_w)) + start_w, 0), width)
                if hend <= hstart or wend <= wstart:
                    out[n, :, ph, pw] = 0
                else:
                    out[n, :, ph, pw] = data[batch, :, hstart:hend, wstart:wend].max(axis=(1, 2))
    return out


ROIS = np.array([[0, 0, 0, 10, 8], [1, 1.5, 2.5, 7.5, 6.5], [0, 3, 3, 3, 3], [1, -5, -3, 4, 20],
                 [0, 2.5, 0.5, 9.49, 3.51], [1, 9, 7, 2, 1], [0, -3.5, -2.5, -0.5, -1.5], [1, 30, 30, 40, 40]], F32)


@pytest.mark.parametrize("spatial_scale", [1.0, 0.5, 0.0625])
@pytest.mark.parametrize("pooled", [(3, 4), (1, 1), (7, 7)])
def test_roi_pooling(spatial_scale, pooled, rng):
    data = rng.standard_normal((2, 3, 9, 11)).astype(F32)
    rois = ROIS.copy()
    if spatial_scale == 0.0625:  # Fast R-CNN's 1/16: image coordinates
        rois[:, 1:] *= 16
    y = np.asarray(zl.ROIPooling(pooled, spatial_scale)([nhwc(data), rois]))
    assert y.shape == (len(rois), *pooled, 3)
    assert_close_rel(nchw(y), ref_roi_pool(data, rois, *pooled, spatial_scale), tol=0)


def test_roi_pooling_takes_rois_of_any_batch_size_and_4d_rois(rng):
    data = rng.standard_normal((1, 2, 6, 6)).astype(F32)
    features, rois = keras.Input((6, 6, 2)), keras.Input((1, 1, 5))
    model = keras.Model([features, rois], zl.ROIPooling((2, 2), 1.0)([features, rois]))
    boxes = np.array([[0, 0, 0, 5, 5], [0, 1, 1, 2, 4], [0, 4, 0, 5, 1]], F32)
    y = model([nhwc(data), boxes.reshape(3, 1, 1, 5)])
    assert_close_rel(nchw(y), ref_roi_pool(data, boxes, 2, 2, 1.0), tol=0)


def test_round_half_away_from_zero():
    values = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, 2.4999998, -2.5000002, 7.0], F32)
    assert np.asarray(zl._round_half_away(values)).tolist() == [c_round(float(v)) for v in values]


# ------------------------------------------------------------------------- serialisation, other backends

def fork_layers_model():
    image = keras.Input((7, 9, 4), name="image")
    scale = keras.Input((4,), name="scale")
    rois = keras.Input((5,), name="rois")
    loc = keras.Input((5 * 4 * 2 * 4,), name="loc")
    conf = keras.Input((5 * 4 * 2 * 3,), name="conf")
    y = zl.Interp(zoom=2, pad_end=-1, name="interp")(image)
    y = zl.ShuffleChannel(2, name="shuffle")(y)
    y = zl.Normalize(False, False, 1e-6, name="norm")(y)
    y = zl.Axpy(name="axpy")([scale, y, y])
    y = zl.Upsample(2, name="up")(y)
    y = zl.Permute((0, 2, 3, 1), name="perm")(y)
    pooled = zl.ROIPooling((2, 3), 0.5, name="roi")([image, rois])
    feature = keras.layers.AveragePooling2D((2, 2), name="feature")(image[:, :, :8])  # (3, 4)
    priors = zl.PriorBox((3.0,), (6.0,), (1.0,), True, (0.1, 0.1, 0.2, 0.2), name="priors")(
        [keras.layers.ZeroPadding2D(((1, 1), (0, 0)))(feature), image])
    found = zl.DetectionOutput(3, 10, code_type="center_size", confidence_threshold=0.1, nms_threshold=0.45,
                               top_k=20, keep_top_k=10, name="det")([loc, conf, priors])
    return keras.Model([image, scale, rois, loc, conf], [y, pooled, found])


def fork_layers_inputs(rng):
    logits = rng.standard_normal((2, 40, 3))
    conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).reshape(2, -1).astype(F32)
    return [rng.standard_normal((2, 7, 9, 4)).astype(F32), rng.standard_normal((2, 4)).astype(F32),
            np.array([[0, 0, 0, 8, 6], [1, 2, 1, 5, 5], [1, 7, 3, 7, 3]], F32),
            (rng.standard_normal((2, 160)) * 0.3).astype(F32), conf]


def test_fork_layers_round_trip_a_keras_file_in_safe_mode(tmp_path, rng):
    model = fork_layers_model()
    model.get_layer("norm").scale.assign(rng.uniform(1, 3, 4).astype(F32))
    inputs = fork_layers_inputs(rng)
    path = tmp_path / "fork.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for ours, theirs in zip(loaded(inputs), model(inputs)):
        assert_close_rel(ours, theirs, tol=1e-6)
    assert loaded.get_layer("det").get_config()["keep_top_k"] == 10
    assert detections(model(inputs)[2]).size  # the head found something to compare


JAX_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[1])
    from tests.keras_zoo.test_fork_layers import fork_layers_model
    assert keras.backend.backend() == "jax"
    model = fork_layers_model()
    model.load_weights(sys.argv[2])
    data = np.load(sys.argv[3])
    outputs = model([data[f"arr_{i}"] for i in range(5)])
    np.savez(sys.argv[4], *[np.asarray(y) for y in outputs])
""")


def test_fork_layers_run_on_jax_backend(tmp_path, rng):
    pytest.importorskip("jax")
    model = fork_layers_model()
    model.get_layer("norm").scale.assign(rng.uniform(1, 3, 4).astype(F32))
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    inputs = fork_layers_inputs(rng)
    np.savez(tmp_path / "in.npz", *inputs)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(ROOT), str(weights), str(tmp_path / "in.npz"),
                             str(tmp_path / "out.npz")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "out.npz")
    for index, expected in enumerate(model(inputs)):
        assert_close_rel(outputs[f"arr_{index}"], expected, tol=1e-5)
