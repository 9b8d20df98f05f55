"""MatConvNet networks (.mat, SimpleNN and DagNN, MAT v5 or v7.3) as a neutral :class:`~converters.graph.Graph`.

Semantics follow MatConvNet's own functions: vl_nnconv / vl_nnconvt (pads and crops [top bottom left right],
strides [y x], groups from the filter depth), vl_nnpool (floor rounding; average pooling divides by the number
of in-image cells, max ignores padding), vl_nnnormalize (``[N kappa alpha beta]``, alpha per element),
vl_nnbnorm (moments hold mean and standard deviation), vl_nnspnorm, vl_nnnoffset, vl_nnpdist, vl_nnroipool,
vl_nnbilinearsampler and the dagnn.* blocks (Crop's adaptive offsets, Concat's MATLAB dimension, Scale's bsxfun
broadcasting, the grid generators of BilinearSampler).

Outputs: by default the net's outputs without its training losses: the variables that no layer but a loss
reads, and those marked ``precious`` (DagNN), except the outputs of losses, in the order of the layers writing
them; ``outputs=[...]`` chooses others. Only the layers those outputs depend on are converted: the others
(training losses of any class, metrics, unknown custom layers off the path) are dropped, and a layer ON the path
that is unknown or a loss is one ConversionError naming it. Losses are MatConvNet's loss types and classes,
any class deriving from dagnn.Loss (its block carries dagnn.Loss's ``loss`` and ``ignoreAverage`` properties,
like the LapSRN releases' ``dagnn.vllab_dag_loss``), any unregistered type or class whose name contains "loss",
and dagnn.PDist / pdist with ``aggregate`` (which sums the whole batch into one number).
Inputs: the variables the kept layers read and no layer writes, in the order they are first read.

Parameters shared by name (a DagNN reusing ``conv1_f`` in several layers) stay one weight: the second and later
layers using them get ``attrs['shares']`` = the first layer's name and no weights of their own, so the builder
calls the first layer's Keras layer again. Layers sharing a parameter must share all of them, in the same roles,
and compute the same op with the same attributes (else a ConversionError naming both).

Orientation: MatConvNet arrays are H x W x C x N (MATLAB dimension 1 runs down the image rows), and filters
are H x W x Cin x Cout, which is already the neutral layout; the image is NOT transposed. The channel order is
the file's own: nothing in a .mat records whether its first convolution expects RGB or BGR. A variable that is
not an image keeps this mapping too: a 5 x K ROI array is a (C, H, W) = (1, 5, K) input, a 2 x Ho x Wo sampling
grid a (Wo, 2, Ho) one.

Variable names: DagNN nets keep theirs; a SimpleNN net reads ``input``, layer i writes ``x<i>`` and the last
layer that is not a loss writes ``prediction`` (as MatConvNet's ``dagnn.DagNN.fromSimpleNN`` names a net ending
in a loss).

A convolution whose kernel covers its whole (known, unpadded) input, and 1x1 convolutions after it, become
``dense`` nodes (fixed-size classifiers); with a larger or unknown input size they stay convolutions, so the
same file also converts fully convolutionally (``input_shape``).

SimpleNN types and DagNN block classes map to one layer kind each (SIMPLENN_KINDS, DAGNN_KINDS); each kind is
converted by one function in :data:`LAYERS` (the signature of :mod:`converters.layer_table`). Other classes and
types can be given a converter with :func:`register_layer` (``keras_zoo.register_matconvnet_layer``).
"""

from __future__ import annotations

import dataclasses
import difflib
import heapq
import logging
import pathlib
import re

import numpy as np

from converters.errors import ConversionError
from converters.graph import Graph, Node, conv_output_size, pair
from converters.layer_table import LayerTable
from converters.matfile import MatOpaque, load_mat

log = logging.getLogger(__name__)

SIMPLENN_KINDS = {
    "conv": "conv", "convt": "convt", "pool": "pool", "normalize": "lrn", "lrn": "lrn", "relu": "relu",
    "bnorm": "bnorm", "softmax": "softmax", "dropout": "dropout", "sigmoid": "sigmoid",
    "pdist": "pdist", "spnorm": "spnorm", "noffset": "noffset",
    "scale": "scale",  # what MatConvNet's import-caffe.py writes for a Caffe Scale in a SimpleNN
    "softmaxloss": "loss", "loss": "loss",
}
DAGNN_KINDS = {
    "dagnn.Conv": "conv", "dagnn.ConvTranspose": "convt", "dagnn.Pooling": "pool", "dagnn.LRN": "lrn",
    "dagnn.ReLU": "relu", "dagnn.BatchNorm": "bnorm", "dagnn.SoftMax": "softmax", "dagnn.DropOut": "dropout",
    "dagnn.Sigmoid": "sigmoid", "dagnn.Sum": "sum", "dagnn.Concat": "concat", "dagnn.Crop": "crop",
    "dagnn.Scale": "scale", "dagnn.PDist": "pdist", "dagnn.SpatialNorm": "spnorm", "dagnn.NormOffset": "noffset",
    "dagnn.ROIPooling": "roipool", "dagnn.BilinearSampler": "bilinearsampler",
    "dagnn.AffineGridGenerator": "affinegrid", "dagnn.UniformScalingGridGenerator": "scalinggrid",
    "dagnn.Loss": "loss", "dagnn.EuclideanLoss": "loss", "dagnn.SegmentationLoss": "loss",
    "dagnn.LossSmoothL1": "loss", "dagnn.SegmentationAccuracy": "loss",
}
# DagNN block property -> the SimpleNN field of the same meaning.
DAGNN_OPTION_NAMES = {"poolSize": "pool"}
# The properties every dagnn.Loss subclass saves in its block (dagnn.Loss's own).
LOSS_PROPERTIES = frozenset({"loss", "ignoreAverage"})
# MATLAB dimension of H x W x C x N arrays (1-based) -> the neutral N, C, H, W axis.
MATLAB_DIM_TO_AXIS = {1: 2, 2: 3, 3: 1, 4: 0}
# Kinds that work unchanged on flattened (N, C) values, after a fully connected layer.
FLAT_KINDS = frozenset({"relu", "dropout", "sigmoid", "softmax", "bnorm", "sum", "concat", "conv", "scale",
                        "noffset"})
LRN_DEFAULT = (5.0, 1.0, 0.0001 / 5, 0.75)
#: Layer kind (the values of SIMPLENN_KINDS and DAGNN_KINDS, losses aside) -> its converter.
LAYERS = LayerTable("unknown MatConvNet layer kind '{type}'")
# DagNN class or SimpleNN type -> the converter a user registered (register_layer); their kind is "user".
_USER_LAYERS = {}


def register_layer(class_or_type, function, *, replace=False):
    """Convert MatConvNet layers of the DagNN class (``'dagnn.MyLayer'``) or SimpleNN type ``class_or_type``
    with ``function(layer, inputs, ctx) -> (node or [nodes], [output shapes])``, the Caffe table's signature:

    * ``layer``: a :class:`MatLayer`: ``name``, ``source_type`` (the class or type), ``inputs`` and ``outputs``
      (variable names), ``options`` (the DagNN block's properties, or the SimpleNN layer's fields, as MATLAB
      values: numpy arrays, str, lists, dicts), ``weights`` (the parameter arrays, in the layer's order) and
      ``param_names`` (DagNN: the parameters' names);
    * ``inputs``: the shapes of the input variables, batch-less and channel-first ((C, H, W), None where unknown);
    * ``ctx``: the conversion context: ``ctx.path`` (the file) and ``ctx.error(layer, reason)`` (a
      ConversionError naming the file and the layer, to raise);
    * returns one :class:`converters.graph.Node` or a list of them (computing the layer's outputs from its inputs,
      through variables of their own names in between; any op of converters/graph.py, weights in its layouts)
      and the (C, H, W) shape of each of the layer's outputs.

    A class or type with a converter already (keras_zoo's or registered) is a ValueError unless ``replace=True``.
    Returns ``function``.
    """
    if not isinstance(class_or_type, str) or not class_or_type:
        raise ValueError(f"a MatConvNet layer type must be a non-empty string (a DagNN class or SimpleNN type), not "
                         f"{class_or_type!r}")
    if not callable(function):
        raise ValueError(f"the function for MatConvNet layer type '{class_or_type}' is not callable: {function!r}")
    if not replace and (class_or_type in DAGNN_KINDS or class_or_type in SIMPLENN_KINDS):
        raise ValueError(f"MatConvNet layer type '{class_or_type}' is converted by keras_zoo already "
                         "(replace=True replaces it)")
    if not replace and class_or_type in _USER_LAYERS:
        raise ValueError(f"MatConvNet layer type '{class_or_type}' is registered already (replace=True replaces it)")
    _USER_LAYERS[class_or_type] = function
    return function


@dataclasses.dataclass
class MatLayer:
    """One MatConvNet layer, SimpleNN or DagNN, in a common form before conversion.

    ``kind`` is None for a class or type without a converter; ``loss`` marks training losses (dropped unless
    an output needs them, which is an error); ``missing_params`` the DagNN parameters the file does not hold.
    """

    name: str
    kind: str | None
    source_type: str
    inputs: list
    outputs: list
    options: dict
    weights: list
    param_names: list = dataclasses.field(default_factory=list)
    loss: bool = False
    missing_params: list = dataclasses.field(default_factory=list)
    family: str = "DagNN"  # or "SimpleNN"


class _NeedsSpatial(Exception):
    """A flattened (dense) value reached a layer that needs H and W: convert its producer as a convolution."""

    def __init__(self, producer):
        super().__init__(producer)
        self.producer = producer


def read_matconvnet(path, *, input_shape=None, outputs=None):
    """The network in a MatConvNet ``.mat`` file as a :class:`Graph`.

    ``input_shape``: (H, W) or (C, H, W) of the image inputs (every input but the ROI, grid and transform
    inputs whose shape their layer fixes), or ``{input name: shape}`` per input; by default the file's ``meta``
    decides (``inputs``, ``normalization.imageSize``, ``inputSize``), else H and W stay unknown.
    ``outputs``: the variables to compute (names, in the order wanted); by default the net's outputs without its
    losses (see the module's docstring). Only the layers they depend on are converted.
    """
    path = pathlib.Path(path)
    data = load_mat(path)
    net = _find_net(data, path)
    layers_value = net.get("layers")
    if _is_dagnn(layers_value):
        layers, meta_raw, precious = _dagnn_layers(net, path), net.get("meta"), _precious_vars(net)
        kind = "dagnn"
    else:
        layers, meta_raw, precious = _simplenn_layers(net, path), _simplenn_meta(net), set()
        kind = "simplenn"
    meta_raw = meta_raw if isinstance(meta_raw, dict) else {}
    if not any(not layer.loss for layer in layers):
        raise ConversionError("the network has no layers besides losses", path=path)
    _unique_names(layers)
    chosen = _choose_outputs(layers, precious, outputs, path)
    all_count = len(layers)
    layers = _needed_layers(layers, chosen, path)
    if outputs is None:  # in execution order
        position = {name: (index, slot) for index, layer in enumerate(layers)
                    for slot, name in enumerate(layer.outputs)}
        chosen.sort(key=position.get)
    _check_path(layers, chosen, path)
    if len(layers) < all_count:
        log.info("%s: %d of %d layers are not needed for the outputs %s and are dropped", path,
                 all_count - len(layers), all_count, chosen)
    inputs = _graph_inputs(layers)
    shapes = _input_shapes(inputs, layers, meta_raw, input_shape, path)
    per_layer = _convert_all(layers, shapes, path)
    nodes = [node for made in per_layer for node in made]
    for name in inputs:
        if shapes[name][0] is None and name not in _fixed_shapes(layers):
            raise ConversionError(f"cannot tell the number of channels of input '{name}'; give input_shape "
                                  f"as (C, H, W) (or {{'{name}': (C, H, W)}})", path=path)
    _share_parameters(layers, per_layer, path)
    meta = {"framework": "matconvnet", "format": kind}
    images = [name for name in inputs if name not in _fixed_shapes(layers)] or inputs
    normalization = _normalization(meta_raw.get("normalization"), shapes[images[0]][0], path)
    if normalization is not None:
        meta["normalization"] = normalization
    classes = _classes(meta_raw.get("classes"))
    if classes is not None:
        meta["classes"] = classes
    graph = Graph(name=path.stem, inputs={name: shapes[name] for name in inputs}, nodes=nodes,
                  outputs=chosen, source=str(path), meta=meta)
    log.info("%s: %s net, %d nodes, inputs %s, outputs %s", path, kind, len(nodes), graph.inputs, chosen)
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


def _layer_kind(layer_type, kinds):
    """The kind of a class or type: "user" for a registered one, keras_zoo's, None for an unknown one."""
    if layer_type in _USER_LAYERS:
        return "user"
    return kinds.get(layer_type)


def _is_loss(kind, layer_type, options, aggregate_default):
    """Whether a layer is a training loss (or metric): see the module's docstring."""
    if kind == "loss":
        return True
    if kind == "pdist":
        return _flag(options.get("aggregate"), aggregate_default)
    if kind is None:
        return bool(re.search("loss", layer_type, re.IGNORECASE)) or LOSS_PROPERTIES <= set(options)
    return False


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
        kind = _layer_kind(layer_type, SIMPLENN_KINDS)
        if "weights" in record:
            weights = record["weights"]
        else:
            weights = [record[key] for key in ("filters", "biases") if key in record]
        if isinstance(weights, np.ndarray):  # a single array instead of a cell
            weights = [weights] if weights.size else []
        output = f"x{index}"
        loss = _is_loss(kind, layer_type, record, False)  # vl_simplenn_tidy: pdist aggregates by default false
        layers.append(MatLayer(name, kind, layer_type, [previous], [output], record, list(weights), loss=loss,
                               family="SimpleNN"))
        previous = output
    kept = [layer for layer in layers if not layer.loss]
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
        kind = _layer_kind(layer_type, DAGNN_KINDS)
        block = record.get("block")
        options = {DAGNN_OPTION_NAMES.get(key, key): value
                   for key, value in (block.items() if isinstance(block, dict) else ())}
        param_names = _names(record.get("params"))
        missing = [param_name for param_name in param_names if param_name not in values]
        weights = [values[param_name] for param_name in param_names if param_name in values]
        if kind in ("conv", "convt") and not _flag(options.get("hasBias"), True):
            weights, param_names = weights[:1], param_names[:1]
        loss = _is_loss(kind, layer_type, options, True)  # dagnn.PDist aggregates by default
        layers.append(MatLayer(name, kind, layer_type, _names(record["inputs"]), _names(record["outputs"]),
                               options, weights, param_names, loss, missing))
    return layers


def _precious_vars(net):
    """The DagNN variables marked ``precious`` (kept during evaluation: outputs by default)."""
    return {_text(record.get("name")) for record in _records(net.get("vars"))
            if _flag(record.get("precious"), False)}


def _unique_names(layers):
    seen = {}
    for layer in layers:
        count = seen.get(layer.name, 0)
        seen[layer.name] = count + 1
        if count:
            new_name = f"{layer.name}_{count + 1}"
            log.warning("duplicate layer name '%s' renamed '%s'", layer.name, new_name)
            layer.name = new_name


# ----------------------------------------------------------------------------------- outputs and pruning
def _choose_outputs(layers, precious, requested, path):
    """The output variables: ``requested`` (checked), else the net's outputs without its losses."""
    produced = {name: layer for layer in layers for name in layer.outputs}
    if requested is not None:
        requested = [requested] if isinstance(requested, str) else list(requested)
        if not requested:
            raise ConversionError("outputs is empty: name at least one variable", path=path)
        read = {name for layer in layers for name in layer.inputs}
        for name in requested:
            if not isinstance(name, str):
                raise ConversionError(f"outputs must be variable names, got {name!r}", path=path)
            if name not in produced:
                if name in read:
                    raise ConversionError(f"'{name}' is an input of the network, not an output", path=path)
                close = difflib.get_close_matches(name, list(produced), n=3)
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise ConversionError(f"no layer computes a variable '{name}'{hint}", path=path)
        duplicates = sorted({name for name in requested if requested.count(name) > 1})
        if duplicates:
            raise ConversionError(f"outputs names {duplicates} more than once", path=path)
        return requested
    kept = [layer for layer in layers if not layer.loss]
    last_write = {name: index for index, layer in enumerate(kept) for name in layer.outputs}
    rewritten = sum(len(layer.outputs) for layer in kept) > len(last_write) or any(
        name in layer.inputs for layer in kept for name in layer.outputs)
    read_after = set()  # variables whose (last) value a kept layer reads
    for index, layer in enumerate(kept):
        read_after.update(name for name in layer.inputs
                          if not rewritten or last_write.get(name, -1) < index)
    chosen = [name for index, layer in enumerate(kept) for name in layer.outputs
              if last_write[name] == index and (name not in read_after or name in precious)]
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise ConversionError("the network computes nothing but its losses' inputs: choose outputs", path=path)
    return chosen


def _needed_layers(layers, outputs, path):
    """The layers ``outputs`` depend on, in an order that computes every input first: the file's order where that
    works (DagNN files need not be stored in execution order). Where a variable is written by several layers
    (in place, as MatConvNet's Caffe importer writes ReLU and BatchNorm), the file's order is the execution order
    and a layer reads the value the last layer before it wrote, as in Caffe."""
    writers = {}
    for index, layer in enumerate(layers):
        for name in dict.fromkeys(layer.outputs):
            writers.setdefault(name, []).append(index)
    rewritten = any(len(indices) > 1 for indices in writers.values())

    def source(index, name):
        """The layer whose value of ``name`` layer ``index`` reads (None: a network input)."""
        indices = writers.get(name, [])
        if not rewritten:
            return indices[0] if indices and indices[0] != index else None
        before = [other for other in indices if other < index]
        return before[-1] if before else None

    needed, stack = set(), [writers[name][-1] for name in outputs]
    while stack:
        index = stack.pop()
        if index not in needed:
            needed.add(index)
            stack.extend(other for other in (source(index, name) for name in layers[index].inputs)
                         if other is not None)
    if rewritten:
        return [layers[index] for index in sorted(needed)]
    waiting = {index: {source(index, name) for name in layers[index].inputs} - {None} for index in needed}
    users = {index: [] for index in needed}
    for index, before in waiting.items():
        for other in before:
            users[other].append(index)
    ready = [index for index, before in waiting.items() if not before]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users[index]:
            waiting[user].discard(index)
            if not waiting[user]:
                heapq.heappush(ready, user)
    if len(order) < len(needed):
        stuck = layers[min(set(needed) - set(order))]
        raise ConversionError("the layers form a cycle (a layer depends on its own output)", path=path,
                              layer=stuck.name, layer_type=stuck.source_type)
    return [layers[index] for index in order]


def _check_path(layers, outputs, path):
    """One ConversionError for a layer the outputs need that is unknown, a loss or incomplete."""
    for layer in layers:
        family = layer.family
        wanted = ", ".join(f"'{name}'" for name in _dependants(layer, layers, outputs))
        if layer.loss and layer.kind == "pdist":
            raise ConversionError(f"aggregate is true: {layer.source_type} sums the distances of the whole batch "
                                  f"into one number (a training objective), but the output(s) {wanted} need it; "
                                  "set aggregate false for the per-location distances, or choose outputs before it",
                                  path=path, layer=layer.name, layer_type=layer.source_type)
        if layer.loss:
            raise ConversionError(f"{family} layer type '{layer.source_type}' is a training loss, but the "
                                  f"output(s) {wanted} need it: choose outputs before it", path=path,
                                  layer=layer.name, layer_type=layer.source_type)
        if layer.kind is None:
            others = sorted({other.source_type for other in layers if other.kind is None} - {layer.source_type})
            also = f" (also unknown on that path: {', '.join(others)})" if others else ""
            raise ConversionError(f"unknown {family} layer type '{layer.source_type}', needed by the output(s) "
                                  f"{wanted}{also}: register a converter with keras_zoo.register_matconvnet_layer("
                                  f"'{layer.source_type}', fn), or choose outputs before it (outputs=[...])",
                                  path=path, layer=layer.name, layer_type=layer.source_type)
        if layer.missing_params:
            raise ConversionError(f"parameter '{layer.missing_params[0]}' is not in the file's params", path=path,
                                  layer=layer.name, layer_type=layer.source_type)


def _dependants(layer, layers, outputs):
    """The outputs that depend on ``layer`` (``layers``: the needed ones, in execution order)."""
    depends = set(layer.outputs)
    for other in layers:
        if depends & set(other.inputs):
            depends.update(other.outputs)
    return [name for name in outputs if name in depends]


def _graph_inputs(layers):
    """Variables read before any layer writes them, in the order they are first read."""
    produced, inputs = set(), []
    for layer in layers:
        for name in layer.inputs:
            if name not in produced and name not in inputs:
                inputs.append(name)
        produced.update(layer.outputs)
    return inputs


def _fixed_shapes(layers):
    """Input variables whose (C, H, W) their consumer fixes: ROI arrays (5 x K), sampling grids
    (2 x Ho x Wo: channels Wo, height 2, width Ho) and grid-generator transforms (1 x 1 x 6 or 3)."""
    fixed = {}
    for layer in layers:
        if layer.kind == "roipool" and len(layer.inputs) > 1:
            fixed.setdefault(layer.inputs[1], (1, 5, None))
        elif layer.kind == "bilinearsampler" and len(layer.inputs) > 1:
            fixed.setdefault(layer.inputs[1], (None, 2, None))
        elif layer.kind in ("affinegrid", "scalinggrid") and layer.inputs:
            fixed.setdefault(layer.inputs[0], (6 if layer.kind == "affinegrid" else 3, 1, 1))
    return fixed


def _input_shapes(inputs, layers, meta, input_shape, path):
    """(C, H, W) of every input variable."""
    declared = {}
    for record in _records(meta.get("inputs")):
        size = _ints(record.get("size"))
        if "name" in record and len(size) >= 2:
            declared[_text(record["name"])] = size
    image_size = _ints(_field(meta.get("normalization"), "imageSize")) or _ints(meta.get("inputSize"))
    fixed = _fixed_shapes(layers)
    given_by_name = {}
    if isinstance(input_shape, dict):
        unknown = sorted(set(input_shape) - set(inputs))
        if unknown:
            raise ConversionError(f"input_shape names {unknown}, which are not inputs of the network (its inputs: "
                                  f"{inputs})", path=path)
        given_by_name = dict(input_shape)
    shapes = {}
    for name in inputs:
        given = given_by_name.get(name) if isinstance(input_shape, dict) else input_shape
        if name in fixed and not (isinstance(input_shape, dict) and name in input_shape):
            size = declared.get(name)
            shapes[name] = (size[2] if len(size) >= 3 else 1, size[0], size[1]) if size else fixed[name]
            continue
        size = declared.get(name) or image_size
        channels = size[2] if len(size) >= 3 else _first_filter_depth(name, layers)
        height, width = (size[0], size[1]) if len(size) >= 2 else (None, None)
        if given is not None:
            try:
                values = tuple(int(v) if v is not None else None for v in given)
            except (TypeError, ValueError):
                values = ()
            if len(values) == 3:
                channels, height, width = values
            elif len(values) == 2:
                height, width = values
            else:
                raise ConversionError(f"input_shape must be (H, W) or (C, H, W), got {given}", path=path)
        shapes[name] = (None if channels is None else int(channels), height, width)
    return shapes


def _first_filter_depth(variable, layers):
    for layer in layers:
        if variable in layer.inputs[:1] and layer.kind in ("conv", "convt") and layer.weights:
            filters = _array(layer.weights[0])
            if filters.size:
                if layer.kind == "conv":
                    return filters.shape[2] if filters.ndim > 2 else 1
                return filters.shape[3] if filters.ndim > 3 else 1
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
            made, out_shapes = function(layer, [shapes[name] for name in layer.inputs], ctx)
        except _NeedsSpatial:
            raise _NeedsSpatial(origins[0] if origins else None) from None
        except ConversionError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:  # fields numpy could not take
            raise ctx.error(layer, f"malformed layer ({type(exc).__name__}: {exc})") from None
        made = made if isinstance(made, list) else [made]
        written = made[0].outputs if len(made) == 1 else layer.outputs
        for name, shape in zip(written, out_shapes):
            shapes[name] = tuple(shape)
            if any(node.op == "dense" for node in made) or origins:
                flat_origin[name] = origins[0] if origins else layer.name
            else:
                flat_origin.pop(name, None)
        nodes.append(made)
    return nodes


def _works_flat(layer):
    """Whether the layer computes the same on a flattened (N, C) value as on an N x 1 x 1 x C one."""
    if layer.kind == "concat":
        return _floats(layer.options.get("dim", 3)) == (3.0,)
    return layer.kind in FLAT_KINDS


def _node(layer, op, attrs=None, weights=None, inputs=None):
    return Node(name=layer.name, op=op, inputs=list(inputs or layer.inputs[:1]), outputs=list(layer.outputs[:1]),
                attrs=attrs or {}, weights=weights or {}, source_type=layer.source_type)


def _comparable(value):
    """Attribute values with tuples and lists alike and arrays as lists (to compare two nodes' attributes)."""
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _share_parameters(layers, per_layer, path):
    """Layers that reuse parameters by name share the first such layer's Keras layer (``attrs['shares']``);
    ``per_layer``: the nodes made of each layer."""
    owner = {}  # parameter name -> (layer, node) of its first user
    for layer, made in zip(layers, per_layer):
        names = list(layer.param_names)
        if not names:
            continue
        carrying = [node for node in made if node.weights]
        if len(carrying) != 1 and any(name in owner or sum(name in other.param_names for other in layers) > 1
                                      for name in names):
            raise ConversionError(f"parameter(s) {names} are shared with other layers, but this layer became "
                                  f"{len(made)} nodes, {len(carrying)} of them with weights: only a layer made one "
                                  "node with weights can share them", path=path, layer=layer.name,
                                  layer_type=layer.source_type)
        if len(carrying) != 1:
            continue
        node = carrying[0]
        known = [name for name in names if name in owner]
        if not known:
            for name in names:
                owner[name] = (layer, node)
            continue
        first_layer, first = owner[known[0]]
        reason = None
        if known != names or list(first_layer.param_names) != names:
            reason = (f"uses parameters {names}, the other {list(first_layer.param_names)}: only layers sharing "
                      f"all their parameters in the same roles can share them")
        elif node.op != first.op or _comparable(node.attrs) != _comparable(first.attrs) \
                or set(node.weights) != set(first.weights):
            reason = (f"computes {node.op} {_comparable(node.attrs)}, the other {first.op} "
                      f"{_comparable(first.attrs)}: layers sharing parameters must compute the same function")
        if reason:
            raise ConversionError(f"parameter '{known[0]}' is shared with layer '{first_layer.name}', but this layer "
                                  f"{reason} (Keras shares weights by calling one layer again)", path=path,
                                  layer=layer.name, layer_type=layer.source_type)
        node.attrs["shares"] = first.name
        node.weights = {}


@LAYERS.register("user")
def user_layer(layer, inputs, ctx):
    """A class or type given a converter with :func:`register_layer`; its result is checked."""
    function = _USER_LAYERS[layer.source_type]
    whose = f"the converter registered for '{layer.source_type}'"
    result = function(layer, inputs, ctx)
    try:
        made, shapes = result
        shapes = [tuple(shape) for shape in shapes]
    except (TypeError, ValueError):
        raise ctx.error(layer, f"{whose} returned {type(result).__name__}, not (node or [nodes], [output "
                               "shapes])") from None
    nodes = made if isinstance(made, list) else [made]
    if not nodes or not all(isinstance(node, Node) for node in nodes):
        raise ctx.error(layer, f"{whose} returned {made!r}, not a converters.graph.Node or a list of them")
    written = nodes[0].outputs if len(nodes) == 1 else layer.outputs
    if len(shapes) != len(written):
        raise ctx.error(layer, f"{whose} gave {len(shapes)} shape(s) for {len(written)} output(s)")
    produced = {name for node in nodes for name in node.outputs}
    if not set(layer.outputs) & produced:
        raise ctx.error(layer, f"{whose} returned nodes writing {sorted(produced)}, none of the layer's outputs "
                               f"{layer.outputs}")
    for node in nodes:
        node.source_type = node.source_type or layer.source_type
    return nodes, shapes


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


# ------------------------------------------------------------------ Scale, PDist, SpatialNorm, NormOffset...
def _broadcast_param(layer, ctx, value, x_shape, what):
    """A parameter of a bsxfun with an H x W x C x N variable of (C, H, W) ``x_shape``, as a float32 array in the
    neutral channel-first broadcast layout: (c, h, w) (or (c,) for a flattened variable), each 1 or the size."""
    if isinstance(value, MatOpaque):
        raise ctx.error(layer, f"{what} is a MATLAB {value.class_name} value, not a dense array")
    array = _array(value)
    if array.size == 0:
        raise ctx.error(layer, f"{what} is empty")
    if array.ndim > 4 or (array.ndim == 4 and array.shape[3] != 1):
        raise ctx.error(layer, f"{what} has shape {array.shape}: a parameter with a batch dimension is not "
                               "supported")
    array = array.astype(np.float32).reshape(tuple(array.shape[:3]) + (1,) * max(0, 3 - array.ndim))
    if len(x_shape) == 1:
        if array.shape[:2] != (1, 1):
            raise ctx.error(layer, f"{what} has shape {array.shape}, which does not fit a flattened input")
        return np.ascontiguousarray(array.reshape(-1))
    neutral = np.ascontiguousarray(array.transpose(2, 0, 1))
    _broadcast_shapes(layer, ctx, [tuple(x_shape), neutral.shape], what)
    return neutral


def _broadcast_shapes(layer, ctx, shapes, what="the inputs"):
    """bsxfun's result shape of batch-less channel-first ``shapes`` (None: unknown; 1 expands)."""
    rank = len(shapes[0])
    if any(len(shape) != rank for shape in shapes):
        raise ctx.error(layer, f"{what}: shapes {[tuple(s) for s in shapes]} have different ranks")
    result = []
    for sizes in zip(*shapes):
        known = {size for size in sizes if size is not None and size != 1}
        if len(known) > 1:
            raise ctx.error(layer, f"{what}: shapes {[tuple(s) for s in shapes]} (C, H, W) do not broadcast "
                                   "(each size must be 1 or the same)")
        if known:
            result.append(known.pop())
        else:
            result.append(None if None in sizes else 1)
    return tuple(result)


@LAYERS.register("scale")
def scale(layer, inputs, ctx):
    """dagnn.Scale: y = a1 .* a2 (+ a3 with hasBias), the arguments being the inputs, then the parameters,
    broadcast as bsxfun does (the second-input form: a multiplier computed by the net, e.g. a gate)."""
    has_bias = _flag(layer.options.get("hasBias"), True)
    needed = 3 if has_bias else 2
    arguments = len(inputs) + len(layer.weights)
    if not inputs or arguments < needed:
        raise ctx.error(layer, f"Scale multiplies its first two arguments (its inputs, then its parameters)"
                               f"{' and adds the third (hasBias)' if has_bias else ''}; it has {len(inputs)} "
                               f"input(s) and {len(layer.weights)} parameter(s)")
    x_shape = tuple(inputs[0])
    variables = inputs[:needed]
    params = [_broadcast_param(layer, ctx, value, x_shape, f"parameter {index + 1}")
              for index, value in enumerate(layer.weights[:needed - len(variables)])]
    shape = _broadcast_shapes(layer, ctx, [tuple(s) for s in variables] + [p.shape for p in params])
    if len(variables) == 1 and shape == x_shape:  # parameters only, not expanding x: Caffe's Scale
        node = _scale_as_affine(layer, x_shape, params)
        if node is not None:
            return node, [shape]
    attrs = {"multiplier": "input" if len(variables) > 1 else "weight",
             "offset": ("input" if len(variables) > 2 else "weight") if has_bias else "none"}
    weights = {}
    parameter_roles = [role for role, where in (("gamma", attrs["multiplier"]), ("beta", attrs["offset"]))
                       if where == "weight"]
    for role, value in zip(parameter_roles, params):
        weights[role] = value
    return _node(layer, "muladd", attrs, weights, inputs=layer.inputs[:len(variables)]), [shape]


def _scale_as_affine(layer, x_shape, params):
    """A 'scale' node (gamma over x.shape[axis:axis + num_axes]) for parameters that are a scalar, per channel
    or the whole (known) input; None where they broadcast otherwise."""
    rank = len(x_shape) + 1
    if all(p.size == 1 for p in params):
        axis, num_axes, target = 1, 0, ()
    elif all(p.shape[1:] == (1,) * (len(x_shape) - 1) for p in params):
        axis, num_axes, target = 1, 1, (x_shape[0],)
    elif None not in x_shape:
        axis, num_axes, target = 1, rank - 1, x_shape
    else:
        return None
    if None in target:
        return None
    gamma, *beta = [np.ascontiguousarray(np.broadcast_to(p.reshape(p.shape[:len(target)] if target else ()),
                                                         target)) for p in params]
    weights = {"gamma": gamma}
    if beta:
        weights["beta"] = beta[0]
    attrs = {"axis": axis, "num_axes": num_axes, "use_bias": bool(beta)}
    return _node(layer, "scale", attrs, weights)


@LAYERS.register("pdist")
def pdist(layer, inputs, ctx):
    """vl_nnpdist: y = (sum over channels |x - x0|^p)^(1/p) (noRoot: without the root), times instanceWeights.
    DagNN: inputs x, x0 [, instanceWeights]; SimpleNN: x0 is the layer's ``class``, the weights its
    ``instanceWeights``. (aggregate, which sums everything into one number, is a loss: refused earlier.)"""
    p = _floats(layer.options.get("p", 2.0))
    if len(p) != 1 or not p[0] > 0:
        raise ctx.error(layer, f"p must be one positive number, got {list(p)}")
    x_shape = tuple(inputs[0]) if inputs else ()
    if len(x_shape) != 3:
        raise ctx.error(layer, f"needs an H x W x C input, got shape {x_shape}")
    attrs = {"p": p[0], "no_root": _flag(layer.options.get("noRoot"), False)}
    weights, shapes = {}, [x_shape]
    if layer.family == "DagNN":
        if len(inputs) not in (2, 3):
            raise ctx.error(layer, f"PDist takes 2 or 3 inputs (x, x0 [, instanceWeights]), got {len(inputs)}")
        attrs["target"] = "input"
        attrs["instance_weights"] = "input" if len(inputs) == 3 else "none"
        shapes.append(tuple(inputs[1]))
        node_inputs = layer.inputs[:len(inputs)]
        weight_shape = tuple(inputs[2]) if len(inputs) == 3 else None
    else:
        _arity(layer, ctx, inputs, 1)
        if _array(layer.options.get("class")).size == 0:
            raise ctx.error(layer, "no target: the layer's 'class' (x0) is empty")
        weights["target"] = _broadcast_param(layer, ctx, layer.options["class"], x_shape, "class (x0)")
        shapes.append(weights["target"].shape)
        attrs["target"] = "weight"
        instance = layer.options.get("instanceWeights")
        attrs["instance_weights"] = "weight" if _array(instance).size else "none"
        weight_shape = None
        if attrs["instance_weights"] == "weight":
            weights["instance_weights"] = _broadcast_param(layer, ctx, instance, (1, *x_shape[1:]),
                                                           "instanceWeights")
            weight_shape = weights["instance_weights"].shape
        node_inputs = layer.inputs[:1]
    merged = _broadcast_shapes(layer, ctx, shapes, "x and x0")
    shape = (1, *merged[1:])
    if weight_shape is not None:
        shape = _broadcast_shapes(layer, ctx, [shape, weight_shape], "the distances and instanceWeights")
    return _node(layer, "pdist", attrs, weights, inputs=node_inputs), [shape]


def _param(layer, ctx, default, count, what):
    """The ``param`` vector of a SpatialNorm / NormOffset (DagNN's class default; SimpleNN needs it)."""
    if "param" in layer.options:
        values = _floats(layer.options["param"])
    elif layer.family == "DagNN":
        values = default
    else:
        raise ctx.error(layer, f"missing field 'param' ({what}; vl_simplenn reads it)")
    if len(values) != count:
        raise ctx.error(layer, f"param must be {what}, got {list(values)}")
    return values


@LAYERS.register("spnorm")
def spnorm(layer, inputs, ctx):
    """vl_nnspnorm: y = x (1 + alpha N2)^(-beta), N2 the in-image mean of x^2 over a PH x PW window padded
    floor((P-1)/2) before and the rest after (vl_nnpool 'avg')."""
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    _spatial(layer, ctx, in_shape)
    ph, pw, alpha, beta = _param(layer, ctx, (2.0, 2.0, 10.0, 2.0), 4, "[PH PW ALPHA BETA]")
    if ph != int(ph) or pw != int(pw) or min(ph, pw) < 1:
        raise ctx.error(layer, f"the window [PH PW] must be positive integers, got {[ph, pw]}")
    attrs = {"size": (int(ph), int(pw)), "alpha": alpha, "beta": beta}
    return _node(layer, "spatial_norm", attrs), [in_shape]


@LAYERS.register("noffset")
def noffset(layer, inputs, ctx):
    """vl_nnnoffset: y = x - param(1) * max(sum over channels x^2, 1e-8)^param(2)."""
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    scale_, power = _param(layer, ctx, (1.0, 0.5), 2, "[SCALE POWER]")
    return _node(layer, "norm_offset", {"scale": scale_, "power": power, "floor": 1e-8}), [in_shape]


def _roi_transform(layer, ctx, value):
    """vl_nnroipool's Transform as the 6 numbers [a b c d e f]: u' = a u + c v + e, v' = b u + d v + f."""
    values = _floats(value)
    if len(values) in (1, 2):
        su, sv = values[0], values[-1]
        return (su, 0.0, 0.0, sv, 1.0 - su, 1.0 - sv)
    if len(values) == 6:
        return tuple(values)  # a 2 x 3 matrix, column-major: [T11 T21 T12 T22 T13 T23]
    raise ctx.error(layer, f"transform must be a scalar, a 2-vector or a 2 x 3 matrix, got {len(values)} numbers")


@LAYERS.register("roipool")
def roipool(layer, inputs, ctx):
    """dagnn.ROIPooling (vl_nnroipool): max or average over SH x SW tiles of each ROI [t u0 v0 u1 v1]."""
    x_shape, _ = _arity(layer, ctx, inputs, 2)
    _spatial(layer, ctx, x_shape)
    method = (_text(layer.options.get("method", "max")) or "max").lower()
    if method not in ("max", "avg"):
        raise ctx.error(layer, f"unknown ROI pooling method '{method}' (max or avg)")
    pooled = _positive_pair(layer, ctx, layer.options.get("subdivisions", (6, 6)), "subdivisions")
    transform = _roi_transform(layer, ctx, layer.options.get("transform", 1.0))
    flatten = _flag(layer.options.get("flatten"), False)
    attrs = {"method": method, "pooled": pooled, "transform": transform, "flatten": flatten}
    channels = x_shape[0]
    if flatten:
        shape = (None if channels is None else pooled[0] * pooled[1] * channels, 1, 1)
    else:
        shape = (channels, *pooled)
    return _node(layer, "roi_pool_affine", attrs, inputs=layer.inputs[:2]), [shape]


@LAYERS.register("bilinearsampler")
def bilinearsampler(layer, inputs, ctx):
    """dagnn.BilinearSampler (vl_nnbilinearsampler): x sampled at the grid's 2 x Ho x Wo points."""
    x_shape, grid = _arity(layer, ctx, inputs, 2)
    _spatial(layer, ctx, x_shape)
    if len(grid) != 3 or grid[1] not in (None, 2):
        raise ctx.error(layer, f"the grid must be a 2 x Ho x Wo (x N) array, i.e. a (C, H, W) = (Wo, 2, Ho) "
                               f"variable; got {tuple(grid)}")
    return _node(layer, "bilinear_sampler", {}, inputs=layer.inputs[:2]), [(x_shape[0], grid[2], grid[0])]


@LAYERS.register("affinegrid", "scalinggrid")
def grid_generator(layer, inputs, ctx):
    """dagnn.AffineGridGenerator (1 x 1 x 6 x N transforms) and dagnn.UniformScalingGridGenerator (1 x 1 x 3 x N):
    the 2 x Ho x Wo x N sampling grid of BilinearSampler."""
    (in_shape,) = _arity(layer, ctx, inputs, 1)
    count = 6 if layer.kind == "affinegrid" else 3
    if tuple(in_shape) not in ((count, 1, 1), (None, 1, 1), (count,)) and in_shape[0] not in (None, count):
        raise ctx.error(layer, f"expects 1 x 1 x {count} x N transforms, got (C, H, W) {tuple(in_shape)}")
    height = _int(layer, ctx, layer.options.get("Ho", 0), "Ho")
    width = _int(layer, ctx, layer.options.get("Wo", 0), "Wo")
    if height < 1 or width < 1:
        raise ctx.error(layer, f"the grid size Ho x Wo must be set (positive), got {height} x {width}")
    op = "affine_grid" if layer.kind == "affinegrid" else "scaling_grid"
    return _node(layer, op, {"height": height, "width": width}), [(width, 2, height)]


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
