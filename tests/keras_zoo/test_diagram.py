"""keras_zoo.diagram: edges are routed around the boxes they do not connect (python -m keras_zoo diagram)."""

import re
import xml.etree.ElementTree as ElementTree

import keras
import pytest

import keras_zoo
from keras_zoo import diagram

SVG = "{http://www.w3.org/2000/svg}"
INSIDE = 0.5  # a segment may touch a box's outline (its own arrow ends there); it may not enter another box


def parse(svg_text):
    """``(boxes, edges)`` of a diagram: ``{name: (x0, y0, x1, y1)}`` and ``[(from, to, [(x, y) ...])]``,
    each edge's path flattened to a polyline (its curves sampled)."""
    root = ElementTree.fromstring(svg_text)
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "layer":
            rect = group.find(f"{SVG}rect")
            x, y, w, h = (float(rect.get(key)) for key in ("x", "y", "width", "height"))
            boxes[group.get("id")] = (x, y, x + w, y + h)
    edges = []
    for path in root.iter(f"{SVG}path"):
        if path.get("class") == "edge":
            edges.append((path.get("data-from"), path.get("data-to"), flatten(path.get("d"))))
    return boxes, edges


def flatten(data):
    """The points of an SVG path of absolute M, L and C commands (C sampled at 32 steps)."""
    tokens = re.findall(r"[MLC]|-?\d+(?:\.\d+)?", data)
    points, command, numbers = [], None, []

    def flush():
        if command in ("M", "L"):
            points.extend(zip(numbers[0::2], numbers[1::2]))
        elif command == "C":
            for start in range(0, len(numbers), 6):
                (x1, y1, x2, y2, x3, y3), (x0, y0) = numbers[start:start + 6], points[-1]
                for step in range(1, 33):
                    t = step / 32
                    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
                    points.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
        elif command is not None:
            raise AssertionError(f"unexpected path command {command!r} in {data!r}")

    for token in tokens:
        if token.isalpha():
            flush()
            command, numbers = token, []
        else:
            numbers.append(float(token))
    flush()
    return points


def crosses(segment, box):
    """True when the segment enters the interior of the box (shrunk by INSIDE): Liang-Barsky clipping."""
    (x0, y0), (x1, y1) = segment
    left, top, right, bottom = box[0] + INSIDE, box[1] + INSIDE, box[2] - INSIDE, box[3] - INSIDE
    low, high = 0.0, 1.0
    for p, q in ((x0 - x1, x0 - left), (x1 - x0, right - x0), (y0 - y1, y0 - top), (y1 - y0, bottom - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def crossings(svg_text):
    """``[(from, to, box)]``: every box an edge runs through that is neither of its two ends."""
    boxes, edges = parse(svg_text)
    found = []
    for parent, child, points in edges:
        for name, box in boxes.items():
            if name in (parent, child):
                continue
            if any(crosses(segment, box) for segment in zip(points, points[1:])):
                found.append((parent, child, name))
    return found


def test_the_crossing_check_sees_an_edge_through_a_box():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg"><g class="layer" id="a"><rect x="0" y="0" width="10" '
           'height="10"/></g><g class="layer" id="b"><rect x="0" y="20" width="10" height="10"/></g>'
           '<g class="layer" id="c"><rect x="0" y="40" width="10" height="10"/></g>'
           '<path class="edge" data-from="a" data-to="c" d="M 5 10 C 5 20 5 30 5 40"/>'
           '<path class="edge" data-from="a" data-to="b" d="M 5 10 L 5 20"/></svg>')
    assert crossings(svg) == [("a", "c", "b")]


def _skipping_model():
    """Two branches of different depths joined, and an edge skipping three rows past a wide row."""
    inputs = keras.Input((8, 8, 3), name="data")
    stem = keras.layers.Conv2D(4, 1, name="stem")(inputs)
    deep = stem
    for index in range(3):
        deep = keras.layers.Conv2D(4, 1, name=f"deep_{index}")(deep)
    wide = [keras.layers.Conv2D(4, 1, name=f"wide_{index}")(stem) for index in range(3)]
    joined = keras.layers.Concatenate(name="join")([deep, stem, *wide])
    return keras.Model(inputs, joined, name="skipping")


@pytest.mark.parametrize("build", [_skipping_model, lambda: keras_zoo.GoogLeNet(weights=None),
                                   lambda: keras_zoo.ResNet50(weights=None)], ids=["small", "googlenet", "resnet50"])
def test_no_edge_crosses_a_box_it_does_not_connect(build):
    model = build()
    svg = diagram.model_svg(model)
    boxes, edges = parse(svg)
    assert {(parent, child) for parent, child, _ in edges} == {
        (parent, box.name) for box in diagram.layer_boxes(model) for parent in box.parents}
    assert crossings(svg) == []
    width = float(ElementTree.fromstring(svg).get("width"))
    for _, _, points in edges:  # every lane is drawn inside the picture
        assert all(0 <= x <= width for x, _ in points)
    for _, child, points in edges:  # each arrow ends on the top of its box, coming down
        x0, y0, x1, _ = boxes[child]
        (_, before), (x, y) = points[-2], points[-1]
        assert y == pytest.approx(y0, abs=0.1) and x0 < x < x1 and before < y


def test_googlenet_pool_projection_passes_beside_the_5x5_branch():
    """The case seen: inception_3a_relu_pool_proj -> inception_3a_output ran under inception_3a_relu_5x5."""
    boxes, edges = parse(diagram.model_svg(keras_zoo.GoogLeNet(weights=None)))
    points = next(points for parent, child, points in edges
                  if (parent, child) == ("inception_3a_relu_pool_proj", "inception_3a_output"))
    assert not any(crosses(segment, boxes["inception_3a_relu_5x5"]) for segment in zip(points, points[1:]))
