"""Caffe reader: ``.prototxt`` (+ ``.caffemodel``) -> neutral :class:`~converters.graph.Graph`.

Every historic format is read: V0 (2014, ``layers { layer { type: "conv" } bottom top }``), V1 (``layers {``
with enum types) and V2 (``layer {`` with string types), in text and in binary form. V0 and V1 layers are
first upgraded to V2 ``LayerParameter`` messages (as Caffe's upgrade_proto does), so one converter handles
them all.

Train/val nets are read in the TEST phase (include/exclude rules); loss, accuracy and silence layers are
dropped; a data layer (Data, ImageData, HDF5Data, Python without bottoms...) becomes graph inputs named
after its image tops: the tops that lead to a layer with weights (HDF5 and Python layers name and order
their tops freely), else its first top. Its other tops (labels) are dropped together with the layers that
consume them. The input size comes from ``input_shape`` ((H, W) or (C, H, W)); without it, from the layer
itself (DummyData and MemoryData shapes; a ``crop_size`` gives H = W = crop_size, ImageData's
new_height/new_width); otherwise it is a ConversionError naming the layer. C defaults to 3 (1 for an
ImageData layer with ``is_color: false``). ``Graph.meta`` records ``format`` ('V0', 'V1', 'V2'),
``net_name``, ``data_layers`` ({input: type, scale, mirror, crop_size, mean_file, mean_value}) and
``caffemodel``.

A layer type outside :data:`SUPPORTED_LAYER_TYPES` (a fork's ROIPooling, PriorBox, a Python layer with
bottoms...) makes ONE ConversionError listing every such layer, raised before the caffemodel is read.
Outputs are the blobs no layer consumes, sorted by name: Caffe's Net keeps its available blobs in a
``std::set`` and reports them in that order.

Caffemodels are scanned at the protobuf wire level over a memory map: weight arrays are ``np.memmap`` views
of the file (nothing is copied until the consumer reads them), converted once to the layouts of
:mod:`converters.graph` (as transposed views where a transposition is needed).
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import pathlib
import re

import numpy as np
from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from converters import caffe_schema as schema
from converters.errors import ConversionError
from converters.graph import Graph, Node

log = logging.getLogger(__name__)

__all__ = ["read_caffe", "read_caffemodel", "read_mean_file", "SUPPORTED_LAYER_TYPES"]

DATA_LAYER_TYPES = frozenset({
    "Data", "ImageData", "HDF5Data", "MemoryData", "DummyData", "WindowData", "AnnotatedData", "Python",
})
DROPPED_LAYER_TYPES = frozenset({
    "SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss",
    "MultinomialLogisticLoss", "ContrastiveLoss", "Accuracy", "Silence", "HDF5Output",
})

# V1 enum names -> V2 type names (Caffe's upgrade table).
_V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution",
    "DATA": "Data", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
# V0 type strings -> V2 type names.
_V0_TYPES = {
    "accuracy": "Accuracy", "bnll": "BNLL", "concat": "Concat", "conv": "Convolution", "data": "Data",
    "dropout": "Dropout", "euclidean_loss": "EuclideanLoss", "flatten": "Flatten", "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output", "im2col": "Im2col", "images": "ImageData", "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct", "lrn": "LRN", "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling", "relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss", "split": "Split", "tanh": "TanH", "window_data": "WindowData",
}
_V1_PARAM_FIELDS = tuple(
    field.name for field in schema.V1LayerParameter.DESCRIPTOR.fields
    if field.name.endswith("_param") and field.name in schema.LayerParameter.DESCRIPTOR.fields_by_name)
# A bare identifier after 'type:' outside comments and quoted strings (V1 enum layer types).
_UNKNOWN_V1_TYPE = re.compile(
    r"""(?m)^((?:[^#"'\n]|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')*?(?<![\w.])type\s*:\s*)([A-Za-z_]\w*)""")


# --------------------------------------------------------------------------------------------------- errors

class _Corrupt(Exception):
    """A wire-format problem at a byte offset (turned into a ConversionError by the caller)."""


def _fail(path, reason, layer=None):
    if layer is None:
        return ConversionError(reason, path=path)
    return ConversionError(reason, path=path, layer=layer.name, layer_type=layer.type)


def _read_bytes(path, what):
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise ConversionError(f"cannot read the {what}: {exc.strerror or exc}", path=path) from None


# ---------------------------------------------------------------------------------------- text prototxt

def _parse_prototxt(path):
    """NetParameter of a text prototxt (fork-only fields skipped, unknown V1 enum types kept by name)."""
    raw = _read_bytes(path, "prototxt")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConversionError(f"not a text prototxt: invalid UTF-8 at line {line}", path=path) from None
    known = set(schema.V1_TYPE_NAMES.values())

    def keep_unknown(match):
        if match.group(2) in known or match.group(2) in ("true", "false"):
            return match.group(0)
        prefix = match.group(1)
        at = prefix.rindex("type")
        return f'{prefix[:at]}{schema.V1_UNKNOWN_TYPE_FIELD}{prefix[at + 4:]}"{match.group(2)}"'

    text = _UNKNOWN_V1_TYPE.sub(keep_unknown, text)
    net = schema.NetParameter()
    try:
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as exc:
        where = f"line {exc.GetLine()}" if exc.GetLine() else "prototxt"
        reason = str(exc).split(" : ", 1)[-1]
        raise ConversionError(f"syntax error at {where}: {reason}", path=path) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise ConversionError(f"invalid prototxt: {exc}", path=path) from None
    return net


# ------------------------------------------------------------------------------------ binary wire scanner

def _varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise _Corrupt(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Corrupt(f"overlong varint at byte {pos}")


def _fields(buf, start, end):
    """Yield ``(field, wire_type, value_start, value_end, varint_value, field_start)`` for each field of
    the message in ``buf[start:end]`` (``varint_value`` is None for other wire types)."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise _Corrupt(f"field number 0 at byte {field_start}")
        if wire_type == 0:
            value, next_pos = _varint(buf, pos, end)
            yield field, wire_type, pos, next_pos, value, field_start
            pos = next_pos
            continue
        if wire_type == 2:
            length, pos = _varint(buf, pos, end)
            size = length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
        else:
            raise _Corrupt(f"invalid wire type {wire_type} at byte {field_start}")
        if pos + size > end:
            raise _Corrupt(f"field {field} at byte {field_start} runs past the end of its message")
        yield field, wire_type, pos, pos + size, None, field_start
        pos += size


class _BlobRef:
    """One BlobProto of a caffemodel: its declared dims and lazily mapped float data."""

    def __init__(self, path, buf, start, end):
        self.shape = None       # BlobShape dims, or legacy num/channels/height/width
        self.legacy = False
        legacy = {}
        chunks = []             # (dtype, offset, count, stride): stride None for packed values
        for field, wire_type, lo, hi, value, _ in _fields(buf, start, end):
            if field == 7 and wire_type == 2:
                self.shape = tuple(_shape_dims(buf, lo, hi))
            elif field in (1, 2, 3, 4) and wire_type == 0:
                legacy[field] = value
            elif field in (5, 8):
                width = 4 if field == 5 else 8
                dtype = "<f4" if field == 5 else "<f8"
                if wire_type == 2:
                    if (hi - lo) % width:
                        raise _Corrupt(f"packed data of {hi - lo} bytes at byte {lo} is not a whole number "
                                       "of values")
                    chunks.append((dtype, lo, (hi - lo) // width, None))
                elif wire_type == (5 if field == 5 else 1):
                    _append_unpacked(chunks, dtype, lo, width)
                else:
                    raise _Corrupt(f"blob data field with wire type {wire_type} at byte {lo}")
        if self.shape is None:
            self.legacy = bool(legacy)
            self.shape = tuple(_signed(legacy.get(field, 0)) for field in (1, 2, 3, 4)) if legacy else ()
        self.count = sum(chunk[2] for chunk in chunks)
        expected = math.prod(self.shape)
        if self.count != expected:
            raise _Corrupt(f"blob holds {self.count} values but its shape {self.shape} needs {expected}")
        self._path = path
        self._chunks = chunks

    def array(self):
        """The values as a flat float32 array (a memory-mapped view of the file where possible)."""
        parts = []
        for dtype, offset, count, stride in self._chunks:
            if count == 0:
                continue
            if stride is None:
                parts.append(np.memmap(self._path, dtype=dtype, mode="r", offset=offset, shape=(count,)))
            else:  # non-packed values: one key byte before every value
                records = np.memmap(self._path, dtype=[("key", "u1"), ("value", dtype)], mode="r",
                                    offset=offset - 1, shape=(count,))
                parts.append(records["value"])
        if not parts:
            return np.zeros(0, np.float32)
        values = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return values if values.dtype == np.float32 and values.dtype.isnative else values.astype(np.float32)


def _append_unpacked(chunks, dtype, offset, width):
    """Add one non-packed value (key byte + value), extending the previous run of such values."""
    if chunks:
        last_dtype, last_offset, last_count, stride = chunks[-1]
        if stride is not None and last_dtype == dtype and last_offset + last_count * stride == offset:
            chunks[-1] = (dtype, last_offset, last_count + 1, stride)
            return
    chunks.append((dtype, offset, 1, width + 1))


def _shape_dims(buf, start, end):
    for field, wire_type, lo, hi, value, _ in _fields(buf, start, end):
        if field != 1:
            continue
        if wire_type == 0:
            yield _signed(value)
        elif wire_type == 2:
            pos = lo
            while pos < hi:
                value, pos = _varint(buf, pos, hi)
                yield _signed(value)
        else:
            raise _Corrupt(f"blob shape dim with wire type {wire_type} at byte {lo}")


def _signed(value):
    value = value - (1 << 64) if value >= 1 << 63 else value
    if value < 0:
        raise _Corrupt(f"negative blob dimension {value}")
    return value


_LAYER_FIELDS = {  # NetParameter field -> (layer message class, its blobs field)
    100: (schema.LayerParameter, 7),
    2: (schema.V1LayerParameter, 6),
}
_V0_LAYER_FIELD, _V0_BLOBS_FIELD = 1, 50  # V1LayerParameter.layer, V0LayerParameter.blobs


@contextlib.contextmanager
def _mapped(path, what):
    """(read-only mmap, size) of ``path``; ConversionError naming ``what`` for an empty or unreadable file."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            if size == 0:
                raise ConversionError(f"the {what} is empty", path=path)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                yield buf, size
    except OSError as exc:
        raise ConversionError(f"cannot read the {what}: {exc.strerror or exc}", path=path) from None


def _scan_caffemodel(path):
    """(NetParameter without blobs, {layer name: [_BlobRef]}) of a binary caffemodel."""
    with _mapped(path, "caffemodel") as (buf, size):
        return _scan_net(path, buf, size)


def _scan_net(path, buf, size):
    header = bytearray()
    net = schema.NetParameter()
    blobs = {}
    try:
        for field, wire_type, lo, hi, _, field_start in _fields(buf, 0, size):
            if field in _LAYER_FIELDS and wire_type == 2:
                layer, layer_blobs = _scan_layer(path, buf, lo, hi, field)
                (net.layer if field == 100 else net.layers).add().CopyFrom(layer)
                if layer_blobs:
                    blobs[_layer_name(layer)] = layer_blobs
            else:
                header += buf[field_start:hi]
        net.MergeFromString(bytes(header))
    except _Corrupt as exc:
        raise ConversionError(f"not a valid Caffe binary NetParameter (corrupt or truncated): {exc}",
                              path=path) from None
    except (protobuf_message.DecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ConversionError(f"not a valid Caffe binary NetParameter: {exc}", path=path) from None
    if not net.layer and not net.layers:
        raise ConversionError("not a Caffe caffemodel: it holds no layers", path=path)
    return net, blobs


def _scan_layer(path, buf, start, end, net_field):
    layer_class, blobs_field = _LAYER_FIELDS[net_field]
    rest = bytearray()
    blobs = []
    for field, wire_type, lo, hi, _, field_start in _fields(buf, start, end):
        if field == blobs_field and wire_type == 2:
            blobs.append(_BlobRef(path, buf, lo, hi))
        elif layer_class is schema.V1LayerParameter and field == _V0_LAYER_FIELD and wire_type == 2:
            v0_rest = bytearray()  # a V0 layer nested in a V1 connection: its blobs are field 50
            for v0_field, v0_wire, v0_lo, v0_hi, _, v0_start in _fields(buf, lo, hi):
                if v0_field == _V0_BLOBS_FIELD and v0_wire == 2:
                    blobs.append(_BlobRef(path, buf, v0_lo, v0_hi))
                else:
                    v0_rest += buf[v0_start:v0_hi]
            rest += _length_delimited(_V0_LAYER_FIELD, bytes(v0_rest))
        else:
            rest += buf[field_start:hi]
    return layer_class.FromString(bytes(rest)), blobs


def _length_delimited(field, payload):
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def _encode_varint(value):
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _layer_name(layer):
    if isinstance(layer, schema.V1LayerParameter) and not layer.name and layer.HasField("layer"):
        return layer.layer.name
    return layer.name


# ------------------------------------------------------------------------------- upgrade to V2 layers

def _upgrade_layers(net):
    """The net's layers as V2 LayerParameter messages, and the format name ('V0', 'V1' or 'V2')."""
    if net.layer and net.layers:
        raise ValueError("the net mixes V1 'layers' and V2 'layer' entries")
    if net.layer:
        return list(net.layer), "V2"
    if any(layer.HasField("layer") for layer in net.layers):
        return _upgrade_v0(net.layers), "V0"
    return [_upgrade_v1(layer) for layer in net.layers], "V1"


def _upgrade_v1(v1):
    layer = schema.LayerParameter(name=v1.name, bottom=v1.bottom, top=v1.top)
    if v1.HasField(schema.V1_UNKNOWN_TYPE_FIELD):
        layer.type = getattr(v1, schema.V1_UNKNOWN_TYPE_FIELD)
    else:
        enum_name = schema.V1_TYPE_NAMES.get(v1.type, str(v1.type))
        layer.type = _V1_TYPES.get(enum_name, enum_name)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    for field in _V1_PARAM_FIELDS:
        if v1.HasField(field):
            getattr(layer, field).CopyFrom(getattr(v1, field))
    return layer


def _upgrade_v0(connections):
    """V0 layers (with Caffe's merging of 'padding' layers into the following conv/pool) as V2 layers."""
    layers = []
    padding = {}  # top of a padding layer -> (its bottom, pad)
    for connection in connections:
        v0 = connection.layer
        if v0.type == "padding":
            padding[connection.top[0] if connection.top else ""] = (
                connection.bottom[0] if connection.bottom else "", v0.pad)
            continue
        layer = schema.LayerParameter(name=v0.name, top=connection.top,
                                      type=_V0_TYPES.get(v0.type, v0.type))
        pad = v0.pad
        for bottom in connection.bottom:
            if bottom in padding:
                bottom, pad = padding[bottom]
            layer.bottom.append(bottom)
        if v0.type == "conv":
            conv = layer.convolution_param
            conv.num_output, conv.group = v0.num_output, v0.group
            if v0.HasField("biasterm"):
                conv.bias_term = v0.biasterm
            if v0.HasField("kernelsize"):
                conv.kernel_size.append(v0.kernelsize)
            conv.stride.append(v0.stride)
            conv.pad.append(pad)
        elif v0.type == "innerproduct":
            layer.inner_product_param.num_output = v0.num_output
            if v0.HasField("biasterm"):
                layer.inner_product_param.bias_term = v0.biasterm
        elif v0.type == "pool":
            pool = layer.pooling_param
            pool.pool, pool.stride, pool.pad = v0.pool, v0.stride, pad
            if v0.HasField("kernelsize"):
                pool.kernel_size = v0.kernelsize
        elif v0.type == "lrn":
            lrn = layer.lrn_param
            lrn.local_size, lrn.alpha, lrn.beta, lrn.k = v0.local_size, v0.alpha, v0.beta, v0.k
        elif v0.type == "dropout":
            layer.dropout_param.dropout_ratio = v0.dropout_ratio
        elif v0.type == "concat":
            layer.concat_param.concat_dim = v0.concat_dim
        elif v0.type in ("data", "images", "window_data"):
            if v0.cropsize:
                layer.transform_param.crop_size = v0.cropsize
            layer.transform_param.scale = v0.scale
        layers.append(layer)
    return layers


# ------------------------------------------------------------------------------------ net-level passes

def _state_meets_rule(state, rule):
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(stage in stages for stage in rule.stage) and not any(s in stages for s in rule.not_stage)


def _in_test_phase(layer, state):
    """Caffe's FilterNet: include rules (any met) win over exclude rules (none met)."""
    if layer.include:
        return any(_state_meets_rule(state, rule) for rule in layer.include)
    return not any(_state_meets_rule(state, rule) for rule in layer.exclude)


def _is_data_layer(layer):
    return layer.type in DATA_LAYER_TYPES and not (layer.type == "Python" and layer.bottom)


# ------------------------------------------------------------------------------------------- shapes

def _axis_index(axis, shape, layer, path, *, allow_end=False):
    """Index into a batch-less shape tuple of a Caffe axis (N, C, H, W numbering; negative from the end)."""
    rank = len(shape) + 1
    canonical = axis + rank if axis < 0 else axis
    upper = rank if allow_end else rank - 1
    if not 1 <= canonical <= upper:
        raise _fail(path, f"axis {axis} is out of range for a {rank}-D blob (the batch axis cannot be used)",
                    layer)
    return canonical


def _product(dims):
    return None if any(dim is None for dim in dims) else math.prod(dims)


def _pair(param, layer, path, repeated, h_field, w_field, default, what):
    """(h, w) of a Caffe spatial parameter given as a repeated field or as its _h/_w pair."""
    if param.HasField(h_field) or param.HasField(w_field):
        if repeated is not None and len(repeated):
            raise _fail(path, f"{what} is given both as {what}_size/{what} and as {h_field}/{w_field}", layer)
        return getattr(param, h_field), getattr(param, w_field)
    values = list(repeated) if repeated is not None else []
    if not values:
        if default is None:
            raise _fail(path, f"no {what} size is given", layer)
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise _fail(path, f"{len(values)}-D {what} (only 2-D convolutions are supported)", layer)


def _conv_out(size, kernel, stride, pad, dilation):
    if size is None:
        return None
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def _pool_out(size, kernel, stride, pad, ceil):
    if size is None:
        return None
    if ceil:
        out = -(-(size + 2 * pad - kernel) // stride) + 1
        if pad and (out - 1) * stride >= size + pad:
            out -= 1
        return out
    return (size + 2 * pad - kernel) // stride + 1


# ------------------------------------------------------------------------------------- the converter

class _Converter:
    """Turns V2 LayerParameters into nodes, tracking blob shapes and attaching caffemodel weights."""

    def __init__(self, path, weight_path, blobs, *, embedded):
        self.path = path
        self.weight_path = weight_path
        self.blobs = blobs  # {layer name: [_BlobRef]} or None
        self.embedded = embedded  # the net definition comes from the caffemodel itself
        self.shapes = {}

    def bias_term(self, layer, param):
        """``param.bias_term``; for an embedded layer that does not say, whether it has a second blob."""
        if self.embedded and not param.HasField("bias_term") and self.blobs.get(layer.name):
            return len(self.blobs[layer.name]) > 1
        return param.bias_term

    # -- weights

    def weights_of(self, layer, expected_count):
        """The caffemodel blobs of ``layer`` (None without a caffemodel), checking how many there are."""
        if self.blobs is None:
            return None
        refs = self.blobs.get(layer.name)
        if not refs:
            raise ConversionError("the caffemodel has no weights for this layer", path=self.weight_path,
                                  layer=layer.name, layer_type=layer.type)
        if len(refs) not in expected_count:
            wanted = " or ".join(str(count) for count in sorted(expected_count))
            raise ConversionError(f"the caffemodel has {len(refs)} blobs, the prototxt implies {wanted}",
                                  path=self.weight_path, layer=layer.name, layer_type=layer.type)
        return refs

    def blob_array(self, layer, refs, index, expected):
        """Blob ``index`` as a float32 array of shape ``expected`` (None entries: any size)."""
        ref = refs[index]
        actual = ref.shape
        if ref.legacy and len(expected) <= 4:
            padded = (1,) * (4 - len(expected)) + tuple(expected)
            ok = len(actual) == 4 and all(e is None or e == a for e, a in zip(padded, actual))
            concrete = actual[4 - len(expected):]
        else:
            ok = len(actual) == len(expected) and all(e is None or e == a for e, a in zip(expected, actual))
            concrete = actual
        if not ok:
            shown = tuple("?" if dim is None else dim for dim in expected)
            raise ConversionError(
                f"blob {index} has shape {tuple(actual)}, the prototxt implies {shown}".replace("'?'", "?"),
                path=self.weight_path, layer=layer.name, layer_type=layer.type)
        return ref.array().reshape(concrete)

    # -- layers

    def convert(self, layer):
        inputs = [self.shapes[bottom] for bottom in layer.bottom]
        method = getattr(self, "_" + _OPS[layer.type])
        node, out_shapes = method(layer, inputs)
        node.source_type = layer.type
        for top, shape in zip(layer.top, out_shapes):
            self.shapes[top] = shape
        return node

    def node(self, layer, op, attrs, weights=None):
        return Node(name=layer.name, op=op, inputs=list(layer.bottom), outputs=list(layer.top),
                    attrs=attrs, weights=weights or {})

    def need_bottoms(self, layer, inputs, count):
        allowed = count if isinstance(count, tuple) else (count,)
        if len(inputs) not in allowed:
            wanted = " or ".join(map(str, allowed))
            raise _fail(self.path, f"takes {wanted} bottom(s), got {len(inputs)}", layer)
        if len(layer.top) != 1 and layer.type not in ("Slice", "Split"):
            raise _fail(self.path, f"must have exactly one top, got {len(layer.top)}", layer)

    def _conv_common(self, layer, inputs, transposed):
        self.need_bottoms(layer, inputs, 1)
        param = layer.convolution_param
        if param.axis != 1:
            raise _fail(self.path, f"convolution over axis {param.axis} is not supported", layer)
        shape = inputs[0]
        if len(shape) != 3:
            raise _fail(self.path, f"input has {len(shape) + 1} dimensions, a 2-D convolution needs 4", layer)
        bias_term = self.bias_term(layer, param)
        refs = self.weights_of(layer, {1 + bias_term})
        kernel = _pair(param, layer, self.path, param.kernel_size, "kernel_h", "kernel_w",
                       None if refs is None else 0, "kernel")
        if kernel == (0, 0) and refs is not None and len(refs[0].shape) == 4:
            kernel = tuple(refs[0].shape[2:])  # a caffemodel-embedded layer without its params
        stride = _pair(param, layer, self.path, param.stride, "stride_h", "stride_w", 1, "stride")
        pad = _pair(param, layer, self.path, param.pad, "pad_h", "pad_w", 0, "pad")
        dilation = self._dilation(param, layer)
        filters = param.num_output
        if not filters and refs is not None and refs[0].shape:
            filters = refs[0].shape[1 if transposed else 0] * (param.group if transposed else 1)
        group = param.group
        channels = shape[0]
        if min(*kernel, *stride, filters, group) < 1:
            raise _fail(self.path, f"invalid parameters: num_output {filters}, kernel {kernel}, "
                                   f"stride {stride}, group {group}", layer)
        if filters % group or (channels is not None and channels % group):
            raise _fail(self.path, f"group {group} does not divide the {channels} input channels and the "
                                   f"{filters} outputs", layer)
        attrs = {"filters": filters, "kernel": kernel, "strides": stride,
                 "pads": (pad[0], pad[0], pad[1], pad[1]), "dilation": dilation, "groups": group,
                 "use_bias": bias_term}
        weights = {}
        if refs is not None:
            cin = None if channels is None else channels // group
            if transposed:  # Caffe deconv weight (cin, cout/g, kh, kw) -> (kh, kw, cout/g, cin)
                blob = self.blob_array(layer, refs, 0, (channels, filters // group) + kernel)
            else:           # Caffe conv weight (cout, cin/g, kh, kw) -> (kh, kw, cin/g, cout)
                blob = self.blob_array(layer, refs, 0, (filters, cin) + kernel)
            weights["kernel"] = blob.transpose(2, 3, 1, 0)
            if bias_term:
                weights["bias"] = self.blob_array(layer, refs, 1, (filters,))
        if transposed:
            spatial = tuple(None if size is None else stride[i] * (size - 1) + dilation[i] * (kernel[i] - 1)
                            + 1 - 2 * pad[i] for i, size in enumerate(shape[1:]))
        else:
            spatial = tuple(_conv_out(size, kernel[i], stride[i], pad[i], dilation[i])
                            for i, size in enumerate(shape[1:]))
        if any(size is not None and size < 1 for size in spatial):
            raise _fail(self.path, f"output would be empty ({spatial}) for input {shape}", layer)
        return self.node(layer, "deconv" if transposed else "conv", attrs, weights), [(filters,) + spatial]

    def _dilation(self, param, layer):
        values = list(param.dilation)
        if not values:
            return (1, 1)
        if len(values) > 2:
            raise _fail(self.path, f"{len(values)}-D dilation (only 2-D convolutions are supported)", layer)
        dilation = (values[0], values[-1])
        if min(dilation) < 1:
            raise _fail(self.path, f"invalid dilation {dilation}", layer)
        return dilation

    def _conv(self, layer, inputs):
        return self._conv_common(layer, inputs, transposed=False)

    def _deconv(self, layer, inputs):
        return self._conv_common(layer, inputs, transposed=True)

    def _pool(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        param = layer.pooling_param
        shape = inputs[0]
        if len(shape) != 3:
            raise _fail(self.path, f"input has {len(shape) + 1} dimensions, pooling needs 4", layer)
        if param.pool == param.STOCHASTIC:
            raise _fail(self.path, "STOCHASTIC pooling is not supported", layer)
        method = "max" if param.pool == param.MAX else "avg"
        ceil = param.round_mode == param.CEIL and param.ceil_mode
        attrs = {"method": method, "global": bool(param.global_pooling),
                 "rounding": "ceil" if ceil else "floor", "avg_divisor": "padded"}
        if param.global_pooling:
            attrs.update(kernel=tuple(shape[1:]), strides=(1, 1), pads=(0, 0, 0, 0))
            return self.node(layer, "pool", attrs), [(shape[0], 1, 1)]
        kernel = self._scalar_pair(param, layer, "kernel_size", "kernel_h", "kernel_w", None, "kernel")
        stride = self._scalar_pair(param, layer, "stride", "stride_h", "stride_w", 1, "stride")
        pad = self._scalar_pair(param, layer, "pad", "pad_h", "pad_w", 0, "pad")
        if min(*kernel, *stride) < 1 or pad[0] >= kernel[0] or pad[1] >= kernel[1]:
            raise _fail(self.path, f"invalid parameters: kernel {kernel}, stride {stride}, pad {pad}", layer)
        attrs.update(kernel=kernel, strides=stride, pads=(pad[0], pad[0], pad[1], pad[1]))
        spatial = tuple(_pool_out(size, kernel[i], stride[i], pad[i], ceil) for i, size in enumerate(shape[1:]))
        if any(size is not None and size < 1 for size in spatial):
            raise _fail(self.path, f"output would be empty ({spatial}) for input {shape}", layer)
        return self.node(layer, "pool", attrs), [(shape[0],) + spatial]

    def _scalar_pair(self, param, layer, field, h_field, w_field, default, what):
        if param.HasField(h_field) or param.HasField(w_field):
            return getattr(param, h_field), getattr(param, w_field)
        if param.HasField(field):
            value = getattr(param, field)
            return value, value
        if default is None:
            raise _fail(self.path, f"no {what} size is given", layer)
        return default, default

    def _lrn(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        param = layer.lrn_param
        size = param.local_size
        if size < 1 or size % 2 == 0:
            raise _fail(self.path, f"local_size must be odd and positive, got {size}", layer)
        if param.norm_region == param.ACROSS_CHANNELS:
            attrs = {"region": "across", "size": size, "alpha": param.alpha / size, "beta": param.beta,
                     "k": param.k}
        else:
            attrs = {"region": "within", "size": size, "alpha": param.alpha / size ** 2, "beta": param.beta,
                     "k": 1.0}
        return self.node(layer, "lrn", attrs), [inputs[0]]

    def _dense(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        param = layer.inner_product_param
        shape = inputs[0]
        axis = _axis_index(param.axis, shape, layer, self.path)
        features = _product(shape[axis - 1:])
        bias_term = self.bias_term(layer, param)
        refs = self.weights_of(layer, {1 + bias_term})
        units = param.num_output
        if not units and refs is not None and refs[0].shape:
            units = refs[0].shape[-1 if param.transpose else -2]
        if units < 1:
            raise _fail(self.path, "num_output is missing", layer)
        weights = {}
        if refs is not None:
            if param.transpose:  # stored (in, out) already
                weights["kernel"] = self.blob_array(layer, refs, 0, (features, units))
            else:
                weights["kernel"] = self.blob_array(layer, refs, 0, (units, features)).T
            if bias_term:
                weights["bias"] = self.blob_array(layer, refs, 1, (units,))
        attrs = {"units": units, "use_bias": bias_term, "axis": axis}
        return self.node(layer, "dense", attrs, weights), [tuple(shape[:axis - 1]) + (units,)]

    def _same_shape(self, layer, inputs, op, attrs=None, weights=None):
        self.need_bottoms(layer, inputs, 1)
        return self.node(layer, op, attrs or {}, weights), [inputs[0]]

    def _relu(self, layer, inputs):
        return self._same_shape(layer, inputs, "relu", {"negative_slope": layer.relu_param.negative_slope})

    def _prelu(self, layer, inputs):
        shared = bool(layer.prelu_param.channel_shared)
        refs = self.weights_of(layer, {1})
        weights = {}
        if refs is not None:
            if shared:
                if refs[0].count != 1:
                    raise ConversionError(f"blob 0 has shape {refs[0].shape}, the prototxt implies (1,)",
                                          path=self.weight_path, layer=layer.name, layer_type=layer.type)
                weights["alpha"] = refs[0].array().reshape(1)
            else:
                channels = inputs[0][0] if inputs and inputs[0] else None
                weights["alpha"] = self.blob_array(layer, refs, 0, (channels,))
        return self._same_shape(layer, inputs, "prelu", {"channel_shared": shared}, weights)

    def _elu(self, layer, inputs):
        return self._same_shape(layer, inputs, "elu", {"alpha": layer.elu_param.alpha})

    def _power(self, layer, inputs):
        param = layer.power_param
        return self._same_shape(layer, inputs, "power",
                                {"power": param.power, "scale": param.scale, "shift": param.shift})

    def _sigmoid(self, layer, inputs):
        return self._same_shape(layer, inputs, "sigmoid")

    def _tanh(self, layer, inputs):
        return self._same_shape(layer, inputs, "tanh")

    def _absval(self, layer, inputs):
        return self._same_shape(layer, inputs, "absval")

    def _dropout(self, layer, inputs):
        return self._same_shape(layer, inputs, "dropout", {"rate": layer.dropout_param.dropout_ratio})

    def _softmax(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        axis = _axis_index(layer.softmax_param.axis, inputs[0], layer, self.path)
        return self.node(layer, "softmax", {"axis": axis}), [inputs[0]]

    def _batchnorm(self, layer, inputs):
        param = layer.batch_norm_param
        use_global = param.use_global_stats if param.HasField("use_global_stats") else True
        refs = self.weights_of(layer, {3})
        weights = {}
        if refs is not None:
            channels = inputs[0][0] if inputs and inputs[0] else None
            mean = self.blob_array(layer, refs, 0, (channels,))
            variance = self.blob_array(layer, refs, 1, (mean.shape[0],))
            if refs[2].count != 1:
                raise ConversionError(f"blob 2 (the scale factor) has shape {refs[2].shape}, expected (1,)",
                                      path=self.weight_path, layer=layer.name, layer_type=layer.type)
            factor = float(refs[2].array()[0])
            factor = 0.0 if factor == 0 else 1.0 / factor
            weights = {"mean": (mean * factor).astype(np.float32),
                       "variance": (variance * factor).astype(np.float32)}
        attrs = {"stat": "variance", "epsilon": param.eps, "use_global_stats": bool(use_global)}
        return self._same_shape(layer, inputs, "batchnorm", attrs, weights)

    def _scale_or_bias(self, layer, inputs, op):
        self.need_bottoms(layer, inputs, (1, 2))
        param = layer.scale_param if op == "scale" else layer.bias_param
        shape = inputs[0]
        axis = _axis_index(param.axis, shape, layer, self.path, allow_end=True)
        if len(inputs) == 2:
            axes = tuple(inputs[1])
            num_axes = len(axes)
        else:
            num_axes = param.num_axes
            if num_axes < -1:
                raise _fail(self.path, f"num_axes must be -1 or more, got {num_axes}", layer)
            end = len(shape) + 1 if num_axes == -1 else axis + num_axes
            if end > len(shape) + 1:
                raise _fail(self.path, f"axis {axis} + num_axes {num_axes} exceed the input rank", layer)
            axes = tuple(shape[axis - 1:end - 1])
        has_bias = op == "bias" or self.bias_term(layer, param)
        names = ([] if len(inputs) == 2 and op == "scale" else ["gamma" if op == "scale" else "beta"])
        if op == "scale" and has_bias:
            names.append("beta")
        refs = self.weights_of(layer, {len(names)}) if names else None
        weights = {}
        if refs is not None:
            for index, name in enumerate(names):
                weights[name] = self.blob_array(layer, refs, index, axes)
        attrs = {"axis": axis, "num_axes": num_axes}
        if op == "scale":
            attrs["use_bias"] = has_bias  # a Scale's own beta (bias_term), also without a caffemodel
        return self.node(layer, op, attrs, weights), [shape]

    def _scale(self, layer, inputs):
        return self._scale_or_bias(layer, inputs, "scale")

    def _bias(self, layer, inputs):
        return self._scale_or_bias(layer, inputs, "bias")

    def _eltwise(self, layer, inputs):
        param = layer.eltwise_param
        if len(inputs) < 2:
            raise _fail(self.path, f"takes at least 2 bottoms, got {len(inputs)}", layer)
        if any(len(shape) != len(inputs[0]) or any(a is not None and b is not None and a != b
                                                   for a, b in zip(shape, inputs[0])) for shape in inputs):
            raise _fail(self.path, f"bottom shapes differ: {inputs}", layer)
        operation = {param.PROD: "prod", param.SUM: "sum", param.MAX: "max"}[param.operation]
        coeffs = list(param.coeff)
        if coeffs and (operation != "sum" or len(coeffs) != len(inputs)):
            raise _fail(self.path, f"{len(coeffs)} coefficients for {len(inputs)} bottoms of a {operation}",
                        layer)
        return self.node(layer, "eltwise", {"operation": operation, "coeffs": coeffs}), [inputs[0]]

    def _concat(self, layer, inputs):
        if not inputs:
            raise _fail(self.path, "has no bottoms", layer)
        param = layer.concat_param
        axis_value = param.concat_dim if param.HasField("concat_dim") else param.axis
        axis = _axis_index(axis_value, inputs[0], layer, self.path)
        if any(len(shape) != len(inputs[0]) for shape in inputs):
            raise _fail(self.path, f"bottoms have different ranks: {inputs}", layer)
        out = list(inputs[0])
        out[axis - 1] = _sum(shape[axis - 1] for shape in inputs)
        return self.node(layer, "concat", {"axis": axis}), [tuple(out)]

    def _slice(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        param = layer.slice_param
        axis_value = param.slice_dim if param.HasField("slice_dim") else param.axis
        axis = _axis_index(axis_value, inputs[0], layer, self.path)
        points = list(param.slice_point)
        size = inputs[0][axis - 1]
        tops = len(layer.top)
        if points and len(points) != tops - 1:
            raise _fail(self.path, f"{len(points)} slice points for {tops} tops", layer)
        if points:
            bounds = [0] + points + [size]
            if points != sorted(points) or (size is not None and points[-1] > size):
                raise _fail(self.path, f"slice points {points} do not fit the axis size {size}", layer)
            sizes = [None if hi is None else hi - lo for lo, hi in zip(bounds, bounds[1:])]
        else:
            if size is not None and size % tops:
                raise _fail(self.path, f"axis size {size} does not split into {tops} equal parts", layer)
            sizes = [None if size is None else size // tops] * tops
        shapes = []
        for part in sizes:
            shape = list(inputs[0])
            shape[axis - 1] = part
            shapes.append(tuple(shape))
        return self.node(layer, "slice", {"axis": axis, "points": points}), shapes

    def _split(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        return self.node(layer, "split", {}), [inputs[0]] * len(layer.top)

    def _crop(self, layer, inputs):
        self.need_bottoms(layer, inputs, 2)
        param = layer.crop_param
        shape, reference = inputs
        if len(shape) != len(reference):
            raise _fail(self.path, f"bottoms have different ranks: {shape} and {reference}", layer)
        axis = _axis_index(param.axis, shape, layer, self.path)
        count = len(shape) + 1 - axis
        offsets = list(param.offset)
        if len(offsets) == 0:
            offsets = [0] * count
        elif len(offsets) == 1:
            offsets = offsets * count
        elif len(offsets) != count:
            raise _fail(self.path, f"{len(offsets)} offsets for the {count} cropped axes", layer)
        out = tuple(shape[:axis - 1]) + tuple(reference[axis - 1:])
        for index, offset in enumerate(offsets):
            big, small = shape[axis - 1 + index], reference[axis - 1 + index]
            if big is not None and small is not None and offset + small > big:
                raise _fail(self.path, f"crop offset {offset} + size {small} exceeds the input size {big}",
                            layer)
        return self.node(layer, "crop", {"axis": axis, "offsets": offsets}), [out]

    def _flatten(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        param = layer.flatten_param
        shape = inputs[0]
        axis = _axis_index(param.axis, shape, layer, self.path)
        end_axis = _axis_index(param.end_axis, shape, layer, self.path)
        if end_axis < axis:
            raise _fail(self.path, f"end_axis {param.end_axis} comes before axis {param.axis}", layer)
        out = tuple(shape[:axis - 1]) + (_product(shape[axis - 1:end_axis]),) + tuple(shape[end_axis:])
        return self.node(layer, "flatten", {"axis": axis, "end_axis": end_axis}), [out]

    def _reshape(self, layer, inputs):
        self.need_bottoms(layer, inputs, 1)
        param = layer.reshape_param
        shape = inputs[0]
        full = (None,) + tuple(shape)
        rank = len(full)
        start = param.axis + rank + 1 if param.axis < 0 else param.axis
        end = rank if param.num_axes == -1 else start + param.num_axes
        if not 0 <= start <= end <= rank:
            raise _fail(self.path, f"axis {param.axis} / num_axes {param.num_axes} do not fit a {rank}-D blob",
                        layer)
        dims = list(param.shape.dim)
        if dims.count(-1) > 1 or any(dim < -1 for dim in dims):
            raise _fail(self.path, f"invalid reshape dims {dims}", layer)
        new = []
        for index, dim in enumerate(dims):
            if dim == 0:
                if start + index >= rank:
                    raise _fail(self.path, f"dim {index} copies a dimension the input does not have", layer)
                new.append(full[start + index])
            else:
                new.append(None if dim == -1 else dim)
        out = list(full[:start]) + new + list(full[end:])
        if -1 in dims:
            known = _product(full[1:])
            rest = _product([d for i, d in enumerate(out) if i and d is not None]) if known else None
            at = start + dims.index(-1)
            if known is not None and rest:
                if known % rest:
                    raise _fail(self.path, f"cannot reshape {shape} into {dims}", layer)
                out[at] = known // rest
        if start == 0 and dims and dims[0] not in (0, -1):
            raise _fail(self.path, "reshaping the batch axis is not supported", layer)
        attrs = {"shape": dims, "axis": param.axis, "num_axes": param.num_axes}
        return self.node(layer, "reshape", attrs), [tuple(out[1:])]


def _sum(values):
    values = list(values)
    return None if any(value is None for value in values) else sum(values)


_OPS = {
    "Convolution": "conv", "Deconvolution": "deconv", "Pooling": "pool", "LRN": "lrn",
    "InnerProduct": "dense", "ReLU": "relu", "PReLU": "prelu", "Sigmoid": "sigmoid", "TanH": "tanh",
    "ELU": "elu", "AbsVal": "absval", "Power": "power", "Softmax": "softmax", "Dropout": "dropout",
    "BatchNorm": "batchnorm", "Scale": "scale", "Bias": "bias", "Eltwise": "eltwise", "Concat": "concat",
    "Slice": "slice", "Split": "split", "Crop": "crop", "Flatten": "flatten", "Reshape": "reshape",
}
SUPPORTED_LAYER_TYPES = frozenset(_OPS) | {"Input"}
_WEIGHTED_TYPES = frozenset({"Convolution", "Deconvolution", "InnerProduct", "PReLU", "BatchNorm", "Scale",
                             "Bias"})


# ------------------------------------------------------------------------------------------ the net

def _check_input_shape(input_shape, path):
    if input_shape is None:
        return None
    try:
        dims = tuple(int(dim) for dim in input_shape)
    except (TypeError, ValueError):
        dims = ()
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise ConversionError(f"input_shape must be (H, W) or (C, H, W) positive integers, got {input_shape!r}",
                              path=path)
    return dims


def _override(shape, input_shape):
    """A declared (C, H, W) input shape with ``input_shape`` applied (C kept unless given)."""
    if input_shape is None or len(shape) != 3:
        return shape
    return input_shape if len(input_shape) == 3 else (shape[0],) + input_shape


def _declared_inputs(net, path, input_shape):
    """{name: batch-less shape} of the net-level ``input`` declarations (input_dim or input_shape)."""
    names = list(net.input)
    if not names:
        if net.input_dim or net.input_shape:
            raise ConversionError("input_dim/input_shape given without an 'input' name", path=path)
        return {}
    if net.input_shape:
        if len(net.input_shape) != len(names):
            raise ConversionError(f"{len(names)} inputs but {len(net.input_shape)} input_shape entries",
                                  path=path)
        shapes = [tuple(shape.dim) for shape in net.input_shape]
    else:
        dims = list(net.input_dim)
        if len(dims) != 4 * len(names):
            raise ConversionError(f"{len(names)} inputs need {4 * len(names)} input_dim values, got {len(dims)}",
                                  path=path)
        shapes = [tuple(dims[4 * i:4 * i + 4]) for i in range(len(names))]
    if any(len(shape) < 2 or min(shape) < 1 for shape in shapes):
        raise ConversionError(f"invalid input shapes {shapes}", path=path)
    return {name: _override(shape[1:], input_shape) for name, shape in zip(names, shapes)}


def _input_layer_shapes(layer, path, input_shape):
    shapes = [tuple(shape.dim) for shape in layer.input_param.shape]
    if len(shapes) not in (1, len(layer.top)) or not layer.top:
        raise _fail(path, f"{len(shapes)} shapes for {len(layer.top)} tops", layer)
    if len(shapes) == 1:
        shapes = shapes * len(layer.top)
    if any(len(shape) < 2 or min(shape) < 1 for shape in shapes):
        raise _fail(path, f"invalid input shapes {shapes}", layer)
    return {top: _override(shape[1:], input_shape) for top, shape in zip(layer.top, shapes)}


def _data_layer_shape(layer, path, input_shape, strict):
    """Batch-less (C, H, W) of the image a data layer feeds (see the module docstring)."""
    channels = 1 if layer.type == "ImageData" and not layer.image_data_param.is_color else 3
    if input_shape is not None:
        return input_shape if len(input_shape) == 3 else (channels,) + input_shape
    if layer.type == "DummyData":
        param = layer.dummy_data_param
        if param.shape:
            return tuple(param.shape[0].dim)[1:]
        if param.num and param.channels and param.height and param.width:
            return param.channels[0], param.height[0], param.width[0]
    if layer.type == "MemoryData":
        param = layer.memory_data_param
        if param.channels and param.height and param.width:
            return param.channels, param.height, param.width
    if layer.type == "ImageData" and layer.image_data_param.new_height and layer.image_data_param.new_width:
        crop = layer.transform_param.crop_size or layer.image_data_param.crop_size
        param = layer.image_data_param
        return (channels, crop, crop) if crop else (channels, param.new_height, param.new_width)
    crop = (layer.transform_param.crop_size or layer.data_param.crop_size or layer.image_data_param.crop_size
            or layer.window_data_param.crop_size)
    if crop:
        return channels, crop, crop
    if strict:
        raise _fail(path, f"the input size of this {layer.type} layer is unknown: pass input_shape=(H, W) "
                          "or (C, H, W)", layer)
    return None, None, None


def _data_layer_meta(layer):
    transform = layer.transform_param
    return {"type": layer.type, "scale": transform.scale, "mirror": transform.mirror,
            "crop_size": transform.crop_size, "mean_file": transform.mean_file or None,
            "mean_value": list(transform.mean_value)}


def _image_tops(data_layer, later_layers):
    """The tops of a data layer that feed a layer with weights (the others are labels); else the first."""
    images = []
    for top in data_layer.top:
        reached = {top}
        for layer in later_layers:
            if reached.intersection(layer.bottom):
                if layer.type in _WEIGHTED_TYPES:
                    images.append(top)
                    break
                reached.update(layer.top)
    return images or list(data_layer.top[:1])


def _select_layers(net, path, *, filter_phase):
    """(V2 layers kept in the TEST phase minus losses and label consumers, format name)."""
    try:
        layers, net_format = _upgrade_layers(net)
    except ValueError as exc:
        raise ConversionError(str(exc), path=path) from None
    state = schema.NetState(phase="TEST", level=net.state.level, stage=net.state.stage)
    layers = [layer for layer in layers if not filter_phase or _in_test_phase(layer, state)]
    for layer in layers:
        if layer.type in DROPPED_LAYER_TYPES:
            log.debug("%s: dropping layer '%s' (%s)", path, layer.name, layer.type)
    layers = [layer for layer in layers if layer.type not in DROPPED_LAYER_TYPES]
    kept = []
    labels = set()
    for index, layer in enumerate(layers):
        if _is_data_layer(layer):
            images = _image_tops(layer, layers[index + 1:])
            labels.update(top for top in layer.top if top not in images)
            del layer.top[:]
            layer.top.extend(images)
        elif labels.intersection(layer.bottom):
            log.debug("%s: dropping layer '%s' (%s): it consumes labels", path, layer.name, layer.type)
            labels.update(layer.top)
            continue
        kept.append(layer)
    unsupported = [layer for layer in kept
                   if layer.type not in SUPPORTED_LAYER_TYPES and not _is_data_layer(layer)]
    if unsupported:
        listing = ", ".join(f"'{layer.name}' ({layer.type})" for layer in unsupported)
        raise ConversionError(f"unsupported layer type(s): {listing}", path=path)
    return kept, net_format


def _build_graph(net, layers, net_format, *, path, blobs, weight_path, input_shape, strict):
    converter = _Converter(path, weight_path, blobs, embedded=not strict)
    inputs = _declared_inputs(net, path, input_shape)
    converter.shapes.update(inputs)
    available = set(inputs)
    nodes = []
    meta = {"format": net_format, "net_name": net.name, "data_layers": {}}
    for layer in layers:
        if layer.type == "Input" or _is_data_layer(layer):
            if layer.type == "Input":
                new = _input_layer_shapes(layer, path, input_shape)
            elif layer.top:
                new = {top: _data_layer_shape(layer, path, input_shape, strict) for top in layer.top}
                meta["data_layers"].update({top: _data_layer_meta(layer) for top in layer.top})
            else:
                raise _fail(path, "a data layer without tops", layer)
            inputs.update(new)
            converter.shapes.update(new)
            available.update(new)
            continue
        for bottom in layer.bottom:
            if bottom in converter.shapes:
                continue
            if strict:
                raise _fail(path, f"bottom '{bottom}' is not produced by any earlier layer", layer)
            # an embedded net whose input declaration was not saved: the blob becomes an input
            inputs[bottom] = converter.shapes[bottom] = _override((None, None, None), input_shape)
            available.add(bottom)
        try:
            nodes.append(converter.convert(layer))
        except (ValueError, ArithmeticError, IndexError) as exc:
            raise _fail(path, f"invalid parameters: {exc}", layer) from None
        available.difference_update(layer.bottom)
        available.update(layer.top)
    if not inputs:
        raise ConversionError("the net declares no input (input/input_dim, Input layer or data layer)",
                              path=path)
    if blobs is not None:
        used = {node.name for node in nodes}
        for name in blobs:
            if name not in used:
                log.warning("%s: layer '%s' has weights in the caffemodel but is not in the net; ignored",
                            weight_path, name)
    return Graph(name=net.name or pathlib.Path(path).stem, inputs=inputs, nodes=nodes,
                 outputs=sorted(available), source=str(path), meta=meta)


def read_caffe(prototxt, caffemodel=None, *, input_shape=None):
    """The neutral Graph of a Caffe net; with ``caffemodel``, its weights in the neutral layouts.

    ``prototxt=None`` reads the net definition embedded in ``caffemodel`` (see :func:`read_caffemodel`).
    ``input_shape`` ((H, W) or (C, H, W)) sizes data layers and overrides the declared image input size.
    Outputs are the blobs no layer consumes, sorted by name (the order Caffe's Net reports them).
    """
    if prototxt is None:
        if caffemodel is None:
            raise ConversionError("read_caffe needs a prototxt, a caffemodel or both")
        return read_caffemodel(caffemodel, input_shape=input_shape)
    input_shape = _check_input_shape(input_shape, prototxt)
    net = _parse_prototxt(prototxt)
    layers, net_format = _select_layers(net, prototxt, filter_phase=True)
    blobs = None
    if caffemodel is not None:
        _, blobs = _scan_caffemodel(caffemodel)
    graph = _build_graph(net, layers, net_format, path=prototxt, blobs=blobs, weight_path=caffemodel,
                         input_shape=input_shape, strict=True)
    graph.meta["caffemodel"] = None if caffemodel is None else str(caffemodel)
    return graph


def read_caffemodel(caffemodel, *, input_shape=None):
    """The Graph of the net definition embedded in a .caffemodel, with its weights in the neutral layouts.

    Caffe stores the net it trained (already filtered to its phase), so no include/exclude rule is applied;
    data-layer inputs whose size the file does not record get ``None`` dimensions unless ``input_shape``
    says, and so do blobs read before any layer writes them (files saved without their input declaration).
    Layer parameters missing from old files are taken from the blobs where they determine them (num_output,
    kernel size, bias_term).
    """
    input_shape = _check_input_shape(input_shape, caffemodel)
    net, blobs = _scan_caffemodel(caffemodel)
    layers, net_format = _select_layers(net, caffemodel, filter_phase=False)
    graph = _build_graph(net, layers, net_format, path=caffemodel, blobs=blobs, weight_path=caffemodel,
                         input_shape=input_shape, strict=False)
    graph.meta["caffemodel"] = str(caffemodel)
    return graph


def read_mean_file(path):
    """A mean image as float32 (C, H, W): a Caffe ``.binaryproto`` (BlobProto) or a numpy ``.npy``."""
    path = pathlib.Path(path)
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ConversionError(f"cannot read the mean file: {exc}", path=path) from None
    else:
        try:
            with _mapped(path, "mean file") as (buf, size):
                blob = _BlobRef(path, buf, 0, size)
        except _Corrupt as exc:
            raise ConversionError(f"not a Caffe BlobProto mean file: {exc}", path=path) from None
        array = np.array(blob.array()).reshape(blob.shape)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        raise ConversionError(f"a mean image must be (C, H, W) numbers, got shape {array.shape} "
                              f"({array.dtype})", path=path)
    return np.ascontiguousarray(array, dtype=np.float32)
