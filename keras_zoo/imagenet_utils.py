"""``preprocess_input`` / ``decode_predictions`` like keras.applications, per weight source.

``source`` is a :class:`~keras_zoo.cards.records.WeightSource` of a card, or a model name or alias (its default
source).
"""

import numpy as np

from keras_zoo import labels
from keras_zoo.cards import WeightSource, get_card
from keras_zoo.evaluate.metrics import top_k
from keras_zoo.images import CropProtocol, read_image
from keras_zoo.weights import resolve_mean


def _source(source):
    return source if isinstance(source, WeightSource) else get_card(source).source()


def preprocess_input(x, source):
    """RGB 0..255 images (..., H, W, 3) -> what the original network took: channel order, mean, scale.

    A mean image is centre-cropped to the images' size (Caffe's transformer crops the 256x256 mean).
    """
    source = _source(source)
    x = np.asarray(x, dtype=np.float32)
    if source.input.channel_order == "BGR":
        x = x[..., ::-1]
    mean = resolve_mean(source)
    if mean is not None:
        if mean.ndim == 3:  # (C, H, W) image -> centre crop -> (h, w, C)
            height, width = x.shape[-3:-1]
            top, left = (mean.shape[1] - height) // 2, (mean.shape[2] - width) // 2
            if top < 0 or left < 0:
                raise ValueError(f"images of {height}x{width} are larger than the mean image {mean.shape[1:]}")
            mean = np.transpose(mean[:, top:top + height, left:left + width], (1, 2, 0))
        x = x - mean
    return x * np.float32(source.input.scale)


def prepare_image(image, source):
    """An RGB image (array or path) resized and cropped as ``source`` expects: float32 (H, W, 3), 0..255."""
    image = read_image(image) if not isinstance(image, np.ndarray) else np.asarray(image, np.float32)
    return CropProtocol.from_card(_source(source))(image)


def decode_predictions(preds, top=5, source="VGG16"):
    """``[[(class id, label, score), ...] top of each sample]`` in the class order of ``source``."""
    preds = np.asarray(preds)
    classes = labels.get_classes(_source(source).classes)
    if preds.ndim != 2 or preds.shape[1] != len(classes):
        raise ValueError(f"expected predictions of shape (samples, {len(classes)}), got {preds.shape}")
    results = []
    for row, best in zip(preds, top_k(preds, top)):
        results.append([(classes[i][0] or str(i), classes[i][1], float(row[i])) for i in best])
    return results
