"""PASCAL VOC label maps: the VOC colour palette, palette PNGs and overlays.

Label value 255 is PASCAL VOC's "void" (ignored by training and evaluation); it is drawn in the palette's colour
for 255 (a light cream) and left uncoloured in overlays.
"""

import pathlib

import numpy as np
from PIL import Image, PngImagePlugin

from keras_zoo.files import atomic_output

IGNORE_LABEL = 255


def voc_palette(count=256):
    """The PASCAL VOC colour map: ``(count, 3)`` uint8, label ``i`` coloured by spreading its bits over R, G, B.

    Bit ``b`` of the label (from the lowest) lands in bit ``7 - b // 3`` of channel ``b % 3`` (R, G, B).
    """
    labels = np.arange(count)
    palette = np.zeros((count, 3), dtype=np.uint8)
    for bit in range(24):
        channel, shift = bit % 3, 7 - bit // 3
        palette[:, channel] |= (((labels >> bit) & 1) << shift).astype(np.uint8)
    return palette


def colorize(labels):
    """An RGB uint8 image of a label map (H, W) of integers 0..255, in VOC colours."""
    labels = np.asarray(labels)
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError(f"label values must lie in 0..255, got {labels.min()}..{labels.max()}")
    return voc_palette()[labels.astype(np.uint8)]


def labels_from_colors(rgb):
    """The label map of a VOC-coloured RGB image (the inverse of :func:`colorize`); ValueError on other colours."""
    rgb = np.asarray(rgb, dtype=np.uint8)[..., :3]
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    palette = voc_palette().astype(np.int64)
    palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    order = np.argsort(palette_codes)
    position = np.clip(np.searchsorted(palette_codes[order], codes), 0, 255)
    found = palette_codes[order][position] == codes
    if not found.all():
        bad = rgb[~found][0]
        raise ValueError(f"colour {tuple(int(v) for v in bad)} is not in the PASCAL VOC palette")
    return order[position].astype(np.uint8)


def read_label_png(path):
    """Label map (H, W) uint8 of a VOC ground-truth PNG (palette 'P' mode: indices; RGB: palette colours)."""
    with Image.open(path) as image:
        if image.mode in ("P", "L"):
            return np.asarray(image, dtype=np.uint8).copy()
        return labels_from_colors(np.asarray(image.convert("RGB")))


def _save_atomically(image, path, description=None):
    """Save a PIL image as PNG under a temporary name, then rename: no half-written file on failure.
    ``description``: the PNG's caption (its ``Description`` text chunk), e.g. that the weights were untrained."""
    path = pathlib.Path(path)
    info = None
    if description:
        info = PngImagePlugin.PngInfo()
        info.add_text("Description", description)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)
    return path


def write_label_png(path, labels, description=None):
    """Write a label map as a palette PNG in VOC colours (pixel values are the labels, as VOC's own PNGs);
    ``description`` its caption (the PNG's ``Description`` text)."""
    labels = np.asarray(labels)
    colorize(labels)  # validates the range
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette().reshape(-1).tolist())
    return _save_atomically(image, path, description)


def overlay(image, labels, alpha=0.5):
    """The RGB image with the VOC colours of ``labels`` blended in (``alpha`` of colour); background (0) and
    void (255) pixels keep the image's own colour."""
    image = np.asarray(image, dtype=np.float32)[..., :3]
    labels = np.asarray(labels)
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image is {image.shape[:2]} but the label map is {labels.shape}")
    colours = colorize(labels).astype(np.float32)
    painted = ((labels != 0) & (labels != IGNORE_LABEL))[..., None]
    blended = np.where(painted, (1 - alpha) * image + alpha * colours, image)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def write_overlay_png(path, image, labels, alpha=0.5, description=None):
    """Write :func:`overlay` as an RGB PNG; ``description`` its caption (the PNG's ``Description`` text)."""
    return _save_atomically(Image.fromarray(overlay(image, labels, alpha)), path, description)
