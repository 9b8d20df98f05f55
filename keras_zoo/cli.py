"""Argument types shared by the command-line tools."""

import argparse


def parse_shape(text):
    """'H,W' or 'C,H,W' -> a tuple of ints."""
    try:
        values = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W or C,H,W, got {text!r}") from None
    if len(values) not in (2, 3) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W or C,H,W of positive integers, got {text!r}")
    return values


def parse_values(text):
    """'104,117,123' -> a list of floats."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
