#!/usr/bin/env python
"""Convert a Caffe model (.prototxt + .caffemodel) to a Keras .keras file.

    python tools/convert_caffe.py deploy.prototxt net.caffemodel -o net.keras
    python tools/convert_caffe.py deploy.prototxt net.caffemodel -o net_rgb.keras --rgb \\
        --mean-file imagenet_mean.binaryproto --input-shape 227,227
    python tools/convert_caffe.py fcn8s.prototxt fcn8s.caffemodel -o fcn8s.keras --mean 104.007,116.669,122.679
    python tools/convert_caffe.py --zoo-dir models/bvlc_googlenet -o googlenet.keras

--zoo-dir opens a Caffe Model Zoo directory (readme.md with YAML front matter + deploy.prototxt): the
caffemodel is taken from the directory or downloaded from its caffemodel_url, SHA1-verified and converted; the
readme's card (license, citation, provenance) is written beside the model as NAME.card.json.

Without preprocessing options the model takes exactly what the Caffe net took, as NHWC (BGR for the usual
ImageNet nets). --mean/--mean-file/--scale put Caffe's preprocessing ((x - mean) * scale) inside the model;
--rgb also makes it take RGB 0..255 and reverse the channels to BGR first. Inputs and outputs are named after
the net's blobs, layers after the Caffe layers; the file loads with keras.saving.load_model once keras_zoo is
imported.
"""

import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from converters.errors import ConversionError  # noqa: E402
from keras_zoo.cli import ArgumentParser, add_model_options, parse_size, parse_values, setup_logging  # noqa: E402


def preprocessing_of(options):
    """The Preprocessing the options ask for, or None."""
    from converters.caffe import read_mean_file
    from keras_zoo.preprocessing import Preprocessing

    mean = read_mean_file(options.mean_file) if options.mean_file else options.mean
    if mean is None and options.scale == 1.0 and not options.rgb:
        return None
    return Preprocessing(flip_channels=options.rgb, mean=mean, scale=options.scale)


def main(argv=None):
    parser = ArgumentParser(prog="tools/convert_caffe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("prototxt", nargs="?", help="the net definition (deploy .prototxt; V0, V1 and V2 formats)")
    parser.add_argument("caffemodel", nargs="?", help="the trained weights (.caffemodel)")
    parser.add_argument("--zoo-dir", metavar="DIR",
                        help="a Caffe Model Zoo directory instead of PROTOTXT and CAFFEMODEL")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="with --zoo-dir: where a downloaded caffemodel goes (default: the weights cache)")
    parser.add_argument("-o", "--output", help="the .keras (or .weights.h5) file to write "
                                               "(default: DIRNAME.keras, with --zoo-dir)")
    parser.add_argument("--input-shape", type=parse_size, metavar="H,W",
                        help="input size (default: the prototxt's; needed for train/val nets)")
    means = parser.add_mutually_exclusive_group()
    means.add_argument("--mean", type=parse_values, metavar="B,G,R",
                       help="per-channel mean to subtract, in the net's channel order")
    means.add_argument("--mean-file", metavar="FILE", help="mean image to subtract (.binaryproto or .npy), "
                                                           "centre-cropped to the input size")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply by this after the mean")
    parser.add_argument("--rgb", action="store_true",
                        help="the model takes RGB 0..255 and reverses the channels to the net's BGR first")
    parser.add_argument("--allow-unknown-fields", action="store_true",
                        help="skip prototxt fields Caffe does not know (misspellings), with a warning each, "
                             "instead of refusing the file")
    add_model_options(parser, "the net's name")
    options = parser.parse_args(argv)
    if options.zoo_dir and (options.prototxt or options.caffemodel):
        parser.error("give either --zoo-dir or PROTOTXT and CAFFEMODEL, not both")
    if not options.zoo_dir and not (options.prototxt and options.caffemodel and options.output):
        parser.error("PROTOTXT, CAFFEMODEL and -o/--output are required (or --zoo-dir DIR)")
    setup_logging(options.verbose, logging.WARNING)
    try:
        preprocessing = preprocessing_of(options)
        if options.zoo_dir:
            from keras_zoo.caffe_zoo import card_path, convert_caffe_zoo

            print(f"opening the model-zoo directory {options.zoo_dir} ...", file=sys.stderr)
            output = convert_caffe_zoo(options.zoo_dir, options.output, cache_dir=options.cache_dir,
                                       input_shape=options.input_shape, preprocessing=preprocessing,
                                       fold_batchnorm=options.fold_batchnorm,
                                       allow_unknown_fields=options.allow_unknown_fields)
            print(f"wrote {output} and {card_path(output)}")
            return 0
        from keras_zoo.convert import from_caffe, save_model

        output = pathlib.Path(options.output)
        print(f"reading {options.prototxt} and {options.caffemodel} ...", file=sys.stderr)
        model = from_caffe(options.prototxt, options.caffemodel, input_shape=options.input_shape,
                           preprocessing=preprocessing, name=options.name, fold_batchnorm=options.fold_batchnorm,
                           allow_unknown_fields=options.allow_unknown_fields)
        print(f"writing {output} ...", file=sys.stderr)
        save_model(model, output)
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    inputs = ", ".join(f"{t.name}{tuple(t.shape)}" for t in model.inputs)
    print(f"wrote {output}: inputs {inputs}; outputs {', '.join(model.output_names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
