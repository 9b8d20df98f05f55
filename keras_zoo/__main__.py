"""``python -m keras_zoo COMMAND``: list the zoo, draw a network (the demo is ``python -m export.demo``)."""

import argparse
import importlib
import sys

from keras_zoo.cli import ArgumentParser, setup_logging

# command -> (module with a `main(argv)` function, one-line help)
COMMANDS = {
    "list": ("keras_zoo.listing", "print the table of model cards"),
    "diagram": ("keras_zoo.diagram", "write an SVG diagram of a model"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = ArgumentParser(prog="python -m keras_zoo", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS),
                        help="; ".join(f"{name}: {text}" for name, (_, text) in sorted(COMMANDS.items())))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the command (see COMMAND --help)")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    options = parser.parse_args(argv[:1])
    setup_logging()
    module = importlib.import_module(COMMANDS[options.command][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
