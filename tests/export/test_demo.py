"""The README's main job, offline: it must say so plainly and still run the pipeline end to end."""

import numpy as np
import pytest

from export import demo
from keras_zoo import images
from tests.helpers import fixture_path


pytestmark = pytest.mark.usefixtures("offline_home")


def test_demo_offline_runs_on_untrained_weights_with_real_labels(tmp_path, monkeypatch, capsys):
    pytest.importorskip("keras_zoo.builder")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "synset_words.txt").symlink_to(fixture_path("labels/ilsvrc12/synset_words.txt"))
    monkeypatch.setenv("KERAS_ZOO_MIRROR", str(mirror))
    assert demo.main(["--model", "googlenet", "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("No weights for GoogLeNet") and "bvlc_googlenet.caffemodel" in out[0]
    assert "UNTRAINED" in out[0] and "405fc5acd08a3bb12de8ee5e23a96bec22f08204" in out[0]
    assert "UNTRAINED" in out[1]
    caffe_labels = {line.split(" ", 1)[1] for line in fixture_path("labels/ilsvrc12/synset_words.txt")
                    .read_text().splitlines() if line.strip()}
    for photo in images.SAMPLE_PHOTOS:
        index = out.index(f"{photo}:")
        best = out[index + 1:index + 4]
        scores = [float(line.split()[0]) for line in best]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        assert all(line.split(None, 1)[1] in caffe_labels for line in best)


def test_demo_bad_image_fails_with_one_line(tmp_path, capsys):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("hello")
    assert demo.main(["--images", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_an_image.jpg" in err[0]


def test_demo_unknown_model_fails_with_one_line(capsys):
    assert demo.main(["--model", "vgg61"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vgg16" in err[0]


def test_segmentation_scores_are_pixel_shares():
    output = np.zeros((1, 2, 5, 3), np.float32)
    output[0, :, :2, 2] = 1  # 4 of 10 pixels class 2, the rest class 0
    output[0, :, 2:, 0] = 1
    np.testing.assert_allclose(demo.scores_per_class(output, "segmentation"), [[0.6, 0.0, 0.4]])
    assert demo.top_classes(np.array([0.1, 0.5, 0.4]), ["a", "b", "c"], 2) == [("b", 0.5), ("c", 0.4)]
    assert demo.top_classes(np.array([0.1, 0.5]), None, 1) == [("class 1", 0.5)]


def test_demo_exits_non_zero_naming_the_export_that_failed_its_check(tmp_path, monkeypatch, capsys):
    """`make demo` runs `--export`: a TFLite artifact that is wrong (its classifier 1% off while converted) is
    refused, and the demo says so on stderr and exits 1; the SavedModel, right, is written."""
    pytest.importorskip("keras_zoo.builder")
    from export import tflite

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "synset_words.txt").symlink_to(fixture_path("labels/ilsvrc12/synset_words.txt"))
    monkeypatch.setenv("KERAS_ZOO_MIRROR", str(mirror))
    convert = tflite.convert_tflite

    def wrong_convert(model, **kwargs):
        classifier = next(layer for layer in reversed(model.layers) if layer.weights)
        weights = classifier.get_weights()
        classifier.set_weights([weight * 1.01 for weight in weights])
        try:
            return convert(model, **kwargs)
        finally:
            classifier.set_weights(weights)

    monkeypatch.setattr(tflite, "convert_tflite", wrong_convert)
    out = tmp_path / "out"
    assert demo.main(["--model", "googlenet", "--top", "1", "--export", str(out)]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: TFLite export")
    assert str(out / "googlenet.tflite") in errors[0] and "parity check failed" in errors[0]
    assert "max rel error of the logits" in errors[0]
    assert captured.out.count("PASSED") == 1 and captured.out.count("FAILED") == 1
    assert (out / "saved_model" / "1" / "saved_model.pb").is_file() and not (out / "googlenet.tflite").exists()
    assert sorted(path.name for path in out.iterdir()) == ["saved_model"]
