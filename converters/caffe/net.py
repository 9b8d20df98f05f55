"""A Caffe net -> the neutral Graph: phases, data layers as inputs, dropped layers, the conversion context.

Train/val nets are read in the TEST phase (include/exclude rules); loss, accuracy and silence layers are
dropped (a Silence layer's bottoms count as consumed); data layers become graph inputs (see
:mod:`converters.caffe`); every other layer is converted by its function (one node or several) in
:data:`converters.caffe.layers.LAYERS` through a :class:`ConversionContext`, which tracks the blob shapes, hands
out the caffemodel's weights and keeps weights shared by param name one weight. Outputs are the blobs no layer
consumes, sorted by name.
"""

from __future__ import annotations

import logging
import pathlib

import numpy as np

import converters.caffe.schema as schema
from converters.caffe.layers import LAYERS
from converters.caffe.prototxt import parse_prototxt
from converters.caffe.upgrade import upgrade_layers
from converters.caffe.wire import scan_caffemodel
from converters.errors import ConversionError
from converters.graph import Graph

log = logging.getLogger(__name__)

DATA_LAYER_TYPES = frozenset({
    "Data", "ImageData", "HDF5Data", "MemoryData", "DummyData", "WindowData", "AnnotatedData", "Python",
})
DROPPED_LAYER_TYPES = frozenset({
    "SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss",
    "MultinomialLogisticLoss", "ContrastiveLoss", "Accuracy", "Silence", "HDF5Output",
})
#: The layer types read out of the box (layers.LAYERS, plus Input layers, which become graph inputs).
SUPPORTED_LAYER_TYPES = LAYERS.names() | {"Input"}
_WEIGHTED_TYPES = frozenset({"Convolution", "Deconvolution", "InnerProduct", "PReLU", "BatchNorm", "Scale",
                             "Bias", "ConvolutionDepthwise", "DepthwiseConvolution", "Normalize"})


def _computing_params(layer):
    """A layer's ``*_param`` messages without their fillers (which only initialise weights for training)."""
    params = {}
    for field, value in layer.ListFields():
        if field.name.endswith("_param") and field.message_type is not None:
            copy = type(value)()
            copy.CopyFrom(value)
            for sub, _ in copy.ListFields():
                if sub.name.endswith("filler"):
                    copy.ClearField(sub.name)
            params[field.name] = copy.SerializeToString(deterministic=True)
    return params


def layer_error(path, reason, layer=None):
    """The ConversionError naming ``path``, ``layer`` (a LayerParameter, with its type) and ``reason``."""
    if layer is None:
        return ConversionError(reason, path=path)
    return ConversionError(reason, path=path, layer=layer.name, layer_type=layer.type)


class ConversionContext:
    """What the layer functions share while one net is converted: the file, the blob shapes, the weights."""

    def __init__(self, path, weight_path, blobs, *, embedded):
        self.path = path
        self.weight_path = weight_path
        self.blobs = blobs  # {layer name: [wire.BlobRef]} or None
        self.embedded = embedded  # the net definition comes from the caffemodel itself
        self.shapes = {}  # blob name -> batch-less shape
        self.graph_inputs = {}  # the graph's inputs declared so far (name -> shape)
        self.share_params = True  # Caffe's param { name } sharing: one weight for the layers naming it
        self._param_owners = {}  # param name -> (owner layer, its node, blob index)

    def error(self, layer, reason):
        """The ConversionError naming the prototxt, ``layer`` and ``reason`` (to raise)."""
        return layer_error(self.path, reason, layer)

    def convert(self, layer):
        """The Node of ``layer`` (the last one where its function gives several), recording its tops' shapes."""
        return self.convert_nodes(layer)[-1]

    def convert_nodes(self, layer):
        """The Nodes of ``layer`` (its function in LAYERS returns one node or a list), recording the shapes of its
        tops; weights shared by ``param { name }`` with an earlier layer become that layer's (``attrs['shares']``)."""
        function = LAYERS.lookup(layer.type, path=self.path, layer=layer.name)
        result, out_shapes = function(layer, [self.shapes[bottom] for bottom in layer.bottom], self)
        nodes = list(result) if isinstance(result, (list, tuple)) else [result]
        for node in nodes:
            node.source_type = node.source_type or layer.type
        for top, shape in zip(layer.top, out_shapes):
            self.shapes[top] = shape
        if self.share_params and any(spec.name for spec in layer.param):
            self._share(layer, next((node for node in nodes if node.name == layer.name), nodes[-1]))
        return nodes

    def _blob_count(self, layer, node):
        """How many blobs ``layer`` has: the caffemodel's count, else what its node implies."""
        if self.blobs is not None and self.blobs.get(layer.name):
            return len(self.blobs[layer.name])
        attrs, one_input = node.attrs, len(node.inputs) == 1
        counts = {"conv": 1 + bool(attrs.get("use_bias")), "deconv": 1 + bool(attrs.get("use_bias")),
                  "dense": 1 + bool(attrs.get("use_bias")), "embed": 1 + bool(attrs.get("use_bias")),
                  "prelu": 1, "batchnorm": 3, "parameter": 1, "bias": int(one_input),
                  "scale": int(one_input) + bool(attrs.get("use_bias"))}
        return counts.get(node.op, len(node.weights))

    def _share(self, layer, node):
        """Caffe's weight sharing by param name, kept as ONE weight: a layer naming the params of an earlier one
        (all of its blobs, the same names in the same places; same type and parameters) computes with that
        layer's weights (``node.attrs['shares']``). Caffe loads a shared blob from each layer naming it, the last
        in the caffemodel winning: so does this, with a warning where the copies differ."""
        count = self._blob_count(layer, node)
        names = [spec.name for spec in layer.param][:count]
        names += [""] * (count - len(names))
        known = {index: self._param_owners[name] for index, name in enumerate(names) if name in self._param_owners}
        if not known:
            for index, name in enumerate(names):
                if name:
                    self._param_owners[name] = (layer, node, index)
            return
        owner_layer, owner, _ = next(iter(known.values()))
        owner_names = [spec.name for spec in owner_layer.param][:self._blob_count(owner_layer, owner)]
        if len(known) != count or owner_names != names or any(
                entry[0] is not owner_layer or entry[2] != index for index, entry in known.items()):
            shared = sorted({names[index] for index in known})
            raise self.error(layer, f"shares params {shared} with layer '{owner_layer.name}', but its blobs' params "
                                    f"are {names} and that layer's {owner_names}: only sharing every blob, with the "
                                    "same names in the same order, is supported (one Keras layer for both)")
        ignored = {"described"}
        if node.op != owner.op or {k: v for k, v in node.attrs.items() if k not in ignored} != \
                {k: v for k, v in owner.attrs.items() if k not in ignored} or len(node.inputs) != len(owner.inputs) \
                or layer.type != owner_layer.type or _computing_params(layer) != _computing_params(owner_layer):
            raise self.error(layer, f"shares its weights with layer '{owner_layer.name}' ({owner_layer.type}), which "
                                    f"computes differently ({owner.op} {owner.attrs} vs {node.op} {node.attrs}): "
                                    "only layers of the same type and parameters can share weights")
        for key, value in node.weights.items():
            theirs = owner.weights.get(key)
            if theirs is None or tuple(np.shape(theirs)) != tuple(np.shape(value)):
                raise ConversionError(f"weight '{key}' has shape {tuple(np.shape(value))}, the layer '{owner.name}' "
                                      f"it shares it with has {None if theirs is None else tuple(np.shape(theirs))}",
                                      path=self.weight_path, layer=layer.name, layer_type=layer.type)
        if node.weights and any(not np.array_equal(np.asarray(node.weights[key]), np.asarray(owner.weights[key]))
                                for key in node.weights):
            order = list(self.blobs or ())
            later = layer.name if order.index(layer.name) > order.index(owner.name) else owner.name
            log.warning("%s: layers '%s' and '%s' share their weights but the caffemodel holds different values; "
                        "as Caffe, the copy loaded last (layer '%s') is used", self.weight_path, owner.name,
                        layer.name, later)
            if later == layer.name:
                owner.weights = dict(node.weights)
        node.weights = {}
        node.attrs["shares"] = owner.name

    def bias_term(self, layer, param):
        """``param.bias_term``; for an embedded layer that does not say, whether it has a second blob."""
        if self.embedded and not param.HasField("bias_term") and self.blobs.get(layer.name):
            return len(self.blobs[layer.name]) > 1
        return param.bias_term

    def weights_of(self, layer, expected_count):
        """The caffemodel blobs of ``layer`` (None without a caffemodel), checking how many there are."""
        if self.blobs is None:
            return None
        refs = self.blobs.get(layer.name)
        if not refs:
            raise ConversionError("the caffemodel has no weights for this layer", path=self.weight_path,
                                  layer=layer.name, layer_type=layer.type)
        if len(refs) not in expected_count:
            wanted = " or ".join(str(count) for count in sorted(expected_count))
            raise ConversionError(f"the caffemodel has {len(refs)} blobs, the prototxt implies {wanted}",
                                  path=self.weight_path, layer=layer.name, layer_type=layer.type)
        return refs

    def blob_array(self, layer, refs, index, expected):
        """Blob ``index`` as a float32 array of shape ``expected`` (None entries: any size)."""
        ref = refs[index]
        actual = ref.shape
        if ref.legacy and len(expected) <= 4:
            padded = (1,) * (4 - len(expected)) + tuple(expected)
            ok = len(actual) == 4 and all(e is None or e == a for e, a in zip(padded, actual))
            concrete = actual[4 - len(expected):]
        else:
            ok = len(actual) == len(expected) and all(e is None or e == a for e, a in zip(expected, actual))
            concrete = actual
        if not ok:
            shown = tuple("?" if dim is None else dim for dim in expected)
            raise ConversionError(
                f"blob {index} has shape {tuple(actual)}, the prototxt implies {shown}".replace("'?'", "?"),
                path=self.weight_path, layer=layer.name, layer_type=layer.type)
        return ref.array().reshape(concrete)


# ------------------------------------------------------------------------------------------- phases

def _state_meets_rule(state, rule):
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(stage in stages for stage in rule.stage) and not any(s in stages for s in rule.not_stage)


def _in_test_phase(layer, state):
    """Caffe's FilterNet: include rules (any met) win over exclude rules (none met)."""
    if layer.include:
        return any(_state_meets_rule(state, rule) for rule in layer.include)
    return not any(_state_meets_rule(state, rule) for rule in layer.exclude)


def _is_data_layer(layer):
    return layer.type in DATA_LAYER_TYPES and not (layer.type == "Python" and layer.bottom)


# ------------------------------------------------------------------------------------------ the net

def _check_input_shape(input_shape, path):
    if input_shape is None:
        return None
    try:
        dims = tuple(int(dim) for dim in input_shape)
    except (TypeError, ValueError):
        dims = ()
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise ConversionError(f"input_shape must be (H, W) or (C, H, W) positive integers, got {input_shape!r}",
                              path=path)
    return dims


def _with_input_shape(shape, input_shape):
    """A declared (C, H, W) input shape with ``input_shape`` applied (C kept unless given). An input declared
    1 x 1 is a vector, not an image (e.g. early Fast R-CNN's rois (R, 5, 1, 1)), and keeps its shape."""
    if input_shape is None or len(shape) != 3 or tuple(shape[1:]) == (1, 1):
        return shape
    return input_shape if len(input_shape) == 3 else (shape[0],) + input_shape


def _declared_inputs(net, path, input_shape):
    """{name: batch-less shape} of the net-level ``input`` declarations (input_dim or input_shape)."""
    names = list(net.input)
    if not names:
        if net.input_dim or net.input_shape:
            raise ConversionError("input_dim/input_shape given without an 'input' name", path=path)
        return {}
    if net.input_shape:
        if len(net.input_shape) != len(names):
            raise ConversionError(f"{len(names)} inputs but {len(net.input_shape)} input_shape entries",
                                  path=path)
        shapes = [tuple(shape.dim) for shape in net.input_shape]
    else:
        dims = list(net.input_dim)
        if len(dims) != 4 * len(names):
            raise ConversionError(f"{len(names)} inputs need {4 * len(names)} input_dim values, got {len(dims)}",
                                  path=path)
        shapes = [tuple(dims[4 * i:4 * i + 4]) for i in range(len(names))]
    if any(len(shape) < 2 or min(shape) < 1 for shape in shapes):
        raise ConversionError(f"invalid input shapes {shapes}", path=path)
    return {name: _with_input_shape(shape[1:], input_shape) for name, shape in zip(names, shapes)}


def _input_layer_shapes(layer, path, input_shape):
    shapes = [tuple(shape.dim) for shape in layer.input_param.shape]
    if len(shapes) not in (1, len(layer.top)) or not layer.top:
        raise layer_error(path, f"{len(shapes)} shapes for {len(layer.top)} tops", layer)
    if len(shapes) == 1:
        shapes = shapes * len(layer.top)
    if any(len(shape) < 2 or min(shape) < 1 for shape in shapes):
        raise layer_error(path, f"invalid input shapes {shapes}", layer)
    return {top: _with_input_shape(shape[1:], input_shape) for top, shape in zip(layer.top, shapes)}


def _data_layer_shape(layer, path, input_shape, strict):
    """Batch-less (C, H, W) of the image a data layer feeds (see the docstring of converters.caffe)."""
    channels = 1 if layer.type == "ImageData" and not layer.image_data_param.is_color else 3
    if input_shape is not None:
        return input_shape if len(input_shape) == 3 else (channels,) + input_shape
    if layer.type == "DummyData":
        param = layer.dummy_data_param
        if param.shape:
            return tuple(param.shape[0].dim)[1:]
        if param.num and param.channels and param.height and param.width:
            return param.channels[0], param.height[0], param.width[0]
    if layer.type == "MemoryData":
        param = layer.memory_data_param
        if param.channels and param.height and param.width:
            return param.channels, param.height, param.width
    transform = layer.transform_param
    if not (transform.crop_size or layer.data_param.crop_size or layer.image_data_param.crop_size
            or layer.window_data_param.crop_size):
        # the forks' rectangular crops (SSD's crop_h/crop_w, PSPNet's crop_height/crop_width), else SSD's
        # resize_param (applied before the crop)
        for height, width in ((transform.crop_h, transform.crop_w), (transform.crop_height, transform.crop_width),
                              (transform.resize_param.height, transform.resize_param.width)):
            if height and width:
                return channels, height, width
    if layer.type == "ImageData" and layer.image_data_param.new_height and layer.image_data_param.new_width:
        crop = layer.transform_param.crop_size or layer.image_data_param.crop_size
        param = layer.image_data_param
        return (channels, crop, crop) if crop else (channels, param.new_height, param.new_width)
    crop = (layer.transform_param.crop_size or layer.data_param.crop_size or layer.image_data_param.crop_size
            or layer.window_data_param.crop_size)
    if crop:
        return channels, crop, crop
    if strict:
        raise layer_error(path, f"the input size of this {layer.type} layer is unknown: pass input_shape=(H, W) "
                          "or (C, H, W)", layer)
    return None, None, None


def _data_layer_meta(layer):
    transform = layer.transform_param
    return {"type": layer.type, "scale": transform.scale, "mirror": transform.mirror,
            "crop_size": transform.crop_size, "mean_file": transform.mean_file or None,
            "mean_value": list(transform.mean_value)}


def _image_tops(data_layer, later_layers):
    """The tops of a data layer that feed a layer with weights (the others are labels); else the first."""
    images = []
    for top in data_layer.top:
        reached = {top}
        for layer in later_layers:
            if reached.intersection(layer.bottom):
                if layer.type in _WEIGHTED_TYPES:
                    images.append(top)
                    break
                reached.update(layer.top)
    return images or list(data_layer.top[:1])


def _select_layers(net, path, *, filter_phase):
    """(V2 layers kept in the TEST phase minus losses and label consumers, format name)."""
    try:
        layers, net_format = upgrade_layers(net)
    except ValueError as exc:
        raise ConversionError(str(exc), path=path) from None
    state = schema.NetState(phase="TEST", level=net.state.level, stage=net.state.stage)
    layers = [layer for layer in layers if not filter_phase or _in_test_phase(layer, state)]
    for layer in layers:
        if layer.type in DROPPED_LAYER_TYPES:
            log.debug("%s: dropping layer '%s' (%s)", path, layer.name, layer.type)
    # a Silence layer only consumes its bottoms (so that they are no outputs): kept for _build_graph to see
    layers = [layer for layer in layers if layer.type not in DROPPED_LAYER_TYPES or layer.type == "Silence"]
    kept = []
    labels = set()
    for index, layer in enumerate(layers):
        if _is_data_layer(layer):
            images = _image_tops(layer, layers[index + 1:])
            labels.update(top for top in layer.top if top not in images)
            del layer.top[:]
            layer.top.extend(images)
        elif labels.intersection(layer.bottom):
            log.debug("%s: dropping layer '%s' (%s): it consumes labels", path, layer.name, layer.type)
            labels.update(layer.top)
            continue
        kept.append(layer)
    unsupported = [layer for layer in kept if layer.type not in LAYERS and layer.type not in ("Input", "Silence")
                   and not _is_data_layer(layer)]
    if unsupported:
        listing = ", ".join(f"'{layer.name}' ({layer.type})" for layer in unsupported)
        raise ConversionError(f"unsupported layer type(s): {listing}", path=path)
    return kept, net_format


def _build_graph(net, layers, net_format, *, path, blobs, weight_path, input_shape, strict):
    ctx = ConversionContext(path, weight_path, blobs, embedded=not strict)
    inputs = _declared_inputs(net, path, input_shape)
    ctx.shapes.update(inputs)
    ctx.graph_inputs = inputs
    available = set(inputs)
    nodes = []
    meta = {"format": net_format, "net_name": net.name, "data_layers": {}}
    for layer in layers:
        if layer.type == "Input" or _is_data_layer(layer):
            if layer.type == "Input":
                new = _input_layer_shapes(layer, path, input_shape)
            elif layer.top:
                new = {top: _data_layer_shape(layer, path, input_shape, strict) for top in layer.top}
                meta["data_layers"].update({top: _data_layer_meta(layer) for top in layer.top})
            else:
                raise layer_error(path, "a data layer without tops", layer)
            inputs.update(new)
            ctx.shapes.update(new)
            available.update(new)
            continue
        if layer.type == "Silence":  # no computation: its bottoms are consumed, so they are no outputs
            missing = [bottom for bottom in layer.bottom if bottom not in ctx.shapes]
            if missing and strict:
                raise layer_error(path, f"bottom '{missing[0]}' is not produced by any earlier layer", layer)
            available.difference_update(layer.bottom)
            continue
        for bottom in layer.bottom:
            if bottom in ctx.shapes:
                continue
            if strict:
                raise layer_error(path, f"bottom '{bottom}' is not produced by any earlier layer", layer)
            # an embedded net whose input declaration was not saved: the blob becomes an input
            inputs[bottom] = ctx.shapes[bottom] = _with_input_shape((None, None, None), input_shape)
            available.add(bottom)
        try:
            nodes.extend(ctx.convert_nodes(layer))
        except (ValueError, ArithmeticError, IndexError) as exc:
            raise layer_error(path, f"invalid parameters: {exc}", layer) from None
        available.difference_update(layer.bottom)
        available.update(layer.top)
    if not inputs:
        raise ConversionError("the net declares no input (input/input_dim, Input layer or data layer)",
                              path=path)
    if blobs is not None:
        used = {node.name for node in nodes}
        for name in blobs:
            if name not in used:
                log.warning("%s: layer '%s' has weights in the caffemodel but is not in the net; ignored",
                            weight_path, name)
    return Graph(name=net.name or pathlib.Path(path).stem, inputs=inputs, nodes=nodes,
                 outputs=sorted(available), source=str(path), meta=meta)


def read_caffe(prototxt, caffemodel=None, *, input_shape=None, allow_unknown_fields=False):
    """The neutral Graph of a Caffe net; with ``caffemodel``, its weights in the neutral layouts.

    ``prototxt=None`` reads the net definition embedded in ``caffemodel`` (see :func:`read_caffemodel`).
    ``input_shape`` ((H, W) or (C, H, W)) sizes data layers and overrides the declared image input size.
    The prototxt is parsed strictly: a field the schema does not know (a misspelling, or a fork's field it does
    not know) is a ConversionError naming the file, line, layer and field; ``allow_unknown_fields=True`` skips
    such fields with one warning each (binary caffemodels always keep unknown fields aside, unread).
    Outputs are the blobs no layer consumes, sorted by name (the order Caffe's Net reports them).
    """
    if prototxt is None:
        if caffemodel is None:
            raise ConversionError("read_caffe needs a prototxt, a caffemodel or both")
        return read_caffemodel(caffemodel, input_shape=input_shape)
    input_shape = _check_input_shape(input_shape, prototxt)
    net = parse_prototxt(prototxt, allow_unknown_fields=allow_unknown_fields)
    layers, net_format = _select_layers(net, prototxt, filter_phase=True)
    blobs = None
    if caffemodel is not None:
        _, blobs = scan_caffemodel(caffemodel)
    graph = _build_graph(net, layers, net_format, path=prototxt, blobs=blobs, weight_path=caffemodel,
                         input_shape=input_shape, strict=True)
    graph.meta["caffemodel"] = None if caffemodel is None else str(caffemodel)
    return graph


def _weights_only(net, layers):
    """Whether a caffemodel holds only its layers' names, types and blobs (no bottom, top or input)."""
    return not net.input and not any(layer.bottom or layer.top for layer in layers)


def read_caffemodel(caffemodel, *, input_shape=None):
    """The Graph of the net definition embedded in a .caffemodel, with its weights in the neutral layouts.

    Caffe stores the net it trained (already filtered to its phase), so no include/exclude rule is applied;
    data-layer inputs whose size the file does not record get ``None`` dimensions unless ``input_shape``
    says, and so do blobs read before any layer writes them (files saved without their input declaration).
    Layer parameters missing from old files are taken from the blobs where they determine them (num_output,
    kernel size, bias_term). A weights-only file (names, types and blobs: no net) is a ConversionError
    saying how to use it (:func:`read_caffe` with its prototxt, or :func:`read_caffemodel_weights`).
    """
    input_shape = _check_input_shape(input_shape, caffemodel)
    net, blobs = scan_caffemodel(caffemodel)
    try:
        upgraded, _ = upgrade_layers(net)
    except ValueError as exc:
        raise ConversionError(str(exc), path=caffemodel) from None
    if _weights_only(net, upgraded):
        raise ConversionError("the caffemodel holds only its layers' weights (names, types and blobs, no bottoms "
                              "or tops), not a net: convert it together with its prototxt, or load it by layer "
                              "name into a zoo model (weights=<this file>)", path=caffemodel)
    layers, net_format = _select_layers(net, caffemodel, filter_phase=False)
    graph = _build_graph(net, layers, net_format, path=caffemodel, blobs=blobs, weight_path=caffemodel,
                         input_shape=input_shape, strict=False)
    graph.meta["caffemodel"] = str(caffemodel)
    return graph


def read_caffemodel_weights(caffemodel):
    """The weights of a caffemodel's layers by layer name, without assembling its net (as Caffe's
    ``CopyTrainedLayersFrom`` reads a file: by name, only the blobs).

    A Graph with no inputs or outputs and one node per layer that has blobs or describes itself (has its
    ``*_param`` message; e.g. an LRN), each read on its own with input shapes unknown: weights in the neutral
    layouts, attributes from the layer's parameters. A node of a layer with blobs but no parameters (weights-only
    files of net-surgery scripts and some tools: name, type and blobs; old files: also bottoms and tops) has
    ``attrs['described'] = False``: its other attributes are defaults or read off the blobs, not the file's. Layer types without a converter are skipped (warned where they
    have blobs); split, input, data and loss layers are skipped. Works for both layouts: weights-only, and
    the full one Caffe's ``Net::ToProto`` writes (every layer's parameters, the Split and Input layers).
    """
    net, blobs = scan_caffemodel(caffemodel)
    try:
        layers, net_format = upgrade_layers(net)
    except ValueError as exc:
        raise ConversionError(str(exc), path=caffemodel) from None
    ctx = ConversionContext(caffemodel, caffemodel, blobs, embedded=True)
    ctx.share_params = False  # each layer is read on its own, by name
    nodes, seen = [], set()
    for layer in layers:
        has_blobs = bool(blobs.get(layer.name))
        described = any(field.name.endswith("_param") for field, _ in layer.ListFields())
        if layer.name in seen or not (has_blobs or described) or layer.type in ("Input", "Split") \
                or _is_data_layer(layer) or layer.type in DROPPED_LAYER_TYPES:
            continue
        seen.add(layer.name)
        if layer.type not in LAYERS:
            if has_blobs:
                log.warning("%s: layer '%s' has weights but its type %s has no converter; not read", caffemodel,
                            layer.name, layer.type)
            continue
        alone = schema.LayerParameter()
        alone.CopyFrom(layer)
        if not alone.bottom and layer.type != "Parameter":
            alone.bottom.append(f"{layer.name}/input")
        if not alone.top:
            alone.top.append(f"{layer.name}/output")
        ctx.shapes = {bottom: (None, None, None) for bottom in alone.bottom}
        try:
            node = ctx.convert(alone)
        except (ConversionError, ValueError, ArithmeticError, IndexError, TypeError) as exc:
            if not has_blobs:  # nothing to load: a layer that cannot be read on its own is not needed
                log.debug("%s: layer '%s' not read on its own: %s", caffemodel, layer.name, exc)
                continue
            if isinstance(exc, ConversionError):
                raise
            raise layer_error(caffemodel, f"invalid parameters: {exc}", layer) from None
        node.inputs, node.outputs = list(layer.bottom), list(layer.top)
        if not described:
            node.attrs["described"] = False
        nodes.append(node)
    return Graph(name=net.name or pathlib.Path(caffemodel).stem, inputs={}, nodes=nodes, outputs=[],
                 source=str(caffemodel), meta={"format": net_format, "net_name": net.name,
                                               "caffemodel": str(caffemodel), "by_layer_name": True})
