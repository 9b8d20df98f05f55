"""Original files (weights, label sets, mean images): found, downloaded and verified. Knows files, not models.

Where things live (``KERAS_ZOO_HOME``, default ``~/.keras/keras_zoo``): ``downloads/<original file name>``, the
verified original files (``.part`` while downloading).

``KERAS_ZOO_MIRROR`` (a base URL, or a directory holding the original file names) is tried before each file's
own URL; ``KERAS_ZOO_OFFLINE=1`` skips the files' own URLs (downloads folder and mirror only). Two processes
asking for the same file at once wait on one lock (``fcntl``); a download is written under a temporary name and
renamed into place, so no reader ever sees half a file.
"""

import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from converters.errors import ConversionError

log = logging.getLogger(__name__)

CHECKSUMS = ("sha256", "sha1", "md5")
CHUNK = 1 << 20
ATTEMPTS = 3  # tries per location; each resumes where the last one stopped
TIMEOUT_S = 60


class WeightsUnavailable(ConversionError):
    """No copy of an original file could be had (offline, moved host, nothing cached)."""


def home():
    """``KERAS_ZOO_HOME``, default ``~/.keras/keras_zoo``."""
    return pathlib.Path(os.environ.get("KERAS_ZOO_HOME") or pathlib.Path.home() / ".keras" / "keras_zoo")


def downloads_dir():
    """Where the verified original files are kept."""
    return home() / "downloads"


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock named after ``path`` (a hidden ``.NAME.lock`` beside it; other processes wait)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _accepted(md5=None, sha1=None, sha256=None):
    """``{kind: (accepted values...)}`` of the checksums given, each one value or a sequence of accepted ones."""
    given = {"sha256": sha256, "sha1": sha1, "md5": md5}
    return {kind: tuple(value.lower() for value in ([given[kind]] if isinstance(given[kind], str) else given[kind]))
            for kind in CHECKSUMS if given[kind]}


def verify(path, *, md5=None, sha1=None, sha256=None):
    """Raise ConversionError unless ``path`` has every checksum given (one value or a sequence of accepted
    ones); the message names the expected one."""
    expected = _accepted(md5, sha1, sha256)
    if not expected:
        return
    digests = {kind: hashlib.new(kind) for kind in expected}
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            for digest in digests.values():
                digest.update(chunk)
    for kind, values in expected.items():
        actual = digests[kind].hexdigest()
        if actual not in values:
            raise ConversionError(f"{kind} is {actual}, expected {kind} {' or '.join(values)}", path=path)


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, name, total, start, enabled):
        self.name, self.total, self.done, self.enabled = name, total, start, enabled
        self.started = self.shown = time.monotonic()
        self.start = start

    def update(self, count):
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self.shown >= 0.25:
            self.shown = now
            self._show(now)

    def _show(self, now, end=""):
        rate = (self.done - self.start) / max(now - self.started, 1e-6) / 1e6
        if self.total:
            width = 30
            filled = int(width * self.done / self.total)
            bar = f"[{'=' * filled}{' ' * (width - filled)}] {self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            bar = f"{self.done / 1e6:.1f} MB"
        sys.stderr.write(f"\r{self.name}: {bar} {rate:.1f} MB/s{end}")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            self._show(time.monotonic(), end="\n")


def _transfer(url, part, progress):
    """Fetch ``url`` into ``part``, resuming from its current size with an HTTP Range request."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "keras_zoo"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        return  # the part is already complete
    with response:
        status = getattr(response, "status", None) or 200
        if offset and status != 206:
            offset = 0  # the server ignored the Range: start again
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        bar = _Progress(part.name[: -len(".part")], total, offset, progress)
        received = offset
        with open(part, "ab" if offset else "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        bar.close()
    if total is not None and received < total:
        raise http.client.IncompleteRead(b"", total - received)


def download(url, dest, *, md5=None, sha1=None, sha256=None, progress=True):
    """Download ``url`` to ``dest``: resumable, checksum-verified, atomic, locked; returns ``dest``.

    A file already at ``dest`` is trusted (it was verified before it got there). A checksum mismatch deletes
    the download and raises ConversionError naming the expected checksum; network problems raise
    WeightsUnavailable once ``ATTEMPTS`` resumed tries have failed.
    """
    dest = pathlib.Path(dest)
    with file_lock(dest):
        if dest.exists():
            return dest
        part = dest.with_name(dest.name + ".part")
        for attempt in range(1, ATTEMPTS + 1):
            before = part.stat().st_size if part.exists() else 0
            try:
                _transfer(url, part, progress)
                break
            except urllib.error.HTTPError as error:
                raise WeightsUnavailable(f"{url} answered HTTP {error.code} {error.reason}", path=dest.name) from None
            except (OSError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", None) or error
                progressed = part.exists() and part.stat().st_size > before
                if attempt == ATTEMPTS or not progressed:  # only a transfer cut mid-way is worth resuming
                    raise WeightsUnavailable(f"cannot download {url}: {reason}", path=dest.name) from None
                log.warning("download of %s interrupted (%s); resuming", url, reason)
        try:
            verify(part, md5=md5, sha1=sha1, sha256=sha256)
        except ConversionError as error:
            part.unlink(missing_ok=True)
            raise ConversionError(f"downloaded from {url}: {error.reason}; the file was deleted",
                                  path=dest.name) from None
        if not _accepted(md5, sha1, sha256):
            log.warning("%s: no published checksum, the download is not verified", dest.name)
        os.replace(part, dest)
    return dest


def _mirror_locations(filename):
    """(kind, where) for KERAS_ZOO_MIRROR: ('dir', path) or ('url', url), or nothing."""
    mirror = os.environ.get("KERAS_ZOO_MIRROR", "").strip()
    if not mirror:
        return []
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme in ("http", "https", "ftp"):
        return [("url", mirror.rstrip("/") + "/" + urllib.parse.quote(filename))]
    directory = pathlib.Path(urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else mirror)
    return [("dir", directory.expanduser() / filename)]


def fetch(file, *, progress=True):
    """Local path of an original file (a :class:`~keras_zoo.cards.records.FileSpec`: ``filename``, ``url`` or
    None, ``checksums()``).

    Order: the downloads folder (no network), ``KERAS_ZOO_MIRROR`` (a directory: used in place after
    verification; a base URL: downloaded), then ``url``. Offline with nothing cached raises WeightsUnavailable
    saying which file to put where.
    """
    dest = downloads_dir() / file.filename
    if dest.exists():
        return dest
    checksums = file.checksums()
    failures, bad_checksum = [], None
    offline = os.environ.get("KERAS_ZOO_OFFLINE", "").strip() not in ("", "0")
    if offline and file.url:
        failures.append("KERAS_ZOO_OFFLINE is set")
    use_url = file.url and not offline
    locations = _mirror_locations(file.filename) + ([("url", file.url)] if use_url else [])
    for kind, where in locations:
        if kind == "dir":
            if not where.exists():
                failures.append(f"not in the mirror directory {where.parent}")
                continue
            verify(where, **checksums)  # a user's file: a mismatch is reported, never deleted
            return where
        try:
            return download(where, dest, progress=progress, **checksums)
        except WeightsUnavailable as error:
            failures.append(error.reason)
        except ConversionError as error:
            bad_checksum = bad_checksum or error
    if bad_checksum is not None:
        raise bad_checksum
    expected = (", ".join(f"{kind} {' or '.join(values)}" for kind, values in checksums.items())
                or "no published checksum")
    tried = "; ".join(failures) or "it has no download URL"
    raise WeightsUnavailable(
        f"cannot get this file ({tried}). Put it ({expected}) into {downloads_dir()} or into a directory named "
        "by KERAS_ZOO_MIRROR", path=file.filename)
