"""What a .tflite file of builtin operators cannot compute as Keras does is refused before conversion, in one
error naming every such layer and saying that SavedModel and ONNX carry the whole model: Caffe's batch-axis
forms (axis-0 Concat, Slice, Crop, Flatten, Softmax, ArgMax, Tile, Reduction), a Parameter blob of its own batch,
ROIPooling (one output per roi) and, tested with the SSD model in test_export_ssd.py, DetectionOutput's NMS."""

import textwrap

import keras
import pytest

import keras_zoo
from export import common, tflite
from keras_zoo import layers as zoo_layers
from tests.keras_zoo.test_bvlc_layers import layer


def from_prototxt(tmp_path, text):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('name: "net"\ninput: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 6 }\n'
                        + textwrap.dedent(text))
    return keras_zoo.from_caffe(prototxt)


@pytest.mark.parametrize("text,named", [
    (layer("cat", "Concat", ["data", "data"], "concat_param { axis: 0 }"), "layer 'cat' (Concatenate along the batch"),
    (layer("sm", "Softmax", "data", "softmax_param { axis: 0 }"), "layer 'sm' (Softmax along the batch axis)"),
    (layer("s", "Slice", "data", "slice_param { axis: 0 slice_point: 1 }", tops=["a", "b"]),
     "layer 's' (Slice along the batch axis)"),
    (layer("am", "ArgMax", "data", "argmax_param { axis: 0 }"), "layer 'am' (ArgMax along the batch axis)"),
    (layer("t", "Tile", "data", "tile_param { axis: 0 tiles: 2 }"), "layer 't' (Tile along the batch axis)"),
    (layer("c", "Crop", ["data", "data"], "crop_param { axis: 0 }"), "layer 'c' (Crop of the batch axis)"),
    (layer("f", "Flatten", "data", "flatten_param { axis: 0 end_axis: 1 }"), "layer 'f' (Flatten from the batch"),
    (layer("r", "Reduction", "data", "reduction_param { axis: 0 }"), "layer 'r' (Reduction of the whole batch)"),
    ('layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 4 dim: 3 } } }\n'
     + layer("relu", "ReLU", "data"), "layer 'p' (a Parameter blob of its own batch of 4)"),
])
def test_layers_mixing_the_batch_are_refused_by_name(tmp_path, text, named):
    model = from_prototxt(tmp_path, text)
    with pytest.raises(common.ExportError) as info:
        tflite.convert_tflite(model)
    message = str(info.value)
    assert named in message and "has no TFLite builtin form" in message
    assert message.endswith("SavedModel and ONNX carry the whole model")


def test_every_refused_layer_is_named_in_one_error_nested_models_included(tmp_path):
    model = from_prototxt(tmp_path, layer("sm", "Softmax", "data", "softmax_param { axis: 0 }")
                          + layer("t", "Tile", "data", "tile_param { axis: 0 tiles: 2 }"))
    outer_input = keras.Input(model.input.shape[1:])
    outer = keras.Model(outer_input, model(outer_input), name="outer")
    with pytest.raises(common.ExportError) as info:
        tflite.convert_tflite(outer)
    message = str(info.value)
    assert message.startswith("outer: ") and "layer 'sm'" in message and "layer 't'" in message


def test_roi_pooling_is_refused_and_per_sample_layers_are_not(tmp_path):
    data, rois = keras.Input((8, 6, 3)), keras.Input((1, 1, 5))
    pooled = zoo_layers.ROIPooling((2, 2), 1.0, name="roi")([data, rois])
    with pytest.raises(common.ExportError, match="layer 'roi' \\(one output per region of interest"):
        tflite.convert_tflite(keras.Model([data, rois], pooled, name="rcnn"))
    # axis-1 forms and the (1, ...) Parameter compute each sample alone
    model = from_prototxt(tmp_path, layer("cat", "Concat", ["data", "data"]) + layer("sm", "Softmax", "cat")
                          + 'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 1 dim: 3 } '
                            '} }\n')
    assert [zoo_layers.batch_mixing(item) for item in model.layers] == [None] * len(model.layers)
    content = tflite.convert_tflite(model)  # builtin operators only, or it raises
    assert "CONCATENATION" in tflite.operators(content)
