"""Writing files and folders so that nothing half-written is ever left behind."""

import contextlib
import json
import logging
import os
import pathlib
import shutil
import tempfile

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


def write_json(data, path):
    """Write ``data`` as indented JSON to ``path`` atomically; returns the path."""
    path = pathlib.Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
