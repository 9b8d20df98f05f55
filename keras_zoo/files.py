"""Writing files and folders so that nothing half-written is ever left behind."""

import contextlib
import io
import json
import logging
import os
import pathlib
import shutil
import struct
import tempfile
import time
import zlib

log = logging.getLogger(__name__)


class Rejected(Exception):
    """Raised inside :func:`atomic_output` to discard what was written (e.g. it failed its parity check).

    The temporary copy is removed and the exception swallowed: the caller has already said why.
    """


@contextlib.contextmanager
def atomic_output(target):
    """Yield a temporary path with ``target``'s name in a private folder next to it; when the block succeeds,
    what was written there replaces ``target``.

    The writer may make a file or a folder (a SavedModel), and may write companion files beside it (an ONNX
    model's external weights, ``model.onnx.data``): those are moved beside ``target`` first, then ``target``
    itself. On any exception everything written is removed and ``target`` is left as it was; :class:`Rejected`
    is swallowed after that. Writing nothing is an error (FileNotFoundError).
    """
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = workdir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{target}: nothing was written")
        for companion in sorted(workdir.iterdir()):
            if companion != tmp:
                _replace(companion, target.parent / companion.name, workdir)
        _replace(tmp, target, workdir)
    except Rejected as why:
        log.warning("%s: not written (%s)", target, why)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _replace(source, destination, workdir):
    """Rename ``source`` onto ``destination``; an existing folder there is moved into ``workdir`` first (a
    folder cannot be renamed onto another), and removed with it."""
    if source.is_dir() and destination.is_dir():
        os.replace(destination, workdir / f"{destination.name}.old")
    os.replace(source, destination)


# Zip records (PKWARE APPNOTE): local header, central directory entry, end of central directory; their Zip64 forms.
_LOCAL, _CENTRAL, _END = struct.Struct("<IHHHHHIIIHH"), struct.Struct("<IHHHHHHIIIHHHHHII"), struct.Struct("<IHHHHIIH")
_END64, _LOCATOR64 = struct.Struct("<IQHHIIQQQQ"), struct.Struct("<IIQI")
ZIP64_LIMIT = 0xFFFFFFFF  # sizes and offsets from this on are written in Zip64 fields (0xFFFFFFFF in theirs)
_RESERVED = 20  # extra-field bytes kept in the last member's local header for its Zip64 sizes


class _Window(io.RawIOBase):
    """The part of an open binary file from ``start`` on, as a seekable file of its own."""

    def __init__(self, handle, start):
        super().__init__()
        self.handle, self.start = handle, start

    def seekable(self):
        return True

    def readable(self):
        return True

    def writable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self.handle.seek(offset + self.start if whence == io.SEEK_SET else offset, whence) - self.start

    def tell(self):
        return self.handle.tell() - self.start

    def readinto(self, buffer):
        return self.handle.readinto(buffer)

    def write(self, data):
        return self.handle.write(data)

    def truncate(self, size=None):
        return self.handle.truncate(None if size is None else size + self.start) - self.start

    def flush(self):
        self.handle.flush()


def _field(value):
    """A 32-bit size or offset field: the value, or 0xFFFFFFFF where a Zip64 field holds it."""
    return value if value < ZIP64_LIMIT else 0xFFFFFFFF


def _crc32(handle, start, stop, step=16 << 20):
    """CRC-32 of bytes ``start:stop`` of the open file ``handle``, read in slices of ``step`` bytes."""
    crc, buffer = 0, memoryview(bytearray(step))
    handle.seek(start)
    for offset in range(start, stop, step):
        count = handle.readinto(buffer[:min(step, stop - offset)])
        crc = zlib.crc32(buffer[:count], crc)
    return crc


def write_stored_zip(path, members, last_name, write_last):
    """Write a zip archive of stored (uncompressed) members to ``path``: ``members`` ({name: bytes}), then
    ``last_name``, whose contents ``write_last(file)`` writes in place, into a seekable file object of its own that
    starts where the member's data does (a large member is written once, never copied into the archive). Its
    CRC-32 and size are filled in afterwards; Zip64 fields where a size or an offset needs them."""
    stamp = time.localtime()
    dos_time = stamp.tm_hour << 11 | stamp.tm_min << 5 | stamp.tm_sec // 2
    dos_date = (stamp.tm_year - 1980) << 9 | stamp.tm_mon << 5 | stamp.tm_mday
    entries = []  # (name, crc, size, offset of the local header)
    with open(path, "w+b") as handle:
        for name, data in members.items():
            entries.append((name.encode(), zlib.crc32(data), len(data), handle.tell()))
            handle.write(_LOCAL.pack(0x04034B50, 20, 0, 0, dos_time, dos_date, entries[-1][1], len(data), len(data),
                                     len(entries[-1][0]), 0) + entries[-1][0] + data)
        name, header = last_name.encode(), handle.tell()
        handle.write(b"\0" * (_LOCAL.size + len(name) + _RESERVED))
        start = handle.tell()
        write_last(_Window(handle, start))
        handle.seek(0, io.SEEK_END)
        size = handle.tell() - start
        crc = _crc32(handle, start, start + size)
        entries.append((name, crc, size, header))
        big = size >= ZIP64_LIMIT
        extra = struct.pack("<HHQQ", 1, 16, size, size) if big else struct.pack("<HH16x", 0x4B5A, 16)  # padding
        handle.seek(header)
        handle.write(_LOCAL.pack(0x04034B50, 45 if big else 20, 0, 0, dos_time, dos_date, crc, _field(size),
                                 _field(size), len(name), _RESERVED) + name + extra)
        handle.seek(0, io.SEEK_END)
        directory = handle.tell()
        for name, crc, size, offset in entries:
            wide = [value for value in (size, size, offset) if value >= ZIP64_LIMIT]
            extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
            handle.write(_CENTRAL.pack(0x02014B50, 3 << 8 | 45, 45 if wide else 20, 0, 0, dos_time, dos_date, crc,
                                       _field(size), _field(size), len(name), len(extra), 0, 0, 0, 0o600 << 16,
                                       _field(offset)) + name + extra)
        end = handle.tell()
        if big or directory >= ZIP64_LIMIT:
            handle.write(_END64.pack(0x06064B50, _END64.size - 12, 3 << 8 | 45, 45, 0, 0, len(entries),
                                     len(entries), end - directory, directory))
            handle.write(_LOCATOR64.pack(0x07064B50, 0, end, 1))
        handle.write(_END.pack(0x06054B50, 0, 0, len(entries), len(entries), _field(end - directory),
                               _field(directory), 0))
    return pathlib.Path(path)


def write_json(data, path):
    """Write ``data`` as indented JSON to ``path`` atomically; returns the path."""
    path = pathlib.Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
