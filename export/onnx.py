"""``python -m export.onnx MODEL``: an ONNX model with a dynamic batch, made of operators TensorRT parses.

The input is ``images``: float32 RGB 0..255, (batch, H, W, 3), NHWC as in Keras, the model's preprocessing
inside; the outputs carry the Keras model's output names. ``--quantize int8`` also writes the explicitly
quantized (QDQ) int8 model for ONNX Runtime on the CPU (uint8 activations, int8 per-channel weights: the form
its x86 int8 kernels run), calibrated on representative images and checked with ONNX Runtime; ``python -m
export.trt`` writes TensorRT's symmetric int8 form.
"""

import collections
import logging
import pathlib
import sys

import numpy as np

from export import common, equalization, report, rounding
from export.runners import ONNX_INPUT as INPUT_NAME, OnnxRunner, cpu_threads
from export.speed import measure, report_speeds, time_artifact
from keras_zoo.files import Rejected, atomic_output

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
BATCH_DIM = "batch"
EXTERNAL_DATA_BYTES = 2**31 - 2**24  # protobuf's 2 GB limit, less room for the graph
WEIGHT_PREFIX = "keras_weight_"  # graph inputs standing for the weights during conversion
# where TensorRT's int8 QDQ pairs go (it fuses them into int8 kernels); other operators stay in float
QUANTIZED_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm"]
# operators ONNX Runtime's CPU runs on int8 tensors (QLinear* kernels, or int8 as they are: pooling, reshapes)
ORT_QUANTIZED_OPS = """Conv ConvTranspose MatMul Gemm Add Mul Concat MaxPool AveragePool GlobalAveragePool Relu Clip
LeakyRelu Sigmoid Resize Pad Reshape Flatten Squeeze Unsqueeze Transpose Slice Split""".split()
# the int8 forms quantize_int8 writes: ONNX Runtime's (the CPU) and TensorRT's
INT8_TARGETS = ("onnxruntime", "tensorrt")
# operators affine in their one varying input (the others constant) or summing varying inputs (Add, Sub, Concat): a
# chain of them from the graph input to an output computes the picture itself (float_nodes keeps it float)
AFFINE_OPS = frozenset("""Conv ConvTranspose MatMul Gemm Add Sub Mul Div Pad Slice Split Reshape Flatten Squeeze
Unsqueeze Transpose Concat Resize Identity Gather AveragePool""".split())
SUMMING_OPS = frozenset("Add Sub Concat".split())
# the operators of a local response normalization (as tf2onnx writes keras_zoo's LRN) between its squares and its power
LRN_OPS = frozenset("Mul Add Pad Slice Transpose Reshape AveragePool Concat".split())
CHANNELS_LAST = (0, 2, 3, 1)  # the Transpose perm from NCHW to NHWC
CALIBRATION_STRIDE = 8  # batches whose activations ONNX Runtime's min-max calibration holds at once
# the int8 weights' levels either side of zero: ONNX Runtime's form keeps 7 bits (x86 without VNNI), TensorRT's 8
WEIGHT_LEVELS = {"onnxruntime": 64, "tensorrt": 127}

# ONNX operators TensorRT 10's ONNX parser supports (onnx-tensorrt's operator support matrix).
TENSORRT_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements
GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization GRU HardSigmoid HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN
LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max
MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range
Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())


def output_names(model):
    """The ONNX output names: the Keras model's output names."""
    return list(model.output_names)


def convert_onnx(model, *, batch=None, opset=DEFAULT_OPSET):
    """An ``onnx.ModelProto`` of ``model``: input ``images`` (batch dimension ``batch`` when None), outputs
    named as the Keras outputs; raises ExportError when an operator is one TensorRT cannot parse.

    tf2onnx copies weight constants many times over (gigabytes for one VGG fully connected layer), so the
    graph is converted with the weights as extra graph inputs (``model.stateless_call``) and the real
    values are bound afterwards as initializers, with the weight-only operators (kernel transposes,
    reshapes) folded in NumPy: the same graph, the exact weights, each held about twice at most.
    """
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    shape = (batch, *model.inputs[0].shape[1:])
    variables = [*model.trainable_variables, *model.non_trainable_variables]
    names = [f"{WEIGHT_PREFIX}{index}" for index in range(len(variables))]
    trainable = len(model.trainable_variables)

    def serve(images, *weights):
        outputs, _ = model.stateless_call(list(weights[:trainable]), list(weights[trainable:]), images,
                                          training=False)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    signature = [tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]
    signature += [tf.TensorSpec(v.shape, v.dtype, name=name) for v, name in zip(variables, names)]
    try:
        proto, _ = tf2onnx.convert.from_function(tf.function(serve), input_signature=signature, opset=opset,
                                                 custom_op_handlers={"FloorDiv": (_floor_div, [])})
    except Exception as error:  # tf2onnx raises many kinds; one line names the failure
        raise common.ExportError(f"{model.name}: ONNX conversion failed: {type(error).__name__}: "
                                 f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}") from None
    bind_weights(proto, dict(zip(names, variables)))
    _rename_outputs(proto, output_names(model))
    if batch is None:
        proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
        for value in proto.graph.output:
            value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    unsupported = unsupported_by_tensorrt(proto)
    if unsupported:
        raise common.ExportError(f"{model.name}: the ONNX graph has operators TensorRT cannot parse: "
                                 f"{', '.join(unsupported)}")
    return proto


def _floor_div(ctx, node, name, args):
    """TensorFlow's FloorDiv for tf2onnx. Its own handler makes an integer FloorDiv an ONNX Div, which rounds
    toward zero: wrong for negative quotients, such as the ceil-mode pooling sizes of inputs of dynamic size.
    Integers here: (a - Mod(a, b)) / b, exact (ONNX's integer Mod takes the divisor's sign, a floor modulo)."""
    from onnx import TensorProto
    from tf2onnx.onnx_opset.math import FloorDiv

    if ctx.get_dtype(node.input[0]) in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
        FloorDiv.version_6(ctx, node)  # Div then Floor: right for floats
        return
    remainder = ctx.make_node("Mod", list(node.input))
    divisible = ctx.make_node("Sub", [node.input[0], remainder.output[0]])
    ctx.replace_input(node, node.input[0], divisible.output[0], 0)
    node.type = "Div"


def bind_weights(proto, weights):
    """Turn the graph inputs named in ``weights`` (name -> array or Keras variable) into initializers, in
    place: nodes computed from weights and constants alone are folded (evaluated with ONNX's reference
    runtime) and per-channel additions after a convolution become its bias, as tf2onnx does with constants."""
    from onnx import numpy_helper

    graph = proto.graph
    constants = {init.name: init for init in graph.initializer}
    values = dict(weights)  # the weights (read when first used) and what is folded from them
    kept = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if inputs and any(name in values for name in inputs) and all(
                name in values or name in constants for name in inputs):
            arrays = {name: np.asarray(values[name]) if name in values else numpy_helper.to_array(constants[name])
                      for name in inputs}
            values.update(zip(node.output, _evaluate(node, arrays, proto.opset_import)))
        else:
            kept.append(node)
    kept = _fuse_conv_biases(kept, values, {value.name for value in graph.output})
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input} | {value.name for value in graph.output}
    inputs = [value for value in graph.input if value.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    initializers = [init for init in graph.initializer if init.name in used]
    initializers += [numpy_helper.from_array(np.asarray(values.pop(name)), name)
                     for name in sorted(used & values.keys())]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _evaluate(node, arrays, opset_import):
    """The outputs of one ONNX node on NumPy arrays."""
    from onnx import helper, reference

    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
         for name, array in arrays.items()],
        [helper.make_empty_tensor_value_info(name) for name in node.output])
    model = helper.make_model(graph, opset_imports=list(opset_import))
    return reference.ReferenceEvaluator(model).run(None, arrays)


def _fuse_conv_biases(nodes, values, graph_outputs):
    """``nodes`` with each ``Add(Conv(x, w), b)``, b a known (1, C, 1, 1) array, made ``Conv(x, w, b)``."""
    producers = {node.output[0]: node for node in nodes if node.op_type in ("Conv", "ConvTranspose")}
    uses = collections.Counter(name for node in nodes for name in node.input)
    kept = []
    for node in nodes:
        conv, bias = _conv_and_bias(node, producers, values)
        if conv is None or uses[conv.output[0]] != 1 or conv.output[0] in graph_outputs:
            kept.append(node)
            continue
        values[f"{bias}_bias"] = np.asarray(values[bias]).reshape(-1)
        conv.input.append(f"{bias}_bias")
        conv.output[0] = node.output[0]
    return kept


def _conv_and_bias(node, producers, values):
    """(the Conv node, the bias name) when ``node`` adds one value per output channel to a bias-less
    convolution with known weights, else (None, None)."""
    if node.op_type != "Add":
        return None, None
    for first, second in (node.input, node.input[::-1]):
        conv = producers.get(first)
        if conv is None or len(conv.input) != 2 or conv.input[1] not in values or second not in values:
            continue
        kernel_shape = np.shape(values[conv.input[1]])
        group = next((attr.i for attr in conv.attribute if attr.name == "group"), 1)
        channels = kernel_shape[0] if conv.op_type == "Conv" else kernel_shape[1] * group
        if np.shape(values[second]) in ((1, channels, 1, 1), (channels, 1, 1)):
            return conv, second
    return None, None


def _rename_outputs(proto, names):
    """Give the graph outputs the Keras output names (through Identity nodes)."""
    import onnx

    for value, name in zip(proto.graph.output, names):
        if value.name != name:
            proto.graph.node.append(onnx.helper.make_node("Identity", [value.name], [name], name=f"{name}_output"))
            value.name = name


def operator_types(proto):
    """Sorted operator types of an ONNX graph (with the domain for non-standard ones)."""
    return sorted({f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
                   for node in proto.graph.node})


def unsupported_by_tensorrt(proto):
    return [op for op in operator_types(proto) if op not in TENSORRT_OPS]


def save_onnx(proto, output):
    """Write an ONNX model atomically (weights in ``<name>.data`` beside it past 2 GB); returns its path."""
    output = pathlib.Path(output)
    with atomic_output(output) as tmp:
        write_onnx(proto, tmp)
    return output


def load_onnx(path):
    """The ModelProto of an ONNX file, its external weights (``<name>.data`` beside it) included."""
    import onnx

    return onnx.load(str(path))


def write_onnx(proto, path):
    """Write ``proto`` to ``path``; a model past protobuf's 2 GB limit keeps its weights in ``<name>.data``
    beside it (ONNX external data; ``proto`` then refers to that file). Returns those extra files."""
    import onnx

    path = pathlib.Path(path)
    if sum(init.ByteSize() for init in proto.graph.initializer) < EXTERNAL_DATA_BYTES:
        path.write_bytes(proto.SerializeToString())
        return []
    data = path.with_name(f"{path.name}.data")
    onnx.save_model(proto, str(path), save_as_external_data=True, location=data.name)
    return [data]


def quantize_int8(source, output, calibration, *, target="onnxruntime"):
    """Write the explicitly quantized (QDQ) int8 form of the ONNX file ``source`` for ``target``, calibrated on
    ``calibration`` images (float32, like the model's input); int8 per-channel weights in both forms.

    ``'onnxruntime'`` (the CPU): uint8 activations with asymmetric min-max ranges on every operator ONNX Runtime
    runs in int8 (:data:`ORT_QUANTIZED_OPS`), the U8S8 form its x86 kernels run fastest, with the weights in 7 bits
    (-64..64): x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) add two uint8 x int8 products in 16 bits, which
    full 8-bit weights overflow, silently (real CIFAR-10 nets there: 81-85% top-1 agreement instead of 95-97%);
    a final Softmax, the layer computing its logits and local response normalizations (one ``LRN`` node each,
    :func:`fuse_lrn`) stay float (:func:`float_nodes`); each spelled-out PReLU becomes one (:func:`fuse_prelu`).
    ``'tensorrt'``: symmetric int8 activations (zero point 0, the 99.999th percentile of |x|) at the inputs of
    the compute-heavy operators, as TensorRT wants.
    In both the channels' ranges are equalized first (:func:`equalize_channels`), then the weights rounded onto
    their grid (:func:`round_onto_grid`).
    """
    from onnxruntime import quantization

    if target not in INT8_TARGETS:
        raise common.ExportError(f"unknown int8 target {target!r} (choose from {', '.join(INT8_TARGETS)})")
    proto = load_onnx(source)
    lrn = fuse_lrn(proto) if target == "onnxruntime" else []
    if target == "onnxruntime":
        fuse_prelu(proto)
    floats = float_nodes(proto) + lrn if target == "onnxruntime" else []
    fixed = proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    images = np.asarray(calibration, np.float32)
    equalize_channels(proto, images, batch=fixed or None)
    round_onto_grid(proto, images, WEIGHT_LEVELS[target], skip=floats, batch=fixed or None)
    batch = fixed or 1
    stride = min(CALIBRATION_STRIDE, -(-len(images) // batch)) if target == "onnxruntime" else 1
    # whole batches and strides (min-max ranges do not change with images repeated)
    images = np.resize(images, (-(-len(images) // (batch * stride)) * batch * stride, *images.shape[1:]))

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.items = [images[i:i + batch] for i in range(0, len(images), batch)]
            self.set_range(0, len(self.items))

        def __len__(self):
            return len(self.items)

        def set_range(self, start_index, end_index):
            self.chunk = iter(self.items[start_index:end_index])

        def get_next(self):
            item = next(self.chunk, None)
            return None if item is None else {INPUT_NAME: item}

    if target == "tensorrt":
        options = dict(activation_type=quantization.QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
                       calibrate_method=quantization.CalibrationMethod.Percentile,
                       extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    else:  # ranges merged every `stride` batches: the activations of only that many held at once
        options = dict(activation_type=quantization.QuantType.QUInt8, op_types_to_quantize=ORT_QUANTIZED_OPS,
                       calibrate_method=quantization.CalibrationMethod.MinMax, reduce_range=True,
                       nodes_to_exclude=floats,
                       extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                      "CalibStridedMinMax": stride, "ForceQuantizeNoInputCheck": True})
    output = pathlib.Path(output)
    advice = _Silenced("pre-processing before quantization")  # its root-logger advice, twice a call
    logging.getLogger().addFilter(advice)
    try:
        with atomic_output(output) as tmp:
            quantization.quantize_static(proto, str(tmp), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                         per_channel=True, weight_type=quantization.QuantType.QInt8, **options)
    finally:
        logging.getLogger().removeFilter(advice)
    return output


def round_onto_grid(proto, images, levels, *, skip=(), batch=None):
    """Replace (in place) the weights of each Conv, ConvTranspose, MatMul and Gemm of ``proto`` (but the nodes
    named in ``skip``, which stay float) by :func:`export.rounding.round_weights` of them on the per-output-channel
    grid of ``±levels`` steps the quantizer uses, their inputs measured on ``images`` (float32, like the graph's
    input). Weights another node shares, rows wider than :data:`export.rounding.MAX_COLUMNS`, 1-D and 3-D
    convolutions and grouped or dilated transposed ones are left to the quantizer's rounding to nearest.
    ``batch``: the graph's fixed batch (the last images repeated to fill it), or None. Returns the names of the
    nodes rounded."""
    from onnx import numpy_helper

    graph = proto.graph
    weights = {init.name: init for init in graph.initializer}
    readers = collections.Counter(name for node in graph.node for name in node.input)
    forms = {node.name: _weight_form(node, weights) for node in graph.node if node.name not in skip
             and len(node.input) > 1 and node.input[1] in weights and readers[node.input[1]] == 1}
    layers = [node for node in graph.node if forms.get(node.name) is not None]
    if not layers:
        return []
    moments = rounding.Moments(batches=-(-len(images) // (batch or CALIBRATION_STRIDE)))
    for found in _probed(proto, [node.input[0] for node in layers], images, batch):
        for node in layers:
            moments.add(node.name, forms[node.name], found[node.input[0]])
    for node in layers:
        array = numpy_helper.to_array(weights[node.input[1]])
        weights[node.input[1]].CopyFrom(numpy_helper.from_array(
            moments.rounded(node.name, forms[node.name], array, levels), node.input[1]))
    return [node.name for node in layers]


def _probed(proto, names, images, batch):
    """For each chunk of ``images`` (``batch`` at a time where the graph's batch is fixed, the last images repeated
    to fill it; :data:`CALIBRATION_STRIDE` where it is not): {name: values} of the tensors ``names`` of ``proto``,
    the graph's input among them as it is."""
    import onnxruntime
    from onnx import helper

    graph = proto.graph
    probed = [name for name in dict.fromkeys(names) if name != INPUT_NAME]
    graph.output.extend(helper.make_empty_tensor_value_info(name) for name in probed)
    try:
        session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    finally:
        del graph.output[len(graph.output) - len(probed):]
    step = batch or CALIBRATION_STRIDE
    for start in range(0, len(images), step):
        chunk = images[start:start + step]
        chunk = np.resize(chunk, (batch, *images.shape[1:])) if batch else chunk
        yield dict(zip(probed, session.run(probed, {INPUT_NAME: chunk})), **{INPUT_NAME: chunk})


# activations computing f(a x) = a f(x) for any a > 0 per channel, through which equalize_channels scales
SCALING_COMMUTES = frozenset({"Relu", "LeakyRelu", "PRelu"})


def equalize_channels(proto, images, *, batch=None):
    """Equalize (in place) the output channels' ranges of each Conv whose output reaches a Conv or ConvTranspose of
    one group only through a Relu, LeakyRelu or PRelu, or directly (:mod:`export.equalization`), the ranges measured
    on ``images``; ``batch`` as for :func:`round_onto_grid`. Weights another node shares are left as they are.
    Returns the pairs' node names."""
    from onnx import numpy_helper

    graph = proto.graph
    weights = {init.name: init for init in graph.initializer}
    uses = collections.Counter(name for node in graph.node for name in node.input)
    uses.update(value.name for value in graph.output)
    readers = {name: node for node in graph.node for name in node.input}

    def only_reader(name):  # the one node reading tensor `name` (as its first input), or None
        node = readers.get(name)
        return node if uses[name] == 1 and node.input[0] == name else None

    def owned(node, *positions):  # a 2-D convolution whose inputs at `positions` are initializers it alone reads
        if len(node.input) < 2 or node.input[1] not in weights or len(weights[node.input[1]].dims) != 4:
            return False
        return all(position >= len(node.input) or not node.input[position]
                   or (node.input[position] in weights and uses[node.input[position]] == 1) for position in positions)

    pairs = []
    for node in graph.node:
        if node.op_type != "Conv" or not owned(node, 1, 2):
            continue
        following = only_reader(node.output[0])
        if following is not None and following.op_type in SCALING_COMMUTES:
            following = only_reader(following.output[0])
        if (following is not None and following.op_type in ("Conv", "ConvTranspose") and owned(following, 1)
                and _attributes(following).get("group", 1) == 1):
            pairs.append((node, following))
    if not pairs:
        return []
    peaks = equalization.Peaks()
    for found in _probed(proto, [node.output[0] for node, _ in pairs], images, batch):
        for node, _ in pairs:
            peaks.add(node.name, found[node.output[0]], axis=1)
    for node, following in pairs:
        factors = peaks.factors(node.name)
        # (weight, factors, axis): the output channels of the Conv's weights (O, C, kh, kw) and bias, the input
        # channels of the next Conv's (O, C, kh, kw) or ConvTranspose's (C, O, kh, kw)
        changes = [(node.input[1], factors, 0), (following.input[1], 1 / factors, int(following.op_type == "Conv"))]
        if len(node.input) > 2 and node.input[2]:
            changes.append((node.input[2], factors, 0))
        for name, change, axis in changes:
            weights[name].CopyFrom(numpy_helper.from_array(
                equalization.scaled(numpy_helper.to_array(weights[name]), change, axis), name))
    return [(node.name, following.name) for node, following in pairs]


def _attributes(node):
    """{name: value} of ``node``'s attributes."""
    from onnx import helper

    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def _weight_form(node, weights):
    """The :class:`export.rounding.WeightForm` of ``node``'s weight (its second input), or None where
    round_onto_grid leaves it to the quantizer."""
    attributes = _attributes(node)
    dims = list(weights[node.input[1]].dims)
    explicit = attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    geometry = dict(kernel=tuple(dims[2:]), strides=tuple(attributes.get("strides", (1, 1))),
                    pads=tuple(attributes.get("pads", (0, 0, 0, 0))))
    if node.op_type == "Conv" and len(dims) == 4 and explicit:
        form = rounding.WeightForm("conv", dims[1] * dims[2] * dims[3], groups=attributes.get("group", 1),
                                   dilations=tuple(attributes.get("dilations", (1, 1))), **geometry)
    elif (node.op_type == "ConvTranspose" and len(dims) == 4 and explicit and attributes.get("group", 1) == 1
          and set(attributes.get("dilations", [1])) == {1} and "output_shape" not in attributes
          and all(pad < size for pad, size in zip(geometry["pads"], geometry["kernel"] * 2))):
        form = rounding.WeightForm("transposed_conv", dims[0] * dims[2] * dims[3],
                                   output_padding=tuple(attributes.get("output_padding", (0, 0))), **geometry)
    elif node.op_type == "MatMul" and len(dims) == 2:
        form = rounding.WeightForm("matmul", dims[0])
    elif node.op_type == "Gemm" and len(dims) == 2 and not attributes.get("transA", 0):
        form = (rounding.WeightForm("matmul_t", dims[1]) if attributes.get("transB", 0)
                else rounding.WeightForm("matmul", dims[0]))
    else:
        return None
    return form if form.columns <= rounding.MAX_COLUMNS else None


class _Silenced(logging.Filter):
    """Drops the log records that mention ``words`` (ONNX Runtime's quantizer logs to the root logger)."""

    def __init__(self, words):
        super().__init__()
        self.words = words

    def filter(self, record):
        return self.words not in record.getMessage()


def fuse_lrn(proto):
    """Rewrite (in place) each cross-channel LRN that tf2onnx spelled out from keras_zoo's layer -- squares, a Pad
    and ``size`` Slices along the channels, their sum, ``* alpha / size + bias``, Transposes, ``Pow(beta)`` and the
    Div of the input by it -- as :func:`_lrn_nodes` and the same Transposes (ONNX Runtime's int8 GoogLeNet spent
    60% of its time in the spelled-out form, 48% in ONNX's own LRN). Returns the names of the arithmetic nodes
    written (their Transposes move int8 tensors as well as float ones)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {name: node for node in graph.node for name in node.output}
    readers = collections.Counter(name for node in graph.node for name in node.input)
    readers.update(value.name for value in graph.output)

    def scalar(name):
        value = constants.get(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def split(node):  # (the other input, the scalar constant) of a binary node with one scalar constant
        first, second = node.input
        return (second, scalar(first)) if scalar(first) is not None else (first, scalar(second))

    def through_transposes(name):  # (the tensor before a chain of Transposes, their perms in order)
        perms = []
        while name in producers and producers[name].op_type == "Transpose":
            perms.insert(0, list(helper.get_attribute_value(producers[name].attribute[0])))
            name = producers[name].input[0]
        return name, perms

    def lrn_of(division):  # the LRN's parts, or None when `division` is not one
        power = producers.get(division.input[1])
        if power is None or power.op_type != "Pow" or scalar(power.input[1]) is None:
            return None
        shifted, perms = through_transposes(power.input[0])
        add = producers.get(shifted)
        if add is None or add.op_type != "Add" or split(add)[1] is None:
            return None
        (scaled, bias) = split(add)
        mul = producers.get(scaled)
        if mul is None or mul.op_type != "Mul" or split(mul)[1] is None:
            return None
        (total, alpha_over_size) = split(mul)
        slices, adds, stack = [], [], [total]
        while stack:
            node = producers.get(stack.pop())
            if node is not None and node.op_type == "Add" and not any(scalar(name) is not None for name in node.input):
                adds.append(node)
                stack += list(node.input)
            elif node is not None and node.op_type == "Slice":
                slices.append(node)
            else:
                return None
        sources = {node.input[0] for node in slices}
        pad = producers.get(sources.pop()) if len(sources) == 1 else None
        if pad is None or pad.op_type != "Pad" or pad.input[1] not in constants:
            return None
        widths = constants[pad.input[1]].reshape(2, -1)
        axes = {int(constants[node.input[3]].reshape(-1)[0]) if len(node.input) > 3 else None for node in slices}
        starts = sorted(int(constants[node.input[1]].reshape(-1)[0]) for node in slices if node.input[1] in constants)
        steps = {int(constants[node.input[4]].reshape(-1)[0]) if len(node.input) > 4 else 1 for node in slices}
        zero_padded = all(helper.get_attribute_value(a) in (b"constant", "constant") for a in pad.attribute
                          if a.name == "mode") and (len(pad.input) < 3 or not pad.input[2] or scalar(pad.input[2]) == 0)
        square = producers.get(pad.input[0])
        if (square is None or square.op_type != "Mul" or square.input[0] != square.input[1] or axes != {1}
                or steps != {1} or starts != list(range(len(slices))) or not zero_padded
                or np.count_nonzero(widths) != 2 or widths[:, 1].tolist() != [(len(slices) - 1) // 2] * 2):
            return None
        source, numerator_perms = through_transposes(division.input[0])
        if source != square.input[0] or numerator_perms != perms:
            return None
        parts = [square, pad, *slices, *adds, mul, add, power, division]
        parts += [producers[name] for name in _transposed_names(power.input[0], producers)]
        parts += [producers[name] for name in _transposed_names(division.input[0], producers)]
        first = next(node for node in slices if int(constants[node.input[1]].reshape(-1)[0]) == 0)
        channels = int(constants[first.input[2]].reshape(-1)[0])
        return source, perms, parts, dict(size=len(slices), scale=alpha_over_size, beta=scalar(power.input[1]),
                                          bias=bias, channels=channels)

    fused, tried = [], set()
    while True:  # one LRN at a time: rewriting graph.node copies its nodes
        division = next((node for node in graph.node if node.op_type == "Div" and node.name not in tried), None)
        if division is None:
            _drop_unused_initializers(graph)  # the fused parts' constants
            return fused
        tried.add(division.name)
        found = lrn_of(division)
        if found is None:
            continue
        source, perms, parts, attributes = found
        inner = {name for node in parts for name in node.output} - {division.output[0]}
        if any(readers[name] > sum(name in node.input for node in parts) for name in inner):
            continue  # a part's output is read outside the LRN
        name = division.name
        channels_last = perms == [list(CHANNELS_LAST)]  # the Div's output was NHWC: the nodes' own layout
        new, weights = _lrn_nodes(source, division.output[0] if channels_last else f"{name}_lrn", name,
                                  channels_first=not channels_last, **attributes)
        graph.initializer.extend(weights)
        for index, perm in enumerate([] if channels_last else perms):
            last = index == len(perms) - 1
            new.append(helper.make_node("Transpose", [new[-1].output[0]],
                                        [division.output[0] if last else f"{name}_lrn_t{index}"],
                                        name=f"{name}_lrn_t{index}", perm=perm))
        _replace_nodes(graph, parts, new)
        producers = {output: node for node in graph.node for output in node.output}
        fused += [node.name for node in new if node.op_type != "Transpose"]


def fuse_prelu(proto):
    """Rewrite (in place) each PReLU that tf2onnx spelled out from Keras' layer -- ``Relu(x) + Mul(Relu(Neg(x)),
    -alpha)``, the Mul between Transposes to NHWC and back -- as one ``PRelu(x, alpha)``, which computes the same
    numbers (the negations are exact): ONNX Runtime's int8 form then quantizes each PReLU's input and output once
    instead of five tensors (FSRCNN: 38 quantized tensors before, 17 after). Returns the PRelu nodes' names."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    constants = {init.name: init for init in graph.initializer}
    producers = {name: node for node in graph.node for name in node.output}
    readers = collections.Counter(name for node in graph.node for name in node.input)
    readers.update(value.name for value in graph.output)

    def made_by(name, op_type):
        node = producers.get(name)
        return node if node is not None and node.op_type == op_type and readers[name] == 1 else None

    def negative_part(name):  # (x, slope in x's layout, the nodes) of Mul(Relu(Neg(x)), c), or None
        outer, nodes = None, []
        while made_by(name, "Transpose"):
            nodes.append(producers[name])
            outer, name = list(helper.get_attribute_value(producers[name].attribute[0])), producers[name].input[0]
        mul = made_by(name, "Mul")
        scale = next((constants[i] for i in mul.input if i in constants), None) if mul else None
        if scale is None:
            return None
        name = next(i for i in mul.input if i != scale.name)
        inner = None
        while made_by(name, "Transpose"):
            nodes.append(producers[name])
            inner, name = list(helper.get_attribute_value(producers[name].attribute[0])), producers[name].input[0]
        relu = made_by(name, "Relu")
        negation = made_by(relu.input[0], "Neg") if relu else None
        if negation is None or (outer is None) != (inner is None):
            return None
        slope = -numpy_helper.to_array(scale)
        if outer is not None:
            if len(outer) != len(inner) or [inner[axis] for axis in outer] != list(range(len(outer))):
                return None
            slope = slope.reshape((1,) * (len(outer) - slope.ndim) + slope.shape).transpose(outer)
        return negation.input[0], slope, nodes + [mul, relu, negation]

    fused = []
    for add in [node for node in graph.node if node.op_type == "Add"]:  # copies: graph.node is rewritten
        for positive, negative in (add.input, add.input[::-1]):
            relu, found = made_by(positive, "Relu"), negative_part(negative)
            if relu is None or found is None or relu.input[0] != found[0]:
                continue
            source, slope, parts = found
            weight = numpy_helper.from_array(slope.astype(np.float32), f"{add.name}_prelu_slope")
            graph.initializer.append(weight)
            prelu = helper.make_node("PRelu", [source, weight.name], [add.output[0]], name=f"{add.name}_prelu")
            _replace_nodes(graph, [relu, producers[add.output[0]], *parts], [prelu])
            producers = {output: node for node in graph.node for output in node.output}
            fused.append(prelu.name)
            break
    _drop_unused_initializers(graph)
    return fused


def _replace_nodes(graph, parts, new):
    """Replace (in place) the nodes ``parts`` (of ``graph.node`` as it is) by the nodes ``new``, placed where the
    first of the parts was: the parts' inputs come before it."""
    position = min(index for index, node in enumerate(graph.node) if any(node is part for part in parts))
    kept = [node for node in graph.node if all(node is not part for part in parts)]
    del graph.node[:]
    graph.node.extend(kept[:position] + list(new) + kept[position:])


def _drop_unused_initializers(graph):
    """Remove (in place) the initializers no node of ``graph`` reads (a rewrite's leftover constants)."""
    used = _used_names(graph)
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _lrn_nodes(source, output, name, *, size, scale, beta, bias, channels, channels_first):
    """(nodes, initializers) computing ``source / (bias + scale * sum of size squares across channels)^beta`` for
    NCHW ``source``, in NHWC (the layout ONNX Runtime's int8 kernels run in; back to NCHW when
    ``channels_first``): the squares as ``Pow(x, 2)`` (one int8 input dequantized for it, where ``Mul(x, x)`` has
    two), the sums as a MatMul of the squares with a band of ones (an SGEMM), a power of 0.75 or 0.5 as square
    roots (ONNX Runtime's general Pow is scalar ``std::pow``; its LRN kernel is no faster)."""
    from onnx import helper, numpy_helper

    half = (size - 1) // 2
    band = (np.abs(np.subtract.outer(np.arange(channels), np.arange(channels))) <= half) * np.float32(scale)
    weights = [numpy_helper.from_array(band.astype(np.float32), f"{name}_band"),
               numpy_helper.from_array(np.asarray(bias, np.float32), f"{name}_bias"),
               numpy_helper.from_array(np.asarray(2.0, np.float32), f"{name}_two")]
    last = f"{name}_nhwc"
    nodes = [helper.make_node("Transpose", [source], [last], name=last, perm=list(CHANNELS_LAST)),
             helper.make_node("Pow", [last, f"{name}_two"], [f"{name}_squares"], name=f"{name}_squares"),
             helper.make_node("MatMul", [f"{name}_squares", f"{name}_band"], [f"{name}_sums"], name=f"{name}_sums"),
             helper.make_node("Add", [f"{name}_sums", f"{name}_bias"], [f"{name}_base"], name=f"{name}_base")]
    if beta == 0.75:
        nodes += [helper.make_node("Sqrt", [f"{name}_base"], [f"{name}_root"], name=f"{name}_root"),
                  helper.make_node("Sqrt", [f"{name}_root"], [f"{name}_root4"], name=f"{name}_root4"),
                  helper.make_node("Mul", [f"{name}_root", f"{name}_root4"], [f"{name}_power"], name=f"{name}_power")]
    elif beta == 0.5:
        nodes.append(helper.make_node("Sqrt", [f"{name}_base"], [f"{name}_power"], name=f"{name}_power"))
    else:
        weights.append(numpy_helper.from_array(np.asarray(beta, np.float32), f"{name}_beta"))
        nodes.append(helper.make_node("Pow", [f"{name}_base", f"{name}_beta"], [f"{name}_power"], name=f"{name}_power"))
    divided = f"{name}_divided" if channels_first else output
    nodes.append(helper.make_node("Div", [last, f"{name}_power"], [divided], name=f"{name}_divide"))
    if channels_first:
        nodes.append(helper.make_node("Transpose", [divided], [output], name=f"{name}_nchw", perm=[0, 3, 1, 2]))
    return nodes, weights


def _transposed_names(name, producers):
    """The outputs of the chain of Transposes ending in ``name``."""
    names = []
    while name in producers and producers[name].op_type == "Transpose":
        names.append(name)
        name = producers[name].input[0]
    return names


def float_nodes(proto):
    """Names of the nodes of ``proto`` that ONNX Runtime's int8 form keeps float: each Softmax making a graph
    output and the nodes computing its logits back to their MatMul, Gemm or Conv (logits in 256 levels and
    probabilities in steps of 1/256 would tie the top classes), and each local response normalization
    x / (k + a * sum(x^2))^b, from its squares to its division (ONNX Runtime has no int8 kernel for it, and
    squares and sums in int8 lose it), and the image path (:func:`image_path`)."""
    producers = {name: node for node in proto.graph.node for name in node.output}
    consumers = collections.defaultdict(list)
    for node in proto.graph.node:
        for name in node.input:
            consumers[name].append(node)
    kept = []
    for value in proto.graph.output:
        node = producers.get(value.name)
        while node is not None and node.op_type in ("Identity", "Cast"):
            node = producers.get(node.input[0])
        if node is None or node.op_type != "Softmax":
            continue
        kept.append(node.name)
        node = producers.get(node.input[0])
        while node is not None and node.op_type in ("Add", "Reshape", "Flatten", "Squeeze", "Transpose",
                                                    "MatMul", "Gemm", "Conv"):
            kept.append(node.name)
            if node.op_type in ("MatMul", "Gemm", "Conv"):
                break
            node = next((producers[name] for name in node.input if name in producers), None)
    for power in (node for node in proto.graph.node if node.op_type == "Pow"):
        between, stack, squares = [], [power], 0
        while stack:  # back from the power to the squares
            node = stack.pop()
            if node.name in between or node.name in kept:
                continue
            between.append(node.name)
            if node.op_type == "Mul" and node.input[0] == node.input[1]:
                squares += 1
            else:
                stack += [producers[name] for name in node.input if name in producers
                          and producers[name].op_type in LRN_OPS]
        divisions = [node.name for node in consumers[power.output[0]] if node.op_type == "Div"]
        if squares and divisions:
            kept += between + divisions
    return kept + [name for name in image_path(proto) if name not in kept]


def image_path(proto):
    """Names of the nodes that compute an output of ``proto`` from its input through affine operators only
    (:data:`AFFINE_OPS`): the picture itself, as a super-resolution net's upsampling of its input image, whose
    int8 error would land in the output pixels (LapSRN x2 kept 76% of its PSNR gain over bicubic with it in
    int8, 89% with it float); a classifier's first convolution, followed by a ReLU, is not on it."""
    graph = proto.graph
    constants = {tensor.name for tensor in graph.initializer}
    constants |= {name for node in graph.node if node.op_type == "Constant" for name in node.output}
    affine = {value.name for value in graph.input} - constants  # tensors affine in the input
    for node in graph.node:
        varying = [name for name in node.input if name and name not in constants]
        if (node.op_type in AFFINE_OPS and varying and all(name in affine for name in varying)
                and (len(varying) == 1 or node.op_type in SUMMING_OPS)
                and (node.op_type != "Div" or varying == [node.input[0]])):  # x / c, not c / x
            affine.update(node.output)
    reaching, path = {value.name for value in graph.output}, []  # tensors an output is affine in
    for node in reversed(graph.node):
        if node.op_type in AFFINE_OPS and any(name in reaching for name in node.output):
            reaching.update(node.input)
            if all(name in affine for name in node.output):
                path.append(node.name)
    return path[::-1]


def keep_outputs(proto, count):
    """Keep the first ``count`` graph outputs of ``proto`` (in place) and drop the nodes only the others used:
    a check graph (with the logits as extra outputs) made the graph written, node for node."""
    graph = proto.graph
    del graph.output[count:]
    while True:
        used = _used_names(graph) | {value.name for value in graph.output}
        kept = [node for node in graph.node if any(name in used for name in node.output)]
        if len(kept) == len(graph.node):
            return proto
        del graph.node[:]
        graph.node.extend(kept)


def _used_names(graph):
    """Every tensor name the nodes of ``graph`` read, their subgraphs' (If, Loop) included."""
    used = set()
    for node in graph.node:
        used.update(node.input)
        for attribute in node.attribute:
            for subgraph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                used |= _used_names(subgraph)
    return used


def export_onnx(model, output, *, samples, reference, reference_logits=None, batch=None,
                opset=DEFAULT_OPSET, name="model", speed_batch=None, threads=None):
    """Write ``model`` as an ONNX file after checking it with ONNX Runtime against ``reference``.

    Outputs a softmax makes are judged on their logits (``reference_logits``, ``{output index: array}``;
    default: ``model``'s own): the graph is converted with them as extra outputs, checked, and written
    without them (:func:`keep_outputs`), then checked again. ONNX Runtime and the speed runs take batches of
    ``batch``, else ``speed_batch``, else 8 images of up to 256x256 and fewer of larger ones (FCN-8s at
    500x500 holds gigabytes of activations per image); the report times the file alone on ``threads`` threads
    (default: every core). Returns the :class:`~export.report.ParityReport`; ``output`` is written atomically,
    only when it passed.
    """
    check, positions = common.with_logits(model)
    reference_logits = common.given_logits(model, samples, reference_logits) if positions else {}
    proto = convert_onnx(check, batch=batch, opset=opset)
    output = pathlib.Path(output)
    speed_batch = batch or speed_batch or max(1, min(8, 8 * 256 * 256 // (samples.shape[1] * samples.shape[2])))
    result = None
    with atomic_output(output) as tmp:
        checked = None
        if len(proto.graph.output) > len(model.outputs):  # the check graph (with the logits) first
            write_onnx(proto, tmp)
            checked = OnnxRunner(tmp, batch=speed_batch)(samples)
            keep_outputs(proto, len(model.outputs))
        write_onnx(proto, tmp)
        runner = OnnxRunner(tmp, batch=speed_batch)
        candidate = runner(samples)
        candidate_logits = common.check_logits(checked or candidate, positions)
        speed = report_speeds(
            onnxruntime=lambda: time_artifact(tmp, kind="onnx", batch=speed_batch, num_threads=threads),
            keras=lambda: measure(model.predict_on_batch, samples, batch=speed_batch, threads=cpu_threads()))
        result = report.build_report(
            format="onnx", model=name, artifact=output, precision="float32", candidate=candidate,
            reference=reference, candidate_logits=candidate_logits, reference_logits=reference_logits,
            file_size=common.path_size(tmp.parent), speed=speed,
            notes=[f"opset {opset}, batch {batch or 'dynamic'}", f"operators: {', '.join(operator_types(proto))}"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def export_onnx_int8(source, output, *, samples, reference, calibration, name="model", target="onnxruntime"):
    """Write the QDQ int8 form of the ONNX file ``source`` for ``target`` (:func:`quantize_int8`) after checking
    its top-1 agreement in ONNX Runtime: the CPU form on this CPU's int8 kernels, TensorRT's as written (QDQ
    in float: TensorRT's int8 sums do not overflow, while x86 kernels without VNNI overflow on its weights)."""
    output = pathlib.Path(output)
    result = None
    form = {"onnxruntime": "uint8 activations, 7-bit per-channel weights (U8S8, for ONNX Runtime on any x86 CPU)",
            "tensorrt": "symmetric int8 activations and per-channel weights (for TensorRT)"}
    with atomic_output(output) as tmp:
        quantize_int8(source, tmp, calibration, target=target)
        runner = OnnxRunner(tmp, optimize=target == "onnxruntime")
        result = report.build_report(
            format="onnx", model=name, artifact=output, precision="int8", candidate=runner(samples),
            reference=reference, file_size=tmp.stat().st_size,
            speed=report_speeds(onnxruntime=lambda: time_artifact(tmp, kind="onnx", batch=8)),
            notes=[f"QDQ int8: {form[target]}, calibrated on {len(calibration)} images"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def convert_fp16(source):
    """The float16 form of the ONNX file ``source`` with float32 inputs and outputs (Casts at both ends), as
    TensorRT's strongly typed networks build fp16 engines from; onnxconverter-common's converter."""
    from onnxconverter_common import float16

    # values past float16's largest finite 65504 are clipped (the converter's default clips past 1e4)
    return float16.convert_float_to_float16(load_onnx(source), keep_io_types=True, max_finite_val=65504.0)


def add_logits_outputs(proto):
    """Add to ``proto`` (in place), for each graph output a Softmax makes (through Identity and Cast nodes),
    the tensor that Softmax takes, cast to float32, as a further output ``<output>_logits``; returns ``{output
    index: position}`` as :func:`export.common.with_logits` (for ONNX files, such as their float16 forms, made
    without the logits)."""
    from onnx import TensorProto, helper

    graph = proto.graph
    producers = {name: node for node in graph.node for name in node.output}
    names = [value.name for value in graph.output]
    positions = {}
    for index, name in enumerate(names):
        node = producers.get(name)
        while node is not None and node.op_type in ("Identity", "Cast"):
            node = producers.get(node.input[0])
        if node is None or node.op_type != "Softmax":
            continue
        logits = f"{name}_logits"
        graph.node.append(helper.make_node("Cast", [node.input[0]], [logits], name=logits, to=TensorProto.FLOAT))
        graph.output.append(helper.make_tensor_value_info(logits, TensorProto.FLOAT, None))
        positions[index] = len(graph.output) - 1
    return positions


def export_onnx_fp16(source, output, *, samples, reference, reference_logits=None, name="model"):
    """Write the float16 form of the ONNX file ``source`` after checking it with ONNX Runtime against
    ``reference`` at float16's thresholds; returns the report (``output`` written only when it passed).

    With ``reference_logits`` (``{output index: array}``), outputs a Softmax makes are judged on their
    logits: the graph is checked with them as extra outputs (:func:`add_logits_outputs`), then written without
    them and checked again."""
    import onnxconverter_common

    proto = convert_fp16(source)
    count = len(proto.graph.output)
    positions = add_logits_outputs(proto) if reference_logits else {}
    output = pathlib.Path(output)
    result = None
    with atomic_output(output) as tmp:
        checked = []
        if positions:  # the check graph (with the logits) first
            write_onnx(proto, tmp)
            checked = OnnxRunner(tmp)(samples)
            keep_outputs(proto, count)
        write_onnx(proto, tmp)
        runner = OnnxRunner(tmp)
        result = report.build_report(
            format="onnx", model=name, artifact=output, precision="float16", candidate=runner(samples),
            reference=reference, candidate_logits=common.check_logits(checked, positions),
            reference_logits=reference_logits, file_size=common.path_size(tmp.parent),
            speed=report_speeds(onnxruntime=lambda: time_artifact(tmp, kind="onnx", batch=8)),
            notes=[f"float16 weights and activations, float32 inputs and outputs (onnxconverter-common "
                   f"{onnxconverter_common.__version__})"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def main(argv=None):
    parser = common.make_parser("python -m export.onnx", __doc__)
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="also write OUT with .int8.onnx: explicit (QDQ) int8 for ONNX Runtime on the CPU "
                             "(export.trt writes TensorRT's)")
    common.add_calibration_options(parser, 32)
    options = parser.parse_args(argv)
    return common.run_main(lambda _: _main(options), argv)


def _main(options):
    job = common.prepare_job(options, "{name}.onnx")
    result = export_onnx(job.model, job.output, samples=job.samples, reference=job.reference,
                         reference_logits=job.reference_logits, batch=options.batch, opset=options.opset,
                         name=job.name, threads=options.threads)
    status = report.finish(result, job.report_path, untrained=job.resolved.untrained)
    if status or not options.quantize:
        return status
    calibration = common.calibration_images(job, options)
    int8_path = job.output.with_suffix(".int8.onnx")
    result = export_onnx_int8(job.output, int8_path, samples=job.samples, reference=job.reference,
                              calibration=calibration, name=job.name)
    return report.finish(result, int8_path.parent / f"{int8_path.name}.report.json",
                         untrained=job.resolved.untrained)


if __name__ == "__main__":
    sys.exit(main())
