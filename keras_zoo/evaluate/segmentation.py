"""Segmentation protocol: whole images through the network, label maps against the VOC ground truth."""

import time

import numpy as np

from converters.errors import ConversionError
from keras_zoo.evaluate.fully_convolutional import with_free_input_size
from keras_zoo.evaluate.metrics import confusion_matrix, segmentation_scores
from keras_zoo.evaluate.outputs import last_output, run_model
from keras_zoo.evaluate.pipeline import prefetch, progress_bar
from keras_zoo.images import read_image
from keras_zoo.segmentation import read_label_png


def predict_label_map(model, image, preprocess=None):
    """(H, W) uint8 argmax labels of a segmentation model's (1, H, W, K) score map for one RGB image."""
    scores = last_output(run_model(model, np.asarray(image, np.float32)[None], preprocess))
    if scores.ndim != 4 or scores.shape[1:3] != image.shape[:2]:
        raise ValueError(f"the model's score map is {scores.shape[1:3]} for a {image.shape[:2]} image "
                         "(expected (1, H, W, classes) of the image's size)")
    return np.argmax(scores[0], axis=-1).astype(np.uint8)


def evaluate_segmentation(model, items, *, num_classes=21, preprocess=None, workers=4, progress=True):
    """The FCN metrics of ``model`` on ``items`` = ``[(image path, label PNG path)]`` (whole images)."""
    network = with_free_input_size(model)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    bar = progress_bar(len(items), progress)
    start = time.perf_counter()
    for image, truth, label_path in prefetch(lambda item: (read_image(item[0]), read_label_png(item[1]), item[1]),
                                             items, workers):
        if truth.shape != image.shape[:2]:
            raise ConversionError(f"label map is {truth.shape}, image {image.shape[:2]}", path=label_path)
        confusion += confusion_matrix(truth, predict_label_map(network, image, preprocess), num_classes)
        bar.add(1)
    return {"images": len(items), **segmentation_scores(confusion),
            "images_per_s": len(items) / (time.perf_counter() - start), "confusion": confusion.tolist()}
