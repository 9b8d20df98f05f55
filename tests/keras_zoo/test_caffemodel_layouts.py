"""Caffemodels in the layouts Caffe and its tools write, loaded by layer name into the zoo builders and
converted with their prototxt:

* weights-only: each layer only ``name``, ``type`` and ``blobs`` (net-surgery scripts, some tools);
* what Caffe's own ``Net::ToProto`` (pycaffe's ``net.save``) writes: every layer's parameters with its ``phase``,
  the ``Input`` layer Caffe makes of an ``input:``/``input_dim`` header (upgrade_proto.cpp UpgradeNetInput: named
  "input", the input blobs as its tops) and the ``Split`` layers it inserts for blobs read more than once
  (insert_splits.cpp: layer ``{blob}_{producer}_{top index}_split``, tops ``{that}_{k}``; readers renamed).

Both must give the model the full prototxt-style file gives (the layout the builders always loaded)."""

import keras
import numpy as np
import pytest
from google.protobuf import text_format

import keras_zoo
from converters.caffe import schema
from converters.errors import ConversionError
from converters.writers.caffe import blob_proto, length_delimited, write_caffemodel
from keras_zoo.convert import from_caffe
from keras_zoo.layer_makers import keras_name
from keras_zoo.models import alexnet, googlenet
from tests.helpers import assert_close_rel, fixture_path, load_tool

GOOGLENET = "bvlc/bvlc_googlenet/deploy.prototxt"
GOOGLENET_INPUT_DIM = "bvlc/bvlc_googlenet/deploy_v2_input_dim.prototxt"  # the `input:` + `input_dim` header


def numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def random_blobs(arch, model, seed=0):
    """``{layer: (Caffe type, [blobs in Caffe layouts])}`` for the convolutions and fully connected layers of a
    zoo architecture that ``model`` has, He-scaled so that activations stay finite."""
    rng = np.random.default_rng(seed)
    names = {layer.name for layer in model.layers}
    blobs = {}
    for node in arch.graph(arch.classes).nodes:
        if node.op not in ("conv", "dense") or keras_name(node.name) not in names:
            continue
        shape = model.get_layer(keras_name(node.name)).kernel.shape  # (kh, kw, cin, cout) or (in, out)
        kernel = rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[:-1])))
        bias = rng.uniform(-0.1, 0.1, shape[-1]).astype(np.float32)
        caffe_kernel = kernel.transpose(3, 2, 0, 1) if node.op == "conv" else kernel.T  # (out, in, kh, kw), (out, in)
        blobs[node.name] = ("Convolution" if node.op == "conv" else "InnerProduct", [caffe_kernel, bias])
    return blobs


def write_weights_only(path, blobs):
    """A weights-only caffemodel: LayerParameter name, type and blobs, nothing else."""
    return write_caffemodel(path, [(name, kind, arrays) for name, (kind, arrays) in blobs.items()])


def _parse(prototxt):
    net = schema.NetParameter()
    text_format.Parse(prototxt.read_text(), net)
    return net


def _serialize(net, layers, blobs, path):
    """NetParameter bytes: the net's header, then each layer with its blobs (field 7) appended."""
    header = schema.NetParameter()
    header.CopyFrom(net)
    del header.layer[:]
    out = bytearray(header.SerializeToString())
    for layer in layers:
        arrays = blobs.get(layer.name, (None, ()))[1]
        out += length_delimited(100, layer.SerializeToString()
                                + b"".join(length_delimited(7, blob_proto(array)) for array in arrays))
    path.write_bytes(bytes(out))
    return path


def write_prototxt_style(prototxt, path, blobs):
    """The deploy prototxt's net as it is, with the blobs in its layers (the layout the builders always read)."""
    net = _parse(prototxt)
    return _serialize(net, list(net.layer), blobs, path)


def caffe_net_save(prototxt, path, blobs):
    """What Caffe's Net::ToProto writes for ``prototxt`` (a deploy net with an ``input:``/``input_dim``
    header): UpgradeNetInput, then InsertSplits, each layer's phase set to the net's (TEST), blobs appended."""
    net = _parse(prototxt)
    assert net.input and net.input_dim and not net.input_shape
    layers = []
    if net.input:  # UpgradeNetInput: one layer "input" whose tops are the inputs, input_param the shapes
        layer = schema.LayerParameter(name="input", type="Input", top=list(net.input))
        dims = list(net.input_dim)
        for index in range(len(net.input)):
            layer.input_param.shape.add().dim.extend(dims[4 * index:4 * index + 4])
        layers.append(layer)
        del net.input[:], net.input_dim[:]
    layers += [copy_of(layer) for layer in net.layer]
    layers = insert_splits(layers)
    for layer in layers:  # Net::Init: a layer without a phase inherits the net's
        layer.MergeFrom(schema.LayerParameter(phase="TEST"))
    return _serialize(net, layers, blobs, path), layers


def copy_of(layer):
    copy = schema.LayerParameter()
    copy.CopyFrom(layer)
    return copy


def insert_splits(layers):
    """Caffe's InsertSplits (insert_splits.cpp) for nets without inputs or loss weights: a Split layer after
    each top read by more than one bottom, its readers renamed to the Split's tops in order."""
    last_writer, readers = {}, {}
    sources = {}
    for i, layer in enumerate(layers):
        for j, blob in enumerate(layer.bottom):
            source = last_writer[blob]
            sources[(i, j)] = source
            readers[source] = readers.get(source, 0) + 1
        for j, blob in enumerate(layer.top):
            last_writer[blob] = (i, j)
    out, next_split = [], {}
    for i, layer in enumerate(layers):
        layer = copy_of(layer)
        for j, blob in enumerate(layer.bottom):
            producer, top_index = source = sources[(i, j)]
            if readers[source] > 1:
                k = next_split.get(source, 0)
                next_split[source] = k + 1
                layer.bottom[j] = f"{blob}_{layers[producer].name}_{top_index}_split_{k}"
        out.append(layer)
        for j, blob in enumerate(layer.top):
            count = readers.get((i, j), 0)
            if count > 1:
                name = f"{blob}_{layer.name}_{j}_split"
                out.append(schema.LayerParameter(name=name, type="Split", bottom=[blob],
                                                 top=[f"{name}_{k}" for k in range(count)]))
    return out


@pytest.fixture(scope="module")
def googlenet_files(tmp_path_factory):
    """GoogLeNet's random blobs in the three layouts: (blobs, prototxt-style, weights-only, Caffe's net.save,
    the net.save file's layers)."""
    directory = tmp_path_factory.mktemp("googlenet")
    blobs = random_blobs(googlenet.GOOGLENET_ARCH, keras_zoo.GoogLeNet(weights=None))
    full = write_prototxt_style(fixture_path(GOOGLENET), directory / "full.caffemodel", blobs)
    weights_only = write_weights_only(directory / "weights_only.caffemodel", blobs)
    saved, layers = caffe_net_save(fixture_path(GOOGLENET_INPUT_DIM), directory / "net_save.caffemodel", blobs)
    return blobs, full, weights_only, saved, layers


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(-120, 120, (2, 224, 224, 3)).astype(np.float32)


def test_the_net_save_emulation_has_caffes_input_and_split_layers(googlenet_files):
    *_, layers = googlenet_files
    assert (layers[0].name, layers[0].type, list(layers[0].top)) == ("input", "Input", ["data"])
    assert list(layers[0].input_param.shape[0].dim) == [10, 3, 224, 224]
    splits = {layer.name: list(layer.top) for layer in layers if layer.type == "Split"}
    # pool2/3x3_s2 feeds the four branches of inception_3a; each inception output feeds the next four
    assert splits["pool2/3x3_s2_pool2/3x3_s2_0_split"] == [f"pool2/3x3_s2_pool2/3x3_s2_0_split_{k}" for k in range(4)]
    assert "inception_3a/output_inception_3a/output_0_split" in splits
    assert len(splits) == 9  # pool2, pool3, pool4 and the outputs of inception 3a, 4a, 4b, 4c, 4d and 5a
    readers = [list(layer.bottom) for layer in layers if layer.name == "inception_3a/1x1"]
    assert readers == [["pool2/3x3_s2_pool2/3x3_s2_0_split_0"]]


@pytest.mark.parametrize("layout", ["weights_only", "net_save"])
def test_googlenet_loads_both_layouts_with_the_outputs_of_the_full_file(googlenet_files, images, layout):
    blobs, full, weights_only, saved, _ = googlenet_files
    path = weights_only if layout == "weights_only" else saved
    options = {"include_preprocessing": False, "classifier_activation": None}
    reference = keras_zoo.GoogLeNet(weights=str(full), **options)
    model = keras_zoo.GoogLeNet(weights=str(path), **options)
    y = numpy(keras_zoo.GoogLeNet(weights=None, **options)(images))  # untrained: a different function
    y_reference, y_model = numpy(reference(images)), numpy(model(images))
    assert np.isfinite(y_reference).all() and np.abs(y_reference - y).max() > 1e-3
    np.testing.assert_array_equal(y_model, y_reference)
    kind, (kernel, bias) = blobs["inception_4c/3x3"]  # what the file holds, read back independently
    np.testing.assert_array_equal(model.get_layer("inception_4c_3x3").kernel.numpy(), kernel.transpose(2, 3, 1, 0))
    features = keras_zoo.GoogLeNet(weights=str(path), include_top=False, include_preprocessing=False)
    full_features = keras_zoo.GoogLeNet(weights=str(full), include_top=False, include_preprocessing=False)
    np.testing.assert_array_equal(numpy(features(images[:1])), numpy(full_features(images[:1])))


def test_caffenet_weights_only_with_groups_strides_and_lrn(tmp_path):
    """CaffeNet's convolutions (stride 4, groups 2, pads) and LRNs are recorded nowhere in a weights-only file:
    they are the builder's; the blobs land in the layers of their names."""
    blobs = random_blobs(alexnet.CAFFENET_ARCH, keras_zoo.CaffeNet(weights=None, include_top=False))
    assert sorted(blobs) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    path = write_weights_only(tmp_path / "caffenet_convs.caffemodel", blobs)
    model = keras_zoo.CaffeNet(weights=str(path), include_top=False, include_preprocessing=False)
    for name, (_, (kernel, bias)) in blobs.items():
        np.testing.assert_array_equal(model.get_layer(name).kernel.numpy(), kernel.transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(model.get_layer(name).bias.numpy(), bias)
    assert model.get_layer("conv2").kernel.shape == (5, 5, 48, 256)  # group 2: half the input channels
    with pytest.raises(ConversionError, match=r"no weights for the model's layer\(s\) fc6, fc7, fc8") as error:
        keras_zoo.CaffeNet(weights=str(path), include_preprocessing=False)  # the top is not in the file
    assert str(path) in str(error.value)


def test_a_wrong_shape_names_file_layer_and_both_shapes(googlenet_files, tmp_path):
    blobs = dict(googlenet_files[0])
    kind, (kernel, bias) = blobs["inception_3b/5x5"]
    blobs["inception_3b/5x5"] = (kind, [kernel[:, :, :3, :3].copy(), bias])  # a 3x3 filter bank for a 5x5 layer
    path = write_weights_only(tmp_path / "wrong.caffemodel", blobs)
    with pytest.raises(ConversionError) as error:
        keras_zoo.GoogLeNet(weights=str(path))
    message = str(error.value)
    assert str(path) in message and "inception_3b/5x5" in message
    assert "(3, 3, 32, 96)" in message and "(5, 5, 32, 96)" in message


def test_a_layer_missing_from_the_file_is_named(googlenet_files, tmp_path):
    blobs = dict(googlenet_files[0])
    del blobs["inception_4a/pool_proj"]
    path = write_weights_only(tmp_path / "partial.caffemodel", blobs)
    with pytest.raises(ConversionError, match="inception_4a_pool_proj") as error:
        keras_zoo.GoogLeNet(weights=str(path))
    assert str(path) in str(error.value)


def test_structural_checks_apply_where_the_file_describes_the_layer(googlenet_files, tmp_path):
    blobs = googlenet_files[0]
    for field, change, expected in [("local_size: 5", "local_size: 3", "size=3"),
                                    ("stride: 2", "stride: 1", "strides")]:
        text = fixture_path(GOOGLENET_INPUT_DIM).read_text().replace(field, change, 1)
        prototxt = tmp_path / "changed.prototxt"
        prototxt.write_text(text)
        saved, _ = caffe_net_save(prototxt, tmp_path / "changed.caffemodel", blobs)
        with pytest.raises(ConversionError, match=expected) as error:
            keras_zoo.GoogLeNet(weights=str(saved))
        assert str(saved) in str(error.value) and "the networks differ" in str(error.value)


@pytest.mark.parametrize("layout", ["weights_only", "net_save"])
def test_convert_caffe_with_the_prototxt_reads_both_layouts(googlenet_files, images, layout, tmp_path, caplog):
    """tools/convert_caffe.py, prototxt + caffemodel: blobs matched by layer name; the Split (and Input) layers
    of Caffe's own file, which the prototxt lacks, are ignored without a word (they carry no weights)."""

    _, full, weights_only, saved, _ = googlenet_files
    caffemodel = weights_only if layout == "weights_only" else saved
    output = tmp_path / "googlenet.keras"
    with caplog.at_level("WARNING"):
        assert load_tool("convert_caffe").main([str(fixture_path(GOOGLENET)), str(caffemodel), "-o", str(output)]) == 0
    assert not [record for record in caplog.records if "not in the net" in record.getMessage()]
    converted = keras.saving.load_model(output)
    reference = keras_zoo.GoogLeNet(weights=str(full), include_preprocessing=False)
    assert_close_rel(converted(images[:1]), reference(images[:1]), tol=1e-5)


def test_caffes_own_file_converts_on_its_own_and_a_weights_only_one_says_what_it_needs(googlenet_files, images):
    """A caffemodel as the model file (the exporters' ``MODEL.caffemodel``): Caffe's net.save layout carries
    its net (Input and Split layers included); a weights-only file cannot, and says so."""
    _, full, weights_only, saved, _ = googlenet_files
    model = from_caffe(None, saved)
    assert model.input_shape == (None, 224, 224, 3)
    reference = keras_zoo.GoogLeNet(weights=str(full), include_preprocessing=False)
    assert_close_rel(model(images[:1]), reference(images[:1]), tol=1e-5)
    with pytest.raises(ConversionError, match="only its layers' weights") as error:
        from_caffe(None, weights_only)
    assert str(weights_only) in str(error.value) and "prototxt" in str(error.value)
