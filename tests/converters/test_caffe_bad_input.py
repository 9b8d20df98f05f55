"""Bad Caffe input: every problem is one ConversionError naming the file, the layer and what was wrong."""

import pathlib
import random

import numpy as np
import pytest

from converters.caffe import read_caffe, read_caffemodel, read_mean_file
from converters.errors import ConversionError
from converters.writers.caffe import blob_proto, caffemodel_bytes, length_delimited, string_field, write_caffemodel
from tests.helpers import fixture_path

NET = """
input: "data" input_dim: 1 input_dim: 2 input_dim: 6 input_dim: 6
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param { num_output: 3 kernel_size: 1 bias_term: false } }
layer { name: "fc" type: "InnerProduct" bottom: "conv2" top: "fc" inner_product_param { num_output: 5 } }
"""


def good_layers():
    rng = np.random.default_rng(1)
    return [("conv1", "Convolution", [rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4)]),
            ("conv2", "Convolution", [rng.normal(size=(3, 4, 1, 1))]),
            ("fc", "InnerProduct", [rng.normal(size=(5, 48)), rng.normal(size=5)])]


def as_float32(layers):
    return [(name, kind, [np.asarray(blob, np.float32) for blob in blobs]) for name, kind, blobs in layers]


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(NET)
    return path


def raises(call, *fragments):
    with pytest.raises(ConversionError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert str(fragment) in message, message
    return info.value


def test_the_generated_net_is_fine(net, tmp_path):
    model = write_caffemodel(tmp_path / "ok.caffemodel", as_float32(good_layers()))
    assert read_caffe(net, model).node("fc").weights["kernel"].shape == (48, 5)


@pytest.mark.parametrize("cut", [1, 100, 0.5, -1])
def test_truncated_caffemodel(cut, tmp_path):
    data = fixture_path("mtcnn/det1.caffemodel").read_bytes()
    end = int(len(data) * cut) if isinstance(cut, float) else cut % len(data)
    truncated = tmp_path / "det1.caffemodel"
    truncated.write_bytes(data[:end])
    raises(lambda: read_caffe(fixture_path("mtcnn/det1.prototxt"), truncated), truncated)
    raises(lambda: read_caffemodel(truncated), truncated)


def test_html_page_saved_as_caffemodel(tmp_path):
    html = fixture_path("negative/res10_300x300_ssd_iter_140000.caffemodel.HTML")
    raises(lambda: read_caffemodel(html), html, "not a valid Caffe binary NetParameter")
    raises(lambda: read_caffe(fixture_path("mtcnn/det1.prototxt"), html), html)
    raises(lambda: read_mean_file(html), html, "not a Caffe BlobProto")


def test_empty_and_layerless_caffemodels(net, tmp_path):
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    raises(lambda: read_caffe(net, empty), empty, "empty")
    nameonly = tmp_path / "nameonly.caffemodel"
    nameonly.write_bytes(string_field(1, "just a name"))
    raises(lambda: read_caffemodel(nameonly), nameonly, "holds no layers")


def test_prototxt_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\ninput: "data"\nlayer { name: "a" type: "ReLU" bottom: "data" top: "a"\n'
                    'layer { name: "b" }\n')
    # parsed strictly, as Caffe does: the unclosed layer makes the next 'layer' an unknown field of the first
    raises(lambda: read_caffe(path), path, "line 4:", "layer 'a' (ReLU)", "unknown field 'layer'", "'}' missing")
    path.write_text('name: "x"\ninput: "data"\nlayer { name: "a"\n')
    raises(lambda: read_caffe(path), path, "syntax error at line")
    path.write_text('name: "x"\ninput: "data"\nlayer {{ name: "a" }\n')
    raises(lambda: read_caffe(path), path, "line 3")
    path.write_bytes(b'name: "x"\n\xff\xfe\n')
    raises(lambda: read_caffe(path), path, "line 2")


def test_missing_weights_name_the_caffemodel_and_layer(net, tmp_path):
    layers = as_float32(good_layers())
    model = write_caffemodel(tmp_path / "partial.caffemodel", [layers[0], layers[2]])
    raises(lambda: read_caffe(net, model), model, "layer 'conv2' (Convolution)", "no weights")


@pytest.mark.parametrize("layer,blobs,expected", [
    ("conv1", [np.zeros((4, 2, 3, 2)), np.zeros(4)], "blob 0 has shape (4, 2, 3, 2), the prototxt implies "
                                                      "(4, 2, 3, 3)"),
    ("conv1", [np.zeros((4, 2, 3, 3)), np.zeros(5)], "blob 1 has shape (5,), the prototxt implies (4,)"),
    ("conv2", [np.zeros((3, 4, 1, 1)), np.zeros(3)], "the caffemodel has 2 blobs, the prototxt implies 1"),
    ("fc", [np.zeros((5, 47)), np.zeros(5)], "blob 0 has shape (5, 47), the prototxt implies (5, 48)"),
])
def test_shape_mismatch_names_both_shapes(net, tmp_path, layer, blobs, expected):
    layers = [(name, kind, blobs if name == layer else old) for name, kind, old in good_layers()]
    model = write_caffemodel(tmp_path / "wrong.caffemodel", as_float32(layers))
    raises(lambda: read_caffe(net, model), model, f"layer '{layer}'", expected)


def test_legacy_v1_blob_shapes_are_checked_too(net, tmp_path):
    layers = [(name, kind, blobs if name != "fc" else [np.zeros((5, 40)), np.zeros(5)])
              for name, kind, blobs in good_layers()]
    model = write_caffemodel(tmp_path / "v1.caffemodel", as_float32(layers), v1=True)
    raises(lambda: read_caffe(net, model), "layer 'fc'", "(1, 1, 5, 40)", "(5, 48)")


def test_blob_with_fewer_values_than_its_shape(net, tmp_path):
    shape_bytes = 8  # BlobShape field: key, length, packed key, length, 4 one-byte dims
    lying = (blob_proto(np.zeros((4, 2, 3, 4), np.float32))[:shape_bytes]       # says 96 values
             + blob_proto(np.zeros((4, 2, 3, 3), np.float32))[shape_bytes:])   # holds 72
    layer = string_field(1, "conv1") + string_field(2, "Convolution") + length_delimited(7, lying)
    model = tmp_path / "lying.caffemodel"
    model.write_bytes(length_delimited(100, layer))
    raises(lambda: read_caffe(net, model), model, "holds 72 values but its shape (4, 2, 3, 4) needs 96")


def test_unsupported_types_are_listed_before_any_other_work(tmp_path):
    path = tmp_path / "fork.prototxt"
    path.write_text("""
        input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
        layers { name: "ps" type: PSROI_POOLING bottom: "data" top: "ps" }
        layers { name: "relu" type: RELU bottom: "ps" top: "ps" }
        layers { name: "roi" type: ROI_POOLING bottom: "ps" top: "roi" roi_pooling_param { pooled_w: 6 } }
        layers { name: "im" type: IM2COL bottom: "roi" top: "im" }""")
    raises(lambda: read_caffe(path, tmp_path / "never-read.caffemodel"), path,
           "unsupported layer type(s): 'ps' (PSROI_POOLING), 'im' (Im2col)")  # early Fast R-CNN's ROI_POOLING converts
    v2 = tmp_path / "fork2.prototxt"
    v2.write_text('input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                  'layer { name: "p" type: "Python" bottom: "data" top: "p" }\n'
                  'layer { name: "n" type: "BN" bottom: "p" top: "n" bn_param { eps: 0.001 } }')
    raises(lambda: read_caffe(v2), "'p' (Python), 'n' (BN)")


def test_missing_files(tmp_path, net):
    raises(lambda: read_caffe(tmp_path / "absent.prototxt"), "absent.prototxt", "cannot read the prototxt")
    raises(lambda: read_caffe(net, tmp_path / "absent.caffemodel"), "absent.caffemodel", "cannot read")
    raises(lambda: read_caffemodel(tmp_path / "absent.caffemodel"), "absent.caffemodel")
    raises(lambda: read_mean_file(tmp_path / "absent.binaryproto"), "absent.binaryproto")
    raises(lambda: read_mean_file(tmp_path / "absent.npy"), "absent.npy")
    raises(lambda: read_caffe(None, None), "needs a prototxt")


def test_bad_mean_files(tmp_path):
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(5))
    raises(lambda: read_mean_file(flat), flat, "(C, H, W)")
    garbage = tmp_path / "garbage.binaryproto"
    garbage.write_bytes(b"\x0a\x05abc")
    raises(lambda: read_mean_file(garbage), garbage, "not a Caffe BlobProto")


def test_bad_structure_and_arguments(tmp_path, net):
    for bad in [(0, 5), "abc", (1, 2, 3, 4), (-3, 4)]:
        raises(lambda: read_caffe(net, input_shape=bad), "input_shape")
    dangling = tmp_path / "dangling.prototxt"
    dangling.write_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 4 input_dim: 4\n'
                        'layer { name: "r" type: "ReLU" bottom: "nothing" top: "r" }')
    raises(lambda: read_caffe(dangling), "layer 'r' (ReLU)", "bottom 'nothing'")
    dims = tmp_path / "dims.prototxt"
    dims.write_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 4\n')
    raises(lambda: read_caffe(dims), dims, "input_dim")
    no_input = tmp_path / "noinput.prototxt"
    no_input.write_text('layer { name: "r" type: "ReLU" top: "r" }')
    raises(lambda: read_caffe(no_input), no_input)
    small = tmp_path / "small.prototxt"
    small.write_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 2 input_dim: 2\n'
                     'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
                     '        convolution_param { num_output: 2 kernel_size: 3 } }')
    raises(lambda: read_caffe(small), "layer 'c' (Convolution)", "output would be empty")
    zero = tmp_path / "zero.prototxt"
    zero.write_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 5 input_dim: 5\n'
                    'layer { name: "p" type: "Pooling" bottom: "data" top: "p"\n'
                    '        pooling_param { kernel_size: 2 stride: 0 } }')
    raises(lambda: read_caffe(zero), "layer 'p' (Pooling)", "stride")


# ------------------------------------------------------------------------------------------------- fuzz

def _mutate(data, rnd):
    data = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.choice(["flip", "truncate", "insert", "delete", "set"])
        at = rnd.randrange(len(data)) if data else 0
        if kind == "flip" and data:
            data[at] ^= 1 << rnd.randrange(8)
        elif kind == "set" and data:
            data[at] = rnd.choice([0x00, 0x08, 0x0A, 0x7F, 0x80, 0xFF, 0x22, 0x7B, 0x7D])
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif kind == "delete":
            del data[at:at + rnd.randint(1, 16)]
    return bytes(data)


FUZZ_SOURCES = [
    ("mtcnn/det1.caffemodel", "mtcnn/det1.prototxt"),
    ("small_caffemodels/cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel",
     "small_caffemodels/cifar10_quick_v1/cifar10_quick_v1_deploy.prototxt"),
    ("bvlc/examples/lenet.prototxt", None),
    ("bvlc/legacy/caffenet_imagenet_deploy_v0.prototxt", None),
    ("bvlc/examples/cifar10_full_v1_layers.prototxt", None),
]


@pytest.mark.parametrize("source,prototxt", FUZZ_SOURCES)
def test_fuzz_only_conversion_errors_escape(source, prototxt, tmp_path):
    rnd = random.Random(source)
    original = fixture_path(source).read_bytes()
    mutated_path = tmp_path / pathlib.Path(source).name
    for _ in range(60):
        mutated_path.write_bytes(_mutate(original, rnd))
        calls = [lambda: read_caffe(mutated_path)] if source.endswith(".prototxt") else \
            [lambda: read_caffemodel(mutated_path), lambda: read_caffe(fixture_path(prototxt), mutated_path)]
        for call in calls:
            try:
                graph = call()
            except ConversionError as exc:
                assert str(mutated_path) in str(exc)
            else:
                assert graph.nodes is not None
                for node in graph.nodes:  # the weights a consumer will read are readable
                    for array in node.weights.values():
                        assert np.asarray(array).dtype == np.float32


def test_fuzz_writer_generated_model_bytes(tmp_path, net):
    """Mutations of a generated V2 model (small, so most bytes are structure)."""
    rnd = random.Random(7)
    original = caffemodel_bytes(as_float32(good_layers()))
    path = tmp_path / "m.caffemodel"
    for _ in range(100):
        path.write_bytes(_mutate(original, rnd))
        try:
            read_caffe(net, path)
        except ConversionError as exc:
            assert str(path) in str(exc)


@pytest.mark.parametrize("size, stride, kernel", [(4, 2, 1), (5, 3, 1)])
def test_ceil_pooling_window_beyond_the_input_is_refused(tmp_path, size, stride, kernel):
    """Unpadded ceil-mode pooling whose last window starts past the input: Caffe computes an undefined value
    there (it clips such windows only on padded axes), so the reader refuses the layer by name."""
    path = tmp_path / "pool.prototxt"
    path.write_text(f'input: "data" input_shape {{ dim: 1 dim: 1 dim: {size} dim: {size} }}\n'
                    f'layer {{ name: "sub" type: "Pooling" bottom: "data" top: "sub" '
                    f'pooling_param {{ pool: MAX kernel_size: {kernel} stride: {stride} }} }}\n')
    raises(lambda: read_caffe(path), path, "'sub'", "undefined")
