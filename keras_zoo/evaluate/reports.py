"""Reporting results: the seed's Markdown tables and the year a model was introduced."""

import re


def year_of(card):
    """The year a model was introduced: the last year named in its card's paper (or None)."""
    years = re.findall(r"\b(?:19|20)\d\d\b", card.paper if card else "")
    return int(years[-1]) if years else None


def _markdown_table(header, rows, align):
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows)]
    cell = lambda value, width, a: str(value).rjust(width) if a == ">" else str(value).ljust(width)  # noqa: E731
    line = lambda values: "|" + "|".join(cell(v, w, a) for v, w, a in zip(values, widths, align)) + "|"  # noqa
    rule = "|" + "|".join(("-" * (w - 1) + ":") if a == ">" else "-" * w for w, a in zip(widths, align)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _model_cell(result):
    """The model's name, marked where its weights were untrained (``result['untrained']``)."""
    return f"{result['model']} (UNTRAINED weights)" if result.get("untrained") else result["model"]


def format_classification_table(results):
    """The seed's ILSVRC table: model | introduced | top-1 err. | top-5 err. | images/s."""
    rows = [(_model_cell(r), r.get("introduced", ""), f"{r['top1_error_percent']:.1f}",
             f"{r['top5_error_percent']:.1f}", f"{r['images_per_s']:.1f}") for r in results]
    return _markdown_table(("model", "introduced", "top-1 err.", "top-5 err.", "images/s"), rows, ">" * 5)


def format_segmentation_table(results):
    """The seed's FCN table in its column order, with the FCN paper's names (see :mod:`keras_zoo.evaluate`)."""
    rows = [(_model_cell(r), r.get("test_data", ""), f"{r['mean_iou_percent']:.2f}",
             f"{r['pixel_accuracy_percent']:.2f}", f"{r['mean_accuracy_percent']:.2f}") for r in results]
    return _markdown_table(("Model", "Test data", "Mean IOU", "Pixel accuracy", "Mean accuracy"), rows,
                           "<<>>>")

