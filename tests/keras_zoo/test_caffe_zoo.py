"""Caffe Model Zoo directories: the real BVLC readmes, SHA1-checked downloads from a loopback server, conversion
checked against OpenCV's Caffe runtime, and the model's card."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from converters.errors import ConversionError
from keras_zoo import caffe_zoo
from tests.helpers import ROOT, assert_close_rel, fixture_path
from tests.http_server import serve

# what the fixture readmes' front matter says (read off the files)
BVLC_READMES = {
    "bvlc_alexnet": ("BAIR/BVLC AlexNet Model", "9116a64c0fbe4459d18f4bb6b56d647b63920377",
                     "709dc15af4a06bebda027c1eb2b3f3e3375d5077"),
    "bvlc_reference_caffenet": ("BAIR/BVLC CaffeNet Model", "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
                                "709dc15af4a06bebda027c1eb2b3f3e3375d5077"),
    "bvlc_googlenet": ("BAIR/BVLC GoogleNet Model", "405fc5acd08a3bb12de8ee5e23a96bec22f08204",
                       "bc614d1bd91896e3faceaf40b23b72dab47d44f5"),
    "bvlc_reference_rcnn_ilsvrc13": ("BAIR/BVLC Reference RCNN ILSVRC13 Model",
                                     "bdd8abb885819cba5e2fe1eb36235f2319477e64",
                                     "a7e397abbda52c0b90323c23ab95bdeabee90a98"),
}
LENET = "small_caffemodels/lenet/"


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KERAS_ZOO_MIRROR", raising=False)


@pytest.mark.parametrize("dirname", sorted(BVLC_READMES))
def test_real_bvlc_readmes(dirname):
    fields, body = caffe_zoo.read_readme(fixture_path(f"bvlc/{dirname}/readme.md"))
    name, sha1, commit = BVLC_READMES[dirname]
    assert fields == {"name": name, "caffemodel": f"{dirname}.caffemodel",
                      "caffemodel_url": f"http://dl.caffe.berkeleyvision.org/{dirname}.caffemodel",
                      "license": "unrestricted", "sha1": sha1, "caffe_commit": commit}
    assert body.rstrip().endswith("This model is released for unrestricted use.")
    assert "---" not in body.splitlines()[0]


def test_card_of_a_real_readme_keeps_license_references_and_provenance():
    directory = fixture_path("bvlc/bvlc_alexnet")
    fields, body = caffe_zoo.read_readme(directory / "readme.md")
    card = caffe_zoo.zoo_card(directory, fields, body)
    assert card["name"] == "BAIR/BVLC AlexNet Model"
    assert card["license"] == "unrestricted"
    assert {"text": "AlexNet", "url": "http://papers.nips.cc/paper/4824-imagenet-classification-with-deep-"
                                      "convolutional-neural-networks"} in card["references"]
    assert card["provenance"]["sha1"] == "9116a64c0fbe4459d18f4bb6b56d647b63920377"
    assert card["provenance"]["caffe_commit"] == "709dc15af4a06bebda027c1eb2b3f3e3375d5077"
    assert card["weights"] == [{"name": "caffe", "url": "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel",
                                "filename": "bvlc_alexnet.caffemodel", "format": "caffemodel", "default": True,
                                "preprocessing": None, "classes": None,
                                "sha1": "9116a64c0fbe4459d18f4bb6b56d647b63920377"}]
    assert "top-1 accuracy 57.1%" in card["description"]


def test_vgg_gist_readme_without_fences(tmp_path):
    readme = tmp_path / "readme.md"
    readme.write_text(
        "##Information\n\n"
        'name: 16-layer model from the arXiv paper: "Very Deep Convolutional Networks"\n\n'
        "caffemodel: VGG_ILSVRC_16_layers\n\n"
        "caffemodel_url: http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/VGG_ILSVRC_16_layers.caffemodel\n\n"
        "license: see http://www.robots.ox.ac.uk/~vgg/research/very_deep/\n\n"
        "caffe_version: trained using a custom Caffe-based framework\n\n"
        "gist_id: 211839e770f7b538e2d8\n\n"
        "## Description\n\nPlease cite the paper if you use the model.\n")
    fields, body = caffe_zoo.read_readme(readme)
    assert fields["name"] == '16-layer model from the arXiv paper: "Very Deep Convolutional Networks"'
    assert fields["gist_id"] == "211839e770f7b538e2d8"
    assert fields["license"] == "see http://www.robots.ox.ac.uk/~vgg/research/very_deep/"
    assert body.startswith("## Description")
    assert caffe_zoo._weights_name(fields) == "VGG_ILSVRC_16_layers.caffemodel"


@pytest.mark.parametrize("text, problem", [
    ("---\nname: x\ncaffemodel_url: http://h/x.caffemodel\n", "never closed"),
    ("---\nname: x\n- a list item\n---\n", "line 3"),
    ("# A model\n\nNo information at all.\n", "no YAML front matter"),
])
def test_malformed_readmes_name_the_file(tmp_path, text, problem):
    readme = tmp_path / "readme.md"
    readme.write_text(text)
    with pytest.raises(ConversionError, match=problem) as caught:
        caffe_zoo.read_readme(readme)
    assert str(readme) in str(caught.value)


def lenet_zoo(tmp_path, url, sha1):
    """A model-zoo directory in the BVLC layout around the real LeNet deploy prototxt."""
    directory = tmp_path / "lenet_zoo"
    directory.mkdir()
    shutil.copy(fixture_path(LENET + "lenet.prototxt"), directory / "deploy.prototxt")
    (directory / "readme.md").write_text(
        f"---\nname: LeNet on MNIST\ncaffemodel: lenet_iter_10000.caffemodel\ncaffemodel_url: {url}\n"
        f"license: MIT\nsha1: {sha1}\ncaffe_commit: 0123abc\ncitation: 'LeCun et al., 1998'\n---\n\n"
        "Trained with [Caffe](http://caffe.berkeleyvision.org).\n")
    return directory


def sha1_of(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


def opencv_lenet(image):
    cv2 = pytest.importorskip("cv2")
    net = cv2.dnn.readNetFromCaffe(str(fixture_path(LENET + "lenet.prototxt")),
                                   str(fixture_path(LENET + "lenet_iter_10000.caffemodel")))
    net.enableWinograd(False)
    net.setInput(np.transpose(image, (0, 3, 1, 2)).copy())
    return net.forward()


def test_download_verify_convert_and_card(tmp_path):
    weights = fixture_path(LENET + "lenet_iter_10000.caffemodel")
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(weights, served / "lenet_iter_10000.caffemodel")
    with serve(served) as server:
        directory = lenet_zoo(tmp_path, f"{server.url}/lenet_iter_10000.caffemodel", sha1_of(weights))
        model = caffe_zoo.from_caffe_zoo(directory, cache_dir=tmp_path / "cache", progress=False)
        again = caffe_zoo.read_caffe_zoo(directory, cache_dir=tmp_path / "cache", progress=False)
        assert server.count("lenet_iter_10000.caffemodel") == 1  # the second time comes from the cache
    assert again[1] == tmp_path / "cache" / "lenet_iter_10000.caffemodel"
    digits = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    assert_close_rel(model.predict(digits, verbose=0), opencv_lenet(digits))
    card = model.zoo_card
    assert (card["name"], card["license"], card["citation"]) == ("LeNet on MNIST", "MIT", "LeCun et al., 1998")
    assert card["references"] == [{"text": "Caffe", "url": "http://caffe.berkeleyvision.org"}]
    assert card["provenance"]["sha1"] == sha1_of(weights)
    assert card["provenance"]["caffemodel_url"].endswith("/lenet_iter_10000.caffemodel")


def test_caffemodel_in_the_directory_is_verified_not_downloaded(tmp_path):
    weights = fixture_path(LENET + "lenet_iter_10000.caffemodel")
    with serve(tmp_path) as server:
        directory = lenet_zoo(tmp_path, f"{server.url}/nothing.caffemodel", sha1_of(weights))
        shutil.copy(weights, directory / "lenet_iter_10000.caffemodel")
        _, caffemodel, _ = caffe_zoo.read_caffe_zoo(directory, progress=False)
        assert caffemodel == directory / "lenet_iter_10000.caffemodel"
        assert server.requests == []
        (directory / "lenet_iter_10000.caffemodel").write_bytes(b"\0" * 100)
        with pytest.raises(ConversionError, match=f"expected sha1 {sha1_of(weights)}"):
            caffe_zoo.read_caffe_zoo(directory, progress=False)
    assert (directory / "lenet_iter_10000.caffemodel").exists()  # a user's file is reported, never deleted


def test_real_readme_with_a_wrong_download_leaves_nothing(tmp_path):
    """The real AlexNet readme, its download pointed at a loopback server that serves the wrong bytes."""
    directory = tmp_path / "bvlc_alexnet"
    directory.mkdir()
    readme = fixture_path("bvlc/bvlc_alexnet/readme.md").read_text()
    shutil.copy(fixture_path("bvlc/bvlc_alexnet/deploy.prototxt"), directory / "deploy.prototxt")
    served = tmp_path / "served"
    served.mkdir()
    (served / "bvlc_alexnet.caffemodel").write_bytes(b"not the weights" * 1000)
    with serve(served) as server:
        (directory / "readme.md").write_text(readme.replace("http://dl.caffe.berkeleyvision.org", server.url))
        with pytest.raises(ConversionError, match="9116a64c0fbe4459d18f4bb6b56d647b63920377"):
            caffe_zoo.from_caffe_zoo(directory, progress=False)
        assert server.count("bvlc_alexnet.caffemodel") == 1
    downloads = tmp_path / "home" / "downloads"
    assert not [p for p in downloads.iterdir() if not p.name.endswith(".lock")]


def test_directory_problems(tmp_path):
    with pytest.raises(ConversionError, match="not a directory"):
        caffe_zoo.read_caffe_zoo(tmp_path / "absent")
    with pytest.raises(ConversionError, match="no readme.md"):
        caffe_zoo.read_caffe_zoo(tmp_path)
    shutil.copy(fixture_path("bvlc/bvlc_alexnet/readme.md"), tmp_path / "readme.md")
    (tmp_path / "train_val.prototxt").write_text("name: 'x'\n")
    with pytest.raises(ConversionError, match="train_val.prototxt"):
        caffe_zoo.read_caffe_zoo(tmp_path)


def convert_caffe_main():
    """`main` of tools/convert_caffe.py, the command behind `--zoo-dir`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_caffe", ROOT / "tools" / "convert_caffe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_convert_command_writes_model_and_card(tmp_path, capsys):
    import keras

    weights = fixture_path(LENET + "lenet_iter_10000.caffemodel")
    directory = lenet_zoo(tmp_path, "http://127.0.0.1:9/unused.caffemodel", sha1_of(weights))
    shutil.copy(weights, directory / "lenet_iter_10000.caffemodel")
    output = tmp_path / "out" / "lenet.keras"
    main = convert_caffe_main()
    assert main(["--zoo-dir", str(directory), "-o", str(output)]) == 0
    assert "lenet.card.json" in capsys.readouterr().out
    card = json.loads((tmp_path / "out" / "lenet.card.json").read_text())
    assert card["license"] == "MIT" and card["provenance"]["gist_id"] is None
    digits = np.random.default_rng(3).uniform(0, 1, (1, 28, 28, 1)).astype(np.float32)
    assert_close_rel(keras.saving.load_model(output).predict(digits, verbose=0), opencv_lenet(digits))
    assert main(["--zoo-dir", str(tmp_path / "absent")]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: ")


def test_readme_file_names_cannot_leave_the_directory(tmp_path):
    fields = {"caffemodel": "../../elsewhere/net.caffemodel", "caffemodel_url": "http://127.0.0.1:9/a/b/"}
    assert caffe_zoo._local_candidates(tmp_path, fields) == [tmp_path / "net.caffemodel"]


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("scheme", ["file", "ftp", "data", "javascript"])
def test_a_readme_cannot_make_keras_zoo_copy_a_local_file(tmp_path, scheme, cache):
    """A readme from anywhere naming a local file (or another scheme) as its caffemodel_url: refused with one
    error naming the readme and the URL; nothing is copied into keras_zoo's folders."""
    secret = tmp_path / "private" / "lenet_iter_10000.caffemodel"
    secret.parent.mkdir()
    shutil.copy(fixture_path(LENET + "lenet_iter_10000.caffemodel"), secret)
    url = {"file": secret.as_uri(), "ftp": "ftp://127.0.0.1/lenet_iter_10000.caffemodel",
           "data": "data:application/octet-stream;base64,AAAA", "javascript": "javascript:alert(1)"}[scheme]
    directory = lenet_zoo(tmp_path, url, sha1_of(secret))
    cache_dir = tmp_path / "cache" if cache else None
    with pytest.raises(ConversionError) as error:
        caffe_zoo.from_caffe_zoo(directory, cache_dir=cache_dir, progress=False)
    message = str(error.value)
    assert str(directory / "readme.md") in message and url in message and "http" in message
    written = [path for folder in (tmp_path / "home", tmp_path / "cache") for path in folder.rglob("*")
               if path.is_file() and not path.name.endswith(".lock")]
    assert written == [] and not (directory / "lenet_iter_10000.caffemodel").exists()


def test_a_local_caffemodel_is_verified_once(tmp_path, monkeypatch):
    """The caffemodel in a model-zoo directory is SHA1-verified on first use, then remembered (not hashed
    again until it changes)."""
    from keras_zoo import downloads

    weights = fixture_path(LENET + "lenet_iter_10000.caffemodel")
    directory = lenet_zoo(tmp_path, "http://127.0.0.1:9/unused.caffemodel", sha1_of(weights))
    shutil.copy(weights, directory / "lenet_iter_10000.caffemodel")
    read = []
    original = downloads._digests
    monkeypatch.setattr(downloads, "_digests", lambda path, kinds: read.append(path) or original(path, kinds))
    for _ in range(2):
        assert caffe_zoo.read_caffe_zoo(directory, progress=False)[1] == directory / "lenet_iter_10000.caffemodel"
    assert len(read) == 1
