#!/usr/bin/env python
"""Segment a photo with an FCN: writes the PASCAL-VOC-coloured label map and an overlay PNG.

    python tools/segment.py street.jpg --model fcn8s [-o out/]

writes ``out/street_labels.png`` (a palette PNG whose pixel values are the VOC class indices, as the VOC
ground truth) and ``out/street_overlay.png`` (the photo with the classes painted over), and prints the share of
the image each class covers.
"""

import logging
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from converters.errors import ConversionError  # noqa: E402
from keras_zoo import segmentation  # noqa: E402
from keras_zoo.evaluate.datasets import read_class_names  # noqa: E402
from keras_zoo.evaluate.fully_convolutional import with_free_input_size  # noqa: E402
from keras_zoo.evaluate.segmentation import predict_label_map  # noqa: E402
from keras_zoo.images import read_image  # noqa: E402
from keras_zoo.cli import ArgumentParser, add_verbose_option, setup_logging  # noqa: E402
from keras_zoo.resolve import resolve  # noqa: E402


def main(argv=None):
    parser = ArgumentParser(prog="tools/segment.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="an image file")
    parser.add_argument("--model", default="fcn8s", help="a registry name or alias, or a model file (.keras...)")
    parser.add_argument("--weights", default="imagenet", help="a weight source of the model's card, or a weights "
                                                              "file (default: the card's default source)")
    parser.add_argument("--labels", help="a text file of class names, one a line (default: the model's)")
    parser.add_argument("-o", "--output-dir", default=".", help="where to write the PNGs (default: here)")
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the colours in the overlay")
    add_verbose_option(parser)
    options = parser.parse_args(argv)
    setup_logging(options.verbose, logging.WARNING)
    try:
        resolved = resolve(options.model, options.weights)
        image = read_image(options.image)
        labels = predict_label_map(with_free_input_size(resolved.model), image)
        names = read_class_names(options.labels) if options.labels else resolved.label_names()
        stem = pathlib.Path(options.output_dir) / pathlib.Path(options.image).stem
        caption = f"{resolved.name}: {resolved.weights_note}" if resolved.untrained else None
        label_png = segmentation.write_label_png(f"{stem}_labels.png", labels, caption)
        overlay_png = segmentation.write_overlay_png(f"{stem}_overlay.png", image, labels, options.alpha, caption)
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_shares(labels, names))
    if resolved.untrained:
        print(f"{resolved.name}: {resolved.weights_note}")
    print(f"wrote {label_png} and {overlay_png}")
    return 0


def format_shares(labels, names=None):
    """The table of the share of the image each class covers, largest first: share, class index, class name
    (``names[index]``; '-' where there are no names)."""
    values, counts = np.unique(labels, return_counts=True)
    lines = [f"{'share':>7}  {'class':>5}  name"]
    for value, count in sorted(zip(values, counts), key=lambda pair: -pair[1]):
        name = names[value] if names is not None and value < len(names) else "-"
        lines.append(f"{100.0 * count / labels.size:6.2f}%  {int(value):>5}  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
