"""The README's main job, offline: it must say so plainly and still run the pipeline end to end."""

import numpy as np
import pytest

from export import demo
from keras_zoo import images, labels
from tests.helpers import fixture_path


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    monkeypatch.delenv("KERAS_ZOO_MIRROR", raising=False)
    labels.get_classes.cache_clear()
    yield
    labels.get_classes.cache_clear()


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
