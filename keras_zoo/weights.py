"""Original weight files: fetch (mirror, resume, checksum, lock), convert once, cache, load by layer name.

Where things live (``KERAS_ZOO_HOME``, default ``~/.keras/keras_zoo``)::

    downloads/<original file name>        verified original files (``.part`` while downloading)
    weights/<model>-<source>.h5           converted Keras weights, one group per layer name
    means/<original file name>.npy        means read from MatConvNet files (``meta.normalization``)

``KERAS_ZOO_MIRROR`` (a base URL, or a directory holding the original file names) is tried before each
source's own URL; ``KERAS_ZOO_OFFLINE=1`` skips the sources' own URLs (cache and mirror only). Two processes
asking for the same file at once wait on one lock (``fcntl``); every file is written under a temporary name
and renamed into place, so no reader ever sees half a file.
"""

import contextlib
import dataclasses
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

import numpy as np

from converters.errors import ConversionError
from converters.graph import Node
from keras_zoo.files import atomic_output

log = logging.getLogger(__name__)

CHECKSUMS = ("sha256", "sha1", "md5")
WEIGHT_SUFFIXES = (".caffemodel", ".mat", ".weights.h5", ".keras")
CHUNK = 1 << 20
ATTEMPTS = 3  # tries per location; each resumes where the last one stopped
TIMEOUT_S = 60
CACHE_FORMAT = "keras_zoo/by-layer-name/1"


class WeightsUnavailable(ConversionError):
    """No copy of an original file could be had (offline, moved host, nothing cached)."""


# ---------------------------------------------------------------------------------------------------------
# places
# ---------------------------------------------------------------------------------------------------------
def home():
    """``KERAS_ZOO_HOME``, default ``~/.keras/keras_zoo``."""
    return pathlib.Path(os.environ.get("KERAS_ZOO_HOME") or pathlib.Path.home() / ".keras" / "keras_zoo")


def downloads_dir():
    return home() / "downloads"


def cache_path(card, source):
    """Where the converted weights of ``source`` of ``card`` are cached."""
    return home() / "weights" / f"{card['name']}-{source['name']}.h5"


@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive lock named after ``path`` (a hidden ``.NAME.lock`` beside it; other processes wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)



# ---------------------------------------------------------------------------------------------------------
# checksums and downloads
# ---------------------------------------------------------------------------------------------------------
def _expected(spec):
    """{kind: (accepted values...)}: a card's checksum is one value or a list of accepted ones."""
    return {kind: tuple(v.lower() for v in ([spec[kind]] if isinstance(spec[kind], str) else spec[kind]))
            for kind in CHECKSUMS if spec.get(kind)}


def verify(path, *, md5=None, sha1=None, sha256=None):
    """Raise ConversionError unless ``path`` has every checksum given (the message names the expected one)."""
    expected = _expected({"md5": md5, "sha1": sha1, "sha256": sha256})
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
    with _locked(dest):
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
        if not _expected({"md5": md5, "sha1": sha1, "sha256": sha256}):
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


def fetch(spec, *, progress=True):
    """Local path of the original file a source (or label/mean file) spec names.

    ``spec`` has ``filename``, ``url`` (or None) and optionally ``md5``/``sha1``/``sha256``. Order: the
    downloads folder (no network), ``KERAS_ZOO_MIRROR`` (a directory: used in place after verification; a
    base URL: downloaded), then ``url``. Offline with nothing cached raises WeightsUnavailable saying which file
    to put where.
    """
    filename = spec["filename"]
    dest = downloads_dir() / filename
    if dest.exists():
        return dest
    checksums = _expected(spec)
    failures, bad_checksum = [], None
    offline = os.environ.get("KERAS_ZOO_OFFLINE", "").strip() not in ("", "0")
    if offline and spec.get("url"):
        failures.append("KERAS_ZOO_OFFLINE is set")
    use_url = spec.get("url") and not offline
    locations = _mirror_locations(filename) + ([("url", spec["url"])] if use_url else [])
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
    expected = ", ".join(f"{kind} {' or '.join(values)}" for kind, values in checksums.items()) or "no published checksum"
    tried = "; ".join(failures) or "it has no download URL"
    raise WeightsUnavailable(
        f"cannot get this file ({tried}). Put it ({expected}) into {downloads_dir()} or into a directory named "
        "by KERAS_ZOO_MIRROR", path=filename)


# ---------------------------------------------------------------------------------------------------------
# reading, converting and caching
# ---------------------------------------------------------------------------------------------------------
def read_graph(path, fmt=None):
    """The neutral Graph (with weights) of an original ``.caffemodel`` or ``.mat`` file."""
    path = pathlib.Path(path)
    fmt = fmt or {".caffemodel": "caffemodel", ".mat": "mat"}.get(path.suffix.lower())
    if fmt == "caffemodel":
        from converters.caffe import read_caffemodel

        return read_caffemodel(path)
    if fmt == "mat":
        from converters.matconvnet import read_matconvnet

        return read_matconvnet(path)
    raise ConversionError(f"unknown weights format {fmt!r} (expected .caffemodel or .mat)", path=path)


def _port(model, graph, source, skip=()):
    """Assign the graph's weights to ``model`` by layer name, as ``source`` (a card's weight source) says the
    file's layers map onto the builder's; layers in ``skip`` (builder names) are left alone. Returns the names
    of the Keras layers that got weights."""
    from keras_zoo.builder import keras_name, port_weights

    adapted = to_builder_layers(graph, source or {}, model)
    adapted.nodes = [node for node in adapted.nodes if node.name not in skip]
    port_weights(model, adapted)
    return {keras_name(node.name) for node in adapted.nodes if node.weights}


def to_builder_layers(graph, source, model):
    """A copy of ``graph`` whose weighted nodes carry the builder's layer names and layouts.

    Driven by the weight source's card fields: ``rename`` (file layer -> builder layer), ``unused`` (file
    layers the builder does not have, e.g. auxiliary classifiers; dropped), ``batchnorm_scale`` (a
    ``[batch-norm prefix, scale prefix]`` pair: a batch norm of the file that carries gamma and beta, as
    MatConvNet's import merges Caffe's BatchNorm + Scale, feeds the builder's BatchNorm ``bnX`` and Scale
    ``scaleX``), ``bias_moves`` (file layer -> file layer: a bias the builder's layer lacks is added to the
    bias of a layer whose output is summed with it, which is exact) and ``missing_layers`` (builder layer ->
    why the file's network lacks it: a model built with that layer computes another function, so the file is
    refused, naming the layer; the builders leave such layers out when built for that source).
    The statistics follow the target layer's form (variance or standard deviation, its epsilon), a fully
    connected layer stored as a convolution (or the reverse) is reshaped to the target layer, and a bias of
    zeros is dropped where the target layer has none (any other such bias is an error).
    """
    from keras_zoo.builder import keras_name

    _refuse_missing_layers(graph, source, model)
    rename, unused = source.get("rename") or {}, set(source.get("unused") or ())
    nodes = []
    for node in _move_biases(graph, source.get("bias_moves") or {}):
        if node.name in unused:
            log.info("%s: layer '%s' has no counterpart in the builder; not loaded", graph.source, node.name)
            continue
        file_name = node.name
        node = dataclasses.replace(node, name=rename.get(node.name, node.name), weights=dict(node.weights))
        layer = _layer_or_none(model, keras_name(node.name))
        if layer is None or not node.weights:
            nodes.append(node)
        elif node.op == "batchnorm":
            nodes.extend(_batchnorm_for(node, layer, source.get("batchnorm_scale"), graph))
        elif node.op in ("conv", "dense", "deconv"):
            node = _without_zero_bias(node, file_name, layer, graph)
            nodes.append(_fully_connected_for(node, layer, graph) if node.op != "deconv" else node)
        else:
            nodes.append(node)
    return dataclasses.replace(graph, nodes=nodes)


def _refuse_missing_layers(graph, source, model):
    """ConversionError for the first builder layer the card says the file's network lacks (and it does)."""
    from keras_zoo.builder import keras_name

    rename = source.get("rename") or {}
    present = {keras_name(rename.get(node.name, node.name)) for node in graph.nodes}
    for name, why in (source.get("missing_layers") or {}).items():
        if _layer_or_none(model, keras_name(name)) is not None and keras_name(name) not in present:
            raise ConversionError(f"the file's network has no layer '{name}', which the builder's {model.name} "
                                  f"has ({why}); it computes another function, so it is not loaded",
                                  path=graph.source, layer=name)


def _move_biases(graph, moves):
    """The graph's nodes with the bias of each ``moves`` key (where it has one) added to the bias of its value
    (both file layers whose outputs are summed, so the sum is unchanged)."""
    nodes = {node.name: node for node in graph.nodes}
    moved = {}
    for origin, target in moves.items():
        if origin not in nodes or "bias" not in nodes[origin].weights:
            continue
        if "bias" not in getattr(nodes.get(target), "weights", {}):
            raise ConversionError(f"the weight source moves its bias into '{target}', which has no bias in the "
                                  "file", path=graph.source, layer=origin)
        bias, into = nodes[origin].weights["bias"], nodes[target].weights["bias"]
        if np.shape(bias) != np.shape(into):
            raise ConversionError(f"its bias {np.shape(bias)} cannot move into the bias {np.shape(into)} of "
                                  f"'{target}'", path=graph.source, layer=origin)
        moved[origin] = _without_bias(nodes[origin])
        moved[target] = dataclasses.replace(nodes[target], weights={
            **nodes[target].weights, "bias": np.asarray(into, np.float32) + np.asarray(bias, np.float32)})
    return [moved.get(node.name, node) for node in graph.nodes]


def _without_zero_bias(node, file_name, layer, graph):
    """The node without its bias where the Keras ``layer`` has none: only a bias of zeros may go."""
    if "bias" not in node.weights or "bias" in _variable_shapes(layer):
        return node
    if np.any(np.asarray(node.weights["bias"]) != 0):
        raise ConversionError(f"it has a non-zero bias, but the builder's layer '{layer.name}' has none: the "
                              "file's network differs from the builder's", path=graph.source, layer=file_name,
                              layer_type=node.source_type)
    log.info("%s: layer '%s' has a bias of zeros, which the builder's '%s' lacks; dropped", graph.source,
             file_name, layer.name)
    return _without_bias(node)


def _without_bias(node):
    attrs = {**node.attrs, "use_bias": False} if "use_bias" in node.attrs else node.attrs
    return dataclasses.replace(node, attrs=attrs, weights={k: v for k, v in node.weights.items() if k != "bias"})


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _variable_shapes(layer):
    return {variable.name: tuple(variable.shape) for variable in layer.weights}


def _batchnorm_for(node, layer, scale_rule, graph):
    """The batch-norm node in the form of the Keras ``layer`` (and a Scale node for gamma and beta where the
    layer has none)."""
    shapes = _variable_shapes(layer)
    weights, attrs = node.weights, dict(node.attrs)
    stat, epsilon = attrs.get("stat", "variance"), float(attrs.get("epsilon", 1e-5))
    target_stat = getattr(layer, "stat", stat)
    target_epsilon = float(getattr(layer, "epsilon", epsilon))
    spread = weights.pop("std" if stat == "std" else "variance", None)
    same_form = stat == target_stat and (stat == "std" or np.float32(epsilon) == np.float32(target_epsilon))
    if spread is not None and not same_form:
        # exact in float64: the layer's sqrt(variance + epsilon) reproduces the file's division by std
        std = np.asarray(spread, np.float64) if stat == "std" else np.sqrt(np.asarray(spread, np.float64) + epsilon)
        spread = std if target_stat == "std" else std ** 2 - target_epsilon
        spread = np.asarray(spread, np.float32)
    if spread is not None:
        weights["std" if target_stat == "std" else "variance"] = spread
    attrs.update(stat=target_stat, epsilon=target_epsilon)
    affine = {key: weights.pop(key) for key in ("gamma", "beta") if key in weights and key not in shapes}
    batchnorm = dataclasses.replace(node, attrs=attrs, weights=weights)
    if not affine or _is_identity(affine):
        return [batchnorm]
    prefix, scale_prefix = scale_rule or (None, None)
    if prefix is None or not node.name.startswith(prefix):
        raise ConversionError(f"the batch norm carries {sorted(affine)} but the builder's layer '{layer.name}' "
                              "has none and the weight source names no Scale layer for it (batchnorm_scale)",
                              path=graph.source, layer=node.name, layer_type=node.source_type)
    scale = Node(name=scale_prefix + node.name[len(prefix):], op="scale", inputs=list(node.outputs),
                 outputs=list(node.outputs), attrs={"axis": 1, "num_axes": 1, "use_bias": "beta" in affine},
                 weights={"gamma": affine.get("gamma", np.ones_like(affine["beta"])),
                          **({"beta": affine["beta"]} if "beta" in affine else {})},
                 source_type=node.source_type)
    return [batchnorm, scale]


def _is_identity(affine):
    return (np.all(np.asarray(affine.get("gamma", 1.0)) == 1.0)
            and np.all(np.asarray(affine.get("beta", 0.0)) == 0.0))


def _fully_connected_for(node, layer, graph):
    """A convolution covering its whole input as the Keras ``layer``'s dense kernel, or the reverse."""
    target = _variable_shapes(layer).get("kernel")
    kernel = node.weights.get("kernel")
    if target is None or kernel is None or kernel.ndim == len(target):
        return node
    if kernel.ndim == 4 and len(target) == 2:  # a whole-input filter bank is a dense kernel as it is
        op, attrs = "dense", {"units": int(kernel.shape[-1]), "use_bias": "bias" in node.weights, "axis": 1}
    elif kernel.ndim == 2 and len(target) == 4:
        height, width, channels, units = target
        if kernel.shape != (channels * height * width, units):
            return node  # port_weights reports the mismatch
        kernel = np.ascontiguousarray(np.transpose(kernel.reshape(channels, height, width, units), (1, 2, 0, 3)),
                                      np.float32)
        op, attrs = "conv", {"filters": units, "kernel": (height, width), "strides": (1, 1),
                             "pads": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1,
                             "use_bias": "bias" in node.weights}
    else:
        return node
    log.info("%s: layer '%s' converted from %s to %s for the builder", graph.source, node.name, node.op, op)
    return dataclasses.replace(node, op=op, attrs=attrs,
                               weights={**node.weights, "kernel": kernel})


def save_by_name(model, path, names=None, meta=None):
    """Write the weights of ``model``'s layers (those in ``names``, default all) to ``path`` by layer name."""
    import h5py

    with atomic_output(pathlib.Path(path)) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = CACHE_FORMAT
        layers = f.create_group("layers")
        for layer in model.layers:
            if not layer.weights or (names is not None and layer.name not in names):
                continue
            group = layers.create_group(layer.name)
            for index, value in enumerate(layer.get_weights()):
                group.create_dataset(str(index), data=value)
        for key, value in (meta or {}).items():
            if getattr(value, "dtype", None) == object:
                f.create_dataset(f"meta/{key}", data=value, dtype=h5py.string_dtype())
            else:
                f.create_dataset(f"meta/{key}", data=value)


def is_by_name_file(path):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == CACHE_FORMAT
    except OSError:
        return False


def load_by_name(model, path, *, skip=()):
    """Load the weights saved by :func:`save_by_name` into the layers of ``model`` with the same names.

    Layers in ``skip`` or absent from the file keep their values (warned); a shape mismatch is an error
    naming the layer. Returns the names of the layers loaded.
    """
    import h5py

    loaded, missing = [], []
    with h5py.File(path, "r") as f:
        layers = f["layers"]
        for layer in model.layers:
            if not layer.weights or layer.name in skip:
                continue
            if layer.name not in layers:
                if any(weight.trainable for weight in layer.weights):
                    missing.append(layer.name)
                continue
            group = layers[layer.name]
            values = [group[str(index)][()] for index in range(len(group))]
            shapes = [tuple(weight.shape) for weight in layer.weights]
            if [value.shape for value in values] != shapes:
                raise ConversionError(
                    f"weights have shapes {[value.shape for value in values]}, the model's layer wants {shapes} "
                    "(pass skip= for layers you change, e.g. the classifier)", path=path, layer=layer.name)
            layer.set_weights(values)
            loaded.append(layer.name)
    if missing:
        log.warning("%s: no weights for layer(s) %s; they keep their initial values", path, ", ".join(missing))
    return loaded


def _graph_meta(graph):
    """What a MatConvNet file says of itself, kept with the cache: its mean and its class list."""
    normalization = graph.meta.get("normalization") or {}
    classes = graph.meta.get("classes") or {}
    meta = {}
    if normalization.get("mean") is not None:
        meta["mean"] = np.asarray(normalization["mean"], dtype=np.float32)
    for key in ("names", "descriptions"):
        if classes.get(key):
            meta[f"class_{key}"] = np.array(classes[key], dtype=object)
    return meta


def cached_meta(card, source):
    """``{'mean', 'class_names', 'class_descriptions'}`` (where present) of a converted source's cache."""
    import h5py

    path = cache_path(card, source)
    if not path.exists():
        return {}
    with h5py.File(path, "r") as f:
        group = f.get("meta", {})
        return {key: group[key][()] if group[key].dtype.kind != "O" else
                [item.decode() if isinstance(item, bytes) else str(item) for item in group[key][()]]
                for key in group}


def convert_source(card, source, *, progress=True):
    """Fetch and convert ``source`` of ``card`` once into the cache; returns the cache path."""
    from keras_zoo import registry

    path = cache_path(card, source)
    with _locked(path):
        if path.exists():
            return path
        original = fetch(source, progress=progress)
        graph = read_graph(original, source["format"])
        log.info("converting %s for %s (once; cached as %s)", original.name, card["name"], path)
        reference = registry.get_model(card["name"], weights=None, include_preprocessing=False)
        names = _port(reference, graph, source)
        meta = _graph_meta(graph)
        save_by_name(reference, path, names, meta=meta)
        if "mean" in meta:
            save_mean(source, meta["mean"])
    return path


def _mean_cache(source):
    return home() / "means" / f"{source['filename']}.npy"


def save_mean(source, mean):
    """Cache the mean ((C,) or (C, H, W), the network's channel order) of a source whose mean is 'meta'."""
    with atomic_output(_mean_cache(source)) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(mean, dtype=np.float32))


def resolve_mean(source, *, allow_fetch=True, progress=True):
    """The mean a source's preprocessing subtracts, as float32: (C,) per channel, or (C, H, W) an image.

    ``{'file': id}`` fetches that mean file (:data:`keras_zoo.registry.MEANS`); ``'meta'`` reads the
    ``meta.normalization.averageImage`` of the source's own .mat.
    Returns None where ``allow_fetch`` is False and the file is not cached yet.
    """
    mean = source["preprocessing"]["mean"]
    if mean is None or isinstance(mean, (list, tuple)):
        return None if mean is None else np.asarray(mean, dtype=np.float32)
    if isinstance(mean, dict):
        from converters.caffe import read_mean_file
        from keras_zoo.registry import MEANS

        spec = MEANS[mean["file"]]
        if not allow_fetch and not (downloads_dir() / spec["filename"]).exists():
            return None
        return np.asarray(read_mean_file(fetch(spec, progress=progress)), dtype=np.float32)
    cached = _mean_cache(source)
    if not cached.exists():
        if not allow_fetch and not (downloads_dir() / source["filename"]).exists():
            return None
        meta = _graph_meta(read_graph(fetch(source, progress=progress), source["format"]))
        if "mean" not in meta:
            raise ConversionError("meta.normalization.averageImage is absent", path=source["filename"])
        save_mean(source, meta["mean"])
    return np.load(cached)


# ---------------------------------------------------------------------------------------------------------
# what builders call
# ---------------------------------------------------------------------------------------------------------
def _is_path(weights):
    if isinstance(weights, os.PathLike):
        return True
    name = str(weights).lower()
    return name.endswith(WEIGHT_SUFFIXES) or os.sep in name


def source_for_file(card, path):
    """The card's weight source that describes a weights file: the one of its file name, else the card's
    default source if it has the file's format, else the first of that format; None if no source has it."""
    from keras_zoo.registry import get_source

    path = pathlib.Path(path)
    fmt = {".caffemodel": "caffemodel", ".mat": "mat"}.get(path.suffix.lower())
    same_format = [source for source in card["weights"] if source["format"] == fmt]
    default = get_source(card)
    return next((source for source in same_format if source["filename"] == path.name),
                default if default in same_format else (same_format[0] if same_format else None))


def _load_path(model, card, path, skip):
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise ConversionError("no such weights file", path=path)
    name = path.name.lower()
    if name.endswith((".caffemodel", ".mat")):
        fmt = "caffemodel" if name.endswith(".caffemodel") else "mat"
        _port(model, read_graph(path, fmt), source_for_file(card, path) or {}, skip)
    elif name.endswith(".weights.h5") and is_by_name_file(path):
        load_by_name(model, path, skip=skip)
    elif name.endswith((".weights.h5", ".keras")):
        try:
            model.load_weights(path)
        except (ValueError, OSError, KeyError) as error:
            raise ConversionError(f"cannot load into {model.name}: {error}", path=path) from None
    else:
        raise ConversionError("weights must be a .caffemodel, .mat, .weights.h5 or .keras file", path=path)


def load_weights(model, card, weights, *, skip=(), progress=True):
    """Give ``model`` (a builder's model for ``card``) the weights ``weights`` names; returns the source used.

    ``weights``: None (nothing), 'imagenet' (the card's default source), a source name ('caffe',
    'matconvnet'...), or a path to a ``.caffemodel``, ``.mat``, ``.weights.h5`` or ``.keras`` file. A source is
    fetched and converted on first use, then read from the cache by layer name, so models without the top,
    with another input size or other classes load the layers they have; ``skip`` names layers to leave alone.
    Returns the source dict, or None for None and for paths.
    """
    from keras_zoo import registry

    if weights is None:
        return None
    if _is_path(weights):
        _load_path(model, card, weights, set(skip))
        return None
    source = registry.get_source(card, weights)
    load_by_name(model, convert_source(card, source, progress=progress), skip=set(skip))
    return source
