"""Pictures: the VOC palette against FCN's real demo output, label and overlay PNGs, tools/segment.py,
tools/classify.py and the SVG diagrams."""

import xml.etree.ElementTree as ElementTree

import keras
import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from keras_zoo import diagram, segmentation
from tests.helpers import fixture_path, load_tool

SVG = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------------------------------------------------
# palette, label PNGs, overlays
# ---------------------------------------------------------------------------------------------------------
def test_voc_palette_known_colours():
    palette = segmentation.voc_palette()
    known = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 8: (64, 0, 0),
             15: (192, 128, 128), 20: (0, 64, 128), 255: (224, 224, 192)}
    for label, colour in known.items():
        assert tuple(palette[label]) == colour, label
    assert len({tuple(c) for c in palette}) == 256


def test_fcn_demo_output_is_in_voc_colours():
    """FCN's own demo output: person (15) on a bicycle (2) over background, coloured with the VOC palette."""
    rgb = np.asarray(Image.open(fixture_path("fcn/demo/output.png")).convert("RGB"))
    labels = segmentation.labels_from_colors(rgb)
    assert set(np.unique(labels).tolist()) == {0, 2, 15}
    assert np.array_equal(segmentation.colorize(labels), rgb)
    with pytest.raises(ValueError, match="not in the PASCAL VOC palette"):
        segmentation.labels_from_colors(np.array([[[1, 2, 3]]], np.uint8))


def test_label_png_round_trip(tmp_path):
    labels = np.array([[0, 1, 2], [15, 20, 255]], np.uint8)
    path = segmentation.write_label_png(tmp_path / "out" / "labels.png", labels)
    with Image.open(path) as image:
        assert image.mode == "P"
        assert np.array_equal(np.asarray(image), labels)  # pixel values are the classes, as in VOC's PNGs
        palette = np.array(image.getpalette()[:3 * 256]).reshape(-1, 3)
    assert tuple(palette[15]) == (192, 128, 128)
    assert np.array_equal(segmentation.read_label_png(path), labels)
    rgb_path = tmp_path / "rgb.png"
    Image.fromarray(segmentation.colorize(labels)).save(rgb_path)
    assert np.array_equal(segmentation.read_label_png(rgb_path), labels)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["labels.png"]
    with pytest.raises(ValueError, match="0..255"):
        segmentation.write_label_png(tmp_path / "bad.png", np.array([[300]]))
    assert not (tmp_path / "bad.png").exists()


def test_overlay_blends_classes_and_keeps_background_and_void():
    image = np.full((2, 2, 3), 100, np.uint8)
    labels = np.array([[0, 1], [255, 15]])
    result = segmentation.overlay(image, labels, alpha=0.25)
    assert result[0, 0].tolist() == [100, 100, 100] and result[1, 0].tolist() == [100, 100, 100]
    assert result[0, 1].tolist() == [round(0.75 * 100 + 0.25 * 128), 75, 75]
    assert result[1, 1].tolist() == [round(75 + 0.25 * 192), round(75 + 0.25 * 128), round(75 + 0.25 * 128)]


# ---------------------------------------------------------------------------------------------------------
# tools/segment.py
# ---------------------------------------------------------------------------------------------------------
def pixel_model(path, input_shape):
    """A 'segmentation network' saved to ``path``: class 1 where red > 150, class 2 where green > 150."""
    inputs = keras.Input(input_shape, name="data")
    conv = keras.layers.Conv2D(3, 1, name="score")
    model = keras.Model(inputs, conv(inputs), name="pixels")
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    kernel[0, 0, 0, 1] = kernel[0, 0, 1, 2] = 1
    conv.set_weights([kernel, np.array([150, 0, 0], np.float32)])
    model.save(path)
    return path


@pytest.mark.parametrize("input_shape", [(None, None, 3), (16, 16, 3)])
def test_segment_tool_writes_label_map_and_overlay(tmp_path, capsys, input_shape):
    picture = np.zeros((20, 30, 3), np.uint8)
    picture[:, :10] = (200, 30, 30)
    picture[:5, 20:] = (10, 220, 10)
    Image.fromarray(picture).save(tmp_path / "street.png")
    expected = np.zeros((20, 30), np.uint8)
    expected[:, :10], expected[:5, 20:] = 1, 2
    names = tmp_path / "names.txt"
    names.write_text("background\nred thing\ngreen thing\n")
    model = pixel_model(tmp_path / "pixels.keras", input_shape)
    code = load_tool("segment").main([str(tmp_path / "street.png"), "--model", str(model), "--labels", str(names),
                                      "-o", str(tmp_path / "out")])
    assert code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "street_labels.png")), expected)
    overlay = np.asarray(Image.open(tmp_path / "out" / "street_overlay.png"))
    assert np.array_equal(overlay, segmentation.overlay(picture, expected))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["share", "class", "name"]
    assert printed[1].split() == ["58.33%", "0", "background"]  # 350 of 600 pixels
    assert printed[2].split(None, 2) == ["33.33%", "1", "red thing"]


@pytest.mark.parametrize("untrained", [False, True])
def test_segment_tool_offline_table_has_a_header_and_voc_names(tmp_path, capsys, monkeypatch, untrained):
    """Offline with an empty KERAS_ZOO_HOME, a zoo segmentation model's table names the VOC classes (the label
    files ship with the package); from untrained weights the table and both PNGs' captions say so."""
    from keras_zoo import cards, labels
    from keras_zoo.resolve import Resolved

    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "empty_home"))
    monkeypatch.delenv("KERAS_ZOO_MIRROR", raising=False)
    labels.get_classes.cache_clear()
    picture = np.zeros((20, 30, 3), np.uint8)
    picture[:, :10] = (200, 30, 30)
    picture[:5, 20:] = (10, 220, 10)
    Image.fromarray(picture).save(tmp_path / "street.png")
    model = keras.saving.load_model(pixel_model(tmp_path / "pixels.keras", (None, None, 3)))
    card = cards.get_card("fcn8s")
    tool = load_tool("segment")
    asked = []

    def resolve(spec, weights):
        asked.append(weights)
        return Resolved(model, card.name, card, card.source(), untrained=untrained)

    monkeypatch.setattr(tool, "resolve", resolve)
    weights = ["--weights", "NONE"] if untrained else []
    assert tool.main([str(tmp_path / "street.png"), "--model", "fcn8s", *weights, "-o", str(tmp_path / "out")]) == 0
    assert asked == (["NONE"] if untrained else ["imagenet"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["share", "class", "name"]
    assert [line.split(None, 2)[1:] for line in printed[1:4]] == [["0", "background"], ["1", "aeroplane"],
                                                                   ["2", "bicycle"]]
    captions = [Image.open(tmp_path / "out" / f"street_{kind}.png").text.get("Description")
                for kind in ("labels", "overlay")]
    if untrained:
        assert printed[4] == "FCN8s: UNTRAINED weights (random): the classes and scores mean nothing"
        assert captions == [printed[4]] * 2
    else:
        assert "UNTRAINED" not in "\n".join(printed) and captions == [None, None]
    assert printed[-1].startswith("wrote ")
    assert not (tmp_path / "empty_home").exists()
    labels.get_classes.cache_clear()


def test_segment_tool_fails_with_one_line(tmp_path, capsys):
    assert load_tool("segment").main([str(tmp_path / "absent.jpg"), "--model", str(tmp_path / "none.keras")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------------------
# tools/classify.py
# ---------------------------------------------------------------------------------------------------------
def test_classify_tool_prints_top5_on_real_photos(tmp_path, capsys):
    inputs = keras.Input((32, 32, 3), name="data")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(7, name="fc")
    keras.Model(inputs, keras.layers.Softmax()(dense(pooled)), name="mean_colour").save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(0, 0.05, (3, 7)).astype(np.float32), rng.normal(0, 1, 7).astype(np.float32)
    model = keras.saving.load_model(tmp_path / "m.keras")
    model.get_layer("fc").set_weights([kernel, bias])
    model.save(tmp_path / "m.keras")
    (tmp_path / "labels.txt").write_text("".join(f"class {c}\n" for c in "ABCDEFG"))
    paths = []
    for name in ("chelsea", "coffee"):
        Image.fromarray(getattr(photos, name)()).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    code = load_tool("classify").main([*paths, "--model", str(tmp_path / "m.keras"), "--labels",
                                       str(tmp_path / "labels.txt"), "--resize", "40"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    for block, path in enumerate(paths):
        assert lines[6 * block] == path
        # reference: shorter side 40, centre 32 x 32 crop, mean colour, softmax of the affine map
        image = Image.open(path)
        scale = 40 / min(image.size)
        small = np.asarray(image.resize((round(image.size[0] * scale), round(image.size[1] * scale)),
                                        Image.Resampling.BILINEAR), np.float64)
        top, left = (small.shape[0] - 32) // 2, (small.shape[1] - 32) // 2
        logits = small[top:top + 32, left:left + 32].mean(axis=(0, 1)) @ kernel + bias
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        ranked = np.argsort(-probabilities)[:5]
        printed = [line.split() for line in lines[6 * block + 1:6 * block + 6]]
        assert [row[3] for row in printed] == ["ABCDEFG"[i] for i in ranked]
        assert [float(row[1]) for row in printed] == pytest.approx(probabilities[ranked], abs=2e-3)


# ---------------------------------------------------------------------------------------------------------
# diagrams
# ---------------------------------------------------------------------------------------------------------
def branching_model():
    inputs = keras.Input((8, 8, 3), name="data")
    stem = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    left = keras.layers.Conv2D(4, 1, name="branch_1x1")(stem)
    right = keras.layers.MaxPooling2D(3, 1, padding="same", name="branch_pool")(stem)
    merged = keras.layers.Concatenate(name="concat")([left, right])
    summed = keras.layers.Add(name="add")([merged, keras.layers.Conv2D(8, 1, name="proj")(stem)])
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(summed), name="branchy")


def test_diagram_svg_has_every_layer_and_connection(tmp_path):
    model = branching_model()
    path = diagram.write_svg(model, tmp_path / "net.svg")
    root = ElementTree.parse(path).getroot()
    layers = {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "layer"}
    assert set(layers) == {layer.name for layer in model.layers}
    edges = {(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path") if p.get("class") == "edge"}
    assert edges == {("data", "stem"), ("stem", "branch_1x1"), ("stem", "branch_pool"), ("stem", "proj"),
                     ("branch_1x1", "concat"), ("branch_pool", "concat"), ("concat", "add"), ("proj", "add"),
                     ("add", "gap")}
    y = {name: float(g.find(f"{SVG}rect").get("y")) for name, g in layers.items()}
    assert y["branch_1x1"] == y["branch_pool"] == y["proj"] > y["stem"] > y["data"]
    assert y["gap"] > y["add"] > y["concat"]
    texts = " ".join(t.text or "" for t in layers["stem"].iter(f"{SVG}text"))
    assert "8×8×4" in texts and "Conv2D" in texts and "112 params" in texts


def test_diagram_command_of_a_real_prototxt(tmp_path, capsys):
    from keras_zoo.__main__ import main

    output = tmp_path / "lenet.svg"
    assert main(["diagram", str(fixture_path("small_caffemodels/lenet/lenet.prototxt")), "-o", str(output)]) == 0
    root = ElementTree.parse(output).getroot()
    texts = {g.get("id"): " ".join(t.text or "" for t in g.iter(f"{SVG}text"))
             for g in root.iter(f"{SVG}g") if g.get("class") == "layer"}
    assert "24×24×20" in texts["conv1"] and "12×12×20" in texts["pool1"] and "500" in texts["ip1"]
    assert main(["diagram", str(tmp_path / "absent.keras")]) == 1
    assert capsys.readouterr().err.startswith("error: ")
