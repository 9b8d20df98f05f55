"""converters.matfile: MAT v5 (scipy) and v7.3 (HDF5) containers as plain Python values."""

import shutil

import numpy as np
import pytest

from converters.errors import ConversionError
from converters.matfile import MatOpaque, StructArray, load_mat
from tests.helpers import fixture_path
from converters.writers.mat import StructArray as WriteStructArray
from converters.writers.mat import write_mat

# (version, compressed): uncompressed v5 is scanned in place, compressed v5 read by scipy.io, v7.3 by h5py.
CONTAINERS = [("5", False), ("5", True), ("7.3", False)]
CONTAINER_IDS = ["v5", "v5-compressed", "v7.3"]


def sample_variables():
    return {
        "volume": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "ints": np.array([[1, -2, 3]], dtype=np.int32),
        "net": {
            "title": "a name",
            "cell": [np.eye(2), "text", [], {"inner": np.array([[5.0]])}],
            "empty": np.zeros((0, 3)),
        },
        "records": WriteStructArray([{"name": "a", "value": 1.0},
                                     {"name": "bb", "value": np.array([[1.0, 2.0]])}]),
        "flag": True,
    }


@pytest.mark.parametrize("version, compress", CONTAINERS, ids=CONTAINER_IDS)
def test_round_trip_of_every_kind_of_value(tmp_path, version, compress):
    path = write_mat(tmp_path / "values.mat", sample_variables(), version=version, compress=compress)
    loaded = load_mat(path)
    assert set(loaded) == {"volume", "ints", "net", "records", "flag"}
    np.testing.assert_array_equal(loaded["volume"], sample_variables()["volume"])
    assert loaded["volume"].dtype == np.float32
    assert loaded["volume"][1, 2, 3] == 23  # MATLAB indexing kept: V(2,3,4)
    np.testing.assert_array_equal(loaded["ints"], [[1, -2, 3]])
    net = loaded["net"]
    assert isinstance(net, dict) and net["title"] == "a name"
    cell = net["cell"]
    assert isinstance(cell, list) and len(cell) == 4
    np.testing.assert_array_equal(cell[0], np.eye(2))
    assert cell[1] == "text" and cell[2] == []
    assert cell[3]["inner"].item() == 5.0
    assert net["empty"].shape == (0, 3)
    records = loaded["records"]
    assert isinstance(records, StructArray) and [r["name"] for r in records] == ["a", "bb"]
    np.testing.assert_array_equal(records[1]["value"], [[1.0, 2.0]])
    assert bool(loaded["flag"].item()) is True


@pytest.mark.parametrize("version, compress", CONTAINERS, ids=CONTAINER_IDS)
def test_only_the_requested_variables(tmp_path, version, compress):
    path = write_mat(tmp_path / "values.mat", sample_variables(), version=version, compress=compress)
    assert set(load_mat(path, variables=["ints"])) == {"ints"}


def test_v73_dncnn_simplenn_is_read_in_matlab_shape():
    loaded = load_mat(fixture_path("matconvnet_mat/dncnn/sigma=25.mat"))
    layers = loaded["net"]["layers"]
    assert isinstance(layers, list) and len(layers) == 33
    assert [layer["type"] for layer in layers[:3]] == ["conv", "relu", "conv"]
    first, second = layers[0]["weights"][0], layers[2]["weights"][0]
    assert first.shape == (3, 3, 1, 64) and first.dtype == np.float32  # H x W x Cin x Cout
    assert second.shape == (3, 3, 64, 64)
    assert layers[0]["name"] == "layer1"


def test_v73_dagnn_struct_arrays_agree_with_the_declared_sizes():
    net = load_mat(fixture_path("matconvnet_mat/dncnn/DnCNN-epoch-50_dagnn.mat"))["net"]
    assert isinstance(net["layers"], StructArray) and len(net["layers"]) == 50
    values = {param["name"]: param["value"] for param in net["params"]}
    for layer in net["layers"]:
        if layer["type"] == "dagnn.Conv":
            declared = tuple(int(v) for v in layer["block"]["size"].ravel())  # MATLAB's own size()
            value = values[layer["params"][0]]
            # MATLAB drops trailing singleton dimensions: [3 3 64 1] is stored 3x3x64.
            assert value.shape == declared[:value.ndim] and all(d == 1 for d in declared[value.ndim:])
    assert net["layers"][-1]["inputs"] == ["prediction", "label"]


def test_v5_training_checkpoint():
    loaded = load_mat(fixture_path("matconvnet_mat/plate_simplenn/net-epoch-50.mat"))
    assert {"net", "stats", "state"} <= set(loaded)
    layers = loaded["net"]["layers"]
    assert [layer["type"] for layer in layers] == ["conv", "pool", "relu", "conv", "pool", "relu", "conv",
                                                   "softmaxloss"]
    assert layers[0]["weights"][0].shape == (3, 3, 1, 20)
    assert tuple(loaded["net"]["meta"]["inputSize"].ravel()) == (20, 20, 1)
    assert isinstance(loaded["stats"]["train"], StructArray) and len(loaded["stats"]["train"]) == 50


def test_matlab_objects_become_opaque():
    layers = load_mat(fixture_path("matconvnet_mat/dncnn/sigma=25_Bnorm.mat"))["net"]["layers"]
    loss = layers[-1]
    assert loss["type"] == "loss" and isinstance(loss["class"], MatOpaque)


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_large_uncompressed_arrays_are_memory_mapped(tmp_path, version):
    weights = np.random.default_rng(0).standard_normal((64, 48, 32, 5)).astype(np.float32)  # 2 MB
    path = write_mat(tmp_path / "big.mat", {"layers": [{"weights": [weights]}]}, version=version)
    loaded = load_mat(path)["layers"][0]["weights"][0]
    assert isinstance(loaded, np.memmap) and loaded.shape == weights.shape
    np.testing.assert_array_equal(loaded, weights)
    compressed = load_mat(write_mat(tmp_path / "z.mat", {"w": weights}, compress=True))["w"]
    assert not isinstance(compressed, np.memmap)
    np.testing.assert_array_equal(compressed, weights)


def test_v5_and_v73_of_the_same_data_agree(tmp_path):
    variables = sample_variables()
    one = load_mat(write_mat(tmp_path / "v5.mat", variables, version="5"))
    two = load_mat(write_mat(tmp_path / "v73.mat", variables, version="7.3"))
    np.testing.assert_array_equal(one["volume"], two["volume"])
    assert one["net"]["title"] == two["net"]["title"]
    assert [r["name"] for r in one["records"]] == [r["name"] for r in two["records"]]


@pytest.mark.parametrize("content", [b"", b"hello, not a mat file at all" * 10,
                                     b"MATLAB 7.3 MAT-file" + b"\x00" * 200])
def test_garbage_is_a_conversion_error(tmp_path, content):
    path = tmp_path / "bad.mat"
    path.write_bytes(content)
    with pytest.raises(ConversionError) as error:
        load_mat(path)
    assert "bad.mat" in str(error.value)


def test_missing_file_is_a_conversion_error(tmp_path):
    with pytest.raises(ConversionError, match="absent.mat"):
        load_mat(tmp_path / "absent.mat")


@pytest.mark.parametrize("fixture", ["matconvnet_mat/dncnn/sigma=25.mat",
                                     "matconvnet_mat/plate_simplenn/net-epoch-50.mat"])
def test_truncated_files_are_conversion_errors(tmp_path, fixture):
    source = fixture_path(fixture)
    path = tmp_path / "truncated.mat"
    shutil.copyfile(source, path)
    with open(path, "r+b") as stream:
        stream.truncate(source.stat().st_size // 2)
    with pytest.raises(ConversionError) as error:
        load_mat(path)
    assert "truncated.mat" in str(error.value)


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_truncated_written_files_are_conversion_errors(tmp_path, version):
    weights = np.ones((64, 64, 64, 2), np.float32)
    path = write_mat(tmp_path / "cut.mat", {"layers": [{"type": "conv", "weights": [weights]}]}, version=version)
    with open(path, "r+b") as stream:
        stream.truncate(path.stat().st_size - 4096)
    with pytest.raises(ConversionError, match="cut.mat"):
        load_mat(path)
