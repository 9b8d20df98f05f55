"""``preprocess_input`` / ``decode_predictions`` like keras.applications, per weight source.

``source`` is a weight-source dict from a card, or a model name or alias (its default source).
"""

import numpy as np

from keras_zoo import labels, registry


def _source(source):
    if isinstance(source, dict):
        return source
    return registry.get_source(registry.get_card(source))


def preprocess_input(x, source):
    """RGB 0..255 images (..., H, W, 3) -> what the original network took: channel order, mean, scale.

    A mean image is centre-cropped to the images' size (Caffe's transformer crops the 256x256 mean).
    """
    from keras_zoo.weights import resolve_mean

    source = _source(source)
    spec = source["preprocessing"]
    x = np.asarray(x, dtype=np.float32)
    if spec["channel_order"] == "BGR":
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
    return x * np.float32(spec.get("scale", 1.0))


def prepare_image(image, source):
    """An RGB image (array or path) resized and cropped as ``source`` expects: float32 (H, W, 3), 0..255.

    ``resize`` scales the shorter side before the centre crop; without it the image is warped to the input.
    """
    from PIL import Image

    spec = _source(source)["preprocessing"]
    picture = Image.open(image) if not isinstance(image, np.ndarray) else Image.fromarray(np.asarray(image, np.uint8))
    picture = picture.convert("RGB")
    height, width = spec["input_size"]
    method = Image.BICUBIC if spec.get("interpolation") == "bicubic" else Image.BILINEAR
    if spec.get("resize"):
        factor = spec["resize"] / min(picture.size)
        picture = picture.resize((max(width, round(picture.size[0] * factor)),
                                  max(height, round(picture.size[1] * factor))), method)
        left, top = (picture.size[0] - width) // 2, (picture.size[1] - height) // 2
        picture = picture.crop((left, top, left + width, top + height))
    else:
        picture = picture.resize((width, height), method)
    return np.asarray(picture, dtype=np.float32)


def decode_predictions(preds, top=5, source="VGG16"):
    """``[[(class id, label, score), ...] top of each sample]`` in the class order of ``source``."""
    preds = np.asarray(preds)
    classes = labels.get_classes(_source(source)["classes"])
    if preds.ndim != 2 or preds.shape[1] != len(classes):
        raise ValueError(f"expected predictions of shape (samples, {len(classes)}), got {preds.shape}")
    results = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(classes[i][0] or str(i), classes[i][1], float(row[i])) for i in best])
    return results
