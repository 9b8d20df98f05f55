"""Strict prototxt parsing: unknown fields are errors (or warnings on request); fork fields are known by name."""

import logging

import numpy as np
import pytest

from converters.caffe import read_caffe
from converters.caffe import schema as caffe_schema
from converters.caffe.prototxt import parse_prototxt
from converters.errors import ConversionError
from tests.helpers import FIXTURES, fixture_path

# A 6x6 input, a 3x3 convolution with stride 2 (pad 1): (4, 3, 3); a global pooling exposes the size.
NET = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 6 dim: 6 }
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param { lr_mult: 1 decay_mult: 1 }
  convolution_param {
    num_output: 4
    kernel_size: 3
    pad: 1
    stride: 2
    weight_filler { type: "xavier" }
  }
}
layer {
  name: "pool"
  type: "Pooling"
  bottom: "conv1"
  top: "pool"
  pooling_param { pool: AVE global_pooling: true }
}
"""


def write(tmp_path, text, name="deploy.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def keras_shape(graph):
    """(None, H, W, C) of conv1's output, from the reader's Graph (the global pooling's kernel is its size)."""
    return (None, *graph.node("pool").attrs["kernel"], graph.node("conv1").attrs["filters"])


def error_of(path, **kwargs):
    with pytest.raises(ConversionError) as info:
        read_caffe(path, **kwargs)
    return info.value


def unknown_warnings(caplog):
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and "unknown field" in record.getMessage()]


@pytest.mark.parametrize("wrong, right, field, line, where", [
    ("stride: 2", "strid: 2", "strid", 14, "convolution_param; did you mean 'stride'?"),
    ("num_output: 4", "num_ouput: 4", "num_ouput", 11, "convolution_param; did you mean 'num_output'?"),
    ("param { lr_mult", "paramm { lr_mult", "paramm", 9, "the layer; did you mean 'param'?"),
    ('weight_filler { type: "xavier" }', 'weight_filler { typ: "xavier" }', "typ", 15,
     "convolution_param.weight_filler; did you mean 'type'?"),
])
def test_a_misspelled_field_names_file_line_layer_field_and_suggestion(tmp_path, wrong, right, field, line, where):
    path = write(tmp_path, NET.replace(wrong, right))
    error = error_of(path)
    assert str(error) == f"{path}: line {line}: layer 'conv1' (Convolution): unknown field '{field}' in {where}"
    assert (error.path, error.line, error.layer, error.layer_type) == (str(path), line, "conv1", "Convolution")


def test_an_unknown_top_level_field(tmp_path):
    path = write(tmp_path, NET.replace('input: "data"', 'inptu: "data"'))
    assert str(error_of(path)) == f"{path}: line 2: unknown field 'inptu' in the net; did you mean 'input'?"
    path = write(tmp_path, NET.replace("input_shape {", "state { phse: TEST }\ninput_shape {"))
    assert str(error_of(path)) == f"{path}: line 3: unknown field 'phse' in state; did you mean 'phase'?"


def test_only_the_first_unknown_field_is_reported(tmp_path):
    path = write(tmp_path, NET.replace("stride: 2", "strid: 2").replace("num_output", "num_ouput"))
    message = str(error_of(path))
    assert "'num_ouput'" in message and "strid" not in message


def test_allow_unknown_fields_warns_once_per_field_and_skips_it(tmp_path, caplog):
    assert keras_shape(read_caffe(write(tmp_path, NET))) == (None, 3, 3, 4)
    path = write(tmp_path, NET.replace("stride: 2", "strid: 2").replace("param { lr", "paramm { lr"))
    strict = str(error_of(path))
    with caplog.at_level(logging.WARNING):
        graph = read_caffe(path, allow_unknown_fields=True)
    warnings = unknown_warnings(caplog)
    assert warnings == [strict, f"{path}: line 14: layer 'conv1' (Convolution): unknown field 'strid' in "
                                "convolution_param; did you mean 'stride'?"]
    assert keras_shape(graph) == (None, 6, 6, 4)  # the file as Caffe would read it without the field
    assert graph.node("conv1").attrs["strides"] == (1, 1) and graph.node("conv1").attrs["pads"] == (1, 1, 1, 1)


def test_v1_and_v0_layers_are_named(tmp_path):
    v1 = write(tmp_path, 'input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                         'layers { name: "c" type: CONVOLUTION bottom: "data" top: "c"\n'
                         '  convolution_param { num_ouput: 4 kernel_size: 3 } }\n', "v1.prototxt")
    assert str(error_of(v1)) == (f"{v1}: line 4: layer 'c' (CONVOLUTION): unknown field 'num_ouput' in "
                                 "convolution_param; did you mean 'num_output'?")
    v0 = write(tmp_path, 'input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                         'layers { layer { name: "c" type: "conv" num_outputt: 4 kernelsize: 3 }\n'
                         '  bottom: "data" top: "c" }\n', "v0.prototxt")
    assert str(error_of(v0)) == (f"{v0}: line 3: layer 'c' (conv): unknown field 'num_outputt' in the layer; "
                                 "did you mean 'num_output'?")


def test_hints_for_a_missing_brace_and_a_field_in_the_wrong_block(tmp_path):
    path = write(tmp_path, NET.replace("    stride: 2\n", "    stride: 2\n    bottom: \"x\"\n"))
    assert "unknown field 'bottom' in convolution_param (a field of LayerParameter: is a '}' missing" \
        in str(error_of(path))
    path = write(tmp_path, NET.replace("  top: \"conv1\"\n", "  top: \"conv1\"\n  num_output: 4\n", 1))
    assert "unknown field 'num_output' in the layer ('num_output' is a field of convolution_param" \
        in str(error_of(path))


def test_an_unknown_enum_value_is_an_error_even_when_unknown_fields_are_allowed(tmp_path):
    path = write(tmp_path, NET.replace("pool: AVE", "pool: AVEE"))
    for allow in (False, True):
        assert str(error_of(path, allow_unknown_fields=allow)) == (
            f"{path}: line 23: layer 'pool' (Pooling): unknown value AVEE of 'pool' in pooling_param; "
            "did you mean AVE?")


def test_skipped_values_of_every_shape_keep_the_rest_and_the_line_numbers(tmp_path, caplog):
    extra = ('  fork_block { a: "} # not a comment" b < c: 1 > }  # }\n'
             '  fork_list: [1, -2.5e-3, 4]\n'
             '  fork_messages: [{a: 1}, {b: "]"}]\n'
             "  fork_strings: 'x' \"y\" ;\n"
             '  fork_angle <\n    a: 1\n  >\n'
             '  fork_enum: SOME_VALUE,\n')
    text = NET.replace('  top: "conv1"\n', '  top: "conv1"\n' + extra, 1)
    path = write(tmp_path, text.replace("stride: 2", "strid: 2"))
    with caplog.at_level(logging.WARNING):
        net = parse_prototxt(path, allow_unknown_fields=True)
    fields = [message.split("unknown field '")[1].split("'")[0] for message in unknown_warnings(caplog)]
    assert fields == ["fork_block", "fork_list", "fork_messages", "fork_strings", "fork_angle", "fork_enum",
                      "strid"]
    assert "line 22:" in unknown_warnings(caplog)[-1]  # the line of strid in the edited file
    conv = net.layer[0]
    assert list(conv.top) == ["conv1"] and conv.param[0].lr_mult == 1
    assert conv.convolution_param.num_output == 4 and list(conv.convolution_param.pad) == [1]
    assert not conv.convolution_param.stride and net.layer[1].pooling_param.global_pooling


def test_a_syntax_error_after_skipped_fields_keeps_its_line(tmp_path):
    path = write(tmp_path, NET.replace("stride: 2", "strid: 2") + "layer { name: }\n")
    with pytest.raises(ConversionError, match="syntax error at line 25"):
        parse_prototxt(path, allow_unknown_fields=True)


def test_training_only_fields_parse_silently(tmp_path, caplog):
    text = NET.replace('  param { lr_mult: 1 decay_mult: 1 }\n',
                       '  param { lr_mult: 1 decay_mult: 0 name: "w" share_mode: PERMISSIVE }\n'
                       '  param { lr_mult: 2 decay_mult: 0 }\n'
                       '  propagate_down: true\n  loss_weight: 0\n  include { phase: TEST }\n')
    text = text.replace('weight_filler { type: "xavier" }',
                        'weight_filler { type: "msra" variance_norm: FAN_OUT }\n'
                        '    bias_filler { type: "constant" value: 0.1 }\n    engine: CAFFE')
    path = write(tmp_path, text)
    with caplog.at_level(logging.WARNING):
        graph = read_caffe(path)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert keras_shape(graph) == (None, 3, 3, 4)


def test_data_layers_with_fork_transform_params(tmp_path):
    """An SSD train net's AnnotatedData layer: training-only fields, the input size from resize_param."""
    text = """name: "ssd_train"
layer {
  name: "data" type: "AnnotatedData" top: "data" top: "label"
  include { phase: TEST }
  transform_param {
    mean_value: 104 mean_value: 117 mean_value: 123
    resize_param { prob: 1 resize_mode: WARP height: 30 width: 40 interp_mode: LINEAR interp_mode: AREA }
    distort_param { brightness_prob: 0.5 brightness_delta: 32 }
    expand_param { prob: 0.5 max_expand_ratio: 4 }
    emit_constraint { emit_type: CENTER }
  }
  data_param { source: "lmdb" batch_size: 8 backend: LMDB }
  annotated_data_param {
    batch_sampler { sampler { min_scale: 0.3 max_scale: 1 } sample_constraint { min_jaccard_overlap: 0.1 }
                    max_sample: 1 max_trials: 50 }
    label_map_file: "labelmap.prototxt" anno_type: BBOX
  }
}
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "loss" type: "MultiBoxLoss" bottom: "conv" bottom: "label" top: "loss"
        include { phase: TRAIN }
        multibox_loss_param { loc_loss_type: SMOOTH_L1 conf_loss_type: SOFTMAX num_classes: 21
                              match_type: PER_PREDICTION code_type: CENTER_SIZE mining_type: MAX_NEGATIVE
                              nms_param { nms_threshold: 0.45 } } }
"""
    graph = read_caffe(write(tmp_path, text))
    assert graph.inputs == {"data": (3, 30, 40)}
    crop = text.replace("resize_param {", "crop_h: 20 crop_w: 10 noise_param { prob: 0.1 }\n    resize_param {")
    assert read_caffe(write(tmp_path, crop)).inputs == {"data": (3, 20, 10)}  # the crop after the resize
    psp = text.replace("resize_param {", "crop_height: 16 crop_width: 12 scale_factors: 0.5\n    resize_param {")
    assert read_caffe(write(tmp_path, psp)).inputs == {"data": (3, 16, 12)}
    square = text.replace("resize_param {", "crop_size: 8 crop_h: 20 crop_w: 10\n    resize_param {")
    assert read_caffe(write(tmp_path, square)).inputs == {"data": (3, 8, 8)}  # crop_size wins, as in SSD


# ------------------------------------------------------------------------------------------ fork layers

FORK_LAYERS = """
layer { name: "interp" type: "Interp" bottom: "data" top: "interp"
        interp_param { zoom_factor: 2 shrink_factor: 1 height: 0 width: 0 pad_beg: 0 pad_end: 0 } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "shuffle" shuffle_channel_param { group: 3 } }
layer { name: "dw1" type: "ConvolutionDepthwise" bottom: "data" top: "dw1"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 group: 3 } }
layer { name: "dw2" type: "DepthwiseConvolution" bottom: "data" top: "dw2"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 group: 3 } }
layer { name: "relu6" type: "ReLU6" bottom: "dw1" top: "relu6" }
layer { name: "axpy" type: "Axpy" bottom: "scale" bottom: "dw1" bottom: "dw2" top: "axpy" }
layer { name: "drop" type: "Dropout" bottom: "dw2" top: "drop"
        dropout_param { dropout_ratio: 0.5 scale_train: false } }
layer { name: "perm" type: "Permute" bottom: "data" top: "perm"
        permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "norm" type: "Normalize" bottom: "data" top: "norm"
        norm_param { across_spatial: false channel_shared: false eps: 1e-10
                     scale_filler { type: "constant" value: 20 } } }
layer { name: "prior" type: "PriorBox" bottom: "norm" bottom: "data" top: "prior"
        prior_box_param { min_size: 30 max_size: 60 aspect_ratio: 2 flip: true clip: false
                          variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2
                          img_size: 300 img_h: 300 img_w: 300 step: 8 step_h: 8 step_w: 8 offset: 0.5 } }
layer { name: "det" type: "DetectionOutput" bottom: "perm" bottom: "norm" bottom: "prior" top: "det"
        detection_output_param { num_classes: 21 share_location: true background_label_id: 0
                                 nms_param { nms_threshold: 0.45 top_k: 400 eta: 1 }
                                 save_output_param { output_directory: "out" output_format: "VOC" }
                                 code_type: CENTER_SIZE variance_encoded_in_target: false keep_top_k: 200
                                 confidence_threshold: 0.01 } }
layer { name: "up" type: "Upsample" bottom: "data" top: "up"
        upsample_param { scale: 2 scale_h: 2 scale_w: 2 pad_out_h: false pad_out_w: false
                         upsample_h: 16 upsample_w: 16 } }
layer { name: "roi" type: "ROIPooling" bottom: "data" bottom: "rois" top: "roi"
        roi_pooling_param { pooled_h: 7 pooled_w: 7 spatial_scale: 0.0625 } }
layer { name: "bn" type: "BN" bottom: "data" top: "bn" bn_param { frozen: true momentum: 0.95 } }
"""
FORK_NET = ('name: "forks"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
            'input: "rois"\ninput_shape { dim: 4 dim: 5 }\n'
            'input: "scale"\ninput_shape { dim: 1 dim: 3 dim: 1 dim: 1 }\n' + FORK_LAYERS)


def test_the_fork_layers_of_issue_14_parse_and_only_psp_bn_is_unsupported(tmp_path):
    path = write(tmp_path, FORK_NET)
    net = parse_prototxt(path)
    layers = {layer.name: layer for layer in net.layer}
    assert layers["interp"].interp_param.zoom_factor == 2 and layers["shuffle"].shuffle_channel_param.group == 3
    assert layers["drop"].dropout_param.scale_train is False
    assert list(layers["perm"].permute_param.order) == [0, 2, 3, 1]
    assert layers["norm"].norm_param.scale_filler.value == 20 and not layers["norm"].norm_param.across_spatial
    prior = layers["prior"].prior_box_param
    assert (list(prior.variance), prior.step_w, prior.img_h) == (pytest.approx([0.1, 0.1, 0.2, 0.2]), 8, 300)
    det = layers["det"].detection_output_param
    assert det.code_type == caffe_schema.PriorBoxParameter.CENTER_SIZE and det.nms_param.top_k == 400
    assert det.keep_top_k == 200 and det.save_output_param.output_format == "VOC"
    assert layers["up"].upsample_param.upsample_w == 16 and layers["roi"].roi_pooling_param.pooled_w == 7
    message = str(error_of(path))
    # every other fork layer here converts (tests/converters/test_caffe_fork_layers.py); PSPNet's BN does not
    assert message.endswith("unsupported layer type(s): 'bn' (BN)") and "unknown field" not in message


def test_fork_field_numbers():
    layer = caffe_schema.LayerParameter.DESCRIPTOR.fields_by_name
    numbers = {name: layer[name].number for name in (
        "input_param", "annotated_data_param", "multibox_loss_param", "permute_param", "prior_box_param",
        "detection_output_param", "detection_evaluate_param", "norm_param", "video_data_param",
        "roi_pooling_param", "smooth_l1_loss_param", "shuffle_channel_param", "bn_param")}
    assert numbers == {"input_param": 143, "annotated_data_param": 200, "multibox_loss_param": 201,
                       "permute_param": 202, "prior_box_param": 203, "detection_output_param": 204,
                       "detection_evaluate_param": 205, "norm_param": 206, "video_data_param": 207,
                       "roi_pooling_param": 8266711, "smooth_l1_loss_param": 8266712,
                       "shuffle_channel_param": 164, "bn_param": 152}
    # numbers BVLC uses for other fields: read from text only, never from (or into) another field's number
    bvlc = {143, 137, 138}
    for name in ("interp_param", "upsample_param", "dense_image_data_param"):
        assert layer[name].number not in bvlc and layer[name].number > 536_000_000
    dropout = caffe_schema.DropoutParameter.DESCRIPTOR.fields_by_name
    assert dropout["scale_train"].number == 2 and dropout["sample_weights_test"].number > 536_000_000
    pooling = caffe_schema.PoolingParameter.DESCRIPTOR.fields_by_name
    assert (pooling["round_mode"].number, pooling["ceil_mode"].number) == (13, 1001)
    v1 = caffe_schema.V1LayerParameter.DESCRIPTOR.fields_by_name
    assert v1["unknown_type"].number == 536870911 and v1["roi_pooling_param"].number == 8266711
    message = caffe_schema.LayerParameter(name="roi", roi_pooling_param={"pooled_h": 6})
    assert caffe_schema.LayerParameter.FromString(message.SerializeToString()) == message


def test_every_bvlc_layer_parameter_message_is_known():
    layer = caffe_schema.LayerParameter.DESCRIPTOR.fields_by_name
    for name in ("loss_param", "accuracy_param", "argmax_param", "clip_param", "contrastive_loss_param",
                 "embed_param", "exp_param", "hdf5_output_param", "hinge_loss_param", "infogain_loss_param",
                 "log_param", "mvn_param", "parameter_param", "recurrent_param", "reduction_param", "spp_param",
                 "swish_param", "threshold_param", "tile_param"):
        assert name in layer, name
    v1 = caffe_schema.V1LayerParameter.DESCRIPTOR.fields_by_name
    assert {"blob_share_mode", "threshold_param", "loss_param", "mvn_param", "argmax_param"} <= set(v1)


# --------------------------------------------------------------------------- honoured or refused fields

def dropout_net(tmp_path, options):
    layer = f'layer {{ name: "drop" type: "Dropout" bottom: "pool" top: "drop" dropout_param {{ {options} }} }}\n'
    return write(tmp_path, NET + layer)


def test_dropout_scale_train_false_is_the_forks_test_time_scaling(tmp_path):
    node = read_caffe(dropout_net(tmp_path, "dropout_ratio: 0.3 scale_train: false")).node("drop")
    scale = np.float32(1.0 / (1.0 - float(np.float32(0.3))))
    assert node.op == "power" and node.attrs == {"power": 1.0, "scale": float(np.float32(1.0 / float(scale))),
                                                 "shift": 0.0}
    assert node.attrs["scale"] == pytest.approx(0.7, abs=1e-7)
    assert read_caffe(dropout_net(tmp_path, "dropout_ratio: 0.3 scale_train: true")).node("drop").op == "dropout"


def test_known_fields_that_cannot_be_honoured_are_refused(tmp_path):
    message = str(error_of(dropout_net(tmp_path, "sample_weights_test: true")))
    assert "layer 'drop' (Dropout)" in message and "sample_weights_test" in message
    assert read_caffe(dropout_net(tmp_path, "sample_weights_test: false")).node("drop").op == "dropout"
    message = str(error_of(write(tmp_path, NET.replace("pool: AVE global_pooling: true",
                                                       "pool: STOCHASTIC kernel_size: 2 pad: 1"))))
    assert "layer 'pool' (Pooling)" in message and "STOCHASTIC" in message and "pad" in message
    message = str(error_of(write(tmp_path, NET.replace("pad: 1", "pad: 1 axis: 0"))))
    assert "layer 'conv1' (Convolution)" in message and "axis 0 makes the batch axis the channel axis" in message


def test_the_forks_ceil_mode_is_honoured(tmp_path):
    ceil = read_caffe(write(tmp_path, NET.replace("pool: AVE global_pooling: true", "pool: MAX kernel_size: 2 "
                                                  "stride: 2")))
    floor = read_caffe(write(tmp_path, NET.replace("pool: AVE global_pooling: true", "pool: MAX kernel_size: 2 "
                                                   "stride: 2 ceil_mode: false")))
    assert (ceil.node("pool").attrs["rounding"], floor.node("pool").attrs["rounding"]) == ("ceil", "floor")


# ------------------------------------------------------------------------------------- real prototxts

ALL_PROTOTXTS = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.prototxt")) \
    if FIXTURES.is_dir() else []
# a third-party copy that ends with a line of JSON (see test_caffe_reader.EXPECTED_ERRORS)
SYNTAX_ERRORS = {"other_archs/res10_300x300_ssd_deploy.prototxt"}


@pytest.mark.parametrize("relative", ALL_PROTOTXTS or ["(no fixtures)"])
def test_every_real_prototxt_parses_strictly(relative, caplog):
    path = fixture_path(relative)
    if relative in SYNTAX_ERRORS:
        with pytest.raises(ConversionError, match="syntax error"):
            parse_prototxt(path)
        return
    with caplog.at_level(logging.WARNING):
        strict = parse_prototxt(path)
        assert parse_prototxt(path, allow_unknown_fields=True) == strict
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_ssd_fixture_reads_its_fork_fields():
    net = parse_prototxt(fixture_path("other_archs/res10_300x300_ssd_deploy_clean.prototxt"))
    layers = {layer.name: layer for layer in net.layer}
    norm = layers["conv4_3_norm"].norm_param
    assert (norm.across_spatial, norm.channel_shared, norm.scale_filler.value) == (False, False, 20)
    prior = layers["conv4_3_norm_mbox_priorbox"].prior_box_param
    assert (list(prior.min_size), list(prior.max_size), prior.step, prior.offset) == ([30], [60], 8, 0.5)
    det = layers["detection_out"].detection_output_param
    assert (det.num_classes, det.nms_param.top_k, det.keep_top_k) == (2, 400, 200)
    assert det.nms_param.nms_threshold == pytest.approx(0.45)
    assert det.code_type == caffe_schema.PriorBoxParameter.CENTER_SIZE


def test_the_fast_rcnn_fixtures_read_their_fork_fields():
    net = parse_prototxt(fixture_path("rcnn/py-faster-rcnn_ZF_fast_rcnn_test.prototxt"))
    dropouts = [layer.dropout_param for layer in net.layer if layer.type == "Dropout"]
    assert dropouts and all(param.scale_train is False for param in dropouts)
    roi = [layer.roi_pooling_param for layer in net.layer if layer.type == "ROIPooling"]
    assert roi and roi[0].pooled_w > 0 and 0 < roi[0].spatial_scale < 1
    v1 = parse_prototxt(fixture_path("vgg_cnn/early-fast-rcnn_VGG_CNN_S_deploy_v1.prototxt"))
    pool = [layer for layer in v1.layers if layer.HasField("roi_pooling_param")]
    assert [layer.unknown_type for layer in pool] == ["ROI_POOLING"] and pool[0].roi_pooling_param.pooled_w == 6
