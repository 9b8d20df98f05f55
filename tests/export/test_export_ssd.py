"""Exports of a detector with the SSD fork's post-processing head (PriorBox, DetectionOutput with its NMS).

SavedModel and ONNX carry the whole model and pass the exporters' own parity checks (TensorFlow, ONNX Runtime);
TFLite has no builtin form of the NMS loop: the export is refused naming the layer, and the network without
its head, as the message proposes, exports.
"""

import keras
import numpy as np
import pytest

from export import common, onnx as onnx_export, saved_model, tflite
from keras_zoo.random_weights import random_caffemodel
from tests.helpers import fixture_path

SSD = "other_archs/res10_300x300_ssd_deploy_clean.prototxt"


@pytest.fixture(scope="module")
def ssd(tmp_path_factory):
    """The res10 SSD face detector on random weights, taking RGB 0..255 (OpenCV's sample preprocessing)."""
    from keras_zoo.convert import from_caffe
    from keras_zoo.preprocessing import Preprocessing

    prototxt = fixture_path(SSD)
    caffemodel = random_caffemodel(prototxt, tmp_path_factory.mktemp("ssd") / "random.caffemodel", seed=0)
    return from_caffe(prototxt, caffemodel, preprocessing=Preprocessing(flip_channels=True, mean=(104.0, 177.0, 123.0)))


@pytest.fixture(scope="module")
def samples():
    return common.sample_images((300, 300), 2)


@pytest.fixture(scope="module")
def reference(ssd, samples):
    outputs = common.keras_outputs(ssd, samples)
    assert outputs[0].shape == (2, 200, 7, 1) and np.all(outputs[0][:, :, 1, 0] >= 0)  # 200 detections each
    return outputs


def test_saved_model_carries_the_detection_head(ssd, samples, reference, tmp_path):
    import tensorflow as tf

    result = saved_model.export_saved_model(ssd, tmp_path / "ssd" / "1", samples=samples, reference=reference,
                                            name="ssd")
    assert result.passed and result.errors["max_rel_error"] <= 1e-4
    loaded = tf.saved_model.load(str(tmp_path / "ssd" / "1"))
    (rows,) = loaded.signatures["serving_default"](images=tf.constant(samples)).values()
    np.testing.assert_allclose(rows.numpy(), reference[0], atol=1e-4 * np.abs(reference[0]).max())


def test_onnx_carries_the_detection_head(ssd, samples, reference, tmp_path):
    result = onnx_export.export_onnx(ssd, tmp_path / "ssd.onnx", samples=samples, reference=reference, name="ssd")
    assert result.passed and result.errors["max_rel_error"] <= 1e-4
    operators = next(note for note in result.notes if note.startswith("operators:"))
    assert "Loop" in operators and "TopK" in operators  # the NMS and the ranking


def test_tflite_refuses_the_detection_head_by_name_and_exports_the_network_without_it(ssd, samples, tmp_path):
    with pytest.raises(common.ExportError, match="layer 'detection_out' \\(DetectionOutput\\) has no TFLite builtin"):
        tflite.export_tflite(ssd, tmp_path / "ssd.tflite", samples=samples, reference=[np.zeros(1)], name="ssd")
    assert not (tmp_path / "ssd.tflite").exists()
    body = keras.Model(ssd.input, ssd.get_layer("detection_out").input, name="ssd_body")
    result = tflite.export_tflite(body, tmp_path / "body.tflite", samples=samples,
                                  reference=common.keras_outputs(body, samples), name="ssd_body")
    assert result.passed
