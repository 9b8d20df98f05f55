"""The Caffe forks' layers: read from prototxts with the fields of the schema, built, and run against OpenCV's DNN
module (cv2.dnn.readNetFromCaffe, Winograd and fusion off) on the same prototxt and caffemodel, beside the NumPy
restatements of the forks' .cpp in tests/keras_zoo/test_fork_layers.py where OpenCV does not follow the fork.

Where OpenCV 4.14 departs from the forks (so NumPy is the reference there): Interp ignores shrink_factor and
pad_beg/pad_end; Permute needs the full order; Normalize fails on across_spatial with a per-channel scale; PriorBox
ignores img_size/img_h/img_w, clips by default (Caffe does not) and needs a variance; DetectionOutput knows no
CORNER_SIZE and fails on variance_encoded_in_target; Axpy fails on (N, C, 1, 1) scales; LRN ignores k (the
VGG_CNN_M Fast R-CNN nets have k: 2, so OpenCV runs a copy with k: 1); Upsample is not in its Caffe importer.

The real nets: the SSD face detector (res10_300x300_ssd_deploy_clean) and the Fast R-CNN test nets of the
fixtures, on random weights (keras_zoo/random_weights.py), a real photo and a few rois.
"""

import cv2
import numpy as np
import pytest

from converters.caffe import read_caffe
from converters.errors import ConversionError
from converters.writers.caffe import write_caffemodel
from keras_zoo.builder import build_model
from keras_zoo.images import resize, sample_photos
from keras_zoo.random_weights import random_caffemodel
from tests.helpers import assert_close_rel, fixture_path
from tests.keras_zoo.test_fork_layers import (detections, ref_detection_output, ref_interp, ref_normalize,
                                              ref_prior_box, ref_roi_pool, ref_shuffle_channel)
from tests.keras_zoo.test_layers import ref_conv

F32 = np.float32


def write_net(tmp_path, inputs, body, layers=None, name="net"):
    """A prototxt declaring ``inputs`` ({name: NCHW array}) then ``body``; with ``layers`` ([(name, type,
    blobs)]) its caffemodel too. Returns (prototxt, caffemodel or None)."""
    head = "".join(f'input: "{blob}"\ninput_shape {{ {" ".join(f"dim: {d}" for d in value.shape)} }}\n'
                   for blob, value in inputs.items())
    prototxt = tmp_path / f"{name}.prototxt"
    prototxt.write_text(head + body)
    caffemodel = write_caffemodel(tmp_path / f"{name}.caffemodel", layers) if layers else None
    return prototxt, caffemodel


def keras_run(prototxt, caffemodel, inputs, outputs=None, input_shape=None):
    """The converted model's outputs on ``inputs`` (channel-first in and out)."""
    graph = read_caffe(prototxt, caffemodel, input_shape=input_shape)
    if outputs is not None:
        graph.outputs = list(outputs)
    model = build_model(graph)
    feed = [np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x for x in inputs.values()]
    result = model(feed if len(feed) > 1 else feed[0])
    result = result if isinstance(result, (list, tuple)) else [result]
    return [np.moveaxis(np.asarray(y), -1, 1) if np.ndim(y) >= 3 else np.asarray(y) for y in result], graph


def opencv_run(prototxt, caffemodel, inputs, outputs):
    net = cv2.dnn.readNetFromCaffe(str(prototxt), *([str(caffemodel)] if caffemodel else []))
    net.enableWinograd(False)
    net.enableFusion(False)
    for blob, value in inputs.items():
        net.setInput(value, blob)
    return [np.asarray(y) for y in net.forward(list(outputs))]


def assert_matches_opencv(tmp_path, inputs, body, layers=None, outputs=("out",), tol=1e-4):
    prototxt, caffemodel = write_net(tmp_path, inputs, body, layers)
    ours, _ = keras_run(prototxt, caffemodel, inputs, outputs)
    theirs = opencv_run(prototxt, caffemodel, inputs, outputs)
    for blob, y, y_ref in zip(outputs, ours, theirs):
        assert_close_rel(y, y_ref, tol=tol, what=f"blob '{blob}'")
    return ours


def graph_of(tmp_path, inputs, body):
    return read_caffe(write_net(tmp_path, {name: np.zeros(shape, F32) for name, shape in inputs.items()},
                                body)[0])


def refused(tmp_path, inputs, body, match):
    with pytest.raises(ConversionError, match=match) as info:
        graph_of(tmp_path, inputs, body)
    return str(info.value)


# ---------------------------------------------------------------------------------------------- Interp

@pytest.mark.parametrize("param", ["zoom_factor: 2", "zoom_factor: 3", "height: 5 width: 13", "height: 1 width: 1",
                                   "height: 7 width: 9"])
def test_interp_matches_opencv(param, tmp_path, rng):
    x = rng.standard_normal((2, 3, 7, 9)).astype(F32)
    assert_matches_opencv(tmp_path, {"data": x}, 'layer { name: "out" type: "Interp" bottom: "data" top: "out" '
                                                 f'interp_param {{ {param} }} }}')


@pytest.mark.parametrize("param,size,pads", [
    ("shrink_factor: 2", (4, 5), (0, 0)),
    ("zoom_factor: 3 shrink_factor: 2", (10, 13), (0, 0)),  # PSPNet: shrink, then zoom
    ("zoom_factor: 2 height: 30 width: 30", (13, 17), (0, 0)),  # a zoom_factor alone wins over height/width
    ("zoom_factor: 3 shrink_factor: 2 height: 5 width: 6", (5, 6), (0, 0)),  # height/width win over both
    ("zoom_factor: 2 pad_beg: -1 pad_end: -2", (7, 11), (-1, -2)),  # crop to 4 x 6, then zoom
])
def test_interp_follows_pspnet_where_opencv_does_not(param, size, pads, tmp_path, rng):
    x = rng.standard_normal((2, 3, 7, 9)).astype(F32)
    prototxt, _ = write_net(tmp_path, {"data": x}, 'layer { name: "out" type: "Interp" bottom: "data" top: "out" '
                                                   f'interp_param {{ {param} }} }}')
    (y,), graph = keras_run(prototxt, None, {"data": x})
    assert graph.node("out").op == "interp" and y.shape == (2, 3, *size)
    assert_close_rel(y, ref_interp(x, *size, *pads), tol=1e-6)


def test_interp_refusals(tmp_path):
    shape = {"data": (1, 3, 7, 9)}
    refused(tmp_path, shape, 'layer { name: "i" type: "Interp" bottom: "data" top: "i" }',
            "'i' \\(Interp\\).*no output")
    refused(tmp_path, shape, 'layer { name: "i" type: "Interp" bottom: "data" top: "i" interp_param { zoom_factor: 2 '
                             'pad_beg: 1 } }', "pad_beg 1")
    refused(tmp_path, shape, 'layer { name: "i" type: "Interp" bottom: "data" top: "i" interp_param { zoom_factor: 0 '
                             '} }', "positive")


# -------------------------------------------------------------- ShuffleChannel, depthwise convolutions, ReLU6

@pytest.mark.parametrize("group", [2, 3])
def test_shuffle_channel_matches_opencv(group, tmp_path, rng):
    x = rng.standard_normal((2, 6, 4, 5)).astype(F32)
    (y,) = assert_matches_opencv(tmp_path, {"data": x}, 'layer { name: "out" type: "ShuffleChannel" bottom: "data" '
                                                        f'top: "out" shuffle_channel_param {{ group: {group} }} }}')
    assert_close_rel(y, ref_shuffle_channel(x, group), tol=0)


DEPTHWISE = ('layer {{ name: "out" type: "{type}" bottom: "data" top: "out" convolution_param {{ {param} }} }}')


@pytest.mark.parametrize("param,stride,pads", [
    ("num_output: 4 kernel_size: 3 pad: 1 stride: 2", (2, 2), (1, 1, 1, 1)),
    ("num_output: 4 kernel_h: 3 kernel_w: 5 pad_h: 0 pad_w: 2", (1, 1), (0, 0, 2, 2)),
    ("num_output: 4 group: 4 kernel_size: 3 bias_term: false", (1, 1), (0, 0, 0, 0)),
])
def test_depthwise_convolutions_match_opencv_and_numpy(param, stride, pads, tmp_path, rng):
    x = rng.standard_normal((2, 4, 9, 11)).astype(F32)
    kh, kw = (3, 5) if "kernel_w: 5" in param else (3, 3)
    weight = rng.standard_normal((4, 1, kh, kw)).astype(F32)
    bias = rng.standard_normal(4).astype(F32) if "bias_term: false" not in param else np.zeros(4, F32)
    blobs = [weight, bias] if "bias_term: false" not in param else [weight]
    expected = ref_conv(x, weight, bias, stride, pads, groups=4)
    (ours,) = assert_matches_opencv(tmp_path, {"data": x}, DEPTHWISE.format(type="ConvolutionDepthwise", param=param),
                                    [("out", "ConvolutionDepthwise", blobs)])
    assert_close_rel(ours, expected)
    # the other name (OpenCV does not know it): the same layer
    prototxt, caffemodel = write_net(tmp_path, {"data": x}, DEPTHWISE.format(type="DepthwiseConvolution",
                                                                             param=param),
                                     [("out", "DepthwiseConvolution", blobs)], name="other")
    (other,), graph = keras_run(prototxt, caffemodel, {"data": x})
    assert graph.node("out").attrs["groups"] == graph.node("out").attrs["filters"] == 4
    assert_close_rel(other, ours, tol=0)


def test_depthwise_convolution_refuses_another_output_count_or_group(tmp_path):
    shape = {"data": (1, 4, 9, 9)}
    node = graph_of(tmp_path, shape, DEPTHWISE.format(type="ConvolutionDepthwise", param="kernel_size: 3")).node("out")
    assert (node.op, node.attrs["filters"], node.attrs["groups"]) == ("conv", 4, 4)  # the fork reads no num_output
    for type_name in ("ConvolutionDepthwise", "DepthwiseConvolution"):
        refused(tmp_path, shape, DEPTHWISE.format(type=type_name, param="num_output: 8 kernel_size: 3"),
                f"'out' \\({type_name}\\): num_output 8 differs from the 4 input channels")
        refused(tmp_path, shape, DEPTHWISE.format(type=type_name, param="group: 2 kernel_size: 3"), "group 2")


def test_relu6_matches_opencv(tmp_path, rng):
    x = (rng.standard_normal((2, 3, 4, 5)) * 6).astype(F32)
    (y,) = assert_matches_opencv(tmp_path, {"data": x},
                                 'layer { name: "out" type: "ReLU6" bottom: "data" top: "out" }')
    assert_close_rel(y, np.minimum(np.maximum(x, 0), 6), tol=0)
    refused(tmp_path, {"data": (1, 3, 4, 5)}, 'layer { name: "r" type: "ReLU6" bottom: "data" top: "r" '
                                              'relu_param { negative_slope: 0.1 } }', "negative_slope")


# -------------------------------------------------------------------------------------------- Axpy, Permute

def test_axpy_is_a_times_x_plus_y(tmp_path, rng):
    x, y = rng.standard_normal((2, 2, 3, 4, 5)).astype(F32)
    scale = rng.standard_normal((2, 3, 1, 1)).astype(F32)
    prototxt, _ = write_net(tmp_path, {"scale": scale, "x": x, "y": y},
                            'layer { name: "out" type: "Axpy" bottom: "scale" bottom: "x" bottom: "y" top: "out" }')
    (out,), graph = keras_run(prototxt, None, {"scale": scale, "x": x, "y": y})
    assert graph.node("out").inputs == ["scale", "x", "y"]
    assert_close_rel(out, scale * x + y, tol=1e-6)
    refused(tmp_path, {"scale": (2, 3, 2, 1), "x": (2, 3, 4, 5), "y": (2, 3, 4, 5)},
            'layer { name: "a" type: "Axpy" bottom: "scale" bottom: "x" bottom: "y" top: "a" }', "'a' \\(Axpy\\)")


@pytest.mark.parametrize("order", [(0, 2, 3, 1), (0, 3, 1, 2), (0, 1, 3, 2)])
def test_permute_matches_opencv(order, tmp_path, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(F32)
    param = " ".join(f"order: {axis}" for axis in order)
    (y,) = assert_matches_opencv(tmp_path, {"data": x}, f'layer {{ name: "out" type: "Permute" bottom: "data" '
                                                        f'top: "out" permute_param {{ {param} }} }}', tol=0)
    assert y.shape == tuple(x.shape[axis] for axis in order)


def test_permute_completes_a_partial_order_and_keeps_the_batch_first(tmp_path):
    graph = graph_of(tmp_path, {"data": (1, 3, 4, 5)}, 'layer { name: "p" type: "Permute" bottom: "data" top: "p" '
                                                      'permute_param { order: 0 order: 3 } }')
    assert graph.node("p").attrs["order"] == [0, 3, 1, 2]
    refused(tmp_path, {"data": (1, 3, 4, 5)}, 'layer { name: "p" type: "Permute" bottom: "data" top: "p" '
                                              'permute_param { order: 1 order: 0 } }', "batch axis")
    refused(tmp_path, {"data": (1, 3, 4, 5)}, 'layer { name: "p" type: "Permute" bottom: "data" top: "p" '
                                              'permute_param { order: 0 order: 4 } }', "no permutation")


# ---------------------------------------------------------------------------------------------- Normalize

@pytest.mark.parametrize("across_spatial,channel_shared", [(True, True), (False, True), (False, False),
                                                           (True, False)])
def test_normalize_matches_opencv_and_numpy(across_spatial, channel_shared, tmp_path, rng):
    x = rng.standard_normal((2, 4, 3, 5)).astype(F32)
    scale = rng.uniform(5, 25, 1 if channel_shared else 4).astype(F32)
    body = (f'layer {{ name: "out" type: "Normalize" bottom: "data" top: "out" norm_param {{ across_spatial: '
            f'{str(across_spatial).lower()} channel_shared: {str(channel_shared).lower()} eps: 0.001 }} }}')
    layers = [("out", "Normalize", [scale])]
    expected = ref_normalize(x, scale, across_spatial, channel_shared, 1e-3)
    if across_spatial and not channel_shared:  # OpenCV fails on this combination
        prototxt, caffemodel = write_net(tmp_path, {"data": x}, body, layers)
        (y,), _ = keras_run(prototxt, caffemodel, {"data": x})
    else:
        (y,) = assert_matches_opencv(tmp_path, {"data": x}, body, layers)
    assert_close_rel(y, expected)


def test_normalize_checks_its_scale_blob(tmp_path):
    x = np.zeros((1, 4, 3, 5), F32)
    prototxt, caffemodel = write_net(tmp_path, {"data": x}, 'layer { name: "n" type: "Normalize" bottom: "data" '
                                                            'top: "n" norm_param { channel_shared: false } }',
                                     [("n", "Normalize", [np.ones(3, F32)])])
    with pytest.raises(ConversionError, match="'n' \\(Normalize\\).*blob 0"):
        read_caffe(prototxt, caffemodel)


# ----------------------------------------------------------------------------------------------- PriorBox

PRIOR_PARAMS = [
    # (prior_box_param, the NumPy reference's arguments); OpenCV is told clip and the variance explicitly
    ("min_size: 10 max_size: 20 aspect_ratio: 2 aspect_ratio: 3 flip: true clip: false variance: 0.1 "
     "variance: 0.1 variance: 0.2 variance: 0.2",
     dict(min_sizes=(10,), max_sizes=(20,), ratios=(2, 3), variance=(0.1, 0.1, 0.2, 0.2))),
    ("min_size: 10 min_size: 15 max_size: 20 max_size: 25 aspect_ratio: 2 flip: false clip: true variance: 0.1",
     dict(min_sizes=(10, 15), max_sizes=(20, 25), ratios=(2,), flip=False, clip=True)),
    ("min_size: 12 aspect_ratio: 2 aspect_ratio: 0.5 step: 7 offset: 0.3 variance: 0.2 clip: false",
     dict(min_sizes=(12,), ratios=(2, 0.5), variance=(0.2,), step=(7, 7), offset=0.3)),
]


@pytest.mark.parametrize("param,reference", PRIOR_PARAMS, ids=["max_size", "two_sizes_clip", "step_offset"])
def test_prior_box_matches_opencv_and_numpy(param, reference, tmp_path):
    inputs = {"feature": np.zeros((1, 3, 5, 4), F32), "image": np.zeros((1, 3, 40, 30), F32)}
    (y,) = assert_matches_opencv(tmp_path, inputs, 'layer { name: "out" type: "PriorBox" bottom: "feature" '
                                                   f'bottom: "image" top: "out" prior_box_param {{ {param} }} }}')
    assert_close_rel(y, ref_prior_box(5, 4, 40, 30, **reference)[None], tol=1e-6)


@pytest.mark.parametrize("param,image,reference", [
    ("min_size: 12 aspect_ratio: 3 img_h: 50 img_w: 60 step_h: 9 step_w: 6",
     (50, 60), dict(min_sizes=(12,), ratios=(3,), step=(9, 6))),
    ("min_size: 12.7 max_size: 30.2 aspect_ratio: 2 img_size: 64", (64, 64),
     dict(min_sizes=(12.7,), max_sizes=(30.2,), ratios=(2,))),  # the fork truncates the sizes to 12 and 30
])
def test_prior_box_image_size_and_sizes_as_the_fork(param, image, reference, tmp_path):
    inputs = {"feature": np.zeros((2, 3, 5, 4), F32), "image": np.zeros((2, 3, 40, 30), F32)}
    prototxt, _ = write_net(tmp_path, inputs, 'layer { name: "out" type: "PriorBox" bottom: "feature" '
                                              f'bottom: "image" top: "out" prior_box_param {{ {param} }} }}')
    (y,), graph = keras_run(prototxt, None, inputs)
    expected = ref_prior_box(5, 4, *image, **reference)
    assert graph.node("out").attrs["img_size"] == image and y.shape == (2, *expected.shape)
    assert_close_rel(y[1], expected, tol=1e-6)


def test_prior_box_refusals(tmp_path):
    shapes = {"feature": (1, 3, 5, 4), "image": (1, 3, 40, 30)}
    body = 'layer {{ name: "pb" type: "PriorBox" bottom: "feature" {} top: "pb" prior_box_param {{ {} }} }}'
    refused(tmp_path, shapes, body.format('bottom: "image"', "aspect_ratio: 2"), "'pb' \\(PriorBox\\): min_size")
    refused(tmp_path, shapes, body.format('bottom: "image"', "min_size: 20 max_size: 10"), "max_size")
    refused(tmp_path, shapes, body.format('bottom: "image"', "min_size: 2 variance: 0.1 variance: 0.2"), "variance")
    refused(tmp_path, shapes, body.format('bottom: "image"', "min_size: 2 step: 4 step_h: 3"), "step")
    refused(tmp_path, shapes, body.format("", "min_size: 2"), "second bottom")


# ---------------------------------------------------------------------------------------- DetectionOutput

DETECTION_PARAMS = [
    # (detection_output_param after num_classes, keyword arguments of the NumPy reference, OpenCV reads it;
    # OpenCV needs share_location and background_label_id stated)
    ("share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 30 } code_type: "
     "CENTER_SIZE keep_top_k: 20 confidence_threshold: 0.2",
     dict(code_type="center_size", nms_threshold=0.45, top_k=30, keep_top_k=20, confidence_threshold=0.2), True),
    ("share_location: false background_label_id: 0 nms_param { nms_threshold: 0.3 top_k: 50 } code_type: CORNER "
     "keep_top_k: 25 confidence_threshold: 0.1",
     dict(share_location=False, code_type="corner", nms_threshold=0.3, top_k=50, keep_top_k=25,
          confidence_threshold=0.1), True),
    ("share_location: true background_label_id: 1 nms_param { nms_threshold: 0.4 top_k: 40 eta: 0.8 } "
     "code_type: CENTER_SIZE keep_top_k: 30 confidence_threshold: 0.05",
     dict(background_label_id=1, code_type="center_size", nms_threshold=0.4, top_k=40, eta=0.8, keep_top_k=30,
          confidence_threshold=0.05), True),
    ("share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 30 } code_type: "
     "CENTER_SIZE keep_top_k: 20",
     dict(code_type="center_size", nms_threshold=0.45, top_k=30, keep_top_k=20), True),
    ("background_label_id: -1 nms_param { nms_threshold: 0.5 } code_type: CORNER_SIZE confidence_threshold: 0.3",
     dict(background_label_id=-1, code_type="corner_size", nms_threshold=0.5, confidence_threshold=0.3), False),
    ("nms_param { nms_threshold: 0.45 top_k: 30 } code_type: CENTER_SIZE variance_encoded_in_target: true "
     "keep_top_k: 20 confidence_threshold: 0.2",
     dict(code_type="center_size", variance_encoded_in_target=True, nms_threshold=0.45, top_k=30, keep_top_k=20,
          confidence_threshold=0.2), False),
]


def sorted_rows(rows):
    """Detection rows by image, label, falling score (then box), so that equal rows compare whatever their order."""
    rows = np.asarray(rows, np.float64)
    return rows[np.lexsort((rows[:, 3], -rows[:, 2], rows[:, 1], rows[:, 0]))]


@pytest.mark.parametrize("param,reference,opencv", DETECTION_PARAMS, ids=[str(i) for i in range(len(DETECTION_PARAMS))])
def test_detection_output_matches_opencv_and_numpy(param, reference, opencv, tmp_path, rng):
    classes, count = 3, 4 * 5 * 3
    loc_classes = 1 if reference.get("share_location", True) else classes
    inputs = {"loc": (rng.standard_normal((2, count * loc_classes * 4)) * 0.5).astype(F32),
              "conf": rng.uniform(0, 1, (2, count * classes)).astype(F32),
              "feature": np.zeros((2, 1, 4, 5), F32), "image": np.zeros((2, 3, 40, 50), F32)}
    body = ('layer { name: "priors" type: "PriorBox" bottom: "feature" bottom: "image" top: "priors" prior_box_param '
            '{ min_size: 10 max_size: 20 aspect_ratio: 2 flip: false clip: false variance: 0.1 variance: 0.1 '
            'variance: 0.2 variance: 0.2 } }\n'
            'layer { name: "out" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" top: "out" '
            f'detection_output_param {{ num_classes: {classes} {param} }} }}')
    prototxt, _ = write_net(tmp_path, inputs, body)
    (y, priors), graph = keras_run(prototxt, None, inputs, outputs=["out", "priors"])
    rows = detections(np.transpose(y, (0, 2, 3, 1)))
    assert y.shape == (2, 1, graph.node("out").attrs["rows"], 7)
    expected = ref_detection_output(inputs["loc"], inputs["conf"], priors[0], classes, **reference)
    assert len(rows) == len(expected) > 0
    assert_close_rel(rows, expected, tol=1e-6)
    if opencv:
        (theirs,) = opencv_run(prototxt, None, inputs, ["out"])
        assert_close_rel(sorted_rows(rows), sorted_rows(theirs[0, 0]))


def test_detection_output_rows_and_refusals(tmp_path):
    shapes = {"loc": (1, 60 * 4), "conf": (1, 60 * 3), "priors": (1, 2, 60 * 4)}
    body = ('layer {{ name: "d" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" top: "d" '
            'detection_output_param {{ {} }} }}')
    node = graph_of(tmp_path, shapes, body.format("num_classes: 3 nms_param { top_k: 25 }")).node("d")
    assert node.attrs["rows"] == 2 * 25 and node.attrs["confidence_threshold"] is None  # classes x top_k
    node = graph_of(tmp_path, shapes, body.format("num_classes: 3 background_label_id: -1")).node("d")
    assert node.attrs["rows"] == 3 * 60 and node.attrs["top_k"] == node.attrs["keep_top_k"] == -1
    assert graph_of(tmp_path, shapes, body.format("num_classes: 3 keep_top_k: 7")).node("d").attrs["rows"] == 7
    refused(tmp_path, shapes, body.format("share_location: true"), "'d' \\(DetectionOutput\\): num_classes")
    refused(tmp_path, shapes, body.format("num_classes: 4"), "confidence predictions")
    refused(tmp_path, shapes, body.format("num_classes: 3 share_location: false"), "location predictions")
    refused(tmp_path, shapes, body.format("num_classes: 3 nms_param { eta: 1.5 }"), "eta")


# ----------------------------------------------------------------------------------- Upsample, ROIPooling

def test_upsample_is_the_yolo_ports_nearest_neighbour(tmp_path, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(F32)
    prototxt, _ = write_net(tmp_path, {"data": x}, 'layer { name: "up" type: "Upsample" bottom: "data" top: "up" '
                                                   'upsample_param { scale: 3 } }')
    (y,), _ = keras_run(prototxt, None, {"data": x})
    assert_close_rel(y, x.repeat(3, axis=2).repeat(3, axis=3), tol=0)
    graph = graph_of(tmp_path, {"data": (1, 3, 4, 5)}, 'layer { name: "up" type: "Upsample" bottom: "data" '
                                                       'top: "up" }')
    assert graph.node("up").attrs["scale"] == (1, 1)  # the YOLOv3 ports' default, not SegNet's 2


def test_upsample_refuses_segnets_unpooling(tmp_path):
    shapes = {"data": (1, 3, 4, 5), "mask": (1, 3, 4, 5)}
    refused(tmp_path, shapes, 'layer { name: "up" type: "Upsample" bottom: "data" bottom: "mask" top: "up" '
                              'upsample_param { scale: 2 } }', "'up' \\(Upsample\\): SegNet's Upsample")
    refused(tmp_path, shapes, 'layer { name: "up" type: "Upsample" bottom: "data" top: "up" upsample_param { '
                              'upsample_h: 8 } }', "upsample_h")


@pytest.mark.parametrize("spatial_scale", [1.0, 0.5])
def test_roi_pooling_matches_opencv_and_numpy(spatial_scale, tmp_path, rng):
    data = rng.standard_normal((2, 3, 9, 11)).astype(F32)
    rois = np.array([[0, 0, 0, 10, 8], [1, 1.5, 2.5, 7.5, 6.5], [0, 3, 3, 3, 3], [1, -5, -3, 4, 20],
                     [0, 2.5, 0.5, 9.49, 3.51], [1, 9, 7, 2, 1], [0, 30, 30, 40, 40]], F32)
    (y,) = assert_matches_opencv(tmp_path, {"data": data, "rois": rois},
                                 'layer { name: "out" type: "ROIPooling" bottom: "data" bottom: "rois" top: "out" '
                                 f'roi_pooling_param {{ pooled_h: 3 pooled_w: 4 spatial_scale: {spatial_scale} }} }}',
                                 tol=0)
    assert_close_rel(y, ref_roi_pool(data, rois, 3, 4, spatial_scale), tol=0)


def test_roi_pooling_refusals(tmp_path):
    shapes = {"data": (1, 3, 9, 11), "rois": (1, 4)}
    body = ('layer {{ name: "r" type: "ROIPooling" bottom: "data" bottom: "rois" top: "r" roi_pooling_param {{ {} }} '
            '}}')
    refused(tmp_path, shapes, body.format("pooled_h: 2 pooled_w: 2"), "'r' \\(ROIPooling\\): each roi must hold 5")
    refused(tmp_path, {"data": (1, 3, 9, 11), "rois": (1, 5)}, body.format("pooled_h: 2"), "pooled_w")


# --------------------------------------------------------------------------------- the SSD face detector

SSD = "other_archs/res10_300x300_ssd_deploy_clean.prototxt"
SSD_MEAN = np.array([104.0, 177.0, 123.0], F32)  # OpenCV's face_detector sample: BGR mean, 300 x 300


def ssd_images(names):
    """The sample photos resized to 300 x 300, as the detector's NCHW BGR input less the mean."""
    photos = dict(sample_photos())
    images = np.stack([resize(photos[name], (300, 300))[..., ::-1] - SSD_MEAN for name in names])
    return np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2)), dtype=F32)


@pytest.fixture(scope="module")
def ssd_caffemodel(tmp_path_factory):
    return random_caffemodel(fixture_path(SSD), tmp_path_factory.mktemp("ssd") / "random.caffemodel", seed=0)


@pytest.mark.parametrize("names", [("astronaut",), ("astronaut", "chelsea")])
def test_ssd_face_detector_gives_opencvs_detections(names, ssd_caffemodel):
    """The detections of the converted net equal OpenCV's on the same weights and photos.

    Both sides compute the same float32 arithmetic up to rounding order (~1e-7 of each value): the rows are
    compared as sets, sorted by image, label and falling score, to the project's 1e-4 of the largest value. A row
    of one side with no twin on the other would mean a score or an overlap within rounding of a threshold or of
    another score (top_k, keep_top_k, NMS): the row counts are equal, so none was.
    """
    prototxt = fixture_path(SSD)
    images = ssd_images(names)
    (y,), graph = keras_run(prototxt, ssd_caffemodel, {"data": images})
    node = graph.node("detection_out")
    assert node.attrs["code_type"] == "center_size" and node.attrs["rows"] == 200
    assert y.shape == (len(names), 1, 200, 7)
    ours = detections(np.transpose(y, (0, 2, 3, 1)))
    (theirs,) = opencv_run(prototxt, ssd_caffemodel, {"data": images}, ["detection_out"])
    theirs = theirs[0, 0]
    assert len(ours) == len(theirs) == 200 * len(names)
    assert_close_rel(sorted_rows(ours), sorted_rows(theirs))
    assert np.ptp(ours[:, 2]) > 0 and set(ours[:, 0]) == set(range(len(names)))


def test_ssd_layers_are_the_forks(ssd_caffemodel):
    graph = read_caffe(fixture_path(SSD), ssd_caffemodel)
    ops = {node.name: node.op for node in graph.nodes}
    assert ops["conv4_3_norm"] == "normalize" and ops["conv9_2_mbox_conf_perm"] == "permute"
    assert sum(op == "priorbox" for op in ops.values()) == 6 and ops["detection_out"] == "detection_output"
    norm = graph.node("conv4_3_norm")
    assert norm.attrs == {"across_spatial": False, "channel_shared": False, "eps": pytest.approx(1e-10)}
    assert norm.weights["scale"].shape == (128,)
    prior = graph.node("conv4_3_norm_mbox_priorbox")
    assert prior.attrs["aspect_ratios"] == [1.0, 2.0, 0.5] and prior.attrs["step"] == (8.0, 8.0)
    assert graph.outputs == ["detection_out"]


# ------------------------------------------------------------------------------------ Fast R-CNN test nets

FAST_RCNN = [
    # (fixture, input (H, W), OpenCV's copy needs LRN k: 1)
    ("rcnn/fast-rcnn_CaffeNet_test.prototxt", (99, 115), False),
    ("rcnn/fast-rcnn_VGG16_test.prototxt", (96, 112), False),
    ("rcnn/py-faster-rcnn_ZF_fast_rcnn_test.prototxt", (112, 96), False),
    ("vgg_cnn/fast-rcnn_VGG_CNN_M_1024_test.prototxt", (112, 112), True),
]
# early Fast R-CNN's V1 nets (type: ROI_POOLING, rois declared (R, 5, 1, 1)), which OpenCV cannot parse
EARLY_FAST_RCNN = ["vgg_cnn/early-fast-rcnn_VGG_CNN_M_1024_deploy_v1.prototxt",
                   "vgg_cnn/early-fast-rcnn_VGG_CNN_S_deploy_v1.prototxt"]


def fast_rcnn_rois(height, width):
    """A few rois in image pixels (batch index, x1, y1, x2, y2): the whole image, halves to round, a sliver, one
    reaching outside, one past the corner (empty bins)."""
    return np.array([[0, 0, 0, width - 1, height - 1], [0, 10.5, 20.4, 60.5, 50.5], [0, 30, 30, 31, 32],
                     [0, -20, 5, 40, height + 100], [0, 7.5, 8.49, 7.5, 8.5], [0, width - 8, height - 8, width + 50,
                                                                                height + 50]], F32)


@pytest.mark.parametrize("relative,size,lrn_k_1", FAST_RCNN, ids=[path.split("/")[-1] for path, _, _ in FAST_RCNN])
def test_fast_rcnn_test_nets_match_opencv(relative, size, lrn_k_1, tmp_path):
    prototxt = fixture_path(relative)
    caffemodel = random_caffemodel(prototxt, tmp_path / "random.caffemodel", input_shape=size, seed=0)
    if lrn_k_1:  # OpenCV ignores LRN's k (tests/keras_zoo/test_layers.py checks k): both run a copy with k: 1
        copy = tmp_path / "k1.prototxt"
        copy.write_text(prototxt.read_text().replace("k: 2", "k: 1"))
        prototxt = copy
    outputs = ["cls_score", "bbox_pred"]  # the class logits (cls_prob is their softmax) and the box offsets
    image = np.random.default_rng(0).uniform(-100, 100, (1, 3, *size)).astype(F32)
    inputs = {"data": image, "rois": fast_rcnn_rois(*size)}
    ours, graph = keras_run(prototxt, caffemodel, inputs, outputs, input_shape=size)
    assert graph.inputs["rois"] == (5,) and graph.node(outputs[0]).op == "dense"
    theirs = opencv_run(prototxt, caffemodel, inputs, outputs)
    for blob, y, y_ref in zip(outputs, ours, theirs):
        assert y.shape[0] == len(inputs["rois"])  # one row per roi
        assert_close_rel(y, y_ref, what=f"blob '{blob}'")


@pytest.mark.parametrize("relative", EARLY_FAST_RCNN, ids=[path.split("/")[-1] for path in EARLY_FAST_RCNN])
def test_early_fast_rcnn_v1_nets_convert_with_their_rois(relative, tmp_path):
    prototxt = fixture_path(relative)
    graph = read_caffe(prototxt, input_shape=(112, 112))
    assert graph.inputs == {"data": (3, 112, 112), "rois": (5, 1, 1)}  # input_shape sizes the image only
    roi = graph.node("roi_pool5")
    assert roi.source_type == "ROIPooling" and roi.attrs == {"pooled": (6, 6), "spatial_scale": 1.0}
    caffemodel = random_caffemodel(prototxt, tmp_path / "random.caffemodel", input_shape=(112, 112), seed=0)
    rois = fast_rcnn_rois(112, 112)
    image = np.random.default_rng(0).uniform(-100, 100, (1, 3, 112, 112)).astype(F32)
    (bbox, prob), _ = keras_run(prototxt, caffemodel, {"data": image, "rois": rois.reshape(-1, 5, 1, 1)},
                                input_shape=(112, 112))
    assert bbox.shape == (len(rois), 84) and prob.shape == (len(rois), 21)
    assert np.allclose(prob.sum(-1), 1, atol=1e-5)


def test_fast_rcnn_dropout_scale_train_false_is_the_forks_test_time_scaling():
    graph = read_caffe(fixture_path("rcnn/py-faster-rcnn_ZF_fast_rcnn_test.prototxt"))
    for name in ("drop6", "drop7"):
        node = graph.node(name)
        assert node.op == "power" and node.attrs["scale"] == pytest.approx(0.5)
    roi = graph.node("roi_pool_conv5")
    assert roi.attrs == {"pooled": (6, 6), "spatial_scale": 0.0625} and roi.inputs == ["conv5", "rois"]


def test_faster_rcnn_test_net_refuses_only_its_python_proposal_layer():
    with pytest.raises(ConversionError) as info:
        read_caffe(fixture_path("vgg_cnn/py-faster-rcnn_VGG_CNN_M_1024_faster_rcnn_test.prototxt"))
    message = str(info.value)
    assert message.endswith("unsupported layer type(s): 'proposal' (Python)")  # its ROIPooling converts
