"""Classification protocols: single centre crop in batches, VGG's dense multi-scale evaluation, and top-k
classes of a few images."""

import logging
import os
import time

import numpy as np

from keras_zoo.evaluate.fully_convolutional import to_fully_convolutional
from keras_zoo.evaluate.metrics import top_k, topk_hits
from keras_zoo.evaluate.outputs import class_scores, run_model
from keras_zoo.evaluate.pipeline import batched, prefetch, progress_bar
from keras_zoo.images import CropProtocol, read_image, resize, shorter_side_size

log = logging.getLogger(__name__)

DENSE_SCALES = (256, 384, 512)


def dense_scores(fully_convolutional, image, scales=DENSE_SCALES, flip=True, preprocess=None,
                 interpolation="bilinear"):
    """(K,) class posteriors of one image under VGG's dense protocol, for a model from
    :func:`~keras_zoo.evaluate.fully_convolutional.to_fully_convolutional`: per-position scores averaged over
    positions, flips and scales."""
    per_view = []
    for side in scales:
        scaled = resize(image, shorter_side_size(image.shape, side), interpolation)
        views = np.stack([scaled, scaled[:, ::-1]] if flip else [scaled])
        per_view.append(class_scores(run_model(fully_convolutional, views, preprocess)))
    return np.concatenate(per_view).mean(axis=0)


def evaluate_classification(model, items, *, protocol=None, dense_scales=None, flip=True, batch_size=32,
                            preprocess=None, workers=4, progress=True):
    """Top-1/top-5 error (percent) and images/s of ``model`` on ``items`` = ``[(image path, label)]``.

    With ``protocol`` (a :class:`~keras_zoo.images.CropProtocol`): single centre crop, in batches. With
    ``dense_scales``: VGG's dense multi-scale protocol at those shorter sides (one image at a time; ``flip``
    adds mirrored images).
    """
    if (protocol is None) == (dense_scales is None):
        raise ValueError("give exactly one of protocol= (centre crop) or dense_scales= (dense multi-scale)")
    labels = np.array([label for _, label in items])
    if dense_scales is not None:
        log.info("running the fully connected layers of '%s' as convolutions", model.name)
        network = to_fully_convolutional(model)
    bar = progress_bar(len(items), progress)
    scores, model_seconds, start = [], 0.0, time.perf_counter()
    if protocol is not None:
        for batch in batched(prefetch(lambda item: protocol(read_image(item[0])), items, workers), batch_size):
            tick = time.perf_counter()
            scores.append(class_scores(run_model(model, np.stack(batch), preprocess)))
            model_seconds += time.perf_counter() - tick
            bar.add(len(batch))
        description = protocol.describe()
    else:
        for image in prefetch(lambda item: read_image(item[0]), items, workers):
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


def classify(model, images, protocol, labels=None, top=5, preprocess=None):
    """``[[(class index, label, probability)] * top]`` per image path or array, under ``protocol``."""
    arrays = [read_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image, np.float32)
              for image in images]
    scores = class_scores(run_model(model, np.stack([protocol(a) for a in arrays]), preprocess))
    return [[(int(i), str(labels[i]) if labels is not None else str(i), float(row[i])) for i in ranks]
            for row, ranks in zip(scores, top_k(scores, top))]


def protocol_for(resolved, crop=None, resize=None):
    """The centre-crop protocol of a resolved model (:class:`keras_zoo.resolve.Resolved`); ``crop`` (H, W) and
    ``resize`` (shorter side, or [H, W]; a one-element list is a shorter side) override its card's, and are
    needed for a model file with no card and a free input size."""
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
