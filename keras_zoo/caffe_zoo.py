"""Caffe Model Zoo directories: ``readme.md`` (YAML front matter) + ``deploy.prototxt`` (+ the caffemodel).

Caffe's model-info format: a directory with the net's prototxt(s) and a ``readme.md`` whose front matter (between
``---`` lines) gives ``name``, ``caffemodel`` (file name), ``caffemodel_url``, ``sha1``, ``license``,
``gist_id`` and the Caffe version (``caffe_commit`` / ``caffe_version``). The VGG team's gists write the same
``key: value`` lines without the ``---`` fences (under an "Information" heading); both are read.

    >>> model = keras_zoo.from_caffe_zoo("models/bvlc_alexnet")
    >>> model.zoo_card["license"], model.zoo_card["provenance"]["sha1"]

The caffemodel is taken from the directory (its SHA1 verified) or downloaded from ``caffemodel_url`` (resumable,
SHA1-verified, into ``cache_dir``, else the keras_zoo downloads folder where ``KERAS_ZOO_MIRROR`` is honoured).
The model's card (license, citation, references, provenance) is the ``zoo_card`` attribute of the returned model;
:func:`convert_caffe_zoo` also writes it next to the ``.keras`` file as ``NAME.card.json``.
"""

import logging
import pathlib
import re
import urllib.parse

from converters.errors import ConversionError
from keras_zoo import downloads
from keras_zoo.cards import FileSpec
from keras_zoo.convert import from_caffe, save_model
from keras_zoo.files import write_json

log = logging.getLogger(__name__)

README = "readme.md"
DEPLOY = "deploy.prototxt"
KNOWN_KEYS = ("name", "caffemodel", "caffemodel_url", "sha1", "license", "gist_id", "caffe_commit",
              "caffe_version", "citation")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")


def _scalar(value):
    """A YAML plain or quoted scalar as a string ('' for an empty value)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value.split(" #", 1)[0].strip()


def _parse_pairs(lines, readme, first_line):
    """``{key: value}`` of flat ``key: value`` lines; ConversionError naming the line otherwise."""
    fields = {}
    for number, line in enumerate(lines, first_line):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _KEY_VALUE.match(line)
        if match is None:
            raise ConversionError(f"line {number} of the front matter is not 'key: value': {line.strip()!r}",
                                  path=readme)
        fields[match.group(1)] = _scalar(match.group(2))
    return fields


def read_readme(readme):
    """``(fields, body)`` of a model-zoo ``readme.md``: the front matter's flat fields and the text after it."""
    readme = pathlib.Path(readme)
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConversionError(f"cannot read the readme: {error}", path=readme) from None
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            raise ConversionError("the YAML front matter opened by '---' is never closed", path=readme)
        return _parse_pairs(lines[1:end], readme, 2), "\n".join(lines[end + 1:]).strip()
    # the VGG gists: an optional heading, then a block of known `key: value` lines
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if start < len(lines) and lines[start].lstrip().startswith("#"):
        start += 1
    fields, end = {}, start
    while end < len(lines):
        match = _KEY_VALUE.match(lines[end])
        if match and match.group(1) in KNOWN_KEYS:
            fields[match.group(1)] = _scalar(match.group(2))
        elif lines[end].strip():
            break
        end += 1
    if "caffemodel_url" not in fields and "caffemodel" not in fields:
        raise ConversionError("no YAML front matter ('---' fenced) naming caffemodel / caffemodel_url",
                              path=readme)
    return fields, "\n".join(lines[end:]).strip()


def _deploy_prototxt(directory):
    """The directory's deploy prototxt: ``deploy.prototxt``, else the one ``*deploy*.prototxt``."""
    path = directory / DEPLOY
    if path.is_file():
        return path
    candidates = sorted(directory.glob("*deploy*.prototxt"))
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(p.name for p in sorted(directory.glob("*.prototxt"))) or "none"
    raise ConversionError(f"no {DEPLOY} (prototxt files found: {found})", path=directory)


def _weights_name(fields):
    """The caffemodel's file name: the URL's last path component when it names a .caffemodel, else the
    ``caffemodel`` field (with '.caffemodel' added when it has no suffix)."""
    url_name = pathlib.PurePosixPath(urllib.parse.urlparse(fields.get("caffemodel_url", "")).path).name
    if url_name.endswith(".caffemodel"):
        return url_name
    name = pathlib.PurePosixPath(fields.get("caffemodel") or "").name or url_name
    return name if not name or pathlib.PurePosixPath(name).suffix else f"{name}.caffemodel"


def _local_candidates(directory, fields):
    """Where the caffemodel may already be: its readme name and its download name (file names only: a readme
    cannot point outside the directory)."""
    names = [pathlib.PurePosixPath(fields.get("caffemodel") or "").name, _weights_name(fields)]
    return [directory / name for name in dict.fromkeys(n for n in names if n)]


def find_caffemodel(directory, fields, *, cache_dir=None, progress=True):
    """Local path of the directory's caffemodel, SHA1-verified (once; then remembered): found in the directory
    (or ``cache_dir``), else downloaded from ``caffemodel_url``, which must be an http or https URL (a readme
    comes from anywhere: it cannot make keras_zoo copy a local file or fetch another scheme)."""
    directory = pathlib.Path(directory)
    sha1 = fields.get("sha1") or None
    search = _local_candidates(directory, fields)
    if cache_dir is not None:
        search += _local_candidates(pathlib.Path(cache_dir), fields)
    for path in search:
        if path.is_file():
            return downloads.verify_once(path, sha1=sha1)
    name, url = _weights_name(fields), fields.get("caffemodel_url")
    if not name or not url:
        raise ConversionError("the caffemodel is not in the directory and the readme gives no caffemodel_url",
                              path=directory / README)
    downloads.check_url(url, path=directory / README, what="caffemodel_url")
    if not sha1:
        log.warning("%s: the readme gives no sha1; the caffemodel cannot be verified", directory / README)
    if cache_dir is None:
        return downloads.fetch(FileSpec(name, url, sha1=(sha1,) if sha1 else ()), progress=progress)
    return downloads.download(url, pathlib.Path(cache_dir) / name, sha1=sha1, progress=progress)


def zoo_card(directory, fields, body, caffemodel=None, prototxt=None):
    """The card of a model-zoo directory, a dict for JSON: name, license, citation, one ``weights`` entry (URL,
    file name and SHA1), the readme's ``references`` (its Markdown links), ``description`` (its text) and
    ``provenance`` (where everything came from)."""
    directory = pathlib.Path(directory)
    references = [{"text": text, "url": url} for text, url in _LINK.findall(body)]
    source = {"name": "caffe", "url": fields.get("caffemodel_url"), "filename": _weights_name(fields) or None,
              "format": "caffemodel", "default": True, "preprocessing": None, "classes": None}
    if fields.get("sha1"):
        source["sha1"] = fields["sha1"]
    return {
        "name": fields.get("name") or directory.name,
        "task": "caffe-model-zoo",
        "license": fields.get("license") or "not stated in the readme",
        "citation": fields.get("citation"),
        "weights": [source],
        "references": references,
        "description": body,
        "provenance": {
            "directory": str(directory),
            "readme": str(directory / README),
            "prototxt": str(prototxt) if prototxt else None,
            "caffemodel": str(caffemodel) if caffemodel else None,
            **{key: fields.get(key) for key in ("caffemodel_url", "sha1", "gist_id", "caffe_commit",
                                                "caffe_version")},
            "front_matter": dict(fields),
        },
    }


def read_caffe_zoo(directory, *, cache_dir=None, progress=True):
    """``(prototxt, caffemodel, card)`` of a model-zoo directory, the caffemodel found or downloaded."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ConversionError("not a directory (a Caffe Model Zoo directory has readme.md and "
                              "deploy.prototxt)", path=directory)
    readme = directory / README
    if not readme.is_file():
        raise ConversionError(f"no {README} in the model-zoo directory", path=directory)
    fields, body = read_readme(readme)
    prototxt = _deploy_prototxt(directory)
    caffemodel = find_caffemodel(directory, fields, cache_dir=cache_dir, progress=progress)
    return prototxt, caffemodel, zoo_card(directory, fields, body, caffemodel, prototxt)


def _model_name(card):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", card["name"]).strip("_") or "caffe_zoo_model"


def from_caffe_zoo(directory, *, cache_dir=None, preprocessing=None, input_shape=None, progress=True,
                   fold_batchnorm=False, allow_unknown_fields=False):
    """A Keras model of a Caffe Model Zoo directory, with the directory's card as ``model.zoo_card``.

    ``preprocessing``, ``input_shape``, ``fold_batchnorm`` and ``allow_unknown_fields`` are passed to :func:`keras_zoo.convert.from_caffe`
    (the readme states no mean: without ``preprocessing`` the model takes exactly what the Caffe net took).
    """
    prototxt, caffemodel, card = read_caffe_zoo(directory, cache_dir=cache_dir, progress=progress)
    log.info("converting %s with %s", prototxt, caffemodel)
    model = from_caffe(prototxt, caffemodel, input_shape=input_shape, preprocessing=preprocessing,
                       name=_model_name(card), fold_batchnorm=fold_batchnorm,
                       allow_unknown_fields=allow_unknown_fields)
    model.zoo_card = card
    return model


def card_path(output):
    """Where :func:`convert_caffe_zoo` writes the card of ``output`` (``net.keras`` -> ``net.card.json``)."""
    output = pathlib.Path(output)
    stem = output.name[: -len(".weights.h5")] if output.name.endswith(".weights.h5") else output.stem
    return output.with_name(f"{stem}.card.json")


def convert_caffe_zoo(directory, output=None, *, cache_dir=None, progress=True, **kwargs):
    """Convert a model-zoo directory to ``output`` (default ``<directory name>.keras``) plus its card as
    ``<name>.card.json``; returns the model's path. Keyword arguments as :func:`from_caffe_zoo`."""
    directory = pathlib.Path(directory)
    output = pathlib.Path(output) if output else pathlib.Path(f"{directory.resolve().name}.keras")
    model = from_caffe_zoo(directory, cache_dir=cache_dir, progress=progress, **kwargs)
    save_model(model, output)
    write_json(model.zoo_card, card_path(output))
    return output
