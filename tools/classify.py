#!/usr/bin/env python
"""Classify photos with a zoo model: the top-5 labels with their probabilities.

    python tools/classify.py cat.jpg dog.png --model vgg16
    python tools/classify.py cat.jpg --model net.keras --labels synset_words.txt --crop 224 224 --resize 256

Images are resized and centre-cropped as the model's card says (``--resize`` / ``--crop`` override).
"""

import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from converters.errors import ConversionError  # noqa: E402
from keras_zoo.evaluate.classification import classify, protocol_for  # noqa: E402
from keras_zoo.evaluate.datasets import read_class_names  # noqa: E402
from keras_zoo.cli import ArgumentParser, add_verbose_option, setup_logging  # noqa: E402
from keras_zoo.resolve import resolve  # noqa: E402


def main(argv=None):
    parser = ArgumentParser(prog="tools/classify.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--model", default="vgg16", help="a registry name or alias, or a model file (.keras...)")
    parser.add_argument("--weights", default="imagenet", help="a weight source of the model's card, or a weights "
                                                              "file (default: the card's default source)")
    parser.add_argument("--labels", help="a text file of class names, one a line in output order "
                                         "(default: the weight source's label set)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print")
    parser.add_argument("--resize", type=int, nargs="+", help="shorter side (or H W) before the crop")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="centre crop size")
    add_verbose_option(parser)
    options = parser.parse_args(argv)
    setup_logging(options.verbose, logging.WARNING)
    try:
        resolved = resolve(options.model, options.weights)
        protocol = protocol_for(resolved, options.crop, options.resize)
        labels = read_class_names(options.labels) if options.labels else resolved.label_names()
        results = classify(resolved.model, options.images, protocol, labels, options.top)
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for image, top in zip(options.images, results):
        print(image)
        for rank, (index, label, probability) in enumerate(top, 1):
            print(f"  {rank}. {probability:.4f}  {label} [{index}]")
    if resolved.untrained:
        print(f"{resolved.name}: {resolved.weights_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
