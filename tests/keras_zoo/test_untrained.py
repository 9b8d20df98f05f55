"""Untrained weights, one spelling: None or 'none' (any case) everywhere, and every table and caption made from
them says so; with 'none', nothing is said about a weight source the user did not ask for."""

import json
import logging

import keras
import numpy as np
import pytest
from PIL import Image

from keras_zoo import cards
from keras_zoo.downloads import WeightsUnavailable
from keras_zoo.models.architecture import resolve_weights
from keras_zoo.resolve import UNTRAINED_NOTE, Resolved, resolve
from keras_zoo.weights import untrained
from tests.helpers import load_tool


pytestmark = pytest.mark.usefixtures("offline_home")


@pytest.mark.parametrize("spelling", [None, "none", "None", "NONE", " none "])
def test_every_spelling_of_none_means_untrained(spelling):
    card = cards.get_card("vgg-16")
    assert untrained(spelling)
    assert resolve_weights(card, spelling) == (card.source(), None)


@pytest.mark.parametrize("weights", ["imagenet", "caffe", "nonesuch.caffemodel", "", 0])
def test_other_weights_are_not_untrained(weights):
    assert not untrained(weights)


def test_get_model_builds_untrained_weights_named_none():
    """``get_model('vgg-16', weights='none')`` raised "no weight source 'none'"; GoogLeNet stands in for VGG-16
    (the same builder path, a 20th of the weights)."""
    import keras_zoo

    model = keras_zoo.get_model("googlenet", weights="None")
    assert model.name == "googlenet"
    kernel = model.get_layer("conv1_7x7_s2").kernel.numpy()
    assert np.abs(kernel).max() > 0  # initialised, not the builder's zeros
    with pytest.raises(ValueError, match="no weight source 'nothing'"):
        keras_zoo.get_model("googlenet", weights="nothing")


def test_untrained_weights_say_nothing_of_a_weight_source(caplog):
    """AlexNet's Caffe source subtracts a mean image, not downloaded offline: with weights 'none' no message
    names that source; with its weights asked for, the missing file is reported."""
    with caplog.at_level(logging.INFO):
        resolved = resolve("alexnet", "NONE")
    assert resolved.untrained and resolved.weights_note == UNTRAINED_NOTE
    assert not [record for record in caplog.records if record.levelno >= logging.INFO
                and ("caffe" in record.getMessage() or "mean" in record.getMessage())], caplog.text
    with pytest.raises(WeightsUnavailable, match="bvlc_alexnet.caffemodel"):
        resolve("alexnet", "imagenet")


def mean_colour_model(path, classes=1000):
    """A tiny stand-in classifier saved to ``path`` (the tools are tested on it, not on a zoo network)."""
    inputs = keras.Input((32, 32, 3), name="data")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(classes, name="fc")(pooled)),
                name="mean_colour").save(path)
    return keras.saving.load_model(path)


def test_classify_tool_takes_none_and_says_untrained_last(tmp_path, capsys, monkeypatch):
    model = mean_colour_model(tmp_path / "m.keras")
    Image.fromarray(np.full((40, 50, 3), 120, np.uint8)).save(tmp_path / "grey.png")
    card = cards.get_card("vgg16")
    tool = load_tool("classify")
    asked = []

    def resolve_small(spec, weights):
        asked.append(weights)
        return Resolved(model, card.name, card, card.source(), (32, 32), untrained=untrained(weights))

    monkeypatch.setattr(tool, "resolve", resolve_small)
    assert tool.main([str(tmp_path / "grey.png"), "--model", "vgg16", "--weights", "none", "--crop", "32", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert asked == ["none"] and len(lines) == 7
    assert lines[-1] == f"VGG16: {UNTRAINED_NOTE}"
    assert "[" in lines[1] and not lines[1].split()[-2].isdigit()  # a class name, offline (the shipped labels)
    assert tool.main([str(tmp_path / "grey.png"), "--model", "vgg16", "--crop", "32", "32"]) == 0
    assert "UNTRAINED" not in capsys.readouterr().out


def test_evaluate_tables_and_json_say_untrained(tmp_path, capsys, monkeypatch):
    from keras_zoo.evaluate import reports

    root = tmp_path / "voc"
    for folder in ("JPEGImages", "SegmentationClass"):
        (root / folder).mkdir(parents=True)
    picture = np.zeros((12, 16, 3), np.uint8)
    picture[:, :8] = (220, 20, 20)
    Image.fromarray(picture).save(root / "JPEGImages" / "a.jpg", quality=100)
    truth = np.zeros((12, 16), np.uint8)
    truth[:, :8] = 1
    Image.fromarray(truth, mode="L").save(root / "SegmentationClass" / "a.png")
    (root / "split.txt").write_text("a\n")
    inputs = keras.Input((None, None, 3), name="data")
    model = keras.Model(inputs, keras.layers.Conv2D(21, 1, name="score")(inputs), name="pixels")
    card = cards.get_card("fcn8s")
    tool = load_tool("evaluate")
    monkeypatch.setattr(tool, "resolve", lambda spec, weights: Resolved(
        model, card.name, card, card.source(), untrained=untrained(weights)))
    out = tmp_path / "result.json"
    assert tool.main(["segmentation", str(root), "--model", "fcn8s", "--weights", "NONE", "--split",
                      str(root / "split.txt"), "--quiet", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("|FCN8s"))
    assert row.startswith("|FCN8s (UNTRAINED weights)")
    assert printed.splitlines()[-2] == f"FCN8s: {UNTRAINED_NOTE}"
    assert json.loads(out.read_text())["untrained"] is True
    table = reports.format_classification_table([{"model": "VGG16", "untrained": True, "top1_error_percent": 99.9,
                                                  "top5_error_percent": 99.5, "images_per_s": 3.0}])
    assert "VGG16 (UNTRAINED weights)" in table
    trained = reports.format_classification_table([{"model": "VGG16", "top1_error_percent": 28.5,
                                                    "top5_error_percent": 9.9, "images_per_s": 3.0}])
    assert "UNTRAINED" not in trained
