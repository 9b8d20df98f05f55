#!/usr/bin/env python
"""Segment a photo with an FCN: writes the PASCAL-VOC-coloured label map and an overlay PNG.

    python tools/segment.py street.jpg --model fcn8s [-o out/]

writes ``out/street_labels.png`` (a palette PNG whose pixel values are the VOC class indices, as the VOC
ground truth) and ``out/street_overlay.png`` (the photo with the classes painted over), and prints the share of
the image each class covers.
"""

import argparse
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
from keras_zoo.resolve import resolve  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tools/segment.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="an image file")
    parser.add_argument("--model", default="fcn8s", help="a registry name or alias, or a model file (.keras...)")
    parser.add_argument("--weights", default="imagenet", help="a weight source of the model's card, or a weights "
                                                              "file (default: the card's default source)")
    parser.add_argument("--labels", help="a text file of class names, one a line (default: the model's)")
    parser.add_argument("-o", "--output-dir", default=".", help="where to write the PNGs (default: here)")
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the colours in the overlay")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        resolved = resolve(options.model, options.weights)
        image = read_image(options.image)
        labels = predict_label_map(with_free_input_size(resolved.model), image)
        names = read_class_names(options.labels) if options.labels else resolved.label_names()
        stem = pathlib.Path(options.output_dir) / pathlib.Path(options.image).stem
        label_png = segmentation.write_label_png(f"{stem}_labels.png", labels)
        overlay_png = segmentation.write_overlay_png(f"{stem}_overlay.png", image, labels, options.alpha)
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    values, counts = np.unique(labels, return_counts=True)
    for value, count in sorted(zip(values, counts), key=lambda pair: -pair[1]):
        name = names[value] if names is not None and value < len(names) else str(value)
        print(f"{100.0 * count / labels.size:6.2f}%  {name}")
    print(f"wrote {label_png} and {overlay_png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
