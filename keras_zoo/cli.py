"""Argument types, options and logging shared by the command-line tools and the exporters."""

import argparse
import logging
import re
import sys

from keras_zoo import startup

# libraries whose INFO lines are progress chatter ("Assets written to: ...", tf2onnx's steps): shown with -v
CHATTY_LOGGERS = ("tensorflow", "tf2onnx", "absl")
PROJECT_LOGGERS = ("converters", "keras_zoo", "export")


def plain_text(text):
    """Docstring text as ``--help`` shows it: reStructuredText markup dropped (``code``, :func:`name`, a
    paragraph's closing ``::``), the lines kept."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    text = re.sub(r"`{1,2}([^`]+?)`{1,2}", r"\1", text)
    return re.sub(r"::$", ":", text.strip(), flags=re.MULTILINE)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every command's help style: the description's lines as written, each option's default said once, as
    ``(default: X)`` (added where the option's help does not say it; not for flags and options without one)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("(default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or action.const is not None
                or not (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            return text
        default = (" ".join(map(str, action.default)) if isinstance(action.default, (list, tuple))
                   else "%(default)s")
        return f"{text} (default: {default})" if text else f"(default: {default})"


class ArgumentParser(argparse.ArgumentParser):
    """The parser of every command: plain-text description and epilog (:func:`plain_text`), the
    :class:`HelpFormatter`, and usage errors as one ``error: ...`` line after the usage, exit status 2."""

    def __init__(self, prog=None, description=None, epilog=None, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(prog=prog, description=plain_text(description) if description else description,
                         epilog=plain_text(epilog) if epilog else epilog, **kwargs)

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


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
    add_verbose_option(parser)


def parse_values(text):
    """'104,117,123' -> a list of floats."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_verbose_option(parser):
    """``-v/--verbose``: log each step, and TensorFlow's own lines (see :func:`setup_logging`)."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log each step, with TensorFlow's start-up and progress lines")


def setup_logging(verbose=False, level=logging.INFO):
    """Logging for a command's ``main``: messages as plain lines at ``level``; with ``verbose``, at INFO and the
    project's own (``converters``, ``keras_zoo``, ``export``) at DEBUG. The INFO lines of :data:`CHATTY_LOGGERS`
    appear only with ``verbose``, which also prints the start-up lines of TensorFlow that keras_zoo held back
    (:mod:`keras_zoo.startup`)."""
    logging.basicConfig(level=min(level, logging.INFO) if verbose else level, format="%(message)s")
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.NOTSET)
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO if verbose else logging.WARNING)
        if logger.handlers:  # TensorFlow gives its logger a handler when imported before this: one line, not two
            logger.propagate = False
    if verbose and startup.held_back:
        sys.stderr.write("".join(f"{line}\n" for line in startup.held_back))
        startup.held_back.clear()
