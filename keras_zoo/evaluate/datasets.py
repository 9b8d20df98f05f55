"""Data sets: ImageNet-style class folders, ``path label`` list files and PASCAL VOC folders, read into lists of
``(image path, label)`` or ``(image path, label PNG path)``."""

import pathlib

from converters.errors import ConversionError
from keras_zoo.images import IMAGE_SUFFIXES
from keras_zoo.labels import get_classes


def class_ids_of(label_set_id):
    """The class ids (WordNet ids) of a label set, in its output order; None where the set has no ids."""
    if not label_set_id:
        return None
    ids = [class_id for class_id, _ in get_classes(label_set_id)]
    return ids if all(ids) else None


def _class_index(names, class_ids, where):
    """Map class names (WordNet ids...) onto the model's output indices via ``class_ids``."""
    if class_ids is None:
        return {name: index for index, name in enumerate(sorted(names))}
    position = {name: index for index, name in enumerate(class_ids)}
    unknown = sorted(set(names) - set(position))
    if unknown:
        raise ConversionError(f"{len(unknown)} class names are not in the model's label set, e.g. {unknown[:3]}",
                              path=where)
    return position


def read_image_folder(root, class_ids=None):
    """``[(path, label)]`` of an ImageNet-style folder (one sub-folder of images per class).

    ``class_ids`` lists the class names (e.g. WordNet ids) in the model's output order; without it, classes are
    numbered in sorted sub-folder order.
    """
    root = pathlib.Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise ConversionError("no class sub-folders", path=root)
    index = _class_index([f.name for f in folders], class_ids, root)
    items = [(path, index[folder.name]) for folder in folders for path in sorted(folder.iterdir())
             if path.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise ConversionError("no images in the class sub-folders", path=root)
    return items


def read_list_file(list_path, root=None, class_ids=None, list_class_ids=None):
    """``[(path, label)]`` of a list file with lines ``path label`` (paths relative to ``root``, default the
    list's folder). A label is an integer index or a class name (WordNet id). Integer labels count in
    ``list_class_ids`` order when given (e.g. Caffe's ``val.txt`` with a VGG-order model) and are mapped through
    the class names onto ``class_ids``; otherwise they are taken as the model's own indices."""
    list_path = pathlib.Path(list_path)
    root = pathlib.Path(root) if root is not None else list_path.parent
    position = {name: i for i, name in enumerate(class_ids)} if class_ids is not None else None
    items = []
    for number, line in enumerate(list_path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        path, _, label = line.strip().rpartition(" ")
        if not path:
            raise ConversionError(f"line {number}: expected 'path label', got {line.strip()!r}", path=list_path)
        if label.isdigit():
            label = int(label)
            if list_class_ids is not None:
                if label >= len(list_class_ids):
                    raise ConversionError(f"line {number}: label {label} is beyond the list's "
                                          f"{len(list_class_ids)} classes", path=list_path)
                label = list_class_ids[label]
        if isinstance(label, str):
            if position is None or label not in position:
                raise ConversionError(f"line {number}: class {label!r} is not in the model's label set",
                                      path=list_path)
            label = position[label]
        items.append((root / path.strip(), label))
    if not items:
        raise ConversionError("the list file names no images", path=list_path)
    return items


def read_classification_set(path, class_ids=None, list_class_ids=None):
    """A folder of class sub-folders, or a list file: ``[(image path, label)]``."""
    path = pathlib.Path(path)
    if path.is_dir():
        return read_image_folder(path, class_ids)
    if path.is_file():
        return read_list_file(path, class_ids=class_ids, list_class_ids=list_class_ids)
    raise ConversionError("no such data set (a folder of class folders, or a list file)", path=path)


def read_voc_set(root, split="val"):
    """``[(image path, label PNG path)]`` of a PASCAL-VOC-style folder: ``JPEGImages/ID.jpg`` and
    ``SegmentationClass/ID.png`` for every id in ``split`` (a list file path, or a name under
    ``ImageSets/Segmentation``)."""
    root = pathlib.Path(root)
    split_path = pathlib.Path(split)
    if not split_path.is_file():
        split_path = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not split_path.is_file():
        raise ConversionError(f"no id list {split!r} (a file, or a name under ImageSets/Segmentation)",
                              path=root)
    ids = [line.split()[0] for line in split_path.read_text().splitlines() if line.strip()]
    items = [(root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png") for i in ids]
    missing = [str(p) for pair in items for p in pair if not p.is_file()]
    if missing:
        raise ConversionError(f"{len(missing)} files of the id list are missing, e.g. {missing[0]}", path=root)
    return items


def read_class_names(path):
    """Class names in output order from a text file, one a line (blank lines skipped)."""
    return [line.strip() for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
