"""Writer of Caffe binary files (.caffemodel, .binaryproto) for tests and benchmarks.

An independent, minimal protobuf wire encoder: it does not use ``converters.caffe.schema``, so a wrong field
number in the reader's schema cannot hide behind the same mistake here. Field numbers follow Caffe's
``caffe.proto``:

* NetParameter: name 1, layers 2 (V1LayerParameter), layer 100 (LayerParameter)
* LayerParameter (V2): name 1, type 2 (string), bottom 3, top 4, blobs 7
* V1LayerParameter: bottom 2, top 3, name 4, type 5 (enum), blobs 6
* BlobProto: num 1, channels 2, height 3, width 4, data 5 (packed float), shape 7 (BlobShape: dim 1, packed
  int64), double_data 8 (packed double)

Blob arrays are given in CAFFE layout, e.g. a convolution weight (out, in/group, kh, kw), an InnerProduct
weight (out, in), a bias (out,).
"""

import numpy as np

# V1LayerParameter.LayerType values (caffe.proto), keyed by the V2 type name and by the enum name.
V1_TYPE_NUMBERS = {
    "AbsVal": 35, "Accuracy": 1, "ArgMax": 30, "BNLL": 2, "Concat": 3, "ContrastiveLoss": 37,
    "Convolution": 4, "Data": 5, "Deconvolution": 39, "Dropout": 6, "DummyData": 32, "EuclideanLoss": 7,
    "Eltwise": 25, "Exp": 38, "Flatten": 8, "HDF5Data": 9, "HDF5Output": 10, "HingeLoss": 28, "Im2col": 11,
    "ImageData": 12, "InfogainLoss": 13, "InnerProduct": 14, "LRN": 15, "MemoryData": 29,
    "MultinomialLogisticLoss": 16, "MVN": 34, "Pooling": 17, "Power": 26, "ReLU": 18, "Sigmoid": 19,
    "SigmoidCrossEntropyLoss": 27, "Silence": 36, "Softmax": 20, "SoftmaxWithLoss": 21, "Split": 22,
    "Slice": 33, "TanH": 23, "WindowData": 24, "Threshold": 31,
}
V1_ENUM_NUMBERS = {
    "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3, "CONTRASTIVE_LOSS": 37,
    "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6, "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7,
    "ELTWISE": 25, "EXP": 38, "FLATTEN": 8, "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28,
    "IM2COL": 11, "IMAGE_DATA": 12, "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15, "MEMORY_DATA": 29,
    "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26, "RELU": 18, "SIGMOID": 19,
    "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20, "SOFTMAX_LOSS": 21, "SPLIT": 22,
    "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31,
}

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def varint(value):
    """Protobuf base-128 varint; negative values as 64-bit two's complement."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field, wire_type):
    return varint((field << 3) | wire_type)


def length_delimited(field, payload):
    return key(field, LENGTH) + varint(len(payload)) + payload


def varint_field(field, value):
    return key(field, VARINT) + varint(value)


def string_field(field, text):
    return length_delimited(field, text.encode("utf-8"))


def blob_proto(array, *, legacy_dims=False, unpacked=False):
    """BlobProto bytes of ``array``: float64 arrays go to ``double_data``, everything else to ``data``.

    ``legacy_dims`` writes num/channels/height/width (shape left-padded with ones to 4-D) instead of a
    BlobShape; ``unpacked`` writes every float as its own field (the non-packed encoding).
    """
    array = np.asarray(array)
    out = bytearray()
    if legacy_dims:
        if array.ndim > 4:
            raise ValueError("legacy blobs have at most 4 dimensions")
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        for field, dim in zip((1, 2, 3, 4), dims):
            out += varint_field(field, dim)
    else:
        packed_dims = b"".join(varint(dim) for dim in array.shape)
        out += length_delimited(7, length_delimited(1, packed_dims) if array.shape else b"")
    if array.dtype == np.float64:
        field, values = 8, np.ascontiguousarray(array, dtype="<f8").ravel()
    else:
        field, values = 5, np.ascontiguousarray(array, dtype="<f4").ravel()
    if unpacked:
        wire_type = FIXED64 if field == 8 else FIXED32
        tag = key(field, wire_type)
        out += b"".join(tag + value.tobytes() for value in values)
    else:
        out += length_delimited(field, values.tobytes())
    return bytes(out)


def layer_message(name, layer_type, blobs, *, v1=False, bottoms=(), tops=(), unpacked=False):
    """LayerParameter (or V1LayerParameter when ``v1``) bytes."""
    out = bytearray()
    if v1:
        number = V1_TYPE_NUMBERS.get(layer_type, V1_ENUM_NUMBERS.get(layer_type))
        if number is None:
            raise ValueError(f"no V1 enum value for layer type {layer_type!r}")
        out += b"".join(string_field(2, bottom) for bottom in bottoms)
        out += b"".join(string_field(3, top) for top in tops)
        out += string_field(4, name) + varint_field(5, number)
        blob_field = 6
    else:
        out += string_field(1, name) + string_field(2, layer_type)
        out += b"".join(string_field(3, bottom) for bottom in bottoms)
        out += b"".join(string_field(4, top) for top in tops)
        blob_field = 7
    for blob in blobs:
        out += length_delimited(blob_field, blob_proto(blob, legacy_dims=v1, unpacked=unpacked))
    return bytes(out)


def _net_chunks(layers, *, v1, net_name, unpacked):
    yield string_field(1, net_name)
    for entry in layers:
        name, layer_type, blobs = entry[:3]
        bottoms, tops = (entry[3], entry[4]) if len(entry) > 3 else ((), ())
        payload = layer_message(name, layer_type, blobs, v1=v1, bottoms=bottoms, tops=tops, unpacked=unpacked)
        yield length_delimited(2 if v1 else 100, payload)


def caffemodel_bytes(layers, *, v1=False, net_name="net", unpacked=False):
    """NetParameter bytes holding ``layers``: ``(name, type, [blobs])`` or ``(name, type, [blobs], bottoms,
    tops)`` tuples."""
    return b"".join(_net_chunks(layers, v1=v1, net_name=net_name, unpacked=unpacked))


def write_caffemodel(path, layers, *, v1=False, net_name="net", unpacked=False):
    """Write a .caffemodel: V2 binary (field 100, BlobShape) or, with ``v1``, the old V1 binary (field 2,
    enum types, legacy num/channels/height/width dims). Layers are encoded one at a time (``layers`` may be
    a generator), so large models need memory for one layer only. Returns ``path``."""
    with open(path, "wb") as handle:
        for chunk in _net_chunks(layers, v1=v1, net_name=net_name, unpacked=unpacked):
            handle.write(chunk)
    return path


def write_binaryproto(path, array):
    """Write a mean file: a BlobProto with legacy num/channels/height/width dims (as Caffe's tools do)."""
    with open(path, "wb") as handle:
        handle.write(blob_proto(np.asarray(array), legacy_dims=True))
    return path

