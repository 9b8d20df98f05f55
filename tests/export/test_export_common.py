"""export.common and export.report: image fitting, sample photos, atomic writes, parity metrics."""

import json

import numpy as np
import pytest

from export import common, report
from keras_zoo import cli, files, images


def three_bands(height=100, width=300):
    """An RGB image: left third red, middle green, right blue."""
    image = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    image[:, :third, 0] = 255
    image[:, third:2 * third, 1] = 255
    image[:, 2 * third:, 2] = 255
    return image


def test_fit_images_resizes_the_shorter_side_then_crops_the_centre():
    fitted = np.asarray(images.fit_images(three_bands()[None], (50, 50), resize=50, crop="center"))
    assert fitted.shape == (1, 50, 50, 3) and fitted.dtype == np.float32
    # shorter side 100 -> 50: the image becomes 50x150 and its central 50 columns are the green band
    interior = fitted[0, :, 3:-3]
    np.testing.assert_allclose(interior, np.broadcast_to([0, 255, 0], interior.shape), atol=1e-3)


def test_fit_images_warps_without_a_centre_crop():
    fitted = np.asarray(images.fit_images(three_bands()[None], (30, 30), resize=256, crop="none"))
    assert fitted.shape == (1, 30, 30, 3)
    # all three bands survive, one per third of the width
    for band, channel in enumerate((0, 1, 2)):
        column = fitted[0, :, band * 10 + 5]
        np.testing.assert_allclose(column[:, channel], 255, atol=1e-3)


def test_sample_images_are_real_photos_at_the_input_size():
    images = common.sample_images((40, 48), 12)
    assert images.shape == (12, 40, 48, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 255 and images.std() > 20
    # more inputs than photos: the extra ones are other views, not copies
    flat = images.reshape(len(images), -1)
    assert len({row.tobytes() for row in flat}) == len(images)
    grey = common.sample_images((40, 48), 3, channels=1)
    assert grey.shape == (3, 40, 48, 1)


def test_sample_images_from_a_folder(tmp_path):
    from PIL import Image

    Image.fromarray(three_bands()).save(tmp_path / "bands.png")
    Image.fromarray(three_bands()[:, ::-1].copy()).save(tmp_path / "reversed.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    images = common.sample_images((50, 50), 2, folder=tmp_path, fit={"resize": 50, "crop": "center"})
    assert images.shape == (2, 50, 50, 3)
    assert images[:, 25, 25, 1].min() > 200  # the centre of both is the green band


def test_sample_images_reject_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        common.sample_images((8, 8), 1, folder=tmp_path / "absent")
    with pytest.raises(common.ExportError, match="no images"):
        common.sample_images((8, 8), 1, folder=tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"<html>not a jpeg</html>")
    with pytest.raises(common.ExportError, match="broken.jpg"):
        common.sample_images((8, 8), 1, folder=tmp_path)


def test_atomic_output_publishes_only_complete_artifacts(tmp_path):
    target = tmp_path / "model.bin"
    with files.atomic_output(target) as tmp:
        tmp.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(RuntimeError):
        with files.atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    with files.atomic_output(target) as tmp:
        tmp.write_bytes(b"rejected")
        raise files.Rejected("parity failed")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]


def test_atomic_output_replaces_folders(tmp_path):
    target = tmp_path / "saved" / "1"
    for content in ("old", "new"):
        with files.atomic_output(target) as tmp:
            tmp.mkdir()
            (tmp / "saved_model.pb").write_text(content)
    assert (target / "saved_model.pb").read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["1"]


def test_compare_outputs_by_hand():
    reference = [np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])]
    candidate = [np.array([[0.1, 0.6, 0.3], [0.5, 0.3, 0.2]])]
    errors = report.compare_outputs(candidate, reference)
    assert errors["max_abs_error"] == pytest.approx(0.1)
    assert errors["max_rel_error"] == pytest.approx(0.1 / 0.7)
    assert errors["top1_agreement"] == 1.0
    swapped = [np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])]
    assert report.compare_outputs(swapped, reference)["top1_agreement"] == 0.5
    # dense outputs count every pixel
    maps = [np.zeros((1, 2, 2, 3))]
    maps[0][..., 0] = 1
    other = [maps[0].copy()]
    other[0][0, 0, 0] = [0, 2, 0]
    assert report.compare_outputs(other, maps)["top1_agreement"] == 0.75
    with pytest.raises(common.ExportError, match="shape"):
        report.compare_outputs([np.zeros((2, 3))], [np.zeros((2, 4))])


def test_thresholds_per_precision():
    good = {"max_abs_error": 1e-6, "max_rel_error": 5e-5, "top1_agreement": 1.0}
    assert report.check_thresholds(good, "float32") == []
    assert report.check_thresholds({**good, "max_rel_error": 2e-4}, "float32")
    assert report.check_thresholds({**good, "max_rel_error": 5e-3}, "float16") == []
    assert report.check_thresholds({**good, "max_rel_error": 2e-2}, "float16")
    assert report.check_thresholds({**good, "max_rel_error": 0.5, "top1_agreement": 0.9}, "int8") == []
    assert report.check_thresholds({**good, "top1_agreement": 0.85}, "int8") == ["top-1 agreement 85.0% < 90%"]


def test_int8_judges_outputs_without_classes_on_psnr():
    """An int8 artifact's one-channel output (a super-resolution net's picture) is held to PSNR >= 30 dB against
    the Keras output, its range the peak; top-1 agreement only where an output has classes."""
    rng = np.random.default_rng(0)
    picture = rng.uniform(0, 1, (2, 8, 8, 1))
    noise = rng.normal(size=picture.shape)
    noise *= 0.01 / np.sqrt(np.mean(noise ** 2))  # RMS 1% of a range of about 1: about 40 dB
    errors = report.compare_outputs([picture + noise], [picture])
    assert errors["top1_agreement"] is None
    assert errors["psnr_db"] == pytest.approx(20 * np.log10(np.ptp(picture) / 0.01))
    assert report.check_thresholds(errors, "int8") == [] and list(report.thresholds(errors, "int8")) == ["psnr_db"]
    worse = report.compare_outputs([picture + 5 * noise], [picture])  # about 26 dB
    assert report.check_thresholds(worse, "int8") == [f"PSNR of the outputs without classes {worse['psnr_db']:.1f} "
                                                      "dB < 30 dB"]
    assert report.compare_outputs([picture], [picture])["psnr_db"] == report.PSNR_CEILING
    # with a classifier's output beside it, both criteria apply; the least PSNR counts
    scores = np.eye(3)[[0, 1]]
    both = report.compare_outputs([scores, picture + 5 * noise, picture + noise], [scores, picture, picture])
    assert both["top1_agreement"] == 1.0 and both["psnr_db"] == pytest.approx(worse["psnr_db"])
    assert list(report.thresholds(both, "int8")) == ["top1_agreement", "psnr_db"]
    # neither: nothing to judge an int8 artifact by
    assert report.check_thresholds({"max_abs_error": 0.0, "max_rel_error": 0.0, "top1_agreement": None,
                                    "psnr_db": None}, "int8") == ["top-1 agreement needs an output with classes"]
    table = report.build_report(format="tflite", model="sr", artifact="sr.tflite", precision="int8",
                                candidate=[picture + noise], reference=[picture]).table()
    assert "PSNR" in table and "dB" in table and "PASSED" in table


def test_report_json_and_table(tmp_path):
    reference = [np.array([[1.0, 2.0], [3.0, 4.0]])]
    result = report.build_report(format="onnx", model="m", artifact=tmp_path / "m.onnx", precision="float32",
                                 candidate=[reference[0] * 1.5], reference=reference, file_size=2_000_000,
                                 speed={"onnxruntime": {"batch": 2, "latency_ms": 4.0, "images_per_s": 500.0}})
    assert not result.passed and "max rel error" in result.failures[0]
    data = json.loads(result.write_json(tmp_path / "r.json").read_text())
    assert data["passed"] is False and data["errors"]["max_abs_error"] == pytest.approx(2.0)
    assert data["file_size"] == 2_000_000 and data["thresholds"] == {"max_rel_error": 1e-4}
    table = result.table()
    assert "2.00 MB" in table and "500.0 images/s" in table and "FAILED" in table


def test_parse_size():
    assert cli.parse_size("224,256") == (224, 256)
    assert cli.parse_size("320") == (320, 320)
    with pytest.raises(Exception, match="H,W"):
        cli.parse_size("a,b")
