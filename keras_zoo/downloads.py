"""Original files (weights, label sets, mean images): found, downloaded and verified. Knows files, not models.

Where things live (``KERAS_ZOO_HOME``, default ``~/.keras/keras_zoo``): ``downloads/<original file name>``, the
verified original files (``.part`` while downloading).

``KERAS_ZOO_MIRROR`` (a base URL, or a directory holding the original file names) is tried before each file's
own URL; ``KERAS_ZOO_OFFLINE=1`` skips the files' own URLs (downloads folder and mirror only). Two processes
asking for the same file at once wait on one lock (``fcntl``); a download is written under a temporary name and
renamed into place, so no reader ever sees half a file.

Every file is verified against its published checksums before its first use, whoever put it there (a download,
the user); the digests are remembered in ``downloads/.<name>.verified`` (keyed by the file's path, size and
modification time), so a file is hashed again only when it changes. Only http and https URLs are downloaded
(cards, readmes); local files come only from the places the user names (the downloads folder, a mirror
directory or ``file://`` mirror, a model-zoo directory).
"""

import contextlib
import fcntl
import hashlib
import http.client
import json
import logging
import os
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from converters.errors import ConversionError
from keras_zoo.files import write_json

log = logging.getLogger(__name__)

CHECKSUMS = ("sha256", "sha1", "md5")
WEB_SCHEMES = ("http", "https")  # what is downloaded from a card's or a readme's URL
MIRROR_SCHEMES = WEB_SCHEMES + ("ftp",)  # a URL mirror is the user's own choice
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
    """Hold an exclusive lock named after ``path``: a hidden ``.NAME.lock`` beside it, which other processes (and
    threads) wait on, removed when the lock is released.

    The holder removes the file while it still holds it; a waiter that then gets the lock finds the name gone
    (or naming a newer file) and locks again, so two holders never overlap and no empty lock file stays behind.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    while True:
        handle = open(lock, "a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held = os.fstat(handle.fileno())
            try:
                current = os.stat(lock)
            except FileNotFoundError:
                current = None
        except BaseException:
            handle.close()
            raise
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            break
        handle.close()  # the holder before removed this file: lock the one under the name now
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError as error:  # only leaves an empty file behind
            log.debug("cannot remove the lock file %s: %s", lock, error)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _accepted(md5=None, sha1=None, sha256=None):
    """``{kind: (accepted values...)}`` of the checksums given, each one value or a sequence of accepted ones."""
    given = {"sha256": sha256, "sha1": sha1, "md5": md5}
    return {kind: tuple(value.lower() for value in ([given[kind]] if isinstance(given[kind], str) else given[kind]))
            for kind in CHECKSUMS if given[kind]}


def _digests(path, kinds):
    """``{kind: hex digest}`` of the file at ``path``, read once for all ``kinds``."""
    digests = {kind: hashlib.new(kind) for kind in kinds}
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            for digest in digests.values():
                digest.update(chunk)
    return {kind: digest.hexdigest() for kind, digest in digests.items()}


def _compare(path, expected, actual, kept=""):
    """ConversionError unless each ``actual`` digest is one of the ``expected`` values of its kind."""
    for kind, values in expected.items():
        if actual[kind] not in values:
            raise ConversionError(f"{kind} is {actual[kind]}, expected {kind} {' or '.join(values)}{kept}",
                                  path=path)


def verify(path, *, md5=None, sha1=None, sha256=None):
    """Raise ConversionError unless ``path`` has every checksum given (one value or a sequence of accepted
    ones); the message names the expected and the actual one. Hashes the file every time (see
    :func:`verify_once`)."""
    expected = _accepted(md5, sha1, sha256)
    if expected:
        _compare(path, expected, _digests(path, expected))


def _record_path(path):
    return downloads_dir() / f".{pathlib.Path(path).name}.verified"


def _identity(path):
    """What a remembered verification is keyed by: the file's resolved path, size and modification time."""
    stat = os.stat(path)
    return {"path": str(pathlib.Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _remembered(identity):
    """The digests recorded for the file of ``identity``, or None (never recorded, or the file changed)."""
    try:
        record = json.loads(_record_path(identity["path"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or any(record.get(key) != value for key, value in identity.items()):
        return None
    digests = record.get("digests")
    return dict(digests) if isinstance(digests, dict) else None


def _remember(identity, digests):
    try:
        write_json({**identity, "digests": digests}, _record_path(identity["path"]))
    except OSError as error:  # only costs a second hashing later
        log.debug("cannot record the verification of %s: %s", identity["path"], error)


def verify_once(path, *, md5=None, sha1=None, sha256=None):
    """:func:`verify`, remembered: the file's digests are recorded (keyed by its path, size and modification
    time), so it is hashed again only once it changed. Without a published checksum the file is said to be
    unverified (one warning). A mismatch raises ConversionError naming the file, the expected and the actual
    checksums; the file (a user's, or verified before) is left where it is. Returns ``path``."""
    path = pathlib.Path(path)
    expected = _accepted(md5, sha1, sha256)
    identity = _identity(path)
    known = _remembered(identity)
    if not expected:
        if known is None:
            log.warning("%s: no published checksum, the file is not verified", path)
            _remember(identity, {})
        return path
    missing = [kind for kind in expected if kind not in (known or {})]
    if missing:
        known = {**(known or {}), **_digests(path, missing)}
        _remember(identity, known)
    _compare(path, expected, known, "; the file is kept as it is: replace it with the original file (or delete "
                                    "it to download it again)")
    return path


def check_url(url, schemes=WEB_SCHEMES, *, path=None, what="URL"):
    """ConversionError naming ``path`` and ``url`` unless the URL's scheme is one of ``schemes`` (a card's or
    a readme's URL must be http or https: no local files, ftp, data or script URLs)."""
    parsed = urllib.parse.urlparse(str(url))
    if parsed.scheme.lower() not in schemes or not parsed.netloc:
        allowed = " and ".join([", ".join(schemes[:-1]), schemes[-1]] if len(schemes) > 1 else schemes)
        raise ConversionError(f"{what} {url!r}: only {allowed} URLs are downloaded (local files come only from the "
                              "downloads folder, a model-zoo directory or a KERAS_ZOO_MIRROR you name)", path=path)


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


def download(url, dest, *, md5=None, sha1=None, sha256=None, progress=True, schemes=WEB_SCHEMES):
    """Download ``url`` (its scheme one of ``schemes``: http, https) to ``dest``: resumable, checksum-verified,
    atomic, locked; returns ``dest``.

    A file already at ``dest`` is verified once (:func:`verify_once`; a mismatch is reported, the file kept).
    A download's checksum mismatch deletes it and raises ConversionError naming the expected checksum; its
    digests are remembered. Network problems raise WeightsUnavailable once ``ATTEMPTS`` resumed tries have failed.
    """
    dest = pathlib.Path(dest)
    check_url(url, schemes, path=dest.name)
    with file_lock(dest):
        if dest.exists():
            return verify_once(dest, md5=md5, sha1=sha1, sha256=sha256)
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
        expected = _accepted(md5, sha1, sha256)
        digests = _digests(part, expected)
        try:
            _compare(part, expected, digests)
        except ConversionError as error:
            part.unlink(missing_ok=True)
            raise ConversionError(f"downloaded from {url}: {error.reason}; the file was deleted",
                                  path=dest.name) from None
        if not expected:
            log.warning("%s: no published checksum, the download is not verified", dest.name)
        os.replace(part, dest)
        _remember(_identity(dest), digests)
    return dest


def _mirror_locations(filename):
    """(kind, where) for KERAS_ZOO_MIRROR: ('dir', path) or ('url', url), or nothing."""
    mirror = os.environ.get("KERAS_ZOO_MIRROR", "").strip()
    if not mirror:
        return []
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme in MIRROR_SCHEMES:
        return [("url", mirror.rstrip("/") + "/" + urllib.parse.quote(filename))]
    directory = pathlib.Path(urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else mirror)
    return [("dir", directory.expanduser() / filename)]


def fetch(file, *, progress=True):
    """Local path of an original file (a :class:`~keras_zoo.cards.records.FileSpec`: ``filename``, ``url`` or
    None, ``checksums()``).

    Order: the downloads folder (no network), ``KERAS_ZOO_MIRROR`` (a directory: used in place; a base URL:
    downloaded), then ``url`` (http or https only). Each file is verified before its first use, wherever it
    came from (:func:`verify_once`: a user's file that does not match is refused, never deleted). Offline with
    nothing cached raises WeightsUnavailable saying which file to put where.
    """
    dest = downloads_dir() / file.filename
    checksums = file.checksums()
    if dest.exists():
        return verify_once(dest, **checksums)
    failures, bad_checksum = [], None
    offline = os.environ.get("KERAS_ZOO_OFFLINE", "").strip() not in ("", "0")
    if offline and file.url:
        failures.append("KERAS_ZOO_OFFLINE is set")
    use_url = file.url and not offline
    locations = [(kind, where, MIRROR_SCHEMES) for kind, where in _mirror_locations(file.filename)]
    locations += [("url", file.url, WEB_SCHEMES)] if use_url else []
    for kind, where, schemes in locations:
        if kind == "dir":
            if not where.exists():
                failures.append(f"not in the mirror directory {where.parent}")
                continue
            return verify_once(where, **checksums)  # a user's file: a mismatch is reported, never deleted
        try:
            return download(where, dest, progress=progress, schemes=schemes, **checksums)
        except WeightsUnavailable as error:
            failures.append(error.reason)
        except ConversionError as error:
            bad_checksum = bad_checksum or error
    if bad_checksum is not None:
        raise bad_checksum
    raise WeightsUnavailable(_put_file_hint(file, "; ".join(failures) or "it has no download URL"),
                             path=file.filename)


def _put_file_hint(file, tried):
    """What to do when no copy of ``file`` could be had (``tried``: why each place failed)."""
    expected = ", ".join(f"{kind} {' or '.join(values)}" for kind, values in file.checksums().items())
    where = f"into {downloads_dir()} or into a directory named by KERAS_ZOO_MIRROR"
    if expected:
        return f"cannot get this file ({tried}). Put the original file ({expected}) {where}"
    return (f"cannot get this file ({tried}). Put the original file {where}; it has no published checksum, so "
            "it is used unverified")
