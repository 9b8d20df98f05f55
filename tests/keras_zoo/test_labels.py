"""Label sets and imagenet_utils, with the real label and mean files served from a mirror directory."""

import numpy as np
import pytest

from keras_zoo import cache, cards, downloads, imagenet_utils, labels
from tests.helpers import fixture_path

# registry file name -> the real file in the fixtures
REAL_FILES = {
    "synset_words.txt": "labels/ilsvrc12/synset_words.txt",
    "vgg_synset_words.txt": "matconvnet/vgg_synset_words.txt",
    "det_synset_words.txt": "labels/ilsvrc12/det_synset_words.txt",
    "pascal_classes.txt": "fcn/data/pascal_classes.txt",
    "vgg_face_names.txt": "vgg_face/names_indexed.txt",
    "imagenet_mean.binaryproto": "labels/ilsvrc12/imagenet_mean.binaryproto",
}


@pytest.fixture(autouse=True)
def mirror(tmp_path, monkeypatch):
    """KERAS_ZOO_MIRROR: a directory of links named as the registry names the original files; offline."""
    directory = tmp_path / "mirror"
    directory.mkdir()
    for name, relative in REAL_FILES.items():
        (directory / name).symlink_to(fixture_path(relative))
    monkeypatch.setenv("KERAS_ZOO_MIRROR", str(directory))
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    labels.get_classes.cache_clear()
    yield directory
    labels.get_classes.cache_clear()


def _lines(relative):
    return [line for line in fixture_path(relative).read_text().splitlines() if line.strip()]


def test_imagenet_orders():
    caffe, vgg = labels.get_classes("imagenet-caffe"), labels.get_classes("imagenet-vgg")
    assert caffe[0] == ("n01440764", "tench, Tinca tinca")
    assert vgg[0] == ("n02119789", "kit fox, Vulpes macrotis")
    assert sorted(caffe) == sorted(vgg)  # the same classes ...
    assert all(a != b for a, b in zip(caffe, vgg))  # ... in another order: no class keeps its position
    assert [wnid for wnid, _ in caffe] == sorted(wnid for wnid, _ in caffe)


def test_other_label_sets():
    det = labels.get_labels("ilsvrc13-det")
    assert len(det) == 200 and det[0] == "accordion"
    voc = labels.get_labels("voc21")
    assert len(voc) == 21 and voc[0] == "background" and voc[15] == "person" and voc[-1] == "tvmonitor"
    faces = labels.get_labels("vggface2622")
    assert len(faces) == 2622 and faces[0] == "A.J._Buckley"
    assert faces[-1] == _lines("vgg_face/names_indexed.txt")[-1].split(" ", 1)[1]


def test_unknown_label_set():
    with pytest.raises(ValueError, match="imagenet-caffe"):
        labels.get_labels("imagenet-21k")


@pytest.fixture
def nothing_shipped(tmp_path, monkeypatch):
    """The package as if it shipped no label files: they come from the mirror (or the downloads folder)."""
    empty = tmp_path / "shipped"
    empty.mkdir()
    monkeypatch.setattr(labels, "DATA_DIR", empty)
    return empty


def test_a_tampered_label_file_is_refused(mirror, tmp_path, nothing_shipped):
    fake = tmp_path / "fake.txt"
    fake.write_text("background\n" * 21)
    (mirror / "pascal_classes.txt").unlink()
    (mirror / "pascal_classes.txt").symlink_to(fake)
    with pytest.raises(downloads.ConversionError, match="expected md5 33b40a9eaf41e7fac04e78221252f26d"):
        labels.get_labels("voc21")


def test_a_damaged_shipped_label_file_is_refused(nothing_shipped):
    (nothing_shipped / "pascal_classes.txt").write_text("background\n" * 21)
    with pytest.raises(downloads.ConversionError, match=r"pascal_classes.txt: the label file shipped with keras_zoo "
                                                         r"is damaged \(md5 is .*, expected md5 33b40a9e"):
        labels.get_labels("voc21")


def test_decode_predictions_in_each_sources_order():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [281, 5, 9]] = [0.7, 0.2, 0.1]
    preds[1, 0] = 1.0
    caffe_lines = _lines("labels/ilsvrc12/synset_words.txt")
    decoded = imagenet_utils.decode_predictions(preds, top=3, source="caffenet")
    assert [entry[1] for entry in decoded[0]] == [caffe_lines[i].split(" ", 1)[1] for i in (281, 5, 9)]
    assert decoded[0][0][0] == caffe_lines[281].split()[0] and decoded[0][0][2] == pytest.approx(0.7)
    vgg_m = cards.get_card("vggm").source()
    assert imagenet_utils.decode_predictions(preds, top=1, source=vgg_m)[1][0][1] == "kit fox, Vulpes macrotis"
    with pytest.raises(ValueError, match="1000"):
        imagenet_utils.decode_predictions(np.zeros((1, 21)), source="vgg16")


def test_preprocess_input_mean_pixel_bgr():
    x = np.random.default_rng(0).uniform(0, 255, (2, 5, 6, 3)).astype(np.float32)
    expected = x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)  # the VGG team's gist
    np.testing.assert_allclose(imagenet_utils.preprocess_input(x, "vgg16"), expected, rtol=1e-6)
    matconvnet = cards.get_card("vgg16").source("matconvnet")
    np.testing.assert_allclose(imagenet_utils.preprocess_input(x, matconvnet),
                               x - np.array([123.68, 116.779, 103.939], np.float32), rtol=1e-6)


def test_preprocess_input_mean_image_is_centre_cropped():
    pytest.importorskip("converters.caffe")
    x = np.random.default_rng(1).uniform(0, 255, (1, 227, 227, 3)).astype(np.float32)
    mean = np.load(fixture_path("bvlc/ilsvrc_2012_mean.npy"))  # (3, 256, 256) BGR, Caffe's python mean
    crop = mean[:, 14:241, 14:241].transpose(1, 2, 0)  # Caffe's centre crop offset (256 - 227) // 2
    np.testing.assert_allclose(imagenet_utils.preprocess_input(x, "alexnet")[0], x[0, :, :, ::-1] - crop,
                               rtol=1e-5, atol=1e-3)


def test_prepare_image_resizes_the_shorter_side_and_crops():
    rng = np.random.default_rng(2)
    photo = rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)
    photo[:, :250] = 0  # a left half black, a right half bright: the crop must be centred
    photo[:, 250:] = 200
    out = imagenet_utils.prepare_image(photo, "vgg16")
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    # shorter side 300 -> 256: width 427, crop columns 101..325 -> the edge sits at column 112 of the crop
    assert out[:, :100].max() == 0 and out[:, 125:].min() == 200
    assert imagenet_utils.prepare_image(photo, "fcn8s").shape == (500, 500, 3)  # warped to the input size


def test_a_converted_mat_class_list_serves_when_the_label_file_cannot_be_had(tmp_path, monkeypatch,
                                                                             nothing_shipped):
    import keras

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("KERAS_ZOO_MIRROR", str(empty))
    with pytest.raises(downloads.WeightsUnavailable, match="pascal_classes.txt"):
        labels.get_labels("voc21")
    names = _lines("fcn/data/pascal_classes.txt")[:21]
    card = cards.get_card("fcn16s")
    source = card.source("matconvnet")
    tiny = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="score")])
    cache.save_by_name(tiny, cache.cache_path(card, source), meta={"class_names": np.array(names, object)})
    assert labels.get_labels("voc21") == names
    assert labels.get_classes("voc21")[0] == ("", "background")


# ---------------------------------------------------------------------------------------------------------
# the label files shipped with the package
# ---------------------------------------------------------------------------------------------------------
def test_every_label_set_ships_as_its_cards_file_with_its_provenance():
    import hashlib
    import re

    provenance = (labels.DATA_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in provenance.splitlines() if line.startswith("| `")}
    for label_set in cards.LABEL_SETS.values():
        path = labels.DATA_DIR / label_set.file.filename
        assert path.is_file(), f"{label_set.id}: {path.name} is not shipped"
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        assert md5 in label_set.file.md5, f"{path.name}: md5 {md5}, the card says {label_set.file.md5}"
        row = rows[path.name]
        commit = re.search(r"/([0-9a-f]{40})/", label_set.file.url).group(1)
        assert f"`{label_set.id}`" in row and f"`{md5}`" in row and commit in row, row
    assert set(rows) == {label_set.file.filename for label_set in cards.LABEL_SETS.values()}


def test_offline_with_an_empty_home_predictions_have_names(tmp_path, monkeypatch):
    """KERAS_ZOO_OFFLINE=1, an empty KERAS_ZOO_HOME, no mirror: the shipped files give every label set's names,
    and nothing is fetched or written."""
    home = tmp_path / "empty_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_ZOO_HOME", str(home))
    monkeypatch.delenv("KERAS_ZOO_MIRROR")

    def no_fetch(*args, **kwargs):
        raise AssertionError("a shipped label file was fetched")

    monkeypatch.setattr(labels, "fetch", no_fetch)
    expected = {"caffenet": (281, "tabby, tabby cat"), "vggm": (0, "kit fox, Vulpes macrotis"),
                "rcnn-ilsvrc13": (0, "accordion"), "fcn8s": (15, "person"), "vggface": (0, "A.J._Buckley")}
    for model, (index, name) in expected.items():
        source = cards.get_card(model).source()
        count = cards.LABEL_SETS[source.classes].count
        preds = np.zeros((1, count), np.float32)
        preds[0, index] = 1.0
        (best,) = imagenet_utils.decode_predictions(preds, top=1, source=source)[0]
        assert best[1] == name and best[2] == 1.0, (model, best)
        assert best[0] != str(index) or source.classes in ("voc21", "vggface2622")
    assert list(home.iterdir()) == []
