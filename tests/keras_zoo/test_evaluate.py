"""Evaluation: metric arithmetic on hand-made data sets, the protocols' crops and scales on real photos, FC layers
run as convolutions, and the command line."""

import json

import keras
import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from converters.errors import ConversionError
from keras_zoo import cards, images
from keras_zoo.evaluate import classification, datasets, fully_convolutional, metrics, reports, segmentation
from tests.helpers import assert_close_rel, fixture_path, load_tool

EVALUATE = load_tool("evaluate")


# ---------------------------------------------------------------------------------------------------------
# models whose outputs the tests control
# ---------------------------------------------------------------------------------------------------------
def colour_classifier(input_shape=(24, 24, 3)):
    """Six classes scored from the mean colour: scores = [r, g, b, 0.5, 0.4, -5] (r, g, b in 0..1)."""
    inputs = keras.Input(input_shape, name="data")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(inputs)
    x = keras.layers.Dense(6, name="fc")(x)
    model = keras.Model(inputs, keras.layers.Softmax(name="prob")(x), name="colour")
    kernel = np.zeros((3, 6), np.float32)
    kernel[[0, 1, 2], [0, 1, 2]] = 1 / 255
    model.get_layer("fc").set_weights([kernel, np.array([0, 0, 0, 0.5, 0.4, -5], np.float32)])
    return model


def caffe_style_classifier(seed=0):
    """A 12x12 classifier with a valid 3x3 conv, 2x2 max pooling and a head flattened in Caffe's (C, H, W)
    order (Permute + Flatten), two Dense layers and a softmax."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((12, 12, 3), name="data")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Permute((3, 1, 2), name="to_chw")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(6, name="fc6")(x)
    x = keras.layers.ReLU(name="relu6")(x)
    x = keras.layers.Dropout(0.5, name="drop6")(x)
    x = keras.layers.Dense(4, name="fc7")(x)
    model = keras.Model(inputs, keras.layers.Softmax(name="prob")(x), name="caffe_style")
    model.set_weights([rng.normal(0, s, w.shape).astype(np.float32)
                       for w, s in zip(model.get_weights(), (0.02, 0.1, 0.1, 0.1, 0.3, 0.1))])
    return model


@pytest.fixture(scope="module")
def caffe_style():
    return caffe_style_classifier()


def save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def solid(colour, height=30, width=40):
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3))


RED, BLACK = (255, 0, 0), (0, 0, 0)


@pytest.fixture
def colour_set(tmp_path):
    """Four images in class folders a..f: a red 'a' (top-1 hit), a red 'd' (top-5 only: ranking is 0,3,4,1,2),
    a red 'f' (miss: class 5 always ranks last), a black 'd' (top-1 hit: black ranks 3 first)."""
    root = tmp_path / "val"
    for name in "abcdef":
        (root / name).mkdir(parents=True)
    save_png(root / "a" / "red.png", solid(RED))
    save_png(root / "d" / "red.png", solid(RED))
    save_png(root / "f" / "red.png", solid(RED))
    save_png(root / "d" / "black.png", solid(BLACK))
    return root


# ---------------------------------------------------------------------------------------------------------
# classification metrics
# ---------------------------------------------------------------------------------------------------------
def test_topk_hits_by_hand():
    scores = np.array([[0.1, 0.5, 0.2, 0.15, 0.05, 0.0],
                       [0.3, 0.1, 0.2, 0.25, 0.05, 0.1],
                       [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    labels = np.array([1, 4, 2])
    assert metrics.topk_hits(scores, labels, 1).tolist() == [True, False, False]
    # row 1 ranks 0, 3, 2, (1, 5 tie: lower index first) 1, 5, 4 -> 4 is sixth; row 2 ranks 5, 0, 1, 2, 3
    assert metrics.topk_hits(scores, labels, 5).tolist() == [True, False, True]


def test_centre_crop_errors_on_a_hand_made_folder(colour_set):
    items = datasets.read_image_folder(colour_set)
    assert sorted(label for _, label in items) == [0, 3, 3, 5]
    result = classification.evaluate_classification(colour_classifier(), items,
                                                    protocol=images.CropProtocol((24, 24), 26), batch_size=3,
                                                    progress=False)
    assert result["images"] == 4
    assert result["top1_error_percent"] == pytest.approx(50.0)
    assert result["top5_error_percent"] == pytest.approx(25.0)
    assert result["images_per_s"] > 0 and result["model_images_per_s"] >= result["images_per_s"]


def test_dense_protocol_errors_on_a_hand_made_folder(colour_set):
    """Global pooling heads work at any size: the dense protocol needs no conversion and gives the same."""
    items = datasets.read_image_folder(colour_set)
    result = classification.evaluate_classification(colour_classifier(), items, dense_scales=(24, 32), progress=False)
    assert (result["top1_error_percent"], result["top5_error_percent"]) == pytest.approx((50.0, 25.0))
    assert "dense" in result["protocol"] and "flips" in result["protocol"]


def test_folder_classes_follow_the_weight_sources_order(tmp_path):
    for wnid in ("n02", "n00", "n01"):
        save_png(tmp_path / wnid / "x.png", solid(RED, 4, 4))
    vgg_order = ["n01", "n02", "n00"]
    labels = {path.parent.name: label for path, label in datasets.read_image_folder(tmp_path, vgg_order)}
    assert labels == {"n01": 0, "n02": 1, "n00": 2}
    with pytest.raises(ConversionError, match="not in the model's label set"):
        datasets.read_image_folder(tmp_path, ["n00", "n01"])


def test_list_file_labels_are_mapped_between_orders(tmp_path):
    listing = tmp_path / "val.txt"
    listing.write_text("a.jpg 0\nsub/b.jpg 2\nc.jpg n01\n")
    caffe_order, vgg_order = ["n00", "n01", "n02"], ["n02", "n00", "n01"]
    items = datasets.read_list_file(listing, class_ids=vgg_order, list_class_ids=caffe_order)
    assert [(path.relative_to(tmp_path).as_posix(), label) for path, label in items] == \
        [("a.jpg", 1), ("sub/b.jpg", 0), ("c.jpg", 2)]
    listing.write_text("a.jpg\n")
    with pytest.raises(ConversionError, match="line 1"):
        datasets.read_list_file(listing)
    listing.write_text("a.jpg 1\nb.jpg 3\n")
    with pytest.raises(ConversionError, match="line 2: label 3 is beyond"):
        datasets.read_list_file(listing, class_ids=vgg_order, list_class_ids=caffe_order)


# ---------------------------------------------------------------------------------------------------------
# protocols on real photos
# ---------------------------------------------------------------------------------------------------------
def test_centre_crop_protocol_geometry_on_a_real_photo():
    cat = photos.chelsea()  # 300 x 451
    crop = images.CropProtocol((224, 224), 256)(cat.astype(np.float32))
    # shorter side 256 -> 256 x round(451 * 256 / 300) = 256 x 385; central 224 x 224 starts at (16, 80)
    reference = np.asarray(Image.fromarray(cat).resize((385, 256), Image.Resampling.BILINEAR), np.float32)
    assert crop.shape == (224, 224, 3)
    # Pillow's 8-bit path works in fixed point (within 1); a crop one pixel off differs by tens
    assert np.abs(crop - reference[16:240, 80:304]).max() <= 1.5


def test_warp_protocol_and_protocols_from_cards():
    coffee = photos.coffee().astype(np.float32)  # 400 x 600
    warped = images.CropProtocol((227, 227), (256, 256))(coffee)
    reference = np.asarray(Image.fromarray(photos.coffee()).resize((256, 256), Image.Resampling.BILINEAR))
    assert np.abs(warped - reference[14:241, 14:241]).max() <= 1.5
    vgg = images.CropProtocol.from_card(cards.get_card("vgg16").source())
    assert (vgg.input_size, vgg.resize) == ((224, 224), 256)
    alexnet = images.CropProtocol.from_card(cards.get_card("bvlc_alexnet").source())
    assert alexnet.input_size == (227, 227)
    fcn = images.CropProtocol.from_card(cards.get_card("fcn8s").source())
    assert fcn(coffee).shape == (500, 500, 3)


def test_fully_connected_layers_as_convolutions_agree_at_the_training_size(caffe_style, rng):
    fully_conv = fully_convolutional.to_fully_convolutional(caffe_style)
    batch = rng.uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    dense = caffe_style.predict(batch, verbose=0)
    conv = keras.ops.convert_to_numpy(fully_conv(batch))
    assert conv.shape == (3, 1, 1, 4)
    assert np.abs(conv[:, 0, 0] - dense).max() <= 1e-5
    assert {"fc6", "fc7"} <= {layer.name for layer in fully_conv.layers if isinstance(layer, keras.layers.Conv2D)}


def test_real_lenet_fully_connected_layers_as_convolutions():
    """Caffe's LeNet with its real weights: ip1 reads a (C, H, W) = (50, 4, 4) flattening."""
    import keras_zoo

    folder = "small_caffemodels/lenet/"
    model = keras_zoo.from_caffe(fixture_path(folder + "lenet.prototxt"),
                                 fixture_path(folder + "lenet_iter_10000.caffemodel"))
    fully_conv = fully_convolutional.to_fully_convolutional(model)
    digits = np.random.default_rng(1).uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    reference = model.predict(digits, verbose=0)
    assert np.abs(keras.ops.convert_to_numpy(fully_conv(digits))[:, 0, 0] - reference).max() <= 1e-5
    # a 36 x 44 input: windows at stride 4, (36 - 28) / 4 + 1 = 3 rows and 5 columns
    wide = np.random.default_rng(2).uniform(0, 1, (1, 36, 44, 1)).astype(np.float32)
    scores = keras.ops.convert_to_numpy(fully_conv(wide))
    assert scores.shape == (1, 3, 5, 10)
    assert_close_rel(scores[0, 2, 4], model.predict(wide[:, 8:36, 16:44], verbose=0)[0], tol=1e-5)


def _pil_resize(image, height, width):
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c]), "F")
                           .resize((width, height), Image.Resampling.BILINEAR)) for c in range(3)]
    return np.stack(channels, -1)


def test_dense_multiscale_protocol_equals_sliding_windows_on_a_real_photo(caffe_style):
    """VGG's dense evaluation = the original classifier on every 12x12 window at the net's stride (2), averaged
    over windows, over the image and its mirror, and over the scales."""
    astronaut = np.asarray(Image.fromarray(photos.astronaut()).resize((45, 30)), np.float32)  # 30 x 45
    expected_views = []
    for side, (height, width) in ((16, (16, 24)), (20, (20, 30))):
        scaled = _pil_resize(astronaut, height, width)
        for view in (scaled, scaled[:, ::-1]):
            windows = [view[top:top + 12, left:left + 12]
                       for top in range(0, height - 11, 2) for left in range(0, width - 11, 2)]
            expected_views.append(caffe_style.predict(np.stack(windows), verbose=0).mean(axis=0))
    expected = np.mean(expected_views, axis=0)
    scores = classification.dense_scores(fully_convolutional.to_fully_convolutional(caffe_style), astronaut,
                                         scales=(16, 20))
    assert_close_rel(scores, expected, tol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# segmentation metrics
# ---------------------------------------------------------------------------------------------------------
def test_confusion_matrix_and_fcn_metrics_by_hand():
    truth = np.array([[0, 0, 1, 1],
                      [0, 2, 1, 255]])
    predicted = np.array([[0, 1, 1, 1],
                          [0, 2, 0, 2]])
    confusion = metrics.confusion_matrix(truth, predicted, 3)
    assert confusion.tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 1]]
    scores = metrics.segmentation_scores(confusion)
    assert scores["pixel_accuracy_percent"] == pytest.approx(100 * 5 / 7)
    assert scores["mean_accuracy_percent"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 1) / 3)
    # IU: class 0: 2 / (3 + 3 - 2); class 1: 2 / (3 + 3 - 2); class 2: 1 / 1
    assert scores["mean_iou_percent"] == pytest.approx(100 * (0.5 + 0.5 + 1) / 3)
    assert scores["frequency_weighted_iou_percent"] == pytest.approx(100 * (3 * 0.5 + 3 * 0.5 + 1) / 7)


def test_classes_absent_from_truth_and_prediction_are_left_out():
    truth = np.array([0, 0, 1, 1])
    confusion = metrics.confusion_matrix(truth, np.array([0, 3, 1, 1]), 4)  # class 2 nowhere, class 3 predicted only
    scores = metrics.segmentation_scores(confusion)
    assert scores["mean_accuracy_percent"] == pytest.approx(100 * (0.5 + 1) / 2)
    assert scores["mean_iou_percent"] == pytest.approx(100 * (0.5 + 1 + 0) / 3)


def pixel_classifier(input_shape=(None, None, 3)):
    """Scores per pixel: background 100, class 1 = red, class 2 = green (a 1x1 convolution)."""
    inputs = keras.Input(input_shape, name="data")
    conv = keras.layers.Conv2D(3, 1, name="score")
    model = keras.Model(inputs, conv(inputs), name="pixels")
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    kernel[0, 0, 0, 1] = kernel[0, 0, 1, 2] = 1
    conv.set_weights([kernel, np.array([100, 0, 0], np.float32)])
    return model


def reference_scores(pairs, classes):
    """The FCN paper's formulas, counted pixel by pixel."""
    n = np.zeros((classes, classes))
    for truth, predicted in pairs:
        for t, p in zip(truth.ravel(), predicted.ravel()):
            if t != 255:
                n[t, p] += 1
    t_i = n.sum(1)
    iu = [n[i, i] / (t_i[i] + n[:, i].sum() - n[i, i]) for i in range(classes)]
    return (100 * np.trace(n) / n.sum(), 100 * np.mean([n[i, i] / t_i[i] for i in range(classes)]),
            100 * np.mean(iu))


@pytest.fixture
def voc_folder(tmp_path):
    """``(root, predicted, truths)``: two 16x24 photos (red left band: class 1; green top-right block: class 2;
    black: background) with ground truths that differ from what :func:`pixel_classifier` predicts."""
    from keras_zoo.segmentation import write_label_png

    root = tmp_path / "VOC"
    picture = np.zeros((16, 24, 3), np.uint8)
    picture[:, :8] = RED
    picture[:8, 16:] = (0, 255, 0)
    predicted = np.zeros((16, 24), np.uint8)
    predicted[:, :8], predicted[:8, 16:] = 1, 2
    truths = [predicted.copy(), predicted.copy()]
    truths[0][:4, :8] = 0        # ground truth says background where the model sees class 1
    truths[1][8:, 16:] = 2       # class 2 missed by the model
    truths[1][:, 23] = 255       # a void column
    (root / "JPEGImages").mkdir(parents=True)
    for index, truth in enumerate(truths):
        Image.fromarray(picture).save(root / "JPEGImages" / f"im{index}.jpg", quality=100)
        write_label_png(root / "SegmentationClass" / f"im{index}.png", truth)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("im0\nim1\n")
    return root, predicted, truths


def test_segmentation_evaluation_on_a_hand_made_voc_folder(voc_folder):
    root, predicted, truths = voc_folder
    model = pixel_classifier()
    assert np.array_equal(segmentation.predict_label_map(model, images.read_image(root / "JPEGImages" / "im0.jpg")),
                          predicted)
    result = segmentation.evaluate_segmentation(model, datasets.read_voc_set(root, "val"), num_classes=3,
                                                progress=False)
    pixel, mean_acc, mean_iou = reference_scores([(t, predicted) for t in truths], 3)
    assert result["pixel_accuracy_percent"] == pytest.approx(pixel)
    assert result["mean_accuracy_percent"] == pytest.approx(mean_acc)
    assert result["mean_iou_percent"] == pytest.approx(mean_iou)
    assert np.sum(result["confusion"]) == 2 * 16 * 24 - 16


def test_command_line_segmentation_table_and_json(voc_folder, tmp_path, capsys):
    root, predicted, truths = voc_folder
    model_path = tmp_path / "pixels.keras"
    pixel_classifier().save(model_path)
    out = tmp_path / "seg.json"
    assert EVALUATE.main(["segmentation", str(root), "--model", str(model_path), "--classes", "3", "--json",
                          str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    pixel, mean_acc, mean_iou = reference_scores([(t, predicted) for t in truths], 3)
    assert (result["mean_iou_percent"], result["pixel_accuracy_percent"]) == pytest.approx((mean_iou, pixel))
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|pixels")][0]
    assert [c.strip() for c in row.strip("|").split("|")] == \
        ["pixels", "val", f"{mean_iou:.2f}", f"{pixel:.2f}", f"{mean_acc:.2f}"]


def test_voc_folder_problems_are_reported(tmp_path):
    with pytest.raises(ConversionError, match="no id list"):
        datasets.read_voc_set(tmp_path, "val")
    (tmp_path / "ids.txt").write_text("missing\n")
    with pytest.raises(ConversionError, match="missing"):
        datasets.read_voc_set(tmp_path, tmp_path / "ids.txt")


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ConversionError, match="broken.jpg"):
        images.read_image(bad)


# ---------------------------------------------------------------------------------------------------------
# tables, JSON, command line
# ---------------------------------------------------------------------------------------------------------
def test_tables_are_shaped_like_the_seeds():
    table = reports.format_classification_table([{"model": "vgg-verydeep-16", "introduced": 2014,
                                                  "top1_error_percent": 28.54, "top5_error_percent": 9.87,
                                                  "images_per_s": 183.14}])
    header, rule, row = table.splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == \
        ["model", "introduced", "top-1 err.", "top-5 err.", "images/s"]
    assert [c.strip() for c in row.strip("|").split("|")] == ["vgg-verydeep-16", "2014", "28.5", "9.9", "183.1"]
    assert set(rule) <= set("|-:")
    seg = reports.format_segmentation_table([{"model": "FCN-8s", "test_data": "RV-VOC11", "mean_iou_percent": 62.69,
                                              "pixel_accuracy_percent": 90.33, "mean_accuracy_percent": 75.86}])
    assert [c.strip() for c in seg.splitlines()[2].strip("|").split("|")] == \
        ["FCN-8s", "RV-VOC11", "62.69", "90.33", "75.86"]


def test_command_line_evaluates_a_model_file_and_writes_json(colour_set, tmp_path, capsys):
    model_path = tmp_path / "colour.keras"
    colour_classifier().save(model_path)
    out = tmp_path / "result.json"
    code = EVALUATE.main(["classification", str(colour_set), "--model", str(model_path), "--resize", "26",
                          "--json", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    result = json.loads(out.read_text())
    assert (result["top1_error_percent"], result["top5_error_percent"]) == pytest.approx((50.0, 25.0))
    assert "top-1 err." in printed and "colour" in printed.splitlines()[-2]
    assert EVALUATE.main(["classification", str(tmp_path / "nowhere"), "--model", str(model_path)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
