"""The protobuf wire scanner of binary Caffe files (.caffemodel, .binaryproto), over a memory map.

Weight arrays are never parsed into messages: each BlobProto becomes a :class:`BlobRef` whose values are
``np.memmap`` views of the file (nothing is copied until the consumer reads them); the rest of each layer is
parsed with :mod:`converters.caffe.schema`.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import pathlib

import numpy as np
from google.protobuf import message as protobuf_message

import converters.caffe.schema as schema
from converters.errors import ConversionError


class _WireError(Exception):
    """A wire-format problem at a byte offset (turned into a ConversionError by the caller)."""


def _varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError(f"overlong varint at byte {pos}")


def _fields(buf, start, end):
    """Yield ``(field, wire_type, value_start, value_end, varint_value, field_start)`` for each field of
    the message in ``buf[start:end]`` (``varint_value`` is None for other wire types)."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise _WireError(f"field number 0 at byte {field_start}")
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
            raise _WireError(f"invalid wire type {wire_type} at byte {field_start}")
        if pos + size > end:
            raise _WireError(f"field {field} at byte {field_start} runs past the end of its message")
        yield field, wire_type, pos, pos + size, None, field_start
        pos += size


class BlobRef:
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
                        raise _WireError(f"packed data of {hi - lo} bytes at byte {lo} is not a whole number "
                                       "of values")
                    chunks.append((dtype, lo, (hi - lo) // width, None))
                elif wire_type == (5 if field == 5 else 1):
                    _append_unpacked(chunks, dtype, lo, width)
                else:
                    raise _WireError(f"blob data field with wire type {wire_type} at byte {lo}")
        if self.shape is None:
            self.legacy = bool(legacy)
            self.shape = tuple(_signed(legacy.get(field, 0)) for field in (1, 2, 3, 4)) if legacy else ()
        self.count = sum(chunk[2] for chunk in chunks)
        expected = math.prod(self.shape)
        if self.count != expected:
            raise _WireError(f"blob holds {self.count} values but its shape {self.shape} needs {expected}")
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
            raise _WireError(f"blob shape dim with wire type {wire_type} at byte {lo}")


def _signed(value):
    value = value - (1 << 64) if value >= 1 << 63 else value
    if value < 0:
        raise _WireError(f"negative blob dimension {value}")
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


def scan_caffemodel(path):
    """(NetParameter without blobs, {layer name: [BlobRef]}) of a binary caffemodel."""
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
    except _WireError as exc:
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
            blobs.append(BlobRef(path, buf, lo, hi))
        elif layer_class is schema.V1LayerParameter and field == _V0_LAYER_FIELD and wire_type == 2:
            v0_rest = bytearray()  # a V0 layer nested in a V1 connection: its blobs are field 50
            for v0_field, v0_wire, v0_lo, v0_hi, _, v0_start in _fields(buf, lo, hi):
                if v0_field == _V0_BLOBS_FIELD and v0_wire == 2:
                    blobs.append(BlobRef(path, buf, v0_lo, v0_hi))
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
                blob = BlobRef(path, buf, 0, size)
        except _WireError as exc:
            raise ConversionError(f"not a Caffe BlobProto mean file: {exc}", path=path) from None
        array = np.array(blob.array()).reshape(blob.shape)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        raise ConversionError(f"a mean image must be (C, H, W) numbers, got shape {array.shape} "
                              f"({array.dtype})", path=path)
    return np.ascontiguousarray(array, dtype=np.float32)
