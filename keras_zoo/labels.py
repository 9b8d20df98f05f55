"""Label sets: which class each output of a zoo model means, in the order of its weight source.

The label files ship with the package (``keras_zoo/data/labels/``, their provenance in ``PROVENANCE.md``
there), each the original file its card names (:data:`keras_zoo.cards.LABEL_SETS`: file name, URL, checksum),
checked against the card's checksum before its first use in a process. A label file that is not shipped is
fetched and cached like the weights (:func:`keras_zoo.downloads.fetch`); where it cannot be had either, the
class list of a converted MatConvNet file of the same label set (its ``meta.classes``, kept in the cache) serves.
"""

import functools
import pathlib

from converters.errors import ConversionError
from keras_zoo import cache
from keras_zoo.cards import CARDS, LABEL_SETS
from keras_zoo.downloads import WeightsUnavailable, fetch, verify

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data" / "labels"  # the label files shipped with the package


def _parse(path, fmt):
    """The (id, label) entries of a label file: its lines up to the first blank one (notes may follow)."""
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    lines = lines[: next((i for i, line in enumerate(lines) if not line.strip()), len(lines))]
    if fmt == "lines":
        return [("", line.strip()) for line in lines]
    split = [line.split(" ", 1) for line in lines]
    if any(len(parts) != 2 for parts in split):
        raise ConversionError(f"expected '<id> <name>' on every line of a {fmt!r} label file", path=path)
    if fmt == "indexed":
        if [parts[0] for parts in split] != [str(index) for index in range(len(split))]:
            raise ConversionError("the '<index> <name>' lines are not numbered 0, 1, 2...", path=path)
        return [("", name.strip()) for _, name in split]
    return [(wnid, name.strip()) for wnid, name in split]


def _from_converted_mat(label_set_id, count):
    """The class list a converted MatConvNet file of this label set carried (``meta.classes``), or None."""
    for card in CARDS:
        for source in card.weights:
            if source.format != "mat" or source.classes != label_set_id:
                continue
            meta = cache.cached_meta(card, source)
            names, descriptions = meta.get("class_names"), meta.get("class_descriptions")
            labels = descriptions or names
            if labels and len(labels) == count:
                ids = names if descriptions and names and len(names) == count else [""] * count
                return tuple(zip(ids, labels))
    return None


def shipped_file(label_set):
    """The package's copy of a label set's file, checked against the card's checksum; None if not shipped.
    A copy that does not match raises ConversionError (the installation is damaged: reinstall keras_zoo)."""
    path = DATA_DIR / label_set.file.filename
    if not path.is_file():
        return None
    try:
        verify(path, **label_set.file.checksums())
    except ConversionError as error:
        raise ConversionError(f"the label file shipped with keras_zoo is damaged ({error.reason}); reinstall "
                              "keras_zoo", path=path) from None
    return path


@functools.lru_cache(maxsize=None)
def get_classes(label_set_id):
    """``[(class id, label), ...]`` of a label set; the id is the WordNet id where the file gives one."""
    if label_set_id not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set_id!r} (known: {', '.join(LABEL_SETS)})")
    label_set = LABEL_SETS[label_set_id]
    try:
        path = shipped_file(label_set) or fetch(label_set.file, progress=False)
    except WeightsUnavailable:
        classes = _from_converted_mat(label_set_id, label_set.count)
        if classes is None:
            raise
        return classes
    classes = _parse(path, label_set.format)
    if len(classes) != label_set.count:
        raise ConversionError(f"{len(classes)} classes, expected {label_set.count} for {label_set_id!r}", path=path)
    return tuple(classes)


def get_labels(label_set_id):
    """The class names of a label set, in output order (e.g. ``get_labels('imagenet-caffe')[0]``)."""
    return [label for _, label in get_classes(label_set_id)]
