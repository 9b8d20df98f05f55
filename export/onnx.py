"""``python -m export.onnx MODEL``: an ONNX model with a dynamic batch, made of operators TensorRT parses.

The input is ``images``: float32 RGB 0..255, (batch, H, W, 3), NHWC as in Keras, the model's preprocessing
inside; the outputs carry the Keras model's output names. ``--quantize int8`` also writes the explicitly
quantized (QDQ, symmetric int8) model that TensorRT builds int8 engines from, calibrated on representative
images and checked with ONNX Runtime.
"""

import collections
import logging
import pathlib
import sys

import numpy as np

from export import common, report
from keras_zoo.files import Rejected, atomic_output

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
INPUT_NAME = "images"
BATCH_DIM = "batch"
EXTERNAL_DATA_BYTES = 2**31 - 2**24  # protobuf's 2 GB limit, less room for the graph
WEIGHT_PREFIX = "keras_weight_"  # graph inputs standing for the weights during conversion
# where int8 QDQ pairs go (TensorRT fuses them into int8 kernels); other operators stay in float
QUANTIZED_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm"]

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


class OnnxRunner:
    """Runs an ONNX file with ONNX Runtime (CPU), any number of images."""

    def __init__(self, path, *, batch=8):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        fixed = self.session.get_inputs()[0].shape[0]
        self.batch = fixed if isinstance(fixed, int) else batch
        self.fixed = isinstance(fixed, int)

    def __call__(self, images):
        return common.run_batched(lambda chunk: self.session.run(None, {INPUT_NAME: chunk}),
                                  np.asarray(images, np.float32), self.batch, pad=self.fixed)


def quantize_int8(source, output, calibration):
    """Write the explicitly quantized (QDQ) int8 form of the ONNX file ``source``, as TensorRT wants it:
    symmetric int8 activations and per-channel weights at the inputs of the compute-heavy operators,
    scales calibrated on ``calibration`` images (99.999th percentile of |x|)."""
    from onnxruntime import quantization

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration[i:i + 1] for i in range(len(calibration)))

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {INPUT_NAME: item}

    output = pathlib.Path(output)
    with atomic_output(output) as tmp:
        quantization.quantize_static(
            str(source), str(tmp), Reader(), quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.Percentile, op_types_to_quantize=QUANTIZED_OPS,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return output


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
                opset=DEFAULT_OPSET, name="model", speed_batch=None):
    """Write ``model`` as an ONNX file after checking it with ONNX Runtime against ``reference``.

    Outputs a softmax makes are judged on their logits (``reference_logits``, ``{output index: array}``;
    default: ``model``'s own): the graph is converted with them as extra outputs, checked, and written
    without them (:func:`keep_outputs`), then checked again. ONNX Runtime and the speed runs take batches of
    ``batch``, else ``speed_batch``, else 8 images of up to 256x256 and fewer of larger ones (FCN-8s at
    500x500 holds gigabytes of activations per image).

    Returns the :class:`~export.report.ParityReport`; ``output`` is written atomically, only when it passed.
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
        speed = {"keras": report.measure_speed(model.predict_on_batch, samples, batch=speed_batch),
                 "onnxruntime": report.measure_speed(runner, samples, batch=speed_batch)}
        result = report.build_report(
            format="onnx", model=name, artifact=output, precision="float32", candidate=candidate,
            reference=reference, candidate_logits=candidate_logits, reference_logits=reference_logits,
            file_size=common.path_size(tmp.parent), speed=speed,
            notes=[f"opset {opset}, batch {batch or 'dynamic'}", f"operators: {', '.join(operator_types(proto))}"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def export_onnx_int8(source, output, *, samples, reference, calibration, name="model"):
    """Write the QDQ int8 form of the ONNX file ``source`` after checking its top-1 agreement."""
    output = pathlib.Path(output)
    result = None
    with atomic_output(output) as tmp:
        quantize_int8(source, tmp, calibration)
        runner = OnnxRunner(tmp)
        result = report.build_report(
            format="onnx", model=name, artifact=output, precision="int8", candidate=runner(samples),
            reference=reference, file_size=tmp.stat().st_size,
            speed={"onnxruntime": report.measure_speed(runner, samples, batch=8)},
            notes=[f"QDQ int8 (symmetric), calibrated on {len(calibration)} images"])
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
            speed={"onnxruntime": report.measure_speed(runner, samples, batch=8)},
            notes=[f"float16 weights and activations, float32 inputs and outputs (onnxconverter-common "
                   f"{onnxconverter_common.__version__})"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def main(argv=None):
    parser = common.make_parser("python -m export.onnx", __doc__)
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="also write OUT with .int8.onnx: explicit (QDQ) int8 for TensorRT")
    common.add_calibration_options(parser, 32)
    options = parser.parse_args(argv)
    return common.run_main(lambda _: _main(options), argv)


def _main(options):
    job = common.prepare_job(options, "{name}.onnx")
    result = export_onnx(job.model, job.output, samples=job.samples, reference=job.reference,
                         reference_logits=job.reference_logits, batch=options.batch, opset=options.opset,
                         name=job.name)
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
