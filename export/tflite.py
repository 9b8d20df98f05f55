"""``python -m export.tflite MODEL``: a TFLite / LiteRT flatbuffer made of builtin operators only.

Quantizations: ``float32``; ``float16`` (half-precision weights); ``dynamic`` (int8 weights, activations
quantized on the fly); ``int8`` (full integer: weights and activations int8, calibrated on a representative
set of images, float32 input and output; the LRN's SQUARE, POW and DIV and a SOFTMAX stay float); ``int16x8``
(int8 weights, int16 activations, calibrated likewise: for what 8-bit activations lose, such as a
super-resolution net's picture and a classifier's near ties; LiteRT's reference kernels on a CPU, slower than
float; the operators LiteRT has no 16-bit kernel for, such as PRELU and the LRN's, stay float). The file runs in the
``ai-edge-litert`` interpreter; its input is float32 RGB 0..255, (batch, H, W, 3), the model's preprocessing
inside.

A model with a layer that no builtin operator computes as Keras does is refused with one error naming each
such layer: a detection head (the SSD fork's DetectionOutput: greedy NMS, a loop over the candidates; TFLite's
WHILE runs it wrongly: export the network up to the head's inputs instead), and the layers that mix or change
the samples of a batch (Caffe's axis-0 Concat, Slice, Tile..., ROIPooling), which a fixed-batch file run chunk by
chunk cannot reproduce. SavedModel and ONNX carry the whole model.
"""

import logging
import pathlib
import sys
import tempfile
import warnings

import numpy as np

from export import common, equalization, report, rounding
from export.runners import TFLITE_SIGNATURE as SIGNATURE, TFLiteRunner, cpu_threads
from export.speed import measure, report_speeds, time_artifact
from keras_zoo import layers as zoo_layers
from keras_zoo.files import Rejected, atomic_output
from keras_zoo.layers import DetectionOutput, batch_mixing

log = logging.getLogger(__name__)

# quantization -> the precision whose thresholds it must meet (export.report.THRESHOLDS)
QUANTIZATIONS = {"float32": "float32", "float16": "float16", "dynamic": "int8", "int8": "int8", "int16x8": "int8"}
CALIBRATED = ("int8", "int16x8")  # the quantizations with integer activations, calibrated on representative images
# operators a full-int8 model keeps in float: LRN's squares, fractional power and division lose the
# classes in int8 (CIFAR-10 full: top-1 agreement 94% with them in float, far lower without); an int8 SOFTMAX
# gives probabilities in steps of 1/256, which tie the best classes (GoogLeNet, random weights: top-1 agreement
# 0% with it in int8, 94% in float)
FLOAT_IN_INT8 = ["SQUARE", "POW", "DIV", "SOFTMAX"]
WEIGHT_LEVELS = 127  # LiteRT's int8 weights (in int8 and int16x8): symmetric per output channel, -127..127
INTERPRETER_DEPRECATED = r"\s*Warning: tf\.lite\.Interpreter is deprecated"  # TensorFlow's own, for its own calls


def output_keys(model):
    """Signature output names, in the model's output order."""
    return [f"output_{index}" for index in range(len(model.outputs))]


def _refuse_non_builtin_layers(model):
    """One ExportError naming every layer of ``model`` (nested models included) that a .tflite file of builtin
    operators cannot compute as Keras does: a DetectionOutput (its NMS is a loop over the candidates) and the layers
    whose output batch is not their input's sample by sample (:func:`keras_zoo.layers.batch_mixing`: Caffe's
    axis-0 Concat, Slice, Crop, Flatten, Softmax, ArgMax, Tile, Reduction, a Parameter blob of its own batch,
    ROIPooling), which a file of a fixed batch of images, run chunk by chunk, cannot reproduce."""
    problems = []

    def visit(outer):
        for layer in outer.layers:
            mixing = batch_mixing(layer)
            if isinstance(layer, DetectionOutput):
                problems.append(
                    f"layer '{layer.name}' (DetectionOutput) has no TFLite builtin form (its NMS is a loop over the "
                    f"candidates): export keras.Model(model.input, model.get_layer('{layer.name}').input), the "
                    "network without its detection head, and run the head (keras_zoo.layers.DetectionOutput) on its "
                    "outputs")
            elif mixing:
                problems.append(f"layer '{layer.name}' ({mixing}) has no TFLite builtin form "
                                "computing it as Keras does: a .tflite file takes a fixed batch of images, run chunk "
                                "by chunk, while this layer mixes or changes the samples of the whole batch")
            if hasattr(layer, "layers"):  # a nested model
                visit(layer)

    visit(model)
    if problems:
        raise common.ExportError(f"{model.name}: " + "; ".join(problems) + "; SavedModel and ONNX carry the whole "
                                 "model")


def convert_tflite(model, *, quantization="float32", batch=1, representative=None):
    """The ``.tflite`` bytes of ``model`` (builtin operators only, checked).

    ``representative`` (float32 images like the model's input) calibrates ``'int8'`` and ``'int16x8'``.
    """
    import keras
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise common.ExportError(f"unknown quantization {quantization!r} (choose from {', '.join(QUANTIZATIONS)})")
    if quantization in CALIBRATED and representative is None:
        raise common.ExportError(f"{quantization} quantization needs representative images")
    _refuse_non_builtin_layers(model)
    if quantization in CALIBRATED:
        model = calibrated_copy(model, np.asarray(representative, np.float32), quantization, batch=batch)
    keys = output_keys(model)

    def serve(images):
        outputs = model(images, training=False)
        return dict(zip(keys, outputs if isinstance(outputs, (list, tuple)) else [outputs]))

    shape = (batch, *model.inputs[0].shape[1:])
    if None in shape[1:]:
        raise common.ExportError(f"{model.name}: TFLite needs a fixed input size; the model takes {shape[1:]} "
                                 "(pass --input-size H,W)")
    with tempfile.TemporaryDirectory(prefix="keras_zoo_tflite.") as workdir:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE, serve, input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
        archive.write_out(workdir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(workdir, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization in CALIBRATED:
            # integer kernels everywhere but FLOAT_IN_INT8 (int8) or where LiteRT has none (int16x8): float builtins
            integer = (tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantization == "int8" else
                       tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)
            converter.target_spec.supported_ops = [integer, tf.lite.OpsSet.TFLITE_BUILTINS]
            images = np.resize(representative, (max(len(representative) // batch, 1) * batch,
                                                *representative.shape[1:])).astype(np.float32)

            def calibration():
                return ({"images": images[i:i + batch]} for i in range(0, len(images), batch))

            converter.representative_dataset = calibration
        try:
            with warnings.catch_warnings():  # TensorFlow's calibrator runs tf.lite.Interpreter, which warns of itself
                warnings.filterwarnings("ignore", INTERPRETER_DEPRECATED, UserWarning)
                if quantization == "int8":
                    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=FLOAT_IN_INT8)
                    content = tf.lite.experimental.QuantizationDebugger(
                        converter=converter, debug_dataset=calibration,
                        debug_options=options).get_nondebug_quantized_model()
                else:
                    content = converter.convert()
        except Exception as error:  # the converter raises its own ConverterError and others
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise common.ExportError(f"{model.name}: TFLite conversion ({quantization}) failed: {first}") from None
    non_builtin = [name for name in operators(content) if not name.isupper() or name.startswith("FLEX")]
    if non_builtin:
        raise common.ExportError(f"{model.name}: the TFLite model needs non-builtin operators: "
                                 f"{', '.join(sorted(set(non_builtin)))}")
    return rescale_shared_biases(content) if quantization in CALIBRATED else content


# operator -> positions of its (activation, weights, bias) inputs
BIASED_INPUTS = {"CONV_2D": (0, 1, 2), "DEPTHWISE_CONV_2D": (0, 1, 2), "FULLY_CONNECTED": (0, 1, 2),
                 "CONV_3D": (0, 1, 2), "TRANSPOSE_CONV": (2, 1, 3), "CONV_3D_TRANSPOSE": (2, 1, 3)}
INTEGER_BIASES = {"INT32": np.int32, "INT64": np.int64}


def _enum_names(enum):
    """{value: name} of a flatbuffer schema enum (BuiltinOperator, TensorType)."""
    return {value: key for key, value in vars(enum).items() if not key.startswith("_")}


def _unpacked(content):
    """The object form (``ModelT``) of a ``.tflite`` flatbuffer, or None for one keeping its buffers past its end
    (over 2 GB), which cannot be rewritten here."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    return None if any(buffer.offset > 1 for buffer in model.buffers or []) else model


def _packed(model, size_hint):
    """The ``.tflite`` bytes of a ``ModelT``."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 2**16)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def rescale_shared_biases(content):
    """``content`` with each integer bias on the scale its operator computes with, input scale x weight scale.

    A layer called twice (MS-LapSRN's recursions) is one bias constant in the converter's graph; in int16x8 it
    quantizes that constant once, on the first call's input scale, and every later call, whose input has another
    scale, adds it rescaled by the ratio (MS-LapSRN x2: the second recursion's features 28% off, the picture worse
    than bicubic). Each such operator gets its own copy of the bias, requantized from the shared one onto its scale.
    The int8 converter copies the constant itself: its files come back unchanged. So does a file keeping its
    buffers past its end (over 2 GB), which this cannot rewrite (the parity check judges it as it is)."""
    from ai_edge_litert import schema_py_generated as schema

    names, types = _enum_names(schema.BuiltinOperator), _enum_names(schema.TensorType)
    model = _unpacked(content)
    if model is None:
        return content
    changed = False
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            code = model.operatorCodes[operator.opcodeIndex]
            positions = BIASED_INPUTS.get(names.get(max(code.builtinCode, code.deprecatedBuiltinCode)))
            if positions is None or len(operator.inputs) <= positions[2] or operator.inputs[positions[2]] < 0:
                continue
            activation, weights, bias = (subgraph.tensors[operator.inputs[i]] for i in positions)
            dtype = INTEGER_BIASES.get(types[bias.type])
            if dtype is None or any(_scales(tensor) is None for tensor in (activation, weights, bias)):
                continue
            wanted = _scales(activation)[0] * _scales(weights) * np.ones_like(_scales(bias))
            if np.allclose(_scales(bias), wanted, rtol=1e-5, atol=0):
                continue
            subgraph.tensors.append(_requantized(schema, model, bias, dtype, wanted))
            operator.inputs = [len(subgraph.tensors) - 1 if i == positions[2] else index
                               for i, index in enumerate(operator.inputs)]
            changed = True
    return _packed(model, len(content)) if changed else content


def _scales(tensor):
    """A quantized tensor's scales (float64), or None."""
    scale = tensor.quantization.scale if tensor.quantization is not None else None
    return None if scale is None or not len(scale) else np.asarray(scale, np.float64)


def _requantized(schema, model, bias, dtype, wanted):
    """A copy of the integer ``bias`` tensor on the scales ``wanted``, its values in a new buffer of ``model``."""
    values = np.frombuffer(np.asarray(model.buffers[bias.buffer].data, np.uint8).tobytes(), dtype)
    limit = np.iinfo(dtype)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.clip(np.round(values * _scales(bias) / wanted), limit.min, limit.max)
                                .astype(dtype).tobytes(), np.uint8)
    model.buffers.append(buffer)
    quantization = schema.QuantizationParametersT()
    vars(quantization).update({**vars(bias.quantization), "scale": [float(v) for v in wanted]})
    copy = schema.TensorT()
    vars(copy).update({**vars(bias), "quantization": quantization, "buffer": len(model.buffers) - 1,
                       "name": (bias.name or b"") + b"/rescaled"})
    return copy


def calibrated_copy(model, images, quantization, *, batch=1):
    """The copy of ``model`` that convert_tflite converts for ``quantization`` ``'int8'`` or ``'int16x8'``: its
    channels equalized (int8 only: int16 activations have levels to spare, and the next layers' weights would
    lose) and its weights rounded onto LiteRT's grid, both measured on ``images``."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if quantization == "int8":
        equalize_channels(copy, images, batch=batch)
    round_onto_grid(copy, images, batch=batch)
    return copy


def _batches(probe, images, batch):
    """The outputs (a list) of ``probe`` on ``images``, ``batch`` at a time (the last images repeated to fill it)."""
    for start in range(0, len(images), batch):
        found = probe.predict_on_batch(np.resize(images[start:start + batch], (batch, *images.shape[1:])))
        yield found if isinstance(found, (list, tuple)) else [found]


def equalize_channels(model, images, *, batch=1):
    """Equalize (in place) the output channels' ranges of each Conv2D whose outputs reach a Conv2D or Deconv2D
    (ungrouped) only through a ReLU, leaky ReLU or PReLU, or directly (:mod:`export.equalization`), the ranges
    measured on ``images``. Layers called more than once are left as they are. Returns the pairs' names."""
    import keras

    members, ends = {id(layer) for layer in model.layers}, {id(tensor) for tensor in model.outputs}
    pairs = []
    for layer in model.layers:
        following = _single_reader(layer, members, ends)
        if following is not None and _commutes_with_scaling(following):
            following = _single_reader(following, members, ends)
        if (isinstance(layer, zoo_layers.Conv2D) and isinstance(following, (zoo_layers.Conv2D, zoo_layers.Deconv2D))
                and following.groups == 1):
            pairs.append((layer, following))
    if not pairs:
        return []
    peaks = equalization.Peaks()
    for found in _batches(keras.Model(model.inputs, [layer.output for layer, _ in pairs]), images, batch):
        for (layer, _), outputs in zip(pairs, found):
            peaks.add(layer.name, outputs, axis=-1)
    for layer, following in pairs:
        factors = peaks.factors(layer.name)
        layer.kernel.assign(equalization.scaled(layer.kernel, factors, -1))
        if layer.use_bias:
            layer.bias.assign(equalization.scaled(layer.bias, factors, 0))
        # input channels: Conv2D's kernel (kh, kw, C, O) axis 2, Deconv2D's (kh, kw, O, C) axis 3
        axis = 2 if isinstance(following, zoo_layers.Conv2D) else 3
        following.kernel.assign(equalization.scaled(following.kernel, factors, axis, divide=True))
    return [(layer.name, following.name) for layer, following in pairs]


def _single_reader(layer, members, ends):
    """The one layer reading ``layer``'s output, where both are called once and are among ``members`` (ids of a
    model's layers) and the output is none of ``ends`` (ids of the model's outputs); else None."""
    if (len(getattr(layer, "_inbound_nodes", [])) != 1 or len(layer._outbound_nodes) != 1
            or id(layer.output) in ends):
        return None
    reader = layer._outbound_nodes[0].operation
    return reader if id(reader) in members and len(getattr(reader, "_inbound_nodes", [])) == 1 else None


def _commutes_with_scaling(layer):
    """Whether ``layer`` computes ``f(a x) = a f(x)`` for every a > 0 per channel: ReLU (unbounded, threshold 0),
    leaky ReLU, PReLU."""
    import keras

    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and float(layer.threshold) == 0.0
    return isinstance(layer, (keras.layers.LeakyReLU, keras.layers.PReLU))


def round_onto_grid(model, images, *, batch=1):
    """Round (in place) the Conv2D, Deconv2D, InnerProduct and Dense kernels of ``model`` onto LiteRT's int8 grid
    (:data:`WEIGHT_LEVELS`) by :mod:`export.rounding`, their inputs measured on ``images``, so that the converter
    quantizes them as they are. Layers called more than once, grouped or dilated Deconv2D and InnerProducts not
    over all of their input are left to the converter's rounding. Returns the names of the layers rounded."""
    import keras

    layers = [(layer, form) for layer in model.layers if (form := _weight_form(layer)) is not None]
    if not layers:
        return []
    moments = rounding.Moments(batches=-(-len(images) // batch))
    for found in _batches(keras.Model(model.inputs, [layer.input for layer, _ in layers]), images, batch):
        for (layer, form), inputs in zip(layers, found):
            inputs = np.asarray(inputs)
            if not isinstance(layer, keras.layers.Dense):  # NHWC -> NCHW, the order of the rows' columns
                inputs = inputs.transpose(0, inputs.ndim - 1, *range(1, inputs.ndim - 1))
            moments.add(layer.name, form, inputs)
    for layer, form in layers:
        kernel = np.asarray(layer.kernel)
        in_onnx_layout = kernel if form.op == "matmul" else kernel.transpose(3, 2, 0, 1)
        rounded = moments.rounded(layer.name, form, in_onnx_layout, WEIGHT_LEVELS)
        layer.kernel.assign(rounded if form.op == "matmul" else rounded.transpose(2, 3, 1, 0))
    return [layer.name for layer, _ in layers]


def _weight_form(layer):
    """The :class:`export.rounding.WeightForm` of a layer's kernel in ONNX's layout (keras_zoo's Conv2D
    (kh, kw, C, O) -> (O, C, kh, kw) and Deconv2D (kh, kw, O, C) -> (C, O, kh, kw); InnerProduct's and Dense's
    (K, O) as it is), or None where round_onto_grid leaves it to the converter."""
    import keras

    if len(getattr(layer, "_inbound_nodes", [])) != 1:
        return None
    if isinstance(layer, zoo_layers.Conv2D):
        top, bottom, left, right = layer.pads
        form = rounding.WeightForm("conv", int(np.prod(layer.kernel.shape[:3])), groups=layer.groups,
                                   kernel=layer.kernel_size, strides=layer.strides, pads=(top, left, bottom, right),
                                   dilations=layer.dilation)
    elif (isinstance(layer, zoo_layers.Deconv2D) and layer.groups == 1 and layer.dilation == (1, 1)
          and max(layer.crops[:2]) < layer.kernel_size[0] and max(layer.crops[2:]) < layer.kernel_size[1]):
        (top, bottom, left, right), (height, width, _, channels) = layer.crops, layer.kernel.shape
        form = rounding.WeightForm("transposed_conv", channels * height * width, kernel=layer.kernel_size,
                                   strides=layer.strides, pads=(top, left, bottom, right))
    elif (isinstance(layer, zoo_layers.InnerProduct) and None not in layer.input.shape[1:]
          and layer.kernel.shape[0] == np.prod(layer.input.shape[1:]) or isinstance(layer, keras.layers.Dense)):
        form = rounding.WeightForm("matmul", layer.kernel.shape[0])
    else:
        return None
    return form if form.columns <= rounding.MAX_COLUMNS else None


def operators(content):
    """Names of the operator codes in a ``.tflite`` flatbuffer: builtin names (``CONV_2D``) upper case,
    custom operators (``FlexConv2D``, ``my_op``) as their custom code."""
    from ai_edge_litert import schema_py_generated as schema

    names = _enum_names(schema.BuiltinOperator)
    flatbuffer = schema.Model.GetRootAsModel(content, 0)
    result = []
    for index in range(flatbuffer.OperatorCodesLength()):
        code = flatbuffer.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            result.append(code.CustomCode().decode())
        else:
            result.append(names.get(builtin, f"BUILTIN_{builtin}"))
    return result


def keep_outputs(content, count):
    """The ``.tflite`` bytes ``content`` with only its first ``count`` signature outputs (``output_0`` ...):
    a check model's flatbuffer (:func:`export.common.with_logits`) without its extra outputs, operator for
    operator. None for a flatbuffer keeping its buffers past its end (over 2 GB), which this cannot rewrite."""
    model = _unpacked(content)
    if model is None:
        return None
    signature = next(s for s in model.signatureDefs if s.signatureKey.decode() == SIGNATURE)
    dropped = {item.tensorIndex for item in signature.outputs
               if int(item.name.decode().rsplit("_", 1)[1]) >= count}
    signature.outputs = [item for item in signature.outputs if item.tensorIndex not in dropped]
    subgraph = model.subgraphs[signature.subgraphIndex]
    subgraph.outputs = [index for index in subgraph.outputs if index not in dropped]
    return _packed(model, len(content))


def export_tflite(model, output, *, samples, reference, reference_logits=None, quantization="float32",
                  representative=None, batch=1, name="model", threads=None):
    """Write ``model`` as a ``.tflite`` file after checking it against ``reference`` on ``samples``.

    In float, outputs a softmax makes are judged on their logits (``reference_logits``, ``{output index:
    array}``; default: ``model``'s own): the model is converted with them as extra outputs, checked, and
    written without them (:func:`keep_outputs`), then checked again; the report times the file alone on ``threads``
    threads (default: every core; :func:`export.speed.time_artifact`). Returns the
    :class:`~export.report.ParityReport`; ``output`` is written atomically, only when it passed.
    """
    precision = QUANTIZATIONS.get(quantization)
    check, positions = common.with_logits(model) if precision in ("float32", "float16") else (model, {})
    reference_logits = common.given_logits(model, samples, reference_logits) if positions else {}
    options = {"quantization": quantization, "batch": batch,
               "representative": samples if representative is None else representative}
    checked = convert_tflite(check, **options)
    content = checked if check is model else keep_outputs(checked, len(model.outputs))
    if content is None:
        content = convert_tflite(model, **options)
    output = pathlib.Path(output)
    result = None
    with atomic_output(output) as tmp:
        tmp.write_bytes(content)
        runner = TFLiteRunner(tmp)
        candidate = runner(samples)
        candidate_logits = common.check_logits(candidate if checked is content else TFLiteRunner(checked)(samples),
                                               positions)
        speed = report_speeds(litert=lambda: time_artifact(tmp, kind="tflite", batch=batch, num_threads=threads),
                              keras=lambda: measure(model.predict_on_batch, samples, batch=batch, threads=cpu_threads()))
        ops = sorted(set(operators(content)))
        result = report.build_report(format="tflite", model=name, artifact=output, precision=precision,
                                     candidate=candidate, reference=reference, candidate_logits=candidate_logits,
                                     reference_logits=reference_logits, file_size=len(content), speed=speed,
                                     notes=[f"quantization: {quantization}", f"LiteRT kernels: {runner.kernels}",
                                            f"operators: {', '.join(ops)}"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def main(argv=None):
    parser = common.make_parser("python -m export.tflite", __doc__)
    parser.add_argument("--quantization", "-q", choices=sorted(QUANTIZATIONS), default="float32",
                        help="float32, float16 weights, dynamic-range int8, full int8, or int8 weights with int16 "
                             "activations")
    common.add_calibration_options(parser, 32, "full int8 and int16x8")
    options = parser.parse_args(argv)
    return common.run_main(lambda _: _main(options), argv)


def _main(options):
    job = common.prepare_job(options, "{name}." + options.quantization + ".tflite")
    representative = None
    if options.quantization in CALIBRATED:
        representative = common.calibration_images(job, options)
    result = export_tflite(job.model, job.output, samples=job.samples, reference=job.reference,
                           reference_logits=job.reference_logits, quantization=options.quantization,
                           representative=representative, batch=options.batch or 1, name=job.name,
                           threads=options.threads)
    return report.finish(result, job.report_path, untrained=job.resolved.untrained)


if __name__ == "__main__":
    sys.exit(main())
