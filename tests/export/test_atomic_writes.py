"""Nothing half-written (issue 11, item 11): every output of keras_zoo and the exporters, its write made to fail
half way (some bytes written, then an OSError, as from a full disk), leaves no partial file at the target or
beside it, and an earlier file at that path byte for byte as it was.

Each test breaks the lowest call the writer makes (``Path.write_bytes``, ``keras.Model.save``, h5py's
``create_dataset``, ``onnx.save_model``, ``ExportArchive.write_out``, ``PIL.Image.Image.save``...) so that the
part written reaches the disk; a writer that wrote to its target directly leaves that part there.
"""

import contextlib
import errno
import pathlib

import numpy as np
import pytest

from export import common, onnx as onnx_export, report, saved_model, tflite
from keras_zoo import cache, diagram, files, segmentation
from keras_zoo.convert import save_model

SIZE = (8, 8)


class DiskFull(OSError):
    def __init__(self, path):
        super().__init__(errno.ENOSPC, "No space left on device (made to fail half way by the test)", str(path))


def cut_in_half(path):
    """Cut what a writer wrote to ``path`` (a file, or every file under a folder) to half its bytes, then
    raise :class:`DiskFull`."""
    path = pathlib.Path(path)
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        with open(file, "r+b") as handle:
            handle.truncate(size // 2)
    raise DiskFull(path)


def snapshot(folder):
    """``{relative path: bytes (None for a folder)}`` of everything under ``folder``."""
    folder = pathlib.Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def assert_atomic(write, target, broken):
    """``write()`` made to fail by ``broken()`` (a context manager) leaves nothing; after a real write, a
    failed one leaves the earlier file(s) as they were, and nothing beside them."""
    target = pathlib.Path(target)
    folder = target.parent
    with broken(), pytest.raises(DiskFull):
        write(first=False)
    assert not target.exists()
    assert snapshot(folder) == {}, f"left behind: {sorted(snapshot(folder))}"
    write(first=True)
    earlier = snapshot(folder)
    assert target.exists() and any(value for value in earlier.values())
    with broken(), pytest.raises(DiskFull):
        write(first=False)
    after = snapshot(folder)
    assert sorted(after) == sorted(earlier), f"files changed: {sorted(set(after) ^ set(earlier))}"
    assert all(after[name] == earlier[name] for name in earlier), "an earlier file was changed"


@contextlib.contextmanager
def wrapped(monkeypatch, owner, name, make):
    """``owner.name`` replaced by ``make(original)`` for the block."""
    original = getattr(owner, name)
    with monkeypatch.context() as patch:
        patch.setattr(owner, name, make(original))
        yield


def half_path_write(monkeypatch, method, suffix):
    """``Path.write_bytes`` / ``Path.write_text`` writing half of what it is given to a ``suffix`` file, then
    failing."""
    def make(original):
        def write(self, data, *args, **kwargs):
            if self.name.endswith(suffix):
                original(self, data[:len(data) // 2], *args, **kwargs)
                raise DiskFull(self)
            return original(self, data, *args, **kwargs)
        return write
    return lambda: wrapped(monkeypatch, pathlib.Path, method, make)


def cut_after(monkeypatch, owner, name, written):
    """``owner.name`` doing its work, then the file(s) ``written(*args, **kwargs)`` names cut in half."""
    def make(original):
        def call(*args, **kwargs):
            result = original(*args, **kwargs)
            path = written(*args, **kwargs)
            if path is None:
                return result
            cut_in_half(path)
        return call
    return lambda: wrapped(monkeypatch, owner, name, make)


@pytest.fixture(scope="module")
def model():
    """A small classifier ending in a softmax (the exporters check its logits through an extra output)."""
    import keras

    keras.utils.set_random_seed(0)
    images = keras.Input((*SIZE, 3), name="data")
    x = keras.layers.Conv2D(16, 3, name="conv")(images)  # a kernel past ONNX's 1 kB for external data
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(5, name="fc")(x)
    return keras.Model(images, keras.layers.Softmax(name="prob")(x), name="tiny")


@pytest.fixture(scope="module")
def samples():
    return common.sample_images(SIZE, 4)


@pytest.fixture
def temporary(tmp_path, monkeypatch):
    """The system's temporary folder, here: the exporters' scratch files (the SavedModel check) must go too."""
    import tempfile

    folder = tmp_path / "system_tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == []


# ------------------------------------------------------------------------------------------------ keras_zoo

def h5py_fails_at_third_dataset(monkeypatch):
    """h5py failing at its third dataset, what came before already in the file."""
    import h5py

    def make(original):
        calls = []

        def create_dataset(self, *args, **kwargs):
            calls.append(args[0])
            if len(calls) == 3:
                self.file.flush()
                raise DiskFull(self.file.filename)
            return original(self, *args, **kwargs)
        return create_dataset
    return lambda: wrapped(monkeypatch, h5py.Group, "create_dataset", make)


@pytest.mark.parametrize("leaf, method", [("model.keras", "save"), ("model.weights.h5", "save_weights")])
def test_keras_file(model, tmp_path, monkeypatch, leaf, method):
    """Files Keras writes: a compiled model's .keras (``model.save``), weights (``model.save_weights``)."""
    import keras

    if leaf.endswith(".keras"):
        model = keras.models.clone_model(model)
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
    target = tmp_path / "out" / leaf
    broken = cut_after(monkeypatch, keras.Model, method, lambda self, path, *args, **kwargs: path)
    assert_atomic(lambda first: save_model(model, target), target, broken)


def test_keras_archive(model, tmp_path, monkeypatch):
    """The .keras archive save_model writes itself (an uncompiled model): h5py fails at its third dataset, the
    archive's first members and the first layer's weights already in the file."""
    target = tmp_path / "out" / "model.keras"
    assert_atomic(lambda first: save_model(model, target), target, h5py_fails_at_third_dataset(monkeypatch))


def test_weights_cache(model, tmp_path, monkeypatch):
    """h5py fails at its third dataset, the first layer's weights already in the file."""
    target = tmp_path / "weights" / "Tiny-imagenet.h5"
    broken = h5py_fails_at_third_dataset(monkeypatch)
    assert_atomic(lambda first: cache.save_by_name(model, target, meta={"classes": np.arange(5)}), target,
                  broken)
    assert cache.is_by_name_file(target)


def test_cached_mean(tmp_path, monkeypatch):
    from keras_zoo.cards import get_card

    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    source = get_card("resnet-50").source()
    target = cache._mean_path(source)

    def broken():
        def make(original):
            def save(handle, array, *args, **kwargs):
                handle.write(b"\x93NUMPY" + bytes(40))  # a header's worth, then the disk is full
                raise DiskFull(getattr(handle, "name", "mean"))
            return save
        return wrapped(monkeypatch, np, "save", make)

    assert_atomic(lambda first: cache.save_mean(source, np.arange(3.0)), target, broken)
    np.testing.assert_array_equal(cache.cached_mean(source), np.arange(3.0))


def test_label_png(tmp_path, monkeypatch):
    from PIL import Image

    target = tmp_path / "labels" / "000001.png"
    labels = np.arange(64, dtype=np.uint8).reshape(8, 8) % 21
    broken = cut_after(monkeypatch, Image.Image, "save", lambda self, path, *args, **kwargs: path)
    assert_atomic(lambda first: segmentation.write_label_png(target, labels), target, broken)
    np.testing.assert_array_equal(segmentation.read_label_png(target), labels)


def test_svg_diagram(model, tmp_path, monkeypatch):
    target = tmp_path / "diagrams" / "tiny.svg"
    assert_atomic(lambda first: diagram.write_svg(model, target), target,
                  half_path_write(monkeypatch, "write_text", ".svg"))
    assert target.read_text().rstrip().endswith("</svg>")


def test_json_report(tmp_path, monkeypatch):
    reference = [np.array([[0.2, 0.8]])]
    result = report.build_report(format="onnx", model="m", artifact="m.onnx", precision="float32",
                                 candidate=reference, reference=reference)
    target = tmp_path / "reports" / "m.onnx.report.json"
    assert_atomic(lambda first: result.write_json(target), target,
                  half_path_write(monkeypatch, "write_text", ".json"))
    assert files.write_json({"a": 1}, target).read_text() == '{\n  "a": 1\n}\n'


# ------------------------------------------------------------------------------------------------ exporters

def test_tflite(model, samples, tmp_path, monkeypatch):
    reference = common.keras_outputs(model, samples)
    target = tmp_path / "out" / "tiny.tflite"

    def write(first):
        result = tflite.export_tflite(model, target, samples=samples, reference=reference)
        assert result.passed

    assert_atomic(write, target, half_path_write(monkeypatch, "write_bytes", ".tflite"))


def test_onnx_with_external_weights(model, samples, tmp_path, monkeypatch):
    """model.onnx + model.onnx.data: the data file cut in half after both were written."""
    import onnx

    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    reference = common.keras_outputs(model, samples)
    target = tmp_path / "out" / "tiny.onnx"

    def write(first):
        assert onnx_export.export_onnx(model, target, samples=samples, reference=reference).passed

    def data_file(proto, path, *args, **kwargs):
        return pathlib.Path(path).with_name(kwargs["location"])

    assert_atomic(write, target, cut_after(monkeypatch, onnx, "save_model", data_file))
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny.onnx", "tiny.onnx.data"]


def test_saved_model_folder(model, samples, tmp_path, monkeypatch, temporary):
    """The folder written (its variables cut in half) under the target's parent; the check SavedModel, in the
    temporary folder, is written as usual (and removed)."""
    import keras

    reference = common.keras_outputs(model, samples)
    target = tmp_path / "serving" / "1"

    def write(first):
        assert saved_model.export_saved_model(model, target, samples=samples, reference=reference).passed

    def written(archive, path, *args, **kwargs):
        return path if pathlib.Path(path).is_relative_to(target.parent) else None

    archive = type(keras.export.ExportArchive())  # the backend's class
    assert_atomic(write, target, cut_after(monkeypatch, archive, "write_out", written))
    assert (target / "saved_model.pb").is_file()
