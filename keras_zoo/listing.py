"""``python -m keras_zoo list``: the table of model cards (needs no Keras)."""

import sys

from keras_zoo.cards import CARDS
from keras_zoo.cli import ArgumentParser

ALIASES_SHOWN = 3


def format_metrics(card):
    """The reported numbers of the default source, else of the first source that has some."""
    ordered = sorted(card.weights, key=lambda source: not source.default)
    source = next((source for source in ordered if source.metrics), None)
    if source is None:
        return ""
    metrics, by = source.metrics, f" [{source.name}]"
    if "top1_err" in metrics:
        return f"top-1/5 err {metrics['top1_err']}/{metrics['top5_err']}{by}"
    return f"mean IoU {metrics['mean_iou']} ({metrics['test_data']}){by}"


def _checksum(file):
    """The first published checksum of ``file`` as 'kind value or value', else 'no checksum'."""
    kind = next((kind for kind in ("md5", "sha1", "sha256") if getattr(file, kind)), None)
    return f"{kind} {' or '.join(getattr(file, kind))}" if kind else "no checksum"


def main(argv=None):
    """Print the table of model cards (``--sources``: every weight source with its URL and checksum)."""
    parser = ArgumentParser(prog="python -m keras_zoo list", description="List the zoo's models.")
    parser.add_argument("--sources", action="store_true", help="also list every weight source with its URL")
    options = parser.parse_args(argv)
    header = ("model", "task", "default weights", "classes", "reported", "aliases")
    rows = [(card, (card.name, card.task, f"{card.source().name} ({card.source().file.filename})",
                    card.source().classes, format_metrics(card), ", ".join(card.aliases[1:1 + ALIASES_SHOWN])))
            for card in CARDS]
    widths = [max(len(cells[i]) for cells in [header, *(cells for _, cells in rows)]) for i in range(len(header))]
    for card, cells in [(None, header), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip())
        if options.sources and card is not None:
            for source in card.weights:
                print(f"    {source.name:<19} {source.file.url or '(no direct URL)'}  [{_checksum(source.file)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
