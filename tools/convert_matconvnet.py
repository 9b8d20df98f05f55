#!/usr/bin/env python
"""Convert a MatConvNet network (.mat, SimpleNN or DagNN, MAT v5 or v7.3) to a Keras .keras file.

    python tools/convert_matconvnet.py imagenet-vgg-f.mat -o vgg_f.keras
    python tools/convert_matconvnet.py dncnn.mat -o dncnn.keras --input-shape 256,256
    python tools/convert_matconvnet.py imagenet-vgg-f.mat -o vgg_f_rgb.keras --normalize

The model takes NHWC input in the .mat's own channel order (RGB for MatConvNet's ImageNet models) with no
preprocessing, unless --normalize bakes in the file's meta.normalization (average image or pixel). Outputs are
named after the net's output variables and layers after the .mat layers; the file loads with
keras.saving.load_model once keras_zoo is imported.
"""

import argparse
import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from converters.errors import ConversionError  # noqa: E402
from keras_zoo.cli import add_model_options, parse_size  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tools/convert_matconvnet.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("mat", help="the MatConvNet .mat file")
    parser.add_argument("-o", "--output", required=True, help="the .keras (or .weights.h5) file to write")
    parser.add_argument("--input-shape", type=parse_size, metavar="H,W",
                        help="input size (default: the file's meta, else any size)")
    parser.add_argument("--normalize", action="store_true",
                        help="bake meta.normalization (the average image) into the model")
    add_model_options(parser, "the file's stem")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if options.verbose else logging.WARNING, format="%(message)s")
    output = pathlib.Path(options.output)
    try:
        from keras_zoo.convert import from_matconvnet, save_model

        print(f"reading {options.mat} ...", file=sys.stderr)
        model = from_matconvnet(options.mat, input_shape=options.input_shape, normalize=options.normalize,
                                name=options.name, fold_batchnorm=options.fold_batchnorm)
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
