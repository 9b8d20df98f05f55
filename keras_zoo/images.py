"""Images: reading files and folders, the bundled sample photos, resizing and centre crops.

Every image is RGB float32 (H, W, 3) with values 0..255. Two paths resize and crop as a weight source's card
says (``resize`` a shorter side or an exact [H, W], then a centre crop of ``input_size``): :class:`CropProtocol`
on one image with Pillow (evaluation, classification, the demo), and :func:`fit_images` on a batch with
TensorFlow ops (the exporters' sample inputs, and the SavedModel's encoded-image signature, which runs the same
code inside the graph after :func:`decode_image_bytes`). ``tests/export/test_image_paths.py`` checks that the
two agree on a real JPEG.
"""

import dataclasses
import pathlib

import numpy as np
from PIL import Image

from converters.errors import ConversionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
# Real colour photos shipped inside scikit-image (no download), everyday scenes first.
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "stereo_motorcycle", "immunohistochemistry",
                 "hubble_deep_field", "retina")
_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST}


def read_image(path):
    """An RGB float32 image (H, W, 3) with values 0..255; ConversionError naming the file when unreadable."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.float32)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ConversionError(f"cannot read the image: {error}", path=path) from None


def read_images(folder):
    """``[(path, image)]`` of the image files in ``folder`` (by :data:`IMAGE_SUFFIXES`), sorted by name."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of images")
    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConversionError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder", path=folder)
    return [(path, read_image(path)) for path in paths]


def sample_photos():
    """``[(name, image)]`` of scikit-image's bundled photos :data:`SAMPLE_PHOTOS`."""
    try:
        import skimage.data
    except ImportError:
        raise ImportError("the bundled sample photos come with scikit-image: install it, or give image "
                          "files") from None
    photos = []
    for name in SAMPLE_PHOTOS:
        photo = getattr(skimage.data, name)()
        photo = photo[0] if isinstance(photo, tuple) else photo  # a stereo pair: the left image
        photos.append((name, np.asarray(photo, dtype=np.float32)[..., :3]))
    return photos


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
        """The protocol of a weight source's card (its ``input``: input_size, resize, crop, interpolation).

        ``resize`` None warps the image to ``input_size``; crop 'none' is allowed only then.
        """
        spec = source.input
        size, input_size = spec.resize, tuple(spec.input_size)
        if spec.crop not in ("center", "none") or (spec.crop == "none" and size):
            raise ValueError(f"weight source {source.name!r}: unsupported crop {spec.crop!r} with resize {size!r}")
        size = input_size if size is None else (tuple(size) if isinstance(size, (list, tuple)) else int(size))
        return cls(input_size, size, spec.interpolation)

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


def fit_options(source):
    """A weight source's ``{resize, crop, interpolation}``: :func:`fit_images`' keywords (empty without one)."""
    if source is None:
        return {}
    return {"resize": source.input.resize, "crop": source.input.crop, "interpolation": source.input.interpolation}


def decode_image_bytes(encoded, channels=3):
    """One encoded image (a string tensor: JPEG, PNG, BMP or GIF) as a uint8 (H, W, channels) tensor, with
    TensorFlow ops. JPEGs are decoded with libjpeg's accurate integer DCT, as Pillow decodes them (TensorFlow's
    default, the fast DCT, differs from it by up to 18 levels)."""
    import tensorflow as tf

    return tf.cond(tf.io.is_jpeg(encoded),
                   lambda: tf.io.decode_jpeg(encoded, channels=channels, dct_method="INTEGER_ACCURATE"),
                   lambda: tf.io.decode_image(encoded, channels=channels, expand_animations=False))


def fit_images(images, size, *, resize=None, crop=None, interpolation="bilinear"):
    """Resize and centre-crop a batch of RGB images (NHWC, any dtype) to ``size`` = (H, W), float32 0..255.

    As a model card says it: ``resize`` is the shorter side before a ``crop='center'`` of ``size`` (or
    [H, W], an exact size before the crop); without a centre crop (or with ``resize`` None) the image is
    warped to ``size``. TensorFlow ops only, so the SavedModel's encoded-image signature runs the same code.
    """
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    height, width = size
    method = "bicubic" if interpolation == "bicubic" else "bilinear"
    if resize is None or crop != "center":
        return tf.image.resize(images, (height, width), method=method, antialias=True)
    if isinstance(resize, (int, float)):
        shape = tf.cast(tf.shape(images)[1:3], tf.float32)
        target = tf.cast(tf.round(shape * (float(resize) / tf.reduce_min(shape))), tf.int32)
        target = tf.maximum(target, tf.constant([height, width]))
    else:
        target = tf.constant([max(int(resize[0]), height), max(int(resize[1]), width)])
    images = tf.image.resize(images, target, method=method, antialias=True)
    top = (target[0] - height) // 2
    left = (target[1] - width) // 2
    return images[:, top:top + height, left:left + width, :]
