#!/usr/bin/env python
"""Convert a MatConvNet network (.mat, SimpleNN or DagNN, MAT v5 or v7.3) to a Keras .keras file.

    python tools/convert_matconvnet.py imagenet-vgg-f.mat -o vgg_f.keras
    python tools/convert_matconvnet.py dncnn.mat -o dncnn.keras --input-shape 256,256
    python tools/convert_matconvnet.py imagenet-vgg-f.mat -o vgg_f_rgb.keras --normalize
    python tools/convert_matconvnet.py MSLapSRN_D5R2.mat -o x4.keras --outputs x4SR_2x_output,x4SR_4x_output
    python tools/convert_matconvnet.py LapSRN_x2.mat -o lapsrn.keras --scale 0.00392156862745098

The model takes NHWC input in the .mat's own channel order (RGB for MatConvNet's ImageNet models) with no
preprocessing, unless --normalize bakes in the file's meta.normalization (average image or pixel) and --scale a
factor after it: a net of 0..1 images (super-resolution, denoising) converted with --scale 1/255 takes 0..255,
the range the exporters' check and calibration photos are in. Outputs are
the net's outputs without its training losses, or the variables --outputs names (in that order); only the layers
they need are converted. Inputs and outputs are named after the variables and layers after the .mat layers; the
file loads with keras.saving.load_model once keras_zoo is imported.
"""

import argparse
import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from converters.errors import ConversionError  # noqa: E402
from keras_zoo.cli import ArgumentParser, add_model_options, parse_size, setup_logging  # noqa: E402


def _names(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected NAME,NAME,... (no empty names), got {text!r}")
    return names


def main(argv=None):
    parser = ArgumentParser(prog="tools/convert_matconvnet.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("mat", help="the MatConvNet .mat file")
    parser.add_argument("-o", "--output", required=True, help="the .keras (or .weights.h5) file to write")
    parser.add_argument("--input-shape", type=parse_size, metavar="H,W",
                        help="input size (default: the file's meta, else any size)")
    parser.add_argument("--normalize", action="store_true",
                        help="bake meta.normalization (the average image) into the model")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the input by this after the average image (1/255: a net of 0..1 images "
                             "takes 0..255)")
    parser.add_argument("--outputs", type=_names, metavar="NAME,...",
                        help="the variables to output, in this order (default: the net's outputs without its "
                             "losses)")
    add_model_options(parser, "the file's stem")
    options = parser.parse_args(argv)
    setup_logging(options.verbose, logging.WARNING)
    output = pathlib.Path(options.output)
    try:
        from keras_zoo.convert import from_matconvnet, save_model

        print(f"reading {options.mat} ...", file=sys.stderr)
        model = from_matconvnet(options.mat, input_shape=options.input_shape, normalize=options.normalize,
                                scale=options.scale, name=options.name, fold_batchnorm=options.fold_batchnorm,
                                outputs=options.outputs)
        print(f"writing {output} ...", file=sys.stderr)
        save_model(model, output)
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    inputs = ", ".join(f"{t.name}{tuple(t.shape)}" for t in model.inputs)
    outputs = ", ".join(model.output_names)
    print(f"wrote {output}: inputs {inputs}; outputs {outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
