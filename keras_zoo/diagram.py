"""SVG diagrams of networks, like the per-model diagrams of the MatConvNet model page.

One box per layer (name, type, output size, parameters), arrows along the data flow, layers placed in rows by
their depth from the input so that parallel branches (Inception modules, residual shortcuts, FCN skips) sit side
by side. Plain SVG, no Graphviz needed.

    python -m keras_zoo diagram vgg16               # writes VGG16.svg
    python -m keras_zoo diagram net.keras -o net.svg
"""

import dataclasses
import pathlib
import sys
from xml.sax.saxutils import escape

from converters.errors import ConversionError
from keras_zoo.cli import ArgumentParser
from keras_zoo.files import atomic_output
from keras_zoo.resolve import resolve

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 210, 46, 24, 30, 20  # BOX_W: the narrowest box
LANE_PAD, LANE_GAP = 8, 6  # an edge passing a row keeps LANE_PAD from its boxes and LANE_GAP from other edges
NAME_CHAR_W, DETAIL_CHAR_W, HEADING_CHAR_W = 8.2, 6.0, 9.5  # approximate character widths of the three fonts
# (words in the layer's type name, fill colour); the first match wins
PALETTE = (
    (("input",), "#e8e8e8"), (("deconv", "transpose"), "#f4c7a1"), (("conv",), "#9fc5e8"),
    (("pool",), "#b6d7a8"), (("norm", "lrn"), "#ffe599"), (("dense", "innerproduct"), "#b4a7d6"),
    (("add", "concat", "multiply", "maximum", "eltwise", "crop"), "#f9cb9c"),
    (("relu", "softmax", "activation", "sigmoid", "tanh", "elu"), "#f3f3f3"),
)
DEFAULT_FILL = "#ffffff"


@dataclasses.dataclass
class Box:
    """One layer of the diagram."""

    name: str
    kind: str
    shape: str
    params: int
    parents: list
    row: int = 0
    column: int = 0


def _shape_text(shape):
    return "×".join("?" if d is None else str(d) for d in tuple(shape)[1:])


def layer_boxes(model):
    """The model's layers as :class:`Box` es in topological order, with their parents' names, rows and columns."""
    boxes = {}
    for depth in sorted(model._nodes_by_depth, reverse=True):  # Keras counts depth from the outputs
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            parents = list(dict.fromkeys(t._keras_history.operation.name for t in node.input_tensors))
            shapes = ", ".join(_shape_text(t.shape) for t in node.output_tensors)
            box = boxes.setdefault(layer.name, Box(layer.name, type(layer).__name__, shapes,
                                                   layer.count_params(), []))
            box.parents += [p for p in parents if p not in box.parents]
    ordered = list(boxes.values())
    for box in ordered:
        box.row = 1 + max((boxes[p].row for p in box.parents if p in boxes), default=-1)
    columns = {}
    for layer in model.layers:  # within a row, the order in which the model lists its layers
        box = boxes.get(layer.name)
        if box is not None:
            box.column = columns.get(box.row, 0)
            columns[box.row] = box.column + 1
    return ordered


def _fill(kind):
    lowered = kind.lower()
    return next((colour for words, colour in PALETTE if any(w in lowered for w in words)), DEFAULT_FILL)


def _format_params(count):
    if count >= 1e6:
        return f"{count / 1e6:.1f}M params"
    if count >= 1e3:
        return f"{count / 1e3:.1f}k params"
    return f"{count} params" if count else ""


def _detail(box):
    return " · ".join(filter(None, [box.kind, box.shape, _format_params(box.params)]))


def _row_top(top, row):
    return top + row * (BOX_H + GAP_Y)


def _free_x(blocked, wanted, used, toward):
    """The x nearest ``wanted`` (of two as near, the one nearer ``toward``) outside every ``blocked`` (lo, hi)
    interval, LANE_GAP from the lanes ``used`` in the same row where the free interval leaves room."""
    bounds = [-float("inf")] + [v for interval in sorted(blocked) for v in interval] + [float("inf")]
    best = None
    for lo, hi in zip(bounds[0::2], bounds[1::2]):
        if hi <= lo:
            continue
        x = min(max(wanted, lo), hi)
        for step in range(1, 16):  # x, then alternately right and left of it
            offset = LANE_GAP * (step // 2) * (1 if step % 2 else -1)
            shifted = min(max(x + offset, lo), hi)
            if all(abs(shifted - other) >= LANE_GAP for other in used):
                x = shifted
                break
        if best is None or (abs(x - wanted), abs(x - toward)) < (abs(best - wanted), abs(best - toward)):
            best = x
    return best


def route_edges(boxes, where, box_w, top):
    """``[(parent, child, command, points)]``: an arrow per connection, ``command`` 'C' (a curve through the
    ``points``: start, two control points, end) or 'L' (a polyline). Between neighbouring rows a curve within
    the gap between them; an edge that skips rows runs down free lanes beside the boxes of each row it passes
    and turns only in the gaps between rows, so it never crosses a box it does not connect."""
    row_of = {box.name: box.row for box in boxes}
    blocked, lanes = {}, {}  # per row: the boxes' spans (padded); x of the lanes already running through it
    for box in boxes:
        x = where[box.name][0]
        blocked.setdefault(box.row, []).append((x - LANE_PAD, x + box_w + LANE_PAD))
        lanes.setdefault(box.row, [])
    turns = {}  # how many edges turn in the gap above each row: each turns at a height of its own
    edges = []
    for box in boxes:
        x1, y1 = where[box.name]
        for parent in box.parents:
            if parent not in where:
                continue
            x0, y0 = where[parent]
            sx, sy, ex, ey = x0 + box_w / 2, y0 + BOX_H, x1 + box_w / 2, y1
            if box.row - row_of[parent] <= 1:
                bend = (ey - sy) / 2
                edges.append((parent, box.name, "C", [(sx, sy), (sx, sy + bend), (ex, ey - bend), (ex, ey)]))
                continue
            points, x = [(sx, sy)], sx
            for row in range(row_of[parent] + 1, box.row + 1):
                lane = ex if row == box.row else _free_x(blocked[row], x, lanes[row], ex)
                if abs(lane - x) > 0.05:
                    count = turns.get(row, 0)
                    turns[row] = count + 1
                    y = _row_top(top, row) - GAP_Y / 2 + (count % 3 - 1) * (GAP_Y / 5)
                    points += [(x, y), (lane, y)]
                    x = lane
                if row != box.row:
                    lanes[row].append(x)
            points.append((ex, ey))
            edges.append((parent, box.name, "L", points))
    return edges


def _path_data(command, points, shift):
    text = [f"{x + shift:.1f} {y:.1f}" for x, y in points]
    if command == "C":
        return f"M {text[0]} C {' '.join(text[1:])}"
    return "M " + " L ".join(text)


def model_svg(model, title=None):
    """The SVG text of a diagram of ``model`` (a functional Keras model)."""
    boxes = layer_boxes(model)
    box_w = max([BOX_W] + [round(max(NAME_CHAR_W * len(b.name), DETAIL_CHAR_W * len(_detail(b)))) + 20
                           for b in boxes])
    per_row = {}
    for box in boxes:
        per_row[box.row] = max(per_row.get(box.row, 0), box.column + 1)
    widest = max(per_row.values())
    total = sum(box.params for box in boxes)
    heading = f"{title or model.name} — {len(boxes)} layers, {_format_params(total) or '0 params'}"
    inner = widest * box_w + (widest - 1) * GAP_X
    top = MARGIN + 30
    height = top + len(per_row) * (BOX_H + GAP_Y) + MARGIN
    where = {}
    for box in boxes:
        row_width = per_row[box.row] * box_w + (per_row[box.row] - 1) * GAP_X
        where[box.name] = ((inner - row_width) / 2 + box.column * (box_w + GAP_X), _row_top(top, box.row))
    edges = route_edges(boxes, where, box_w, top)
    # lanes may run beside the widest row: the drawing spans the boxes and every lane
    xs = [x for *_, points in edges for x, _ in points]
    left = min([0.0] + xs) - MARGIN
    right = max([inner] + xs) + MARGIN
    width = max(right - left, HEADING_CHAR_W * len(heading) + 2 * MARGIN)
    shift = -left + (width - (right - left)) / 2

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 12}" font-size="15" font-weight="bold">{escape(heading)}</text>',
        '<g class="edges" fill="none" stroke="#555" stroke-width="1.2">',
    ]
    for parent, child, command, points in edges:
        parts.append(f'<path class="edge" data-from="{escape(parent)}" data-to="{escape(child)}" '
                     f'd="{_path_data(command, points, shift)}" marker-end="url(#arrow)"/>')
    parts.append("</g>")
    for box in boxes:
        x, y = where[box.name]
        x += shift
        parts.append(
            f'<g class="layer" id="{escape(box.name)}"><title>{escape(box.name)} ({escape(box.kind)}): '
            f'{escape(box.shape)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{BOX_H}" rx="6" fill="{_fill(box.kind)}" '
            f'stroke="#333"/>'
            f'<text x="{x + box_w / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" font-size="13" '
            f'font-weight="bold">{escape(box.name)}</text>'
            f'<text x="{x + box_w / 2:.1f}" y="{y + 35:.1f}" text-anchor="middle" font-size="10">'
            f'{escape(_detail(box))}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_svg(model, path, title=None):
    """Write :func:`model_svg` to ``path`` atomically; returns the path."""
    path = pathlib.Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(model_svg(model, title), encoding="utf-8")
    return path


def main(argv=None):
    parser = ArgumentParser(prog="python -m keras_zoo diagram", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a registry name (vgg16, googlenet...; drawn without weights) or a model file "
                                      "(.keras, .prototxt, .caffemodel, .mat)")
    parser.add_argument("-o", "--output", help="the SVG file (default: <model name>.svg)")
    options = parser.parse_args(argv)
    try:
        model = resolve(options.model, weights=None).model
        output = write_svg(model, options.output or f"{model.name}.svg")
    except (ConversionError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
