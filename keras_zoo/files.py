"""Writing files so that nothing half-written is ever left behind."""

import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_output(path, suffix=".tmp"):
    """Yield a temporary path next to ``path``; rename it into place only if the block succeeds.

    ``suffix`` ends the temporary name, for writers that insist on an extension (Keras wants ``.keras``).
    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)
