"""Argument types and options shared by the command-line tools and the exporters."""

import argparse


def parse_size(text):
    """'H,W' (or 'HxW'), 'S' (a square S,S) or 'C,H,W' -> (H, W) or (C, H, W), positive integers."""
    try:
        values = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) == 1:
        values *= 2
    if len(values) not in (2, 3) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W (or S, or C,H,W) of positive integers, got {text!r}")
    return values


def add_model_options(parser, default_name):
    """The options both converters take: the model's name, batch-norm folding, verbosity."""
    parser.add_argument("--name", help=f"the Keras model's name (default: {default_name})")
    parser.add_argument("--fold-batchnorm", action="store_true",
                        help="fold batch norms and Scale layers into the convolution before them (an inference "
                             "model: same outputs, faster)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")


def parse_values(text):
    """'104,117,123' -> a list of floats."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
