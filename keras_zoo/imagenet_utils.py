"""``preprocess_input`` / ``decode_predictions`` like keras.applications, per weight source.

``source`` is a weight-source dict from a card, or a model name or alias (its default source).
"""

import dataclasses

import numpy as np
from PIL import Image

from converters.errors import ConversionError
from keras_zoo import labels, registry

_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST}


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
    """An RGB image (array or path) resized and cropped as ``source`` expects: float32 (H, W, 3), 0..255."""
    image = load_image(image) if not isinstance(image, np.ndarray) else np.asarray(image, np.float32)
    return CropProtocol.from_card(_source(source))(image)


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


def load_image(path):
    """An RGB float32 image (H, W, 3) with values 0..255; ConversionError naming the file when unreadable."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.float32)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ConversionError(f"cannot read the image: {error}", path=path) from None


def resize(image, size, interpolation="bilinear"):
    """``image`` (H, W, C) resized to ``size`` = (height, width) (Pillow, float32 per channel)."""
    height, width = (int(v) for v in size)
    if image.shape[:2] == (height, width):
        return np.asarray(image, dtype=np.float32)
    method = _RESAMPLING[interpolation]
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), mode="F")
                           .resize((width, height), method)) for c in range(image.shape[2])]
    return np.stack(channels, axis=-1)


def shorter_side_size(shape, side):
    """(height, width) with the shorter side ``side`` and the aspect ratio kept (rounded to the nearest)."""
    height, width = shape[:2]
    scale = side / min(height, width)
    return (side, max(1, round(width * scale))) if height <= width else (max(1, round(height * scale)), side)


def center_crop(image, size):
    """The central ``size`` = (height, width) window of ``image`` (offsets rounded down, as Caffe's crop)."""
    height, width = image.shape[:2]
    crop_h, crop_w = size
    if crop_h > height or crop_w > width:
        raise ValueError(f"cannot crop {crop_h}x{crop_w} from a {height}x{width} image")
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return image[top:top + crop_h, left:left + crop_w]


@dataclasses.dataclass(frozen=True)
class CropProtocol:
    """Single centre-crop evaluation: resize (shorter side, or an exact (H, W)), then crop ``input_size``."""

    input_size: tuple
    resize: object = None  # int: shorter side; (H, W): warp to that size; None: no resizing
    interpolation: str = "bilinear"

    @classmethod
    def from_card(cls, source):
        """The protocol of a weight source's card (``preprocessing``: input_size, resize, crop, interpolation).

        ``resize`` None warps the image to ``input_size``; crop 'none' is allowed only then.
        """
        spec = source.get("preprocessing") or {}
        if "input_size" not in spec:
            raise ValueError(f"weight source {source.get('name', '?')!r} has no preprocessing.input_size")
        size, input_size = spec.get("resize"), tuple(spec["input_size"])
        if spec.get("crop", "center") not in ("center", "none") or (spec.get("crop") == "none" and size):
            raise ValueError(f"unsupported crop {spec.get('crop')!r} with resize {size!r}")
        size = input_size if size is None else (tuple(size) if isinstance(size, (list, tuple)) else int(size))
        return cls(input_size, size, spec.get("interpolation") or "bilinear")

    def __call__(self, image):
        if isinstance(self.resize, tuple):
            image = resize(image, self.resize, self.interpolation)
        elif self.resize:
            image = resize(image, shorter_side_size(image.shape, self.resize), self.interpolation)
        return center_crop(image, self.input_size)

    def describe(self):
        crop = f"centre crop {self.input_size[0]}x{self.input_size[1]}"
        if isinstance(self.resize, tuple):
            return f"{crop} after resizing to {self.resize[0]}x{self.resize[1]}"
        return f"{crop} after resizing to shorter side {self.resize}" if self.resize else f"{crop} (no resizing)"
