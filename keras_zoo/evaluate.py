"""Reproduce the published numbers on your own data: ILSVRC top-1/top-5 error and FCN segmentation scores.

Protocols
---------
* **Centre crop** (the seed's ILSVRC table, each model card's ``preprocessing``): resize the image (shorter side
  to ``resize``, or both sides to ``[H, W]``), take the central ``input_size`` crop, classify once.
* **Dense multi-scale** (VGG's evaluation, Simonyan & Zisserman 2014, Sec. 3.2): the fully connected layers are
  run as convolutions (:func:`to_fully_convolutional`) over the whole image rescaled to each shorter side
  ``Q`` in ``scales`` (256, 384, 512); the per-position class posteriors are averaged over positions, over the
  image and its horizontal flip, and over the scales.
* **Segmentation** (the FCN paper's Sec. 5 metrics, with ``n_ij`` the pixels of class ``i`` predicted as ``j``
  and ``t_i = sum_j n_ij``): pixel accuracy ``sum_i n_ii / sum_i t_i``; mean accuracy
  ``mean_i n_ii / t_i``; mean IU ``mean_i n_ii / (t_i + sum_j n_ji - n_ii)``; frequency-weighted IU. Pixels
  labelled 255 (VOC "void") are ignored; a class that neither occurs nor is predicted is left out of the means.
  Note: the seed's FCN table (MatConvNet's page) heads its 4th column "Mean pix. accuracy" and its 5th "Pixel
  accuracy", but its values (89.12 / 73.28 for FCN-32s) are the FCN paper's pixel accuracy and mean accuracy in
  that order; :func:`format_segmentation_table` keeps the seed's column order with the paper's names.

Models take RGB 0..255 images (the zoo's models carry their preprocessing inside); pass ``preprocess`` for a
model that expects something else. Label indices are the model's own output order (Caffe's or VGG's ImageNet
order): a folder of class sub-folders named by WordNet id is mapped through the weight source's label set.
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import itertools
import json
import logging
import os
import pathlib
import re
import sys
import time

import keras
import numpy as np

from converters.errors import ConversionError
from keras_zoo import registry
from keras_zoo.imagenet_utils import CropProtocol, load_image, resize, shorter_side_size

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp", ".jfif")
DENSE_SCALES = (256, 384, 512)


# ----------------------------------------------------------------------------------------------------------
# Images and protocols
# ----------------------------------------------------------------------------------------------------------

# ----------------------------------------------------------------------------------------------------------
# Data sets
# ----------------------------------------------------------------------------------------------------------

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


def prefetch(function, items, workers=4, depth=16):
    """``function(item)`` for every item, in order, computed ahead by a thread pool (``depth`` in flight)."""
    items = iter(items)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque(pool.submit(function, item) for item in itertools.islice(items, depth))
        while pending:
            result = pending.popleft().result()
            for item in itertools.islice(items, 1):
                pending.append(pool.submit(function, item))
            yield result


def batched(iterable, size):
    """Lists of up to ``size`` consecutive items."""
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# ----------------------------------------------------------------------------------------------------------
# Model plumbing
# ----------------------------------------------------------------------------------------------------------

def class_scores(outputs):
    """(N, K) class scores of a classifier's output(s): the output named 'prob' (else the last), with any
    spatial dimensions averaged (fully convolutional heads)."""
    if isinstance(outputs, dict):
        outputs = outputs.get("prob", list(outputs.values())[-1])
    elif isinstance(outputs, (list, tuple)):
        outputs = outputs[-1]
    scores = np.asarray(outputs, dtype=np.float64)
    return scores.reshape(scores.shape[0], -1, scores.shape[-1]).mean(axis=1) if scores.ndim > 2 else scores


def _run(model, batch):
    """The model's output(s) on one batch, as numpy."""
    outputs = model(batch, training=False)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def _progress(total, enabled, unit="image"):
    return keras.utils.Progbar(total, unit_name=unit, verbose=1 if enabled else 0)


def topk_hits(scores, labels, k):
    """Boolean (N,): whether each label is among the ``k`` highest scores (ties go to the lower index)."""
    order = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
    return (order == np.asarray(labels)[:, None]).any(axis=1)


# ----------------------------------------------------------------------------------------------------------
# Fully connected layers as convolutions
# ----------------------------------------------------------------------------------------------------------

_LAYOUT_WORDS = ("flatten", "reshape", "permute", "transpose")


def _is_layout_layer(layer):
    """A weightless layer that only rearranges values (Flatten, Permute, Reshape, or a custom one so named)."""
    return not layer.weights and any(word in type(layer).__name__.lower() for word in _LAYOUT_WORDS)


def _producer(tensor):
    """``(layer, node)``: the layer that computed ``tensor`` and its call (node) that did."""
    operation, node_index, _ = tensor._keras_history
    return operation, operation._inbound_nodes[node_index]


def _calls(model):
    """``{id(layer): node}``: each layer's call inside ``model`` (a layer shared with another model has several
    calls; only this model's counts)."""
    return {id(node.operation): node for nodes in model._nodes_by_depth.values() for node in nodes}


def _flatten_source(layer, node):
    """``(tensor, chain)``: what feeds a rank-2 Dense ``layer`` (called as ``node``), walking back through
    single-input weightless layers: another Dense's output, or the image-shaped (N, H, W, C) tensor whose
    flattening it reads (with the layers on the way, e.g. Permute + Flatten, in ``chain``)."""
    chain, tensor = [], node.input_tensors[0]
    while len(tensor.shape) == 2:
        producer, call = _producer(tensor)
        if isinstance(producer, keras.layers.Dense):
            return tensor, chain
        if isinstance(producer, keras.layers.InputLayer) or len(call.input_tensors) != 1 or producer.weights:
            raise ValueError(f"cannot run layer '{layer.name}' as a convolution: its input does not come from "
                             f"an image-shaped tensor through weightless layers")
        chain.append((producer, call))
        tensor = call.input_tensors[0]
    while len(tensor.shape) == 4 and _is_layout_layer(_producer(tensor)[0]):  # e.g. NHWC -> NCHW first
        chain.append(_producer(tensor))
        tensor = chain[-1][1].input_tensors[0]
    return tensor, chain


def _head_plan(model):
    """``(bypass, kernels)``: the flattening layers to skip and, per Dense layer to convert, its kernel and bias.

    A Dense after global pooling (a weightless layer that is not a mere rearrangement) works at any input size
    and stays as it is, and so do the Dense layers it feeds.
    """
    bypass, kernels, calls = set(), {}, _calls(model)
    for layer in model.layers:
        node = calls.get(id(layer))
        if not isinstance(layer, keras.layers.Dense) or len(node.input_tensors[0].shape) != 2:
            continue
        weights = [np.asarray(w) for w in layer.get_weights()]
        kernel, bias = weights[0], (weights[1] if layer.use_bias else None)
        tensor, chain = _flatten_source(layer, node)
        if len(tensor.shape) == 2:  # fed by another Dense: a 1x1 convolution when that one is converted
            if _producer(tensor)[0].name in kernels:
                kernels[layer.name] = (kernel.reshape(1, 1, *kernel.shape), bias)
            continue
        if any(len(call.input_tensors[0].shape) > 2 and not _is_layout_layer(op) for op, call in chain):
            continue  # global pooling: already independent of the input size
        layout = [op for op, _ in reversed(chain) if _is_layout_layer(op)]
        height, width, channels = (int(d) for d in tensor.shape[1:])
        probe = np.arange(height * width * channels, dtype=np.float32).reshape(1, height, width, channels)
        for op in layout:
            probe = op(probe)
        order = np.rint(np.asarray(probe)).astype(np.int64).reshape(-1)
        if order.size != kernel.shape[0] or not np.array_equal(np.sort(order), np.arange(order.size)):
            raise ValueError(f"cannot run layer '{layer.name}' as a convolution: its input is not a "
                             f"rearrangement of a {height}x{width}x{channels} tensor")
        conv_kernel = np.empty_like(kernel)
        conv_kernel[order] = kernel
        kernels[layer.name] = (conv_kernel.reshape(height, width, channels, -1), bias)
        bypass.update(id(op) for op in layout)
    return bypass, kernels


def to_fully_convolutional(model, *, verify=True):
    """An equivalent model whose Dense layers are convolutions, taking images of any size.

    The first Dense layer over a flattened (H, W, C) tensor becomes an H x W convolution (its kernel rows
    re-ordered to whatever flattening order the model used, e.g. Caffe's C, H, W), later Dense layers 1 x 1
    convolutions; the flattening layers are skipped and softmax layers act on the channel axis. Other layers are
    shared with ``model``. With ``verify``, both forms are compared at the model's own input size.
    """
    bypass, kernels = _head_plan(model)
    calls = _calls(model)

    def call(layer, *args, **kwargs):
        if id(layer) in bypass:
            return args[0]
        if layer.name in kernels:
            kernel, bias = kernels[layer.name]
            conv = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], use_bias=bias is not None,
                                       activation=layer.activation, name=layer.name, dtype=layer.dtype_policy)
            conv.build((None, None, None, kernel.shape[2]))
            conv.set_weights([kernel] if bias is None else [kernel, bias])
            return conv(args[0])
        if isinstance(layer, keras.layers.Softmax) and len(calls[id(layer)].input_tensors[0].shape) == 2:
            return keras.layers.Softmax(axis=-1, name=layer.name)(args[0])
        return layer(*args, **kwargs)

    converted = _rebuilt_on_free_size(model, call)
    if verify:
        _verify_same(model, converted)
    return converted


def _verify_same(model, converted, tol=1e-4):
    """Raise ValueError unless ``converted`` computes what ``model`` does at the model's input size."""
    shape = model.inputs[0].shape
    if any(d is None for d in shape[1:]):
        return
    sample = np.random.default_rng(0).uniform(0, 255, (1, *shape[1:])).astype(np.float32)
    reference = class_scores(_run(model, sample))
    result = class_scores(_run(converted, sample))
    error = np.abs(result - reference).max() if result.shape == reference.shape else np.inf
    if error > tol * max(np.abs(reference).max(), 1e-12):
        raise ValueError(f"the fully convolutional form of '{model.name}' disagrees with the model "
                         f"(max abs difference {error:.3g})")


def _rebuilt_on_free_size(model, call_function=None):
    """``model``'s graph (its own layers, shared) re-run on inputs of free height and width."""
    inputs = [keras.Input(shape=(None, None, t.shape[-1]), name=t.name, dtype=t.dtype) for t in model.inputs]
    return keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                    clone_function=lambda layer: layer, call_function=call_function)


def with_free_input_size(model):
    """The model on an input of free height and width (same layers); the model itself when already free."""
    if all(d is None for t in model.inputs for d in t.shape[1:3]):
        return model
    return _rebuilt_on_free_size(model)


# ----------------------------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------------------------

def _identity(batch):
    return batch


def dense_scores(fully_convolutional, image, scales=DENSE_SCALES, flip=True, preprocess=_identity,
                 interpolation="bilinear"):
    """(K,) class posteriors of one image under VGG's dense protocol, for a model from
    :func:`to_fully_convolutional`: per-position scores averaged over positions, flips and scales."""
    per_view = []
    for side in scales:
        scaled = resize(image, shorter_side_size(image.shape, side), interpolation)
        views = np.stack([scaled, scaled[:, ::-1]] if flip else [scaled])
        per_view.append(class_scores(_run(fully_convolutional, preprocess(views))))
    return np.concatenate(per_view).mean(axis=0)


def evaluate_classification(model, items, *, protocol=None, dense_scales=None, flip=True, batch_size=32,
                            preprocess=_identity, workers=4, progress=True):
    """Top-1/top-5 error (percent) and images/s of ``model`` on ``items`` = ``[(image path, label)]``.

    With ``protocol`` (a :class:`CropProtocol`): single centre crop, in batches. With ``dense_scales``: VGG's
    dense multi-scale protocol at those shorter sides (one image at a time; ``flip`` adds mirrored images).
    """
    if (protocol is None) == (dense_scales is None):
        raise ValueError("give exactly one of protocol= (centre crop) or dense_scales= (dense multi-scale)")
    labels = np.array([label for _, label in items])
    if dense_scales is not None:
        log.info("running the fully connected layers of '%s' as convolutions", model.name)
        network = to_fully_convolutional(model)
    bar = _progress(len(items), progress)
    scores, model_seconds, start = [], 0.0, time.perf_counter()
    if protocol is not None:
        prepare = lambda item: protocol(load_image(item[0]))  # noqa: E731
        for batch in batched(prefetch(prepare, items, workers), batch_size):
            tick = time.perf_counter()
            scores.append(class_scores(_run(model, preprocess(np.stack(batch)))))
            model_seconds += time.perf_counter() - tick
            bar.add(len(batch))
        description = protocol.describe()
    else:
        for image in prefetch(lambda item: load_image(item[0]), items, workers):
            tick = time.perf_counter()
            scores.append(dense_scores(network, image, dense_scales, flip, preprocess)[None])
            model_seconds += time.perf_counter() - tick
            bar.add(1)
        description = (f"dense, shorter sides {', '.join(map(str, dense_scales))}"
                       f"{' with horizontal flips' if flip else ''}")
    seconds = time.perf_counter() - start
    scores = np.concatenate(scores)
    if labels.max() >= scores.shape[1]:
        raise ValueError(f"label {labels.max()} is beyond the model's {scores.shape[1]} classes")
    return {
        "protocol": description,
        "images": len(items),
        "top1_error_percent": 100.0 * (1 - float(topk_hits(scores, labels, 1).mean())),
        "top5_error_percent": 100.0 * (1 - float(topk_hits(scores, labels, min(5, scores.shape[1])).mean())),
        "images_per_s": len(items) / seconds,
        "model_images_per_s": len(items) / model_seconds,
    }


def classify(model, images, protocol, labels=None, top=5, preprocess=_identity):
    """``[[(class index, label, probability)] * top]`` per image path or array, under ``protocol``."""
    arrays = [load_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image, np.float32)
              for image in images]
    scores = class_scores(_run(model, preprocess(np.stack([protocol(a) for a in arrays]))))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return [[(int(i), str(labels[i]) if labels is not None else str(i), float(row[i])) for i in ranks]
            for row, ranks in zip(scores, order)]


# ----------------------------------------------------------------------------------------------------------
# Segmentation
# ----------------------------------------------------------------------------------------------------------

def predict_label_map(model, image, preprocess=_identity):
    """(H, W) uint8 argmax labels of a segmentation model's (1, H, W, K) score map for one RGB image."""
    scores = _run(model, preprocess(np.asarray(image, np.float32)[None]))
    if isinstance(scores, (list, tuple)):
        scores = scores[-1]
    elif isinstance(scores, dict):
        scores = list(scores.values())[-1]
    if scores.ndim != 4 or scores.shape[1:3] != image.shape[:2]:
        raise ValueError(f"the model's score map is {scores.shape[1:3]} for a {image.shape[:2]} image "
                         "(expected (1, H, W, classes) of the image's size)")
    return np.argmax(scores[0], axis=-1).astype(np.uint8)


def confusion_matrix(truth, predicted, num_classes, ignore=255):
    """(K, K) int64 counts ``n_ij`` of pixels of true class i predicted as j; ``ignore`` and labels >= K in
    ``truth`` are skipped."""
    truth, predicted = np.asarray(truth).reshape(-1), np.asarray(predicted).reshape(-1)
    if truth.shape != predicted.shape:
        raise ValueError(f"label maps differ in size: {truth.shape} and {predicted.shape}")
    keep = (truth != ignore) & (truth < num_classes)
    if np.any(predicted[keep] >= num_classes):
        raise ValueError(f"predicted labels beyond the {num_classes} classes")
    counts = np.bincount(num_classes * truth[keep].astype(np.int64) + predicted[keep],
                         minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def segmentation_scores(confusion):
    """The FCN paper's metrics (percent) of a confusion matrix (rows: truth): pixel accuracy, mean accuracy,
    mean IU, frequency-weighted IU. Classes absent from truth and prediction are left out of the means."""
    confusion = np.asarray(confusion, dtype=np.float64)
    correct, truth, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    union = truth + predicted - correct
    with np.errstate(invalid="ignore", divide="ignore"):
        class_accuracy = correct / truth
        iou = correct / union
    present = truth > 0
    return {
        "pixel_accuracy_percent": float(100.0 * correct.sum() / truth.sum()),
        "mean_accuracy_percent": float(100.0 * np.nanmean(class_accuracy)),
        "mean_iou_percent": float(100.0 * np.nanmean(iou)),
        "frequency_weighted_iou_percent": float(100.0 * (truth[present] * iou[present]).sum() / truth.sum()),
    }


def evaluate_segmentation(model, items, *, num_classes=21, preprocess=_identity, workers=4, progress=True):
    """The FCN metrics of ``model`` on ``items`` = ``[(image path, label PNG path)]`` (whole images)."""
    from keras_zoo.segmentation import read_label_png

    network = with_free_input_size(model)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    bar = _progress(len(items), progress)
    start = time.perf_counter()
    for image, truth, label_path in prefetch(lambda item: (load_image(item[0]), read_label_png(item[1]), item[1]),
                                             items, workers):
        if truth.shape != image.shape[:2]:
            raise ConversionError(f"label map is {truth.shape}, image {image.shape[:2]}", path=label_path)
        confusion += confusion_matrix(truth, predict_label_map(network, image, preprocess), num_classes)
        bar.add(1)
    return {"images": len(items), **segmentation_scores(confusion),
            "images_per_s": len(items) / (time.perf_counter() - start), "confusion": confusion.tolist()}


# ----------------------------------------------------------------------------------------------------------
# Models by name, tables, JSON, command line
# ----------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ResolvedModel:
    """A model with its card and weight source (both None for a model file)."""

    model: object
    name: str
    card: dict = None
    source: dict = None


def resolve_model(spec, weights=None):
    """A registry name or alias (with its default weights, or ``weights``: a source name or a weights file), or
    a ``.keras`` file."""
    path = pathlib.Path(spec)
    if path.suffix == ".keras":
        if not path.is_file():
            raise ConversionError("no such model file", path=path)
        return ResolvedModel(keras.saving.load_model(path), path.stem)
    card = registry.get_card(spec)
    named = weights is None or weights in {"imagenet", *(s["name"] for s in card["weights"])}
    source = registry.get_source(card, weights if weights and named else "imagenet")
    model = registry.get_model(spec) if weights is None else registry.get_model(spec, weights=weights)
    return ResolvedModel(model, card["name"], card, source)


def year_of(card):
    """The year a model was introduced: the last year named in its card's paper (or None)."""
    years = re.findall(r"\b(?:19|20)\d\d\b", (card or {}).get("paper") or "")
    return int(years[-1]) if years else None


def class_ids_of(label_set_id):
    """The class ids (WordNet ids) of a label set, in its output order; None where the set has no ids."""
    if not label_set_id:
        return None
    from keras_zoo.labels import get_classes

    ids = [class_id for class_id, _ in get_classes(label_set_id)]
    return ids if all(ids) else None


def label_names(source=None, path=None):
    """Class names in output order: from a text file (one class a line), or the weight source's label set."""
    if path is not None:
        return [line.strip() for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if source and source.get("classes"):
        from keras_zoo.labels import get_labels

        return get_labels(source["classes"])
    return None


def _markdown_table(header, rows, align):
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows)]
    cell = lambda value, width, a: str(value).rjust(width) if a == ">" else str(value).ljust(width)  # noqa: E731
    line = lambda values: "|" + "|".join(cell(v, w, a) for v, w, a in zip(values, widths, align)) + "|"  # noqa
    rule = "|" + "|".join(("-" * (w - 1) + ":") if a == ">" else "-" * w for w, a in zip(widths, align)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def format_classification_table(results):
    """The seed's ILSVRC table: model | introduced | top-1 err. | top-5 err. | images/s."""
    rows = [(r["model"], r.get("introduced", ""), f"{r['top1_error_percent']:.1f}",
             f"{r['top5_error_percent']:.1f}", f"{r['images_per_s']:.1f}") for r in results]
    return _markdown_table(("model", "introduced", "top-1 err.", "top-5 err.", "images/s"), rows, ">" * 5)


def format_segmentation_table(results):
    """The seed's FCN table in its column order, with the FCN paper's names (see the module notes)."""
    rows = [(r["model"], r.get("test_data", ""), f"{r['mean_iou_percent']:.2f}",
             f"{r['pixel_accuracy_percent']:.2f}", f"{r['mean_accuracy_percent']:.2f}") for r in results]
    return _markdown_table(("Model", "Test data", "Mean IOU", "Pixel accuracy", "Mean accuracy"), rows,
                           "<<>>>")


def write_json(data, path):
    """Write ``data`` as indented JSON, atomically (a temporary name, then a rename)."""
    from keras_zoo.files import atomic_output

    path = pathlib.Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return path


def protocol_for(resolved, crop=None, resize=None):
    """The centre-crop protocol of a resolved model's card; ``crop`` (H, W) and ``resize`` (shorter side, or
    [H, W]) override it, and are needed for a model file with no card and a free input size."""
    base = CropProtocol.from_card(resolved.source) if resolved.source else None
    if crop is None:
        shape = resolved.model.inputs[0].shape
        crop = base.input_size if base else (None if None in shape[1:3] else tuple(shape[1:3]))
    if crop is None:
        raise ValueError("the model has no card and no fixed input size: give the crop size and the resize")
    if isinstance(resize, (list, tuple)):
        resize = resize[0] if len(resize) == 1 else tuple(resize)
    if resize is None and base is not None:
        resize = base.resize
    return CropProtocol(tuple(crop), resize, base.interpolation if base else "bilinear")


def _parser():
    parser = argparse.ArgumentParser(
        prog="tools/evaluate.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  tools/evaluate.py classification ILSVRC2012_val/ --model vgg16 --json vgg16.json\n"
               "  tools/evaluate.py classification val.txt --model vgg16 --dense\n"
               "  tools/evaluate.py classification val.txt --model vgg-m --list-labels imagenet-caffe\n"
               "  tools/evaluate.py segmentation VOC2011/ --model fcn8s --split seg11valid.txt")
    parser.add_argument("task", choices=("classification", "segmentation"))
    parser.add_argument("data", help="classification: a folder of class folders or a 'path label' list file; "
                                     "segmentation: a PASCAL VOC folder (JPEGImages, SegmentationClass)")
    parser.add_argument("--model", required=True, help="a registry name (vgg16, fcn8s...) or a .keras file")
    parser.add_argument("--weights", help="a weight source name of the model's card, or a weights file")
    parser.add_argument("--dense", action="store_true",
                        help="VGG's dense multi-scale protocol instead of the single centre crop")
    parser.add_argument("--scales", type=int, nargs="+", default=list(DENSE_SCALES),
                        help="shorter sides of the dense protocol (default: 256 384 512)")
    parser.add_argument("--no-flip", action="store_true", help="dense protocol without horizontal flips")
    parser.add_argument("--resize", type=int, nargs="+", help="override: shorter side, or H W")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="override: crop size")
    parser.add_argument("--list-labels", help="label set of integer labels in the list file when it differs "
                                               "from the model's (e.g. Caffe's val.txt for a VGG-order model)")
    parser.add_argument("--split", default="val", help="segmentation: id list file or ImageSets name")
    parser.add_argument("--classes", type=int, default=21, help="segmentation: number of classes")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    options = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        resolved = resolve_model(options.model, options.weights)
        row = {"model": resolved.name, "data": str(options.data)}
        if year_of(resolved.card):
            row["introduced"] = year_of(resolved.card)
        if options.task == "classification":
            items = read_classification_set(options.data, class_ids_of((resolved.source or {}).get("classes")),
                                            class_ids_of(options.list_labels))
            items = items[:options.limit] if options.limit else items
            kwargs = ({"dense_scales": tuple(options.scales), "flip": not options.no_flip} if options.dense
                      else {"protocol": protocol_for(resolved, options.crop, options.resize),
                             "batch_size": options.batch_size})
            row.update(evaluate_classification(resolved.model, items, progress=not options.quiet, **kwargs))
            table = format_classification_table([row])
        else:
            items = read_voc_set(options.data, options.split)
            items = items[:options.limit] if options.limit else items
            row["test_data"] = pathlib.Path(options.split).stem
            row.update(evaluate_segmentation(resolved.model, items, num_classes=options.classes,
                                             progress=not options.quiet))
            table = format_segmentation_table([row])
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{row['protocol'] if 'protocol' in row else 'whole images'}, {row['images']} images")
    print(table)
    if options.json:
        write_json(row, options.json)
        print(f"wrote {options.json}")
    return 0
