"""MatConvNet networks (.mat, SimpleNN and DagNN, MAT v5 or v7.3) as a neutral :class:`~converters.graph.Graph`.

Semantics follow MatConvNet's own functions: vl_nnconv / vl_nnconvt (pads and crops [top bottom left right],
strides [y x], groups from the filter depth), vl_nnpool (floor rounding; average pooling divides by the number
of in-image cells, max ignores padding), vl_nnnormalize (``[N kappa alpha beta]``, alpha per element),
vl_nnbnorm (moments hold mean and standard deviation), and the dagnn.* blocks (Crop's adaptive offsets,
Concat's MATLAB dimension). Loss and metric layers are training-only and are dropped.

Orientation: MatConvNet arrays are H x W x C x N (MATLAB dimension 1 runs down the image rows), and filters
are H x W x Cin x Cout, which is already the neutral layout; the image is NOT transposed. The channel order is
the file's own: nothing in a .mat records whether its first convolution expects RGB or BGR.

Variable names: DagNN nets keep theirs; a SimpleNN net reads ``input``, layer i writes ``x<i>`` and the last
kept layer writes ``prediction`` (as MatConvNet's ``dagnn.DagNN.fromSimpleNN`` names a net ending in a loss).

A convolution whose kernel covers its whole (known, unpadded) input, and 1x1 convolutions after it, become
``dense`` nodes (fixed-size classifiers); with a larger or unknown input size they stay convolutions, so the
same file also converts fully convolutionally (``input_shape``).

SimpleNN types and DagNN block classes map to one layer kind each (SIMPLENN_KINDS, DAGNN_KINDS); each kind is
converted by one function in :data:`LAYERS` (the signature of :mod:`converters.layer_table`).
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import numpy as np

from converters.errors import ConversionError
from converters.graph import Graph, Node, conv_output_size, pair
from converters.layer_table import LayerTable
from converters.matfile import MatOpaque, load_mat

log = logging.getLogger(__name__)

SIMPLENN_KINDS = {
    "conv": "conv", "convt": "convt", "pool": "pool", "normalize": "lrn", "lrn": "lrn", "relu": "relu",
    "bnorm": "bnorm", "softmax": "softmax", "dropout": "dropout", "sigmoid": "sigmoid",
    "softmaxloss": "loss", "loss": "loss",
}
DAGNN_KINDS = {
    "dagnn.Conv": "conv", "dagnn.ConvTranspose": "convt", "dagnn.Pooling": "pool", "dagnn.LRN": "lrn",
    "dagnn.ReLU": "relu", "dagnn.BatchNorm": "bnorm", "dagnn.SoftMax": "softmax", "dagnn.DropOut": "dropout",
    "dagnn.Sigmoid": "sigmoid", "dagnn.Sum": "sum", "dagnn.Concat": "concat", "dagnn.Crop": "crop",
    "dagnn.Loss": "loss", "dagnn.EuclideanLoss": "loss", "dagnn.SegmentationLoss": "loss",
    "dagnn.LossSmoothL1": "loss", "dagnn.SegmentationAccuracy": "loss",
}
# DagNN block property -> the SimpleNN field of the same meaning.
DAGNN_OPTION_NAMES = {"poolSize": "pool"}
# MATLAB dimension of H x W x C x N arrays (1-based) -> the neutral N, C, H, W axis.
MATLAB_DIM_TO_AXIS = {1: 2, 2: 3, 3: 1, 4: 0}
# Kinds that work unchanged on flattened (N, C) values, after a fully connected layer.
FLAT_KINDS = frozenset({"relu", "dropout", "sigmoid", "softmax", "bnorm", "sum", "concat", "conv"})
LRN_DEFAULT = (5.0, 1.0, 0.0001 / 5, 0.75)
#: Layer kind (the values of SIMPLENN_KINDS and DAGNN_KINDS, losses aside) -> its converter.
LAYERS = LayerTable("unknown MatConvNet layer kind '{type}'")


@dataclasses.dataclass
class MatLayer:
    """One MatConvNet layer, SimpleNN or DagNN, in a common form before conversion."""

    name: str
    kind: str
    source_type: str
    inputs: list
    outputs: list
    options: dict
    weights: list


class _NeedsSpatial(Exception):
    """A flattened (dense) value reached a layer that needs H and W: convert its producer as a convolution."""

    def __init__(self, producer):
        super().__init__(producer)
        self.producer = producer


def read_matconvnet(path, *, input_shape=None):
    """The network in a MatConvNet ``.mat`` file as a :class:`Graph`.

    ``input_shape``: (H, W) or (C, H, W) of the input; by default the file's ``meta`` decides
    (``inputs``, ``normalization.imageSize``, ``inputSize``), else H and W stay unknown.
    """
    path = pathlib.Path(path)
    data = load_mat(path)
    net = _find_net(data, path)
    layers_value = net.get("layers")
    if _is_dagnn(layers_value):
        layers, meta_raw = _dagnn_layers(net, path), net.get("meta")
        kind = "dagnn"
    else:
        layers, meta_raw = _simplenn_layers(net, path), _simplenn_meta(net)
        kind = "simplenn"
    meta_raw = meta_raw if isinstance(meta_raw, dict) else {}
    layers = [layer for layer in layers if layer.kind != "loss"]
    if not layers:
        raise ConversionError("the network has no layers besides losses", path=path)
    _unique_names(layers)
    inputs, outputs = _graph_ends(layers)
    shapes = _input_shapes(inputs, layers, meta_raw, input_shape, path)
    nodes = _convert_all(layers, shapes, path)
    for name in inputs:
        if shapes[name][0] is None:
            raise ConversionError(f"cannot tell the number of channels of input '{name}'; give input_shape "
                                  f"as (C, H, W)", path=path)
    meta = {"framework": "matconvnet", "format": kind}
    normalization = _normalization(meta_raw.get("normalization"), shapes[inputs[0]][0], path)
    if normalization is not None:
        meta["normalization"] = normalization
    classes = _classes(meta_raw.get("classes"))
    if classes is not None:
        meta["classes"] = classes
    graph = Graph(name=path.stem, inputs={name: shapes[name] for name in inputs}, nodes=nodes,
                  outputs=outputs, source=str(path), meta=meta)
    log.info("%s: %s net, %d nodes, inputs %s, outputs %s", path, kind, len(nodes), graph.inputs, outputs)
    return graph


# ------------------------------------------------------------------------------------------ file structure
def _find_net(data, path):
    """The struct holding ``layers``: the file's top level, or ``net`` of a training checkpoint."""
    if "layers" in data:
        return data
    net = data.get("net")
    if isinstance(net, dict) and "layers" in net:
        return net
    raise ConversionError(
        f"not a MatConvNet network: no 'layers' variable (nor 'net.layers'); variables: {sorted(data)}",
        path=path)


def _is_dagnn(layers):
    """DagNN.saveobj writes a struct array of layers with 'block'; SimpleNN a cell array of structs."""
    records = [layers] if isinstance(layers, dict) else layers
    return isinstance(records, list) and bool(records) and isinstance(records[0], dict) and "block" in records[0]


def _simplenn_meta(net):
    meta = dict(net["meta"]) if isinstance(net.get("meta"), dict) else {}
    for key in ("normalization", "classes"):  # very old files keep them at the top level
        if key in net and key not in meta:
            meta[key] = net[key]
    return meta


def _simplenn_layers(net, path):
    records = net.get("layers")
    if not isinstance(records, list) or not records:
        raise ConversionError("'layers' is not a non-empty cell array of layer structs", path=path)
    layers = []
    previous = "input"
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ConversionError(f"layer {index} is not a struct ({type(record).__name__})", path=path)
        name = _text(record.get("name")) or f"layer{index}"
        layer_type = _text(record.get("type"))
        if not layer_type:
            raise ConversionError("missing field 'type'", path=path, layer=name)
        kind = SIMPLENN_KINDS.get(layer_type)
        if kind is None:
            raise ConversionError(f"unknown SimpleNN layer type '{layer_type}'", path=path, layer=name,
                                  layer_type=layer_type)
        if "weights" in record:
            weights = record["weights"]
        else:
            weights = [record[key] for key in ("filters", "biases") if key in record]
        if isinstance(weights, np.ndarray):  # a single array instead of a cell
            weights = [weights] if weights.size else []
        output = f"x{index}"
        layers.append(MatLayer(name, kind, layer_type, [previous], [output], record, list(weights)))
        previous = output
    kept = [layer for layer in layers if layer.kind != "loss"]
    if kept:
        last = kept[-1].outputs[0]
        for layer in layers:
            layer.inputs = ["prediction" if item == last else item for item in layer.inputs]
            layer.outputs = ["prediction" if item == last else item for item in layer.outputs]
    return layers


def _dagnn_layers(net, path):
    records = net["layers"]
    records = [records] if isinstance(records, dict) else records
    params = net.get("params", [])
    params = [params] if isinstance(params, dict) else params
    values = {}
    for param in params if isinstance(params, list) else []:
        if isinstance(param, dict) and "name" in param:
            values[_text(param["name"])] = param.get("value")
    layers = []
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ConversionError(f"layer {index} is not a struct ({type(record).__name__})", path=path)
        name = _text(record.get("name")) or f"layer{index}"
        layer_type = _text(record.get("type"))
        for field in ("type", "inputs", "outputs"):
            if field not in record:
                raise ConversionError(f"missing field '{field}'", path=path, layer=name, layer_type=layer_type)
        kind = DAGNN_KINDS.get(layer_type)
        if kind is None:
            raise ConversionError(f"unknown DagNN layer type '{layer_type}'", path=path, layer=name,
                                  layer_type=layer_type)
        block = record.get("block")
        options = {DAGNN_OPTION_NAMES.get(key, key): value
                   for key, value in (block.items() if isinstance(block, dict) else ())}
        weights = []
        for param_name in _names(record.get("params")):
            if param_name not in values:
                raise ConversionError(f"parameter '{param_name}' is not in the file's params", path=path,
                                      layer=name, layer_type=layer_type)
            weights.append(values[param_name])
        if kind in ("conv", "convt") and not _flag(options.get("hasBias"), True):
            weights = weights[:1]
        layers.append(MatLayer(name, kind, layer_type, _names(record["inputs"]), _names(record["outputs"]),
                               options, weights))
    return layers


def _unique_names(layers):
    seen = {}
    for layer in layers:
        count = seen.get(layer.name, 0)
        seen[layer.name] = count + 1
        if count:
            new_name = f"{layer.name}_{count + 1}"
            log.warning("duplicate layer name '%s' renamed '%s'", layer.name, new_name)
            layer.name = new_name


def _graph_ends(layers):
    """Inputs: variables read before any layer writes them; outputs: variables written and never read."""
    produced, consumed, inputs = set(), set(), []
    for layer in layers:
        for name in layer.inputs:
            consumed.add(name)
            if name not in produced and name not in inputs:
                inputs.append(name)
        produced.update(layer.outputs)
    outputs = [name for layer in layers for name in layer.outputs if name not in consumed]
    return inputs, list(dict.fromkeys(outputs))


def _input_shapes(inputs, layers, meta, input_shape, path):
    """(C, H, W) of every input variable."""
    declared = {}
    for record in _records(meta.get("inputs")):
        size = _ints(record.get("size"))
        if "name" in record and len(size) >= 2:
            declared[_text(record["name"])] = size
    image_size = _ints(_field(meta.get("normalization"), "imageSize")) or _ints(meta.get("inputSize"))
    shapes = {}
    for name in inputs:
        size = declared.get(name) or image_size
        channels = size[2] if len(size) >= 3 else _first_filter_depth(name, layers)
        height, width = (size[0], size[1]) if len(size) >= 2 else (None, None)
        if input_shape is not None:
            given = tuple(int(v) if v is not None else None for v in input_shape)
            if len(given) == 3:
                channels, height, width = given
            elif len(given) == 2:
                height, width = given
            else:
                raise ConversionError(f"input_shape must be (H, W) or (C, H, W), got {input_shape}", path=path)
        shapes[name] = (None if channels is None else int(channels), height, width)
    return shapes


def _first_filter_depth(variable, layers):
    for layer in layers:
        if variable in layer.inputs and layer.kind == "conv" and layer.weights:
            filters = _array(layer.weights[0])
            if filters.size:
                return filters.shape[2] if filters.ndim > 2 else 1
    return None


# ----------------------------------------------------------------------------------------------- conversion
class ConversionContext:
    """What the layer functions share while one net is converted: the file and the convolutions to keep."""

    def __init__(self, path, keep_conv):
        self.path = path
        self.keep_conv = keep_conv  # names of whole-input convolutions that must stay convolutions

    def error(self, layer, reason):
        """The ConversionError naming the file, ``layer`` (a MatLayer) and ``reason`` (to raise)."""
        return ConversionError(reason, path=self.path, layer=layer.name, layer_type=layer.source_type)


def _convert_all(layers, input_shapes, path):
    """Convert every layer; retry with convolutions kept where a flattened value would need H and W."""
    keep_conv = set()
    while True:
        try:
            return _convert(layers, input_shapes, ConversionContext(path, keep_conv))
        except _NeedsSpatial as need:
            if need.producer in keep_conv:  # pragma: no cover - would loop forever
                raise ConversionError(f"cannot place the fully connected layer '{need.producer}'", path=path)
            keep_conv.add(need.producer)


def _convert(layers, input_shapes, ctx):
    shapes = dict(input_shapes)
    flat_origin = {}  # flattened variable -> the dense layer that began the flattened chain
    nodes = []
    for layer in layers:
        missing = [name for name in layer.inputs if name not in shapes]
        if missing:
            raise ctx.error(layer, f"input variable '{missing[0]}' is never computed")
        origins = [flat_origin[name] for name in layer.inputs if name in flat_origin]
        if origins and (len(origins) != len(layer.inputs) or not _works_flat(layer)):
            raise _NeedsSpatial(origins[0])
        function = LAYERS.lookup(layer.kind, path=ctx.path, layer=layer.name, layer_type=layer.source_type)
        try:
            node, out_shapes = function(layer, [shapes[name] for name in layer.inputs], ctx)
        except _NeedsSpatial:
            raise _NeedsSpatial(origins[0]) from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:  # malformed fields numpy could not take
            raise ctx.error(layer, f"malformed layer ({type(exc).__name__}: {exc})") from None
        for name, shape in zip(node.outputs, out_shapes):
            shapes[name] = shape
            if node.op == "dense" or origins:
                flat_origin[name] = origins[0] if origins else layer.name
            else:
                flat_origin.pop(name, None)
        nodes.append(node)
    return nodes


def _works_flat(layer):
    """Whether the layer computes the same on a flattened (N, C) value as on an N x 1 x 1 x C one."""
    if layer.kind == "concat":
        return _floats(layer.options.get("dim", 3)) == (3.0,)
    return layer.kind in FLAT_KINDS


def _node(layer, op, attrs=None, weights=None, inputs=None):
    return Node(name=layer.name, op=op, inputs=list(inputs or layer.inputs[:1]), outputs=list(layer.outputs[:1]),
                attrs=attrs or {}, weights=weights or {}, source_type=layer.source_type)


@LAYERS.register("conv")
def conv(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    kernel = _filter_array(_weight(layer, ctx, 0))
    kh, kw, depth, filters = kernel.shape
    bias = _bias(layer, ctx, filters)
    channels = depth if in_shape[0] is None else in_shape[0]
    if channels % depth:
        raise ctx.error(layer, f"filter depth {depth} does not divide the {channels} input channels")
    groups = channels // depth
    pads = _pad4(layer, ctx, layer.options.get("pad", 0))
    strides = _positive_pair(layer, ctx, layer.options.get("stride", 1), "stride")
    dilation = _positive_pair(layer, ctx, layer.options.get("dilate", 1), "dilate")
    covers_input = (len(in_shape) == 3 and (kh, kw) == tuple(in_shape[1:]))
    flat_input = len(in_shape) == 1 and (kh, kw) == (1, 1)
    weights = {"kernel": kernel}  # as it lies in the file (no copy); for a dense node a whole-input filter bank
    if bias is not None:
        weights["bias"] = bias
    if (covers_input or flat_input) and groups == 1 and not any(pads) and dilation == (1, 1) \
            and layer.name not in ctx.keep_conv:
        attrs = {"units": int(filters), "use_bias": bias is not None, "axis": 1}
        return _node(layer, "dense", attrs, weights), [(int(filters),)]
    if len(in_shape) == 1:
        raise _NeedsSpatial(None)
    out_hw = [_window_count(layer, ctx, size, k, s, d, before, after)
              for size, k, s, d, before, after in zip(in_shape[1:], (kh, kw), strides, dilation,
                                                      pads[0::2], pads[1::2])]
    attrs = {"filters": int(filters), "kernel": (kh, kw), "strides": strides, "pads": pads,
             "dilation": dilation, "groups": int(groups), "use_bias": bias is not None}
    return _node(layer, "conv", attrs, weights), [(int(filters), *out_hw)]


@LAYERS.register("convt")
def convt(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    _spatial(layer, ctx, in_shape)
    kernel = _filter_array(_weight(layer, ctx, 0))
    kh, kw, per_group, depth = kernel.shape
    groups = _int(layer, ctx, layer.options.get("numGroups", 1), "numGroups")
    if in_shape[0] is not None and depth != in_shape[0]:
        raise ctx.error(layer, f"filter depth {depth} != {in_shape[0]} input channels")
    if groups < 1 or depth % groups:
        raise ctx.error(layer, f"numGroups {groups} does not divide the filter depth {depth}")
    filters = per_group * groups
    bias = _bias(layer, ctx, filters)
    crops = _pad4(layer, ctx, layer.options.get("crop", 0), "crop")
    upsample = _positive_pair(layer, ctx, layer.options.get("upsample", 1), "upsample")
    out_hw = []
    for size, k, u, before, after in zip(in_shape[1:], (kh, kw), upsample, crops[0::2], crops[1::2]):
        out = None if size is None else u * (size - 1) + k - before - after
        if out is not None and out < 1:
            raise ctx.error(layer, f"output size {out} < 1 (input {size}, crop {before}+{after})")
        out_hw.append(out)
    weights = {"kernel": kernel}
    if bias is not None:
        weights["bias"] = bias
    attrs = {"filters": int(filters), "kernel": (kh, kw), "strides": upsample, "pads": crops,
             "dilation": (1, 1), "groups": int(groups), "use_bias": bias is not None}
    return _node(layer, "deconv", attrs, weights), [(int(filters), *out_hw)]


@LAYERS.register("pool")
def pool(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    _spatial(layer, ctx, in_shape)
    method = _text(layer.options.get("method", "max")) or "max"
    if method not in ("max", "avg"):
        raise ctx.error(layer, f"unknown pooling method '{method}'")
    if "pool" not in layer.options:
        raise ctx.error(layer, "missing the pooling window size ('pool' / 'poolSize')")
    kernel = _positive_pair(layer, ctx, layer.options["pool"], "pool size")
    strides = _positive_pair(layer, ctx, layer.options.get("stride", 1), "stride")
    pads = _pad4(layer, ctx, layer.options.get("pad", 0))
    out_hw = [_window_count(layer, ctx, size, k, s, 1, before, after)
              for size, k, s, before, after in zip(in_shape[1:], kernel, strides, pads[0::2], pads[1::2])]
    attrs = {"method": method, "kernel": kernel, "strides": strides, "pads": pads, "global": False,
             "rounding": "floor", "avg_divisor": "valid"}
    return _node(layer, "pool", attrs), [(in_shape[0], *out_hw)]


@LAYERS.register("lrn")
def lrn(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    param = _floats(layer.options.get("param", LRN_DEFAULT))
    if len(param) != 4 or param[0] < 1:
        raise ctx.error(layer, f"param must be [N kappa alpha beta], got {list(param)}")
    size, kappa, alpha, beta = param
    if size != int(size):
        raise ctx.error(layer, f"the LRN window N must be an integer, got {size}")
    attrs = {"region": "across", "size": int(size), "alpha": alpha, "beta": beta, "k": kappa}
    return _node(layer, "lrn", attrs), [in_shape]


@LAYERS.register("relu")
def relu(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    leak = _floats(layer.options.get("leak", 0.0))
    return _node(layer, "relu", {"negative_slope": leak[0] if leak else 0.0}), [in_shape]


@LAYERS.register("bnorm")
def bnorm(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    channels = in_shape[0] if in_shape[0] is not None else _array(layer.weights[0] if layer.weights else None).size
    if len(layer.weights) < 3 or _array(layer.weights[2]).size == 0:
        raise ctx.error(layer, "no moments (mean and sigma): the layer cannot run in test mode")
    gamma = _vector(layer, ctx, layer.weights[0], channels, "multipliers")
    beta = _vector(layer, ctx, layer.weights[1], channels, "biases")
    moments = _array(layer.weights[2]).astype(np.float32)
    if moments.size != 2 * channels:
        raise ctx.error(layer, f"moments have shape {moments.shape}, expected ({channels}, 2)")
    moments = moments.reshape(channels, 2, order="F")
    epsilon = _floats(layer.options.get("epsilon", 1e-5))
    weights = {"mean": np.ascontiguousarray(moments[:, 0]), "std": np.ascontiguousarray(moments[:, 1]),
               "gamma": gamma, "beta": beta}
    attrs = {"stat": "std", "epsilon": epsilon[0] if epsilon else 1e-5, "use_global_stats": True}
    return _node(layer, "batchnorm", attrs, weights), [in_shape]


@LAYERS.register("softmax")
def softmax(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    return _node(layer, "softmax", {"axis": 1}), [in_shape]


@LAYERS.register("dropout")
def dropout(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    rate = _floats(layer.options.get("rate", 0.5))
    return _node(layer, "dropout", {"rate": rate[0] if rate else 0.5}), [in_shape]


@LAYERS.register("sigmoid")
def sigmoid(layer, inputs, ctx):
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    return _node(layer, "sigmoid"), [in_shape]


@LAYERS.register("sum")
def sum_(layer, inputs, ctx):
    if len(inputs) < 2:
        raise ctx.error(layer, f"needs at least 2 inputs, got {len(inputs)}")
    shape = _merge_shapes(layer, ctx, inputs, range(len(inputs[0])))
    attrs = {"operation": "sum", "coeffs": []}
    return _node(layer, "eltwise", attrs, inputs=layer.inputs), [shape]


@LAYERS.register("concat")
def concat(layer, inputs, ctx):
    dim = _int(layer, ctx, layer.options.get("dim", 3), "dim")
    if dim not in MATLAB_DIM_TO_AXIS or dim == 4:
        raise ctx.error(layer, f"cannot concatenate along MATLAB dimension {dim}")
    axis = MATLAB_DIM_TO_AXIS[dim]
    rank = len(inputs[0])
    position = axis - 1  # position in the (C, H, W) shape
    others = [index for index in range(rank) if index != position]
    shape = list(_merge_shapes(layer, ctx, inputs, others))
    sizes = [s[position] for s in inputs]
    shape[position] = None if None in sizes else int(sum(sizes))
    return _node(layer, "concat", {"axis": axis}, inputs=layer.inputs), [tuple(shape)]


@LAYERS.register("crop")
def crop(layer, inputs, ctx):
    big, small = _arity(layer, ctx, inputs, 2)
    _spatial(layer, ctx, big)
    _spatial(layer, ctx, small)
    offsets = list(_ints(layer.options.get("crop", (0, 0))) or (0, 0))
    if len(offsets) == 1:
        offsets = offsets * 2
    if len(offsets) != 2 or min(offsets) < 0:
        raise ctx.error(layer, f"crop must be [rows cols] >= 0, got {offsets}")
    for index in (0, 1):  # dagnn.Crop clips its offsets to what the size difference allows
        available = None if None in (big[index + 1], small[index + 1]) else big[index + 1] - small[index + 1]
        if available is not None:
            if available < 0:
                raise ctx.error(layer, f"input 1 ({big}) is smaller than input 2 ({small})")
            offsets[index] = min(offsets[index], available)
    attrs = {"axis": 2, "offsets": offsets}
    return _node(layer, "crop", attrs, inputs=layer.inputs[:2]), [(big[0], small[1], small[2])]


# ------------------------------------------------------------------------------------------------- helpers
def _arity(layer, ctx, inputs, count):
    if len(inputs) != count:
        raise ctx.error(layer, f"expects {count} input(s), got {len(inputs)}")
    return inputs


def _spatial(layer, ctx, shape):
    if len(shape) != 3:
        raise ctx.error(layer, f"needs an H x W x C input, got a flattened one of shape {shape}")


def _merge_shapes(layer, ctx, shapes, positions):
    if any(len(shape) != len(shapes[0]) for shape in shapes):
        raise ctx.error(layer, f"inputs have different ranks: {shapes}")
    merged = list(shapes[0])
    for position in positions:
        known = {shape[position] for shape in shapes if shape[position] is not None}
        if len(known) > 1:
            raise ctx.error(layer, f"input shapes disagree: {[tuple(s) for s in shapes]} (C, H, W)")
        merged[position] = known.pop() if known else None
    return tuple(merged)


def _window_count(layer, ctx, size, kernel, stride, dilation, before, after):
    """Output size of a convolution or (floor) pooling along one axis; an error where it would be empty."""
    out = conv_output_size(size, kernel, stride, (before, after), dilation)
    if out is not None and out < 1:
        extent = dilation * (kernel - 1) + 1
        raise ctx.error(layer, f"the input ({size}) is smaller than the window ({extent}) plus padding")
    return None if out is None else int(out)


def _weight(layer, ctx, index):
    if index < len(layer.weights) and isinstance(layer.weights[index], MatOpaque):
        class_name = layer.weights[index].class_name
        hint = " (a GPU net saved without moving it to the CPU)" if class_name == "gpuArray" else ""
        raise ctx.error(layer, f"weight {index + 1} is a MATLAB {class_name} value, not a dense array{hint}")
    if index >= len(layer.weights) or _array(layer.weights[index]).size == 0:
        raise ctx.error(layer, f"missing weight {index + 1} (has {len(layer.weights)})")
    return layer.weights[index]


def _array(value):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, str, dict, MatOpaque)) or value is None:
        return np.zeros((0,), np.float32)
    return np.asarray(value)


def _filter_array(value):
    """A filter bank as float32 (kh, kw, depth, count): MATLAB drops trailing singleton dimensions."""
    array = _array(value)
    if array.ndim > 4:
        raise ValueError(f"filter bank has {array.ndim} dimensions")
    array = array.reshape(array.shape + (1,) * (4 - array.ndim))
    return array.astype(np.float32, copy=False)


def _bias(layer, ctx, count):
    if len(layer.weights) < 2 or _array(layer.weights[1]).size == 0:
        return None
    return _vector(layer, ctx, layer.weights[1], count, "biases")


def _vector(layer, ctx, value, count, what):
    array = _array(value)
    if array.size != count:
        raise ctx.error(layer, f"{what} have {array.size} elements, expected {count}")
    return np.ascontiguousarray(array.reshape(-1, order="F"), dtype=np.float32)


def _floats(value):
    array = _array(value)
    if array.dtype.kind not in "biuf":
        return ()
    return tuple(float(v) for v in array.reshape(-1, order="F"))


def _ints(value):
    return tuple(int(round(v)) for v in _floats(value))


def _int(layer, ctx, value, what):
    values = _floats(value)
    if len(values) != 1 or values[0] != int(values[0]):
        raise ctx.error(layer, f"{what} must be one integer, got {list(values)}")
    return int(values[0])


def _positive_pair(layer, ctx, value, what):
    values = pair(_ints(value))
    if len(values) != 2 or min(values) < 1:
        raise ctx.error(layer, f"{what} must be one or two positive integers, got {list(values)}")
    return values


def _pad4(layer, ctx, value, what="pad"):
    values = _ints(value)
    if len(values) == 1:
        values = values * 4
    if len(values) != 4 or min(values) < 0:
        raise ctx.error(layer, f"{what} must be one or four ([top bottom left right]) non-negative integers, "
                               f"got {list(values)}")
    return values


def _flag(value, default):
    values = _floats(value)
    return bool(values[0]) if values else default


def _text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return ""


def _names(value):
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _records(value):
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _field(struct, name):
    return struct.get(name) if isinstance(struct, dict) else None


# ---------------------------------------------------------------------------------------------------- meta
def _normalization(raw, channels, path):
    """``meta.normalization`` in the neutral form (mean as (C,) or (C, H, W) in the net's channel order)."""
    if not isinstance(raw, dict):
        return None
    result = {"mean": _mean(raw.get("averageImage"), channels, path)}
    image_size = _ints(raw.get("imageSize"))
    if len(image_size) >= 2:
        result["image_size"] = image_size[:2]
    if _text(raw.get("interpolation")):
        result["interpolation"] = _text(raw["interpolation"])
    if "keepAspect" in raw and _floats(raw["keepAspect"]):
        result["keep_aspect"] = _flag(raw["keepAspect"], True)
    border = _floats(raw.get("border"))
    if border:
        result["border"] = border if len(border) > 1 else border * 2
    crop = _floats(raw.get("cropSize"))
    if crop:
        result["crop_size"] = crop if len(crop) > 1 else crop * 2
    return result


def _mean(value, channels, path):
    array = _array(value)
    if array.size == 0:
        return None
    array = array.astype(np.float32)
    if array.size == channels:  # one pixel: 1x1xC, Cx1 or 1xC
        return array.reshape(-1, order="F")
    if array.ndim == 2 and channels == 1:  # H x W image of a one-channel net
        return np.ascontiguousarray(array[np.newaxis])
    if array.ndim == 3 and array.shape[2] == channels:  # H x W x C image
        return np.ascontiguousarray(array.transpose(2, 0, 1))
    raise ConversionError(f"meta.normalization.averageImage has shape {array.shape}, which fits neither a "
                          f"pixel nor an image of {channels} channels", path=path)


def _classes(raw):
    if not isinstance(raw, dict):
        return None
    result = {}
    for key, source in (("names", "name"), ("descriptions", "description")):
        value = raw.get(source)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            result[key] = [item if isinstance(item, str) else str(item) for item in value]
    return result or None
