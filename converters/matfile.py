"""MATLAB .mat files (v4/v5/v7: scipy.io or an in-place scanner; v7.3 = HDF5: h5py) as plain Python values.

Every MATLAB value becomes:

* numeric or logical array -> ``np.ndarray`` in MATLAB's own shape and indexing (``a[i, j]`` is MATLAB's
  ``A(i+1, j+1)``; at least 2-D), its own dtype (logical -> bool, except uint8 through scipy.io);
* char array -> ``str`` (one row) or ``list[str]`` (several rows);
* cell array -> ``list`` of its elements in MATLAB's linear (column-major) order;
* struct -> ``dict`` (field -> value) when it has one element, else :class:`StructArray` (a list of dicts in
  column-major order; empty struct arrays included);
* anything else (objects, function handles, sparse matrices) -> :class:`MatOpaque` naming its class.

Large numeric arrays stored uncompressed (MAT v5 as scipy.io.savemat and MatConvNet's Caffe importer write
it, contiguous v7.3 datasets) are returned as read-only ``np.memmap`` views, read only when used; compressed
data (MATLAB's default ``-v7``, chunked v7.3 datasets) is read into memory. Uncompressed MAT v5 files are
scanned in place by this module; compressed v5 and v4 files go through ``scipy.io.loadmat``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import mmap
import pathlib
import struct
import zlib

import numpy as np

from converters.errors import ConversionError

log = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# MAT v7.3 files are HDF5 files behind a 512-byte MATLAB header; HDF5 looks for its signature there.
HDF5_SIGNATURE_OFFSETS = (0, 512, 1024, 2048)
MEMMAP_MIN_BYTES = 1 << 20  # smaller arrays are copied into memory
NUMERIC_CLASSES = {
    "double": np.float64, "single": np.float32, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
    "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
    "logical": np.bool_,
}


class StructArray(list):
    """A MATLAB struct array with other than one element: a list of field dicts, column-major."""


@dataclasses.dataclass(frozen=True)
class MatOpaque:
    """A MATLAB value this reader does not decode (an object, a function handle, a sparse matrix)."""

    class_name: str


def load_mat(path, variables=None):
    """``{variable name: value}`` of a .mat file (all variables, or only those named in ``variables``)."""
    path = pathlib.Path(path)
    try:
        head = _read_head(path)
    except OSError as exc:
        raise ConversionError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    if any(head[offset:offset + 8] == HDF5_SIGNATURE for offset in HDF5_SIGNATURE_OFFSETS):
        return _load_hdf5(path, variables)
    if head[:6] == b"MATLAB" and b"7.3" in head[:20]:
        raise ConversionError("a MAT v7.3 header without an HDF5 body (truncated or damaged file)", path=path)
    if head[126:128] in (b"IM", b"MI") and head[124:126] in (b"\x00\x01", b"\x01\x00"):
        scanned = _scan_v5(path, variables)
        if scanned is not None:
            return scanned
    return _load_v5(path, variables)


def _read_head(path):
    with open(path, "rb") as handle:
        return handle.read(max(HDF5_SIGNATURE_OFFSETS) + 8)


# ---------------------------------------------------------------------------------------------- v4 / v5 / v7
def _load_v5(path, variables):
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        raw = scipy.io.loadmat(
            str(path), variable_names=variables, squeeze_me=False, struct_as_record=True,
            chars_as_strings=True, mat_dtype=False)
    except (MatReadError, ValueError, TypeError, OSError, EOFError, zlib.error, IndexError, KeyError,
            OverflowError, MemoryError, AttributeError) as exc:
        raise ConversionError(f"not a readable MAT file ({type(exc).__name__}: {exc})", path=path) from None
    return {name: _from_scipy(value) for name, value in raw.items() if not name.startswith("__")}


def _from_scipy(value):
    from scipy.io.matlab import MatlabFunction, MatlabOpaque

    if isinstance(value, MatlabOpaque):
        return MatOpaque(_opaque_class(value))
    if isinstance(value, MatlabFunction):
        return MatOpaque("function_handle")
    if isinstance(value, str):
        return value
    if not isinstance(value, np.ndarray):
        import scipy.sparse

        return MatOpaque("sparse") if scipy.sparse.issparse(value) else value
    if value.dtype.names:
        records = [{name: _from_scipy(record[name]) for name in value.dtype.names}
                   for record in value.ravel(order="F")]
        return records[0] if value.size == 1 else StructArray(records)
    if value.dtype == object:
        return [_from_scipy(item) for item in value.ravel(order="F")]
    if value.dtype.kind == "U":
        rows = [str(row) for row in value.ravel(order="F")]
        return rows[0] if len(rows) == 1 else ("" if not rows else rows)
    return value


# --------------------------------------------------------------------------- uncompressed MAT v5, in place
MI_MATRIX, MI_COMPRESSED = 14, 15
MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8",
             16: "u1", 17: "u2", 18: "u4"}
MX_NUMERIC = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5
MX_OPAQUE_NAMES = {MX_SPARSE: "sparse", 16: "function_handle", 17: "opaque"}


def _scan_v5(path, variables):
    """Variables of an uncompressed MAT v5 file, large arrays memory-mapped; None if any is compressed."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            scanner = _V5Scanner(path, buffer)
            if scanner.compressed():
                return None
            return scanner.variables(variables)
    except (ValueError, struct.error, IndexError, KeyError, OverflowError, UnicodeDecodeError) as exc:
        raise ConversionError(f"malformed MAT v5 data ({type(exc).__name__}: {exc})", path=path) from None


class _V5Scanner:
    """MAT v5 data elements (MATLAB's "MAT-File Format"), read from a memory map of the file."""

    def __init__(self, path, buffer):
        self.path = path
        self.buffer = buffer
        self.order = "<" if buffer[126:128] == b"IM" else ">"

    def elements(self, start, end):
        """(type, data offset, byte count) of the elements in [start, end)."""
        position = start
        while position + 8 <= end:
            first, second = struct.unpack_from(self.order + "II", self.buffer, position)
            if first >> 16:  # small element: type and size in one word, data in the next
                yield first & 0xFFFF, position + 4, first >> 16
                position += 8
            else:
                if position + 8 + second > end:
                    raise ValueError(f"element at byte {position} runs past the end ({second} bytes)")
                yield first, position + 8, second
                position += 8 + ((second + 7) // 8 * 8 if end - position > 8 + second else second)

    def compressed(self):
        return any(kind == MI_COMPRESSED for kind, _, _ in self.elements(128, len(self.buffer)))

    def variables(self, wanted):
        result = {}
        for kind, offset, size in self.elements(128, len(self.buffer)):
            if kind != MI_MATRIX or size == 0:
                continue
            name = self.matrix_name(offset, size)
            if (wanted is None or name in wanted) and not name.startswith("__"):
                result[name] = self.matrix(offset, size)
        return result

    def data(self, kind, offset, size):
        dtype = np.dtype(MI_DTYPES[kind]).newbyteorder(self.order)
        return np.frombuffer(self.buffer, dtype=dtype, count=size // dtype.itemsize, offset=offset).copy()

    def matrix_name(self, offset, size):
        parts = list(itertools.islice(self.elements(offset, offset + size), 3))
        kind, start, count = parts[2]
        return bytes(self.buffer[start:start + count]).decode("latin-1")

    def matrix(self, offset, size):
        if size == 0:
            return np.zeros((0, 0))
        parts = self.elements(offset, offset + size)
        (_, flags_at, _), dims_part, _ = itertools.islice(parts, 3)
        flags = struct.unpack_from(self.order + "I", self.buffer, flags_at)[0]
        mx_class, logical, complex_ = flags & 0xFF, flags & 0x200, flags & 0x800
        dims = tuple(int(d) for d in self.data(*dims_part))
        count = int(np.prod(dims))
        if mx_class in MX_NUMERIC:
            return self.numeric(parts, dims, MX_NUMERIC[mx_class], bool(logical), bool(complex_))
        if mx_class == MX_CHAR:
            kind, start, length = next(parts, (2, offset, 0))
            codes = self.data(kind, start, length) if length else np.zeros(0, np.uint16)
            text = bytes(codes).decode("utf-8") if kind == 16 else "".join(map(chr, codes))
            rows = np.array(list(text), dtype=object).reshape(dims, order="F") if count else np.zeros((0, 0))
            lines = ["".join(row) for row in np.atleast_2d(rows)] if count else [""]
            return lines[0] if len(lines) == 1 else lines
        if mx_class == MX_CELL:
            return [self.matrix(start, length) for _, start, length in itertools.islice(parts, count)]
        if mx_class in (MX_STRUCT, MX_OBJECT):
            class_name = ""
            if mx_class == MX_OBJECT:
                _, start, length = next(parts)
                class_name = bytes(self.buffer[start:start + length]).decode("latin-1")
            (_, width_at, _), (_, names_at, names_size) = itertools.islice(parts, 2)
            width = struct.unpack_from(self.order + "i", self.buffer, width_at)[0]
            raw = bytes(self.buffer[names_at:names_at + names_size])
            names = [raw[i:i + width].split(b"\x00", 1)[0].decode("latin-1") for i in range(0, names_size, width)]
            records = [{name: self.matrix(start, length)
                        for name, (_, start, length) in zip(names, itertools.islice(parts, len(names)))}
                       for _ in range(count)]
            if mx_class == MX_OBJECT:
                return MatOpaque(class_name)
            return records[0] if count == 1 else StructArray(records)
        return MatOpaque(MX_OPAQUE_NAMES.get(mx_class, f"class {mx_class}"))

    def numeric(self, parts, dims, class_dtype, logical, complex_):
        kind, start, length = next(parts)
        stored = np.dtype(MI_DTYPES[kind]).newbyteorder(self.order)
        target = np.dtype(class_dtype).newbyteorder(self.order)
        if stored == target and not complex_ and length >= MEMMAP_MIN_BYTES and stored.isnative:
            return np.memmap(self.path, dtype=stored, mode="r", offset=start, shape=dims, order="F")
        real = self.data(kind, start, length).astype(class_dtype.lstrip("<>"))
        if complex_:
            imaginary_kind, imaginary_start, imaginary_length = next(parts)
            real = real + 1j * self.data(imaginary_kind, imaginary_start, imaginary_length)
        array = real.reshape(dims, order="F")
        return array.astype(bool) if logical else array


def _opaque_class(value):
    try:
        return str(value["s2"].ravel()[0])
    except (KeyError, IndexError, ValueError, TypeError):
        return "object"


# ------------------------------------------------------------------------------------------------- v7.3
def _load_hdf5(path, variables):
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            names = [name for name in handle.keys() if not name.startswith("#")]
            if variables is not None:
                names = [name for name in names if name in set(variables)]
            return {name: _from_hdf5(handle, handle[name]) for name in names}
    except ConversionError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError) as exc:
        raise ConversionError(f"cannot read MAT v7.3 (HDF5) data ({type(exc).__name__}: {exc})",
                              path=path) from None


def _attr_text(node, name, default=""):
    value = node.attrs.get(name)
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_hdf5(handle, node):
    import h5py

    matlab_class = _attr_text(node, "MATLAB_class")
    if isinstance(node, h5py.Group):
        if "MATLAB_sparse" in node.attrs:
            return MatOpaque("sparse")
        if matlab_class not in ("struct", ""):
            return MatOpaque(matlab_class)
        return _struct_from_hdf5(handle, node)
    if int(node.attrs.get("MATLAB_empty", 0)):
        return _empty_from_hdf5(node, matlab_class)
    if matlab_class == "cell" or (not matlab_class and node.dtype == h5py.ref_dtype):
        refs = node[()].T
        return [_from_hdf5(handle, handle[ref]) for ref in refs.ravel(order="F")]
    if matlab_class == "char":
        codes = np.asarray(node[()]).T
        rows = ["".join(map(chr, row)) for row in np.atleast_2d(codes)]
        return rows[0] if len(rows) == 1 else rows
    if matlab_class in NUMERIC_CLASSES:
        offset = node.id.get_offset()
        if (offset is not None and node.chunks is None and node.dtype.isnative and node.dtype.kind in "iuf"
                and matlab_class != "logical" and node.size * node.dtype.itemsize >= MEMMAP_MIN_BYTES):
            return np.memmap(handle.filename, dtype=node.dtype, mode="r", offset=offset, shape=node.shape).T
        data = node[()]
        if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
            data = data["real"] + 1j * data["imag"]
        data = np.asarray(data).T
        return data.astype(bool) if matlab_class == "logical" else data
    return MatOpaque(matlab_class or "unknown")


def _empty_from_hdf5(node, matlab_class):
    dims = tuple(int(d) for d in np.asarray(node[()]).ravel())
    if matlab_class == "char":
        return ""
    if matlab_class == "cell":
        return []
    if matlab_class == "struct":
        return StructArray()
    return np.zeros(dims, dtype=NUMERIC_CLASSES.get(matlab_class, np.float64))


def _struct_from_hdf5(handle, group):
    import h5py

    fields = group.attrs.get("MATLAB_fields")
    if fields is None:
        names = list(group.keys())
    else:
        names = [b"".join(np.asarray(field).ravel()).decode() for field in fields]
    members = {name: group[name] for name in names if name in group}
    is_array = any(isinstance(member, h5py.Dataset) and member.dtype == h5py.ref_dtype
                   and "MATLAB_class" not in member.attrs for member in members.values())
    if not is_array:
        return {name: _from_hdf5(handle, member) for name, member in members.items()}
    columns = {name: np.asarray(member[()]).T.ravel(order="F") for name, member in members.items()}
    count = len(next(iter(columns.values()))) if columns else 0
    records = [{name: _from_hdf5(handle, handle[refs[index]]) for name, refs in columns.items()}
               for index in range(count)]
    return records[0] if count == 1 else StructArray(records)
