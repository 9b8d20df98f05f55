"""Writer of MATLAB .mat files (tests, benchmarks): MAT v5 through scipy.io.savemat, MAT v7.3 (HDF5) written by hand.

It shares no code with ``converters.matfile``. Values map to MATLAB as follows: ``dict`` -> 1x1 struct,
:class:`StructArray` -> 1xN struct array, ``list`` -> 1xN cell, ``str`` -> char row, ``bool`` -> logical,
``int``/``float`` -> 1x1 double, numpy arrays keep their shape and indexing (a 1-D array is a row vector).

The v7.3 layout follows MATLAB's: a 512-byte text header before the HDF5 data; every array stored with its
dimensions reversed (HDF5 is row-major, MATLAB column-major) and a ``MATLAB_class`` attribute; cells as
datasets of object references into ``/#refs#``; a struct as a group with a ``MATLAB_fields`` attribute whose
members are its fields (scalar struct) or per-field reference datasets (struct array); empty arrays as
``MATLAB_empty`` datasets holding their dimensions.
"""

import itertools

import numpy as np

MATLAB_CLASS_OF = {
    np.dtype(np.float64): "double", np.dtype(np.float32): "single", np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8", np.dtype(np.int16): "int16", np.dtype(np.uint16): "uint16",
    np.dtype(np.int32): "int32", np.dtype(np.uint32): "uint32", np.dtype(np.int64): "int64",
    np.dtype(np.uint64): "uint64", np.dtype(np.bool_): "logical",
}


class StructArray(list):
    """A 1xN MATLAB struct array: a list of dicts with the same keys."""


def write_mat(path, variables, *, version="5", compress=False):
    """Write ``{name: value}`` as a MAT file of ``version`` '5' or '7.3'; ``compress``: zlib (MATLAB -v7)."""
    if version == "5":
        import scipy.io

        scipy.io.savemat(str(path), {name: _to_scipy(value) for name, value in variables.items()},
                         do_compression=compress, oned_as="row")
    elif version == "7.3":
        _write_hdf5(path, variables)
    else:
        raise ValueError(f"unknown MAT version {version!r}")
    return path


# ------------------------------------------------------------------------------------------------ MAT v5
def _to_scipy(value):
    if isinstance(value, StructArray):
        return _struct_array(value, (1, len(value)))
    if isinstance(value, dict):
        return _struct_array([value], (1, 1))
    if isinstance(value, list):
        cell = np.empty((1, len(value)), dtype=object)
        for index, item in enumerate(value):
            cell[0, index] = _to_scipy(item)
        return cell
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return np.array([[bool(value)]])
    if isinstance(value, (int, float)):
        return np.array([[float(value)]])
    array = np.asarray(value)
    return array.reshape(1, -1) if array.ndim < 2 else array


def _struct_array(records, shape):
    names = list(records[0]) if records else ["name"]  # MATLAB's struct('name', {}) is a 0x0 struct array
    shape = shape if records else (0, 0)
    array = np.empty(shape, dtype=[(name, object) for name in names])
    for index, record in enumerate(records):
        for name in names:
            array.flat[index][name] = _to_scipy(record[name])
    return array


# ---------------------------------------------------------------------------------------------- MAT v7.3
def _write_hdf5(path, variables):
    import h5py

    with h5py.File(path, "w", userblock_size=512) as handle:
        writer = _Hdf5Writer(handle)
        for name, value in variables.items():
            writer.write(handle, name, value)
    header = b"MATLAB 7.3 MAT-file, Platform: converters.writers, HDF5 schema 1.00 ."
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as stream:
        stream.write(header.ljust(512, b"\x00"))


class _Hdf5Writer:
    def __init__(self, handle):
        self.handle = handle
        self.refs = handle.create_group("#refs#")
        self.counter = itertools.count()

    def reference(self, value):
        name = f"r{next(self.counter)}"
        self.write(self.refs, name, value)
        return self.refs[name].ref

    def write(self, parent, name, value):
        import h5py

        if isinstance(value, StructArray) and not value:
            self._empty(parent, name, "struct", (0, 0))
        elif isinstance(value, StructArray):
            group = parent.create_group(name)
            self._struct_attrs(group, list(value[0]))
            for field in value[0]:
                refs = np.array([self.reference(record[field]) for record in value], dtype=h5py.ref_dtype)
                group.create_dataset(field, data=refs.reshape(len(value), 1))
        elif isinstance(value, dict):
            group = parent.create_group(name)
            self._struct_attrs(group, list(value))
            for field, item in value.items():
                self.write(group, field, item)
        elif isinstance(value, list):
            if not value:
                self._empty(parent, name, "cell", (0, 0))
                return
            refs = np.array([self.reference(item) for item in value], dtype=h5py.ref_dtype)
            dataset = parent.create_dataset(name, data=refs.reshape(len(value), 1))
            dataset.attrs["MATLAB_class"] = np.bytes_(b"cell")
        elif isinstance(value, str):
            if not value:
                self._empty(parent, name, "char", (0, 0))
                return
            codes = np.array([[ord(char)] for char in value], dtype=np.uint16)  # MATLAB 1xN, reversed
            dataset = parent.create_dataset(name, data=codes)
            dataset.attrs["MATLAB_class"] = np.bytes_(b"char")
            dataset.attrs["MATLAB_int_decode"] = np.int32(2)
        else:
            array = _to_scipy(value)
            matlab_class = MATLAB_CLASS_OF[array.dtype]
            if array.size == 0:
                self._empty(parent, name, matlab_class, array.shape)
                return
            data = array.astype(np.uint8) if array.dtype == np.bool_ else array
            dataset = parent.create_dataset(name, data=np.ascontiguousarray(data.T))
            dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class.encode())

    @staticmethod
    def _struct_attrs(group, fields):
        import h5py

        group.attrs["MATLAB_class"] = np.bytes_(b"struct")
        names = np.empty(len(fields), dtype=object)
        for index, field in enumerate(fields):
            names[index] = np.array(list(field), dtype="S1")
        group.attrs.create("MATLAB_fields", names, dtype=h5py.vlen_dtype(np.dtype("S1")))

    @staticmethod
    def _empty(parent, name, matlab_class, shape):
        dataset = parent.create_dataset(name, data=np.array(shape, dtype=np.uint64))
        dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class.encode())
        dataset.attrs["MATLAB_empty"] = np.uint8(1)
