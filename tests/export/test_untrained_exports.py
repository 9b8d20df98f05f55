"""Exports made from untrained weights say so: the report's JSON ("untrained": true), its table and its last
line; the demo's header and last lines; the speed table. With 'none', no weight source is named."""

import json
import logging

import numpy as np
import pytest

from export import common, demo, report, tflite
from keras_zoo import cards
from keras_zoo.resolve import UNTRAINED_NOTE, Resolved

SIZE = (32, 32)


pytestmark = pytest.mark.usefixtures("offline_home")


def tiny_classifier():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((*SIZE, 3), name="data")
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Softmax(name="prob")(keras.layers.Dense(5, name="fc")(x)), name="tiny")


@pytest.fixture(scope="module")
def model():
    return tiny_classifier()


@pytest.mark.parametrize("weights", ["none", "imagenet"])
def test_export_command_report_says_untrained(weights, model, tmp_path, capsys, monkeypatch):
    card = cards.get_card("googlenet")
    monkeypatch.setattr(common, "resolve", lambda spec, asked, size=None: Resolved(
        model, card.name, card, card.source(), SIZE, untrained=asked == "none"))
    output = tmp_path / "tiny.tflite"
    assert tflite.main(["googlenet", "--weights", weights, "-o", str(output), "--num-samples", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    data = json.loads((tmp_path / "tiny.tflite.report.json").read_text())
    assert data["untrained"] is (weights == "none") and data["passed"]
    parity = next(line for line in printed if line.startswith("parity"))
    if weights == "none":
        assert ("weights", report.UNTRAINED_ROW) in [tuple(line.split(None, 1)) for line in printed]
        assert parity.split(None, 1)[1] == "PASSED (on UNTRAINED weights)"
    else:
        assert parity.split(None, 1)[1] == "PASSED" and "UNTRAINED" not in "\n".join(printed)


def test_report_records_untrained_weights(tmp_path):
    reference = [np.eye(3, dtype=np.float32)]
    result = report.build_report(format="onnx", model="m", artifact="m.onnx", precision="float32",
                                 candidate=reference, reference=reference)
    assert result.to_dict()["untrained"] is False and "UNTRAINED" not in result.table()
    assert report.finish(result, tmp_path / "m.json", untrained=True) == 0
    assert json.loads((tmp_path / "m.json").read_text())["untrained"] is True
    assert result.table().splitlines()[-1].endswith("PASSED (on UNTRAINED weights)")


def test_demo_with_weights_none_names_no_source_and_ends_saying_untrained(capsys, caplog):
    pytest.importorskip("keras_zoo.builder")
    with caplog.at_level(logging.INFO):
        assert demo.main(["--model", "googlenet", "--weights", "none", "--top", "2"]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == "GoogLeNet (UNTRAINED weights), classes imagenet-caffe"
    assert out[-1] == f"GoogLeNet: {UNTRAINED_NOTE}"
    said = captured.out + captured.err + caplog.text
    assert "caffe weights" not in said and "bvlc_googlenet" not in said and "weight source" not in said
    assert "class " not in out[2]  # class names offline: the shipped label files


def test_demo_export_tables_say_untrained(model, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    samples = common.sample_images(SIZE, 2)
    assert demo.export_and_verify(model, samples, tmp_path, untrained=True) == []
    tables = capsys.readouterr().out.split("\nmodel ")
    assert len(tables) == 2
    for table in tables:
        lines = table.splitlines()
        assert lines[-1].endswith("PASSED (on UNTRAINED weights)")
        assert any(line.split(None, 1) == ["weights", report.UNTRAINED_ROW] for line in lines)
