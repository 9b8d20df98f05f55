"""keras_zoo.downloads (fetch: mirror, resume, checksum, lock, offline error), keras_zoo.cache (the by-name cache)
and keras_zoo.weights (load_weights, convert_source, resolve_mean)."""

import dataclasses
import hashlib
import multiprocessing
import os
import shutil
import threading
import warnings
import zipfile

import h5py
import keras
import numpy as np
import pytest

from converters.errors import ConversionError
from keras_zoo import cache, downloads, weights
from keras_zoo.cards import FileSpec, InputSpec, ModelCard, WeightSource
from tests.helpers import fixture_path
from tests.http_server import serve

REAL_FILE = "mtcnn/det1.caffemodel"  # a real caffemodel serves as the "download"


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KERAS_ZOO_MIRROR", raising=False)
    monkeypatch.delenv("KERAS_ZOO_OFFLINE", raising=False)
    return tmp_path / "home"


@pytest.fixture
def served(tmp_path):
    """A directory with one real caffemodel, its md5, and the server serving it."""
    root = tmp_path / "www"
    root.mkdir()
    payload = fixture_path(REAL_FILE).read_bytes()
    (root / "det1.caffemodel").write_bytes(payload)
    return root, payload, hashlib.md5(payload).hexdigest()


def _spec(url, md5):
    return FileSpec("det1.caffemodel", url, md5=(md5,))


def _dead_url():
    """A loopback URL nobody listens on."""
    with serve(".") as server:
        url = server.url
    return url + "/det1.caffemodel"


def test_fetch_downloads_verifies_and_then_needs_no_network(served, zoo_home):
    root, payload, md5 = served
    with serve(root) as server:
        path = downloads.fetch(_spec(server.url + "/det1.caffemodel", md5), progress=False)
        assert server.count("det1.caffemodel") == 1
    assert path == zoo_home / "downloads" / "det1.caffemodel"
    assert path.read_bytes() == payload
    assert not path.with_name("det1.caffemodel.part").exists()
    # the server is gone: a cache hit must not touch the network
    assert downloads.fetch(_spec(_dead_url(), md5), progress=False) == path


def test_interrupted_transfer_resumes_with_range(served, zoo_home):
    root, payload, md5 = served
    with serve(root) as server:
        server.fail_after = 3000
        path = downloads.fetch(_spec(server.url + "/det1.caffemodel", md5), progress=False)
        ranges = [header for name, header in server.requests]
    assert path.read_bytes() == payload
    assert ranges == [None, "bytes=3000-"]


def test_part_file_left_by_a_failed_call_is_resumed_by_the_next(served, zoo_home, monkeypatch):
    root, payload, md5 = served
    monkeypatch.setattr(downloads, "ATTEMPTS", 1)
    with serve(root) as server:
        url = server.url + "/det1.caffemodel"
        server.fail_after = 2048
        with pytest.raises(downloads.WeightsUnavailable):
            downloads.fetch(_spec(url, md5), progress=False)
        part = zoo_home / "downloads" / "det1.caffemodel.part"
        assert part.read_bytes() == payload[:2048]
        assert not (zoo_home / "downloads" / "det1.caffemodel").exists()
        path = downloads.fetch(_spec(url, md5), progress=False)
        assert server.requests[-1][1] == "bytes=2048-"
    assert path.read_bytes() == payload


def test_server_ignoring_range_restarts_from_zero(served, zoo_home):
    root, payload, md5 = served
    folder = zoo_home / "downloads"
    folder.mkdir(parents=True)
    (folder / "det1.caffemodel.part").write_bytes(b"stale bytes from elsewhere")
    with serve(root, ranges=False) as server:
        path = downloads.fetch(_spec(server.url + "/det1.caffemodel", md5), progress=False)
    assert path.read_bytes() == payload


def test_checksum_mismatch_deletes_and_names_the_expected_checksum(served, zoo_home):
    root, _, _ = served
    wrong = "0123456789abcdef0123456789abcdef"
    with serve(root) as server:
        with pytest.raises(ConversionError, match=f"expected md5 {wrong}") as error:
            downloads.fetch(_spec(server.url + "/det1.caffemodel", wrong), progress=False)
    assert not isinstance(error.value, downloads.WeightsUnavailable)
    assert "deleted" in str(error.value)
    assert list((zoo_home / "downloads").glob("det1.caffemodel*")) == []


def test_sha1_is_verified_too(served):
    root, payload, _ = served
    sha1 = hashlib.sha1(payload).hexdigest()
    with serve(root) as server:
        spec = FileSpec("det1.caffemodel", server.url + "/det1.caffemodel", sha1=(sha1,))
        assert downloads.fetch(spec, progress=False).read_bytes() == payload
    with pytest.raises(ConversionError, match="expected sha1 " + "f" * 40):
        downloads.verify(fixture_path(REAL_FILE), sha1="f" * 40)


def test_offline_error_says_which_file_to_put_where(zoo_home):
    with pytest.raises(downloads.WeightsUnavailable) as error:
        downloads.fetch(_spec(_dead_url(), "ab" * 16), progress=False)
    message = str(error.value)
    assert "det1.caffemodel" in message
    assert str(zoo_home / "downloads") in message
    assert "KERAS_ZOO_MIRROR" in message and "md5 " + "ab" * 16 in message
    assert not (zoo_home / "downloads" / "det1.caffemodel").exists()


def test_offline_switch_skips_the_url(served, monkeypatch):
    root, _, md5 = served
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    with serve(root) as server:
        with pytest.raises(downloads.WeightsUnavailable, match="KERAS_ZOO_OFFLINE"):
            downloads.fetch(_spec(server.url + "/det1.caffemodel", md5), progress=False)
        assert server.requests == []


def test_mirror_url_is_tried_before_the_original_host(served, monkeypatch):
    root, payload, md5 = served
    with serve(root) as mirror:
        monkeypatch.setenv("KERAS_ZOO_MIRROR", mirror.url + "/")
        path = downloads.fetch(_spec(_dead_url(), md5), progress=False)
        assert mirror.count("det1.caffemodel") == 1
    assert path.read_bytes() == payload


def test_mirror_missing_the_file_falls_back_to_the_url(served, tmp_path, monkeypatch):
    root, payload, md5 = served
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve(empty) as mirror, serve(root) as origin:
        monkeypatch.setenv("KERAS_ZOO_MIRROR", mirror.url)
        path = downloads.fetch(_spec(origin.url + "/det1.caffemodel", md5), progress=False)
        assert mirror.count("det1.caffemodel") == 1 and origin.count("det1.caffemodel") == 1
    assert path.read_bytes() == payload


def test_mirror_directory_is_used_in_place_and_never_deleted(served, tmp_path, monkeypatch):
    root, payload, md5 = served
    monkeypatch.setenv("KERAS_ZOO_MIRROR", str(root))
    assert downloads.fetch(_spec(_dead_url(), md5), progress=False) == root / "det1.caffemodel"
    with pytest.raises(ConversionError, match="expected md5 " + "0" * 32):
        downloads.fetch(_spec(_dead_url(), "0" * 32), progress=False)
    assert (root / "det1.caffemodel").read_bytes() == payload


def _fetch_in_child(spec, queue):
    try:
        queue.put(str(downloads.fetch(spec, progress=False)))
    except Exception as error:  # reported to the parent
        queue.put(f"error: {error}")


def test_two_processes_fetching_at_once_share_one_download(served, zoo_home):
    root, payload, md5 = served
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with serve(root, delay=0.1, chunk=4096) as server:  # about a second per transfer
        spec = _spec(server.url + "/det1.caffemodel", md5)
        children = [context.Process(target=_fetch_in_child, args=(spec, queue)) for _ in range(2)]
        for child in children:
            child.start()
        results = [queue.get(timeout=60) for _ in children]
        for child in children:
            child.join(timeout=60)
        assert server.count("det1.caffemodel") == 1
    assert results == [str(zoo_home / "downloads" / "det1.caffemodel")] * 2
    assert (zoo_home / "downloads" / "det1.caffemodel").read_bytes() == payload


# ---------------------------------------------------------------------------------------------------------
# the by-name cache
# ---------------------------------------------------------------------------------------------------------
def _small_model(top=True, units=3):
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if top:
        x = keras.layers.Dense(units, name="fc")(x)
    return keras.Model(inputs, x)


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])


def test_cache_round_trip_by_layer_name(tmp_path):
    source = _small_model()
    _randomize(source, 1)
    path = tmp_path / "cache.h5"
    cache.save_by_name(source, path)
    assert cache.is_by_name_file(path)

    full = _small_model()
    assert cache.load_by_name(full, path) == ["conv1", "bn1", "fc"]
    for a, b in zip(full.weights, source.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    headless = _small_model(top=False)  # include_top=False: loads what it has
    assert cache.load_by_name(headless, path) == ["conv1", "bn1"]
    np.testing.assert_array_equal(headless.get_layer("conv1").kernel.numpy(), source.get_layer("conv1").kernel.numpy())


def test_cache_skip_and_shape_mismatch(tmp_path):
    source = _small_model()
    _randomize(source, 2)
    path = tmp_path / "cache.h5"
    cache.save_by_name(source, path, names={"conv1", "fc"})
    other_classes = _small_model(units=5)
    initial_fc = other_classes.get_layer("fc").kernel.numpy().copy()
    assert cache.load_by_name(other_classes, path, skip={"fc"}) == ["conv1"]
    np.testing.assert_array_equal(other_classes.get_layer("fc").kernel.numpy(), initial_fc)
    with pytest.raises(ConversionError, match="layer 'fc'.*skip="):
        cache.load_by_name(_small_model(units=5), path)


def test_load_weights_paths(tmp_path):
    source = _small_model()
    _randomize(source, 3)
    keras_weights = tmp_path / "model.weights.h5"
    source.save_weights(keras_weights)
    target = _small_model()
    assert weights.load_weights(target, ModelCard("Test"), str(keras_weights)) is None
    np.testing.assert_array_equal(target.get_layer("fc").kernel.numpy(), source.get_layer("fc").kernel.numpy())
    assert weights.load_weights(target, ModelCard("Test"), None) is None
    with pytest.raises(ConversionError, match="no such weights file"):
        weights.load_weights(target, ModelCard("Test"), str(tmp_path / "absent.weights.h5"))
    with warnings.catch_warnings():  # Keras' warning of layers kept as built does not come before the error
        warnings.simplefilter("error")
        with pytest.raises(ConversionError, match="model.weights.h5.*cannot load into"):
            weights.load_weights(_small_model(units=7), ModelCard("Test"), str(keras_weights))


@keras.saving.register_keras_serializable("tests_keras_zoo")
class _NestedPair(keras.layers.Layer):
    """Two Dense layers held in a list inside a list: Keras saves their weights under a ``container`` group."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.parts = [[keras.layers.Dense(3, name="first"), keras.layers.Dense(3, name="second")]]

    def build(self, input_shape):
        for part in self.parts[0]:
            part.build(input_shape)

    def call(self, x):
        return self.parts[0][1](self.parts[0][0](x))


def _nested_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, _NestedPair(name="pair")(inputs))


def _without_container(weights_file):
    """Deletes the one ``container`` group of a Keras weights file."""
    with h5py.File(weights_file, "r+") as f:
        groups = []
        f.visit(groups.append)
        (container,) = [name for name in groups if name.endswith("/container")]
        del f[container]


def test_keras_files_that_leave_layers_as_built_are_refused(tmp_path):
    """Keras completes a load whose file lacks a nested container's group, keeping those layers' initial values
    with only a warning (the file of an older Keras, or an edited one): keras_zoo refuses it, naming the file."""
    source = _nested_model()
    _randomize(source, 4)
    weights_file, model_file = tmp_path / "pair.weights.h5", tmp_path / "pair.keras"
    source.save_weights(weights_file)
    source.save(model_file)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        intact = weights.load_keras_file(model_file)
        into = weights.load_keras_file(weights_file, into=_nested_model())
    for model in (intact, into):
        for a, b in zip(model.weights, source.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())

    _without_container(weights_file)
    with pytest.raises(ConversionError, match=r"pair\.weights\.h5.*initial values"):
        weights.load_keras_file(weights_file, into=_nested_model())
    with pytest.raises(ConversionError, match=r"pair\.weights\.h5.*initial values"):  # through the builders' call
        weights.load_weights(_nested_model(), ModelCard("Test"), str(weights_file))

    edited = tmp_path / "edited.keras"
    with zipfile.ZipFile(model_file) as archive, zipfile.ZipFile(edited, "w") as out:
        for member in archive.namelist():
            data = archive.read(member)
            if member == "model.weights.h5":
                (tmp_path / member).write_bytes(data)
                _without_container(tmp_path / member)
                data = (tmp_path / member).read_bytes()
            out.writestr(member, data)
    with pytest.raises(ConversionError, match=r"edited\.keras.*initial values"):
        weights.load_keras_file(edited)


def test_broken_keras_files_get_one_clear_error(tmp_path):
    model_file = tmp_path / "small.keras"
    _small_model().save(model_file)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(model_file.read_bytes()[:model_file.stat().st_size // 2])
    with pytest.raises(ConversionError, match=r"truncated\.keras.*not a \.keras archive"):
        weights.load_keras_file(truncated)
    with pytest.raises(ConversionError, match=r"absent\.keras.*no such Keras file"):
        weights.load_keras_file(tmp_path / "absent.keras")
    not_keras = tmp_path / "other.keras"
    with zipfile.ZipFile(not_keras, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    with pytest.raises(ConversionError, match=r"other\.keras.*cannot load the model"):
        weights.load_keras_file(not_keras)


@pytest.fixture
def lenet_card(tmp_path):
    """A test card whose one source is the real LeNet caffemodel (served by the test); every build of its
    reference model (``build``, what the source is converted into) is recorded in a file (so that child
    processes' builds count too)."""
    caffe = pytest.importorskip("converters.caffe")
    builder = pytest.importorskip("keras_zoo.builder")

    prototxt = fixture_path("small_caffemodels/lenet/lenet.prototxt")
    caffemodel = fixture_path("small_caffemodels/lenet/lenet_iter_10000.caffemodel")
    root = tmp_path / "lenet"
    root.mkdir()
    shutil.copy(caffemodel, root / "lenet.caffemodel")
    builds = tmp_path / "builds.log"
    builds.touch()

    def build():
        with open(builds, "a") as log:
            log.write(card.name + "\n")
        return builder.build_model(caffe.read_caffe(prototxt))

    with serve(root, delay=0.01, chunk=65536) as server:
        source = WeightSource(name="caffe", file=FileSpec("lenet.caffemodel", server.url + "/lenet.caffemodel",
                                                          md5=(hashlib.md5(caffemodel.read_bytes()).hexdigest(),)),
                              format="caffemodel", default=True)
        card = ModelCard("LeNetTest", weights=(source,))
        yield {"card": card, "source": source, "server": server, "builds": builds, "build": build,
               "untrained": lambda: builder.build_model(caffe.read_caffe(prototxt)),
               "reference": builder.build_model(caffe.read_caffe(prototxt, caffemodel))}


def test_load_weights_converts_once_then_reads_the_cache(lenet_card, zoo_home):
    card, source, server = lenet_card["card"], lenet_card["source"], lenet_card["server"]
    model = lenet_card["untrained"]()
    assert weights.load_weights(model, card, "imagenet", reference=lenet_card["build"], progress=False) is source
    assert server.count("lenet.caffemodel") == 1
    reference = lenet_card["reference"]
    for layer in reference.layers:
        for a, b in zip(model.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert cache.cache_path(card, source).exists()

    os.remove(zoo_home / "downloads" / "lenet.caffemodel")  # the cache alone must do now
    again = lenet_card["untrained"]()
    weights.load_weights(again, card, "caffe", reference=lenet_card["build"], progress=False)
    assert lenet_card["builds"].read_text().split() == ["LeNetTest"]
    assert server.count("lenet.caffemodel") == 1
    np.testing.assert_array_equal(again.get_layer("ip2").get_weights()[0], reference.get_layer("ip2").get_weights()[0])


def test_two_converters_at_once_convert_once(lenet_card, zoo_home):
    """Two threads (each opens the lock file itself, so flock makes them wait as it makes processes wait;
    forked children cannot build Keras models safely)."""
    card, source = lenet_card["card"], lenet_card["source"]
    results = []
    threads = [threading.Thread(target=lambda: results.append(str(weights.convert_source(
                   card, source, reference=lenet_card["build"], progress=False))))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [str(cache.cache_path(card, source))] * 2
    assert lenet_card["builds"].read_text().split() == ["LeNetTest"]
    assert lenet_card["server"].count("lenet.caffemodel") == 1
    model = lenet_card["untrained"]()
    assert cache.load_by_name(model, cache.cache_path(card, source)) == ["conv1", "conv2", "ip1", "ip2"]
    assert [p.name for p in cache.cache_path(card, source).parent.iterdir() if not p.name.startswith(".")] == \
        [cache.cache_path(card, source).name]  # no temporary file left


def test_a_zoo_card_fetches_converts_and_caches_its_original_file(tmp_path, zoo_home, monkeypatch):
    """GoogLeNet's card with its caffemodel replaced by one of random values written in Caffe's layout (the
    net definition of the real deploy prototxt with those blobs, as Caffe saves a model)."""
    pytest.importorskip("converters.caffe")
    import keras_zoo
    from keras_zoo import cards
    from keras_zoo.builder import keras_name
    from keras_zoo.models import googlenet
    from tests.keras_zoo.test_models_parity import write_full_caffemodel

    prototxt = fixture_path("bvlc/bvlc_googlenet/deploy.prototxt")
    untrained = keras_zoo.GoogLeNet(weights=None)
    rng = np.random.default_rng(0)
    blobs, expected = {}, {}
    for node in googlenet.GOOGLENET_ARCH.graph(1000).nodes:
        if node.op not in ("conv", "dense"):
            continue
        kernel = rng.standard_normal(untrained.get_layer(keras_name(node.name)).kernel.shape).astype("float32")
        bias = rng.standard_normal(kernel.shape[-1]).astype("float32")
        # Caffe stores a convolution as (out, in, kh, kw) and an InnerProduct as (out, in)
        blobs[node.name] = [kernel.transpose(3, 2, 0, 1) if node.op == "conv" else kernel.T, bias]
        expected[keras_name(node.name)] = (kernel, bias)
    root = tmp_path / "zoo"
    root.mkdir()
    original = write_full_caffemodel(prototxt, root / "bvlc_googlenet.caffemodel", blobs=blobs)
    card = next(card for card in cards.CARDS if card.name == "GoogLeNet")
    source = card.source("caffe")

    with serve(root) as server:
        served = dataclasses.replace(source, file=dataclasses.replace(
            source.file, url=server.url + "/bvlc_googlenet.caffemodel",
            sha1=(hashlib.sha1(original.read_bytes()).hexdigest(),)))
        served_card = dataclasses.replace(card, weights=tuple(served if s is source else s for s in card.weights))
        monkeypatch.setattr(googlenet, "GOOGLENET_ARCH", dataclasses.replace(googlenet.GOOGLENET_ARCH,
                                                                             card=served_card))
        model = keras_zoo.GoogLeNet(weights="imagenet")
        assert server.count("bvlc_googlenet.caffemodel") == 1
    for name, (kernel, bias) in expected.items():
        np.testing.assert_array_equal(model.get_layer(name).kernel.numpy(), kernel, err_msg=name)
        np.testing.assert_array_equal(model.get_layer(name).bias.numpy(), bias, err_msg=name)
    assert cache.cache_path(card, source).exists()

    os.remove(zoo_home / "downloads" / "bvlc_googlenet.caffemodel")  # from now on the cache alone
    features = keras_zoo.GoogLeNet(weights="imagenet", include_top=False)
    last_conv = "inception_5b_pool_proj"
    np.testing.assert_array_equal(features.get_layer(last_conv).kernel.numpy(), expected[last_conv][0])


def test_meta_mean_comes_from_the_mat_file_once(tmp_path, monkeypatch):
    pytest.importorskip("converters.matconvnet")
    import scipy.io

    real = fixture_path("matconvnet_mat/plate_simplenn/net-epoch-50.mat")
    source = WeightSource(name="matconvnet",
                          file=FileSpec("net-epoch-50.mat", md5=("fd6db51c1e14983165f73fad196f3b29",)),
                          format="mat", input=InputSpec(mean="meta"))
    assert weights.resolve_mean(source, allow_fetch=False) is None
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / source.file.filename).symlink_to(real)
    monkeypatch.setenv("KERAS_ZOO_MIRROR", str(mirror))
    mean = weights.resolve_mean(source)
    stored = scipy.io.loadmat(real, squeeze_me=True, struct_as_record=False)["net"].meta.normalization.averageImage
    assert stored.shape == (20, 20)  # a grey average image: one channel
    np.testing.assert_array_equal(mean, stored[np.newaxis].astype(np.float32))
    monkeypatch.delenv("KERAS_ZOO_MIRROR")
    np.testing.assert_array_equal(weights.resolve_mean(source, allow_fetch=False), mean)  # cached now


def test_a_source_may_accept_several_checksums(tmp_path):
    """MatConvNet re-exported its models: a .mat source accepts the seed's MD5 and the re-export's."""
    from keras_zoo import cards

    path = tmp_path / "net.mat"
    path.write_bytes(b"re-exported weights")
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    downloads.verify(path, md5=["0" * 32, actual])
    with pytest.raises(ConversionError, match=f"expected md5 {'1' * 32} or {'2' * 32}"):
        downloads.verify(path, md5=["1" * 32, "2" * 32])
    resnet = cards.get_card("resnet-50").source("matconvnet")
    assert resnet.file.md5 == ("73a3e51b75230d431c88bb795e14e91d", "d72aa76a8ddf8bd96e405ac0ba827724")


# ---------------------------------------------------------------------------------------------------------
# files in the downloads folder: verified once before their first use, remembered, never deleted
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def hashings(monkeypatch):
    """The files downloads.py hashes, one entry per reading of a file (however many checksum kinds)."""
    read = []
    original = downloads._digests

    def counting(path, kinds):
        read.append(os.path.basename(path))
        return original(path, kinds)

    monkeypatch.setattr(downloads, "_digests", counting)
    return read


def test_a_wrong_file_put_into_the_downloads_folder_is_refused_and_kept(served, zoo_home):
    root, payload, md5 = served
    wrong = b"not the weights" * 100
    placed = zoo_home / "downloads" / "det1.caffemodel"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(wrong)
    with serve(root) as server:
        for _ in range(2):  # the second time from the remembered digest: refused all the same
            with pytest.raises(ConversionError) as error:
                downloads.fetch(_spec(server.url + "/det1.caffemodel", md5), progress=False)
            message = str(error.value)
            assert str(placed) in message
            assert f"expected md5 {md5}" in message and f"md5 is {hashlib.md5(wrong).hexdigest()}" in message
            assert "kept" in message
        assert server.requests == []  # nothing downloaded over the user's file
    assert placed.read_bytes() == wrong


def test_a_right_file_in_the_downloads_folder_is_hashed_once(served, zoo_home, hashings):
    _, payload, md5 = served
    placed = zoo_home / "downloads" / "det1.caffemodel"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(payload)
    spec = _spec(_dead_url(), md5)
    assert downloads.fetch(spec, progress=False) == placed
    assert downloads.fetch(spec, progress=False) == placed
    assert hashings == ["det1.caffemodel"]
    # a card asking for another checksum kind: that one is computed (once) too
    sha1_spec = FileSpec("det1.caffemodel", None, md5=(md5,), sha1=(hashlib.sha1(payload).hexdigest(),))
    downloads.fetch(sha1_spec, progress=False)
    downloads.fetch(sha1_spec, progress=False)
    assert hashings == ["det1.caffemodel"] * 2


def test_a_file_changed_after_its_verification_is_verified_again(served, zoo_home, hashings):
    _, payload, md5 = served
    placed = zoo_home / "downloads" / "det1.caffemodel"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(payload)
    spec = _spec(None, md5)
    downloads.fetch(spec, progress=False)
    stat = placed.stat()
    os.utime(placed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, other mtime
    downloads.fetch(spec, progress=False)
    assert hashings == ["det1.caffemodel"] * 2
    placed.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))  # one bit flipped (same size, later mtime)
    os.utime(placed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    with pytest.raises(ConversionError, match=f"expected md5 {md5}"):
        downloads.fetch(spec, progress=False)
    assert len(hashings) == 3 and placed.exists()


def test_a_download_is_verified_while_downloaded_and_not_hashed_again(served, zoo_home, hashings):
    root, payload, md5 = served
    with serve(root) as server:
        path = downloads.fetch(_spec(server.url + "/det1.caffemodel", md5), progress=False)
    assert hashings == ["det1.caffemodel.part"]
    assert downloads.fetch(_spec(_dead_url(), md5), progress=False) == path
    assert hashings == ["det1.caffemodel.part"]


def test_a_file_without_a_published_checksum_is_said_to_be_unverified_once(served, zoo_home, caplog):
    _, payload, _ = served
    placed = zoo_home / "downloads" / "det1.caffemodel"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(payload)
    spec = FileSpec("det1.caffemodel", None)
    with caplog.at_level("WARNING", logger="keras_zoo.downloads"):
        downloads.fetch(spec, progress=False)
        downloads.fetch(spec, progress=False)
    warnings = [record.getMessage() for record in caplog.records if "not verified" in record.getMessage()]
    assert len(warnings) == 1 and "det1.caffemodel" in warnings[0]


def test_a_mirror_directory_file_is_verified_once_too(served, monkeypatch, hashings):
    root, payload, md5 = served
    monkeypatch.setenv("KERAS_ZOO_MIRROR", root.as_uri())  # a file:// mirror: the user's own choice
    for _ in range(2):
        assert downloads.fetch(_spec(None, md5), progress=False) == root / "det1.caffemodel"
    assert hashings == ["det1.caffemodel"]


@pytest.mark.parametrize("url", ["file:///etc/hostname", "ftp://127.0.0.1/det1.caffemodel",
                                 "data:application/octet-stream;base64,AAAA", "javascript:alert(1)"])
def test_a_card_url_must_be_http_or_https(url, zoo_home):
    with pytest.raises(ConversionError, match="only http and https URLs are downloaded") as error:
        downloads.fetch(FileSpec("det1.caffemodel", url), progress=False)
    assert url in str(error.value) and not isinstance(error.value, downloads.WeightsUnavailable)
    assert not (zoo_home / "downloads" / "det1.caffemodel").exists()
