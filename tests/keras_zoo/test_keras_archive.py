"""keras_zoo.convert.save_model's own .keras writer (keras_zoo.files.write_stored_zip) against Keras's model.save,
and the builder's aligned path from a file's (transposed) arrays to the variables."""

import io
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest

from keras_zoo import files, weight_assignment
from keras_zoo.builder import build_model
from keras_zoo.convert import save_model
from tests.helpers import assert_close_rel
from tests.keras_zoo.test_builder import nchw, nhwc, reference_small_net, small_net


def without_shared_ids(config):
    """``config`` without Keras's ``shared_object_id`` keys (ids of objects in the saving process)."""
    if isinstance(config, dict):
        return {key: without_shared_ids(value) for key, value in config.items() if key != "shared_object_id"}
    if isinstance(config, list):
        return [without_shared_ids(value) for value in config]
    return config


def h5_contents(data):
    """``{path: (attributes, array or None for a group)}`` of an HDF5 file's bytes."""
    contents = {}
    with h5py.File(io.BytesIO(data), "r") as h5:
        h5.visititems(lambda name, item: contents.__setitem__(
            name, (dict(item.attrs), item[()] if isinstance(item, h5py.Dataset) else None)))
        contents[""] = (dict(h5.attrs), None)
    return contents


def converted(rng, monkeypatch):
    """small_net with its dense kernel a transposed view (as the Caffe reader's), its weights reaching the backend
    through aligned copies (as a large model's do)."""
    monkeypatch.setattr(weight_assignment, "ALIGNED_COPY_BYTES", 16)
    graph = small_net(rng)
    dense = graph.node("fc").weights
    dense["kernel"] = np.ascontiguousarray(dense["kernel"].T).T
    return graph, build_model(graph)


def test_aligned_weights_match_numpy(rng, monkeypatch):
    graph, model = converted(rng, monkeypatch)
    x = rng.standard_normal((2, 3, 8, 10)).astype(np.float32) * 10
    for y, y_ref, blob in zip(model(nhwc(x)), reference_small_net(graph, x), graph.outputs):
        assert_close_rel(nchw(y), y_ref, what=blob)


def keras_sequential():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3), keras.layers.BatchNormalization(),
                             keras.layers.Flatten(), keras.layers.Dense(4), keras.layers.Dense(2)])


@pytest.mark.parametrize("kind", ["converted", "sequential"])
def test_archive_is_what_keras_writes(kind, rng, monkeypatch, tmp_path):
    model = converted(rng, monkeypatch)[1] if kind == "converted" else keras_sequential()
    ours, theirs = save_model(model, tmp_path / "ours.keras"), tmp_path / "theirs.keras"
    model.save(theirs)
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        assert a.testzip() is None  # every member's CRC-32
        assert a.namelist() == b.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in a.infolist())
        assert without_shared_ids(json.loads(a.read("config.json"))) == \
            without_shared_ids(json.loads(b.read("config.json")))
        assert json.loads(a.read("metadata.json")).keys() == json.loads(b.read("metadata.json")).keys()
        mine, keras_own = h5_contents(a.read("model.weights.h5")), h5_contents(b.read("model.weights.h5"))
    assert sorted(mine) == sorted(keras_own)
    for path, (attributes, value) in keras_own.items():
        assert mine[path][0] == attributes, path
        assert (value is None and mine[path][1] is None) or np.array_equal(mine[path][1], value), path
    loaded = keras.saving.load_model(ours, safe_mode=True)
    x = rng.standard_normal((2, *model.inputs[0].shape[1:])).astype(np.float32)
    for y, y_ref in zip(keras.tree.flatten(loaded(x)), keras.tree.flatten(model(x))):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(y_ref))


def test_models_keras_saves_more_of_go_through_keras(tmp_path):
    """A compiled model (optimizer state) and a nested one are saved by model.save: they load as they were."""
    compiled = keras_sequential()
    compiled.compile(optimizer="adam", loss="mse")
    compiled.fit(np.ones((2, 6, 6, 2)), np.ones((2, 2)), verbose=0)
    inputs = keras.Input((6, 6, 2))
    nested = keras.Model(inputs, keras_sequential()(inputs))
    for name, model in [("compiled", compiled), ("nested", nested)]:
        loaded = keras.saving.load_model(save_model(model, tmp_path / f"{name}.keras"), safe_mode=True)
        for a, b in zip(loaded.variables, model.variables):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert len(loaded.variables) == len(nested.variables) > 0
    assert keras.saving.load_model(tmp_path / "compiled.keras").optimizer.iterations.numpy() == 1


def test_zip64_records(tmp_path, monkeypatch):
    """Past the Zip64 limit (made small here) sizes and offsets go in Zip64 fields, which zipfile reads."""
    monkeypatch.setattr(files, "ZIP64_LIMIT", 100)
    payload = np.arange(1000, dtype=np.float32).tobytes()
    path = files.write_stored_zip(tmp_path / "big.zip", {"a.json": b"{}", "b.txt": b"x" * 300}, "c.bin",
                                  lambda handle: (handle.write(payload[:10]), handle.seek(0), handle.write(payload)))
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["a.json", "b.txt", "c.bin"]
        assert archive.read("c.bin") == payload and archive.read("b.txt") == b"x" * 300
        assert archive.getinfo("c.bin").file_size == len(payload)
