#!/usr/bin/env python
"""Reproduce the published numbers on your own data: ILSVRC top-1/top-5 error and FCN segmentation scores.

    python tools/evaluate.py classification VAL_DIR --model vgg16 [--dense] [--json out.json]
    python tools/evaluate.py segmentation VOC2011 --model fcn8s --split seg11valid.txt

See ``keras_zoo.evaluate`` for the protocols and the metric definitions.
"""

import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from converters.errors import ConversionError  # noqa: E402
from keras_zoo.evaluate.classification import DENSE_SCALES, evaluate_classification, protocol_for  # noqa: E402
from keras_zoo.evaluate.datasets import class_ids_of, read_classification_set, read_voc_set  # noqa: E402
from keras_zoo.evaluate.reports import format_classification_table, format_segmentation_table, year_of  # noqa
from keras_zoo.evaluate.segmentation import evaluate_segmentation  # noqa: E402
from keras_zoo.files import write_json  # noqa: E402
from keras_zoo.cli import ArgumentParser, add_verbose_option, setup_logging  # noqa: E402
from keras_zoo.resolve import resolve  # noqa: E402


def _parser():
    parser = ArgumentParser(
        prog="tools/evaluate.py", description=__doc__.split("\n\n")[0],
        epilog="examples:\n"
               "  tools/evaluate.py classification ILSVRC2012_val/ --model vgg16 --json vgg16.json\n"
               "  tools/evaluate.py classification val.txt --model vgg16 --dense\n"
               "  tools/evaluate.py classification val.txt --model vgg-m --list-labels imagenet-caffe\n"
               "  tools/evaluate.py segmentation VOC2011/ --model fcn8s --split seg11valid.txt")
    parser.add_argument("task", choices=("classification", "segmentation"))
    parser.add_argument("data", help="classification: a folder of class folders or a 'path label' list file; "
                                     "segmentation: a PASCAL VOC folder (JPEGImages, SegmentationClass)")
    parser.add_argument("--model", required=True, help="a registry name (vgg16, fcn8s...) or a model file "
                                                       "(.keras...)")
    parser.add_argument("--weights", default="imagenet",
                        help="a weight source name of the model's card, or a weights file (default: the card's "
                             "default source)")
    parser.add_argument("--dense", action="store_true",
                        help="VGG's dense multi-scale protocol instead of the single centre crop")
    parser.add_argument("--scales", type=int, nargs="+", default=list(DENSE_SCALES),
                        help="shorter sides of the dense protocol (default: 256 384 512)")
    parser.add_argument("--no-flip", action="store_true", help="dense protocol without horizontal flips")
    parser.add_argument("--resize", type=int, nargs="+", help="override: shorter side, or H W")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="override: crop size")
    parser.add_argument("--list-labels", help="label set of integer labels in the list file when it differs "
                                               "from the model's (e.g. Caffe's val.txt for a VGG-order model)")
    parser.add_argument("--split", default="val", help="segmentation: id list file or ImageSets name")
    parser.add_argument("--classes", type=int, default=21, help="segmentation: number of classes")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose_option(parser)
    return parser


def main(argv=None):
    options = _parser().parse_args(argv)
    setup_logging(options.verbose, logging.INFO)
    try:
        resolved = resolve(options.model, options.weights)
        row = {"model": resolved.name, "data": str(options.data)}
        if resolved.untrained:
            row["untrained"] = True
        if year_of(resolved.card):
            row["introduced"] = year_of(resolved.card)
        if options.task == "classification":
            items = read_classification_set(options.data, class_ids_of(resolved.classes),
                                            class_ids_of(options.list_labels))
            items = items[:options.limit] if options.limit else items
            kwargs = ({"dense_scales": tuple(options.scales), "flip": not options.no_flip} if options.dense
                      else {"protocol": protocol_for(resolved, options.crop, options.resize),
                            "batch_size": options.batch_size})
            row.update(evaluate_classification(resolved.model, items, progress=not options.quiet, **kwargs))
            table = format_classification_table([row])
        else:
            items = read_voc_set(options.data, options.split)
            items = items[:options.limit] if options.limit else items
            row["test_data"] = pathlib.Path(options.split).stem
            row.update(evaluate_segmentation(resolved.model, items, num_classes=options.classes,
                                             progress=not options.quiet))
            table = format_segmentation_table([row])
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{row['protocol'] if 'protocol' in row else 'whole images'}, {row['images']} images")
    print(table)
    if resolved.untrained:
        print(f"{resolved.name}: {resolved.weights_note}")
    if options.json:
        write_json(row, options.json)
        print(f"wrote {options.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
