"""``python -m export.trt MODEL``: a TensorRT engine, built from the verified ONNX model with TensorRT's API.

Keras -> ONNX (dynamic batch, operators TensorRT parses; checked with ONNX Runtime against Keras) ->
TensorRT engine (fp32, fp16 or int8; an optimization profile over --min-batch..--max-batch) -> checked
against Keras on the GPU. TensorRT 8.6, 10.x and 11.x build differently (:func:`build_plan`): fp16 from the
float16 ONNX (float32 inputs and outputs) in a strongly typed network on 10.x and 11.x, from the float32 ONNX
with the FP16 builder flag on 8.6; int8 always from the explicitly quantized (QDQ) ONNX, calibrated on
representative images. Each ONNX is checked with ONNX Runtime before TensorRT sees it and written beside the
engine: OUT.onnx, OUT.fp16.onnx, OUT.int8.onnx for -o OUT.engine.

An engine belongs to one GPU model and one TensorRT version, so it is built where it runs. On a machine
without an NVIDIA GPU or without the ``tensorrt`` package the command still writes and verifies the ONNX
files, then exits with status 3 and prints the commands that build the engine on the target.
"""

import dataclasses
import logging
import pathlib
import re
import shlex
import sys

import numpy as np

from export import common, onnx as onnx_export, report
from export.batches import run_batched
from export.speed import measure, report_speeds
from keras_zoo.files import Rejected, atomic_output

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": "float32", "fp16": "float16", "int8": "int8"}  # -> report precision (thresholds)
NO_ENGINE_STATUS = 3  # the ONNX files are written and verified, but no engine can be built on this machine


def _cudart():
    """CUDA's runtime API from the ``cuda-python`` package (either of its module layouts)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    return runtime


def tensorrt_unavailable():
    """Why no engine can be built here (a sentence), or None when TensorRT and a GPU are usable."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "the 'tensorrt' Python package is not installed"
    try:
        cudart = _cudart()
    except ImportError:
        return "the 'cuda-python' package (CUDA runtime bindings for device buffers) is not installed"
    error, count = cudart.cudaGetDeviceCount()
    if error != cudart.cudaError_t.cudaSuccess or count == 0:
        return "no NVIDIA GPU is visible to the CUDA runtime"
    return None


def _check(result):
    """The value of a cuda-python call ``(error, value...)``; raises ExportError on a CUDA error."""
    cudart = _cudart()
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        raise common.ExportError(f"CUDA error: {cudart.cudaGetErrorString(error)[1].decode()}")
    return values[0] if len(values) == 1 else values


class DeviceBuffer:
    """A block of GPU memory, copied to and from numpy arrays."""

    def __init__(self, nbytes):
        self.nbytes = int(nbytes)
        self.pointer = _check(_cudart().cudaMalloc(self.nbytes))

    def upload(self, array):
        array = np.ascontiguousarray(array)
        cudart = _cudart()
        _check(cudart.cudaMemcpy(self.pointer, array.ctypes.data, array.nbytes,
                                 cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))

    def download(self, array):
        cudart = _cudart()
        _check(cudart.cudaMemcpy(array.ctypes.data, self.pointer, array.nbytes,
                                 cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost))
        return array

    def free(self):
        if self.pointer is not None:
            _check(_cudart().cudaFree(self.pointer))
            self.pointer = None


# --------------------------------------------------------------------------------------------- TensorRT versions

# One version of each family, for the instructions printed where no TensorRT is installed.
FAMILIES = ("8.6", "10.0", "11.0")


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """How one TensorRT version builds one precision: the ONNX it parses and the flags, by TensorRT's names."""

    tensorrt: str  # the version the plan is for
    family: str  # '8.6', '10.x' or '11.x'
    precision: str  # fp32 | fp16 | int8
    onnx: str  # which verified ONNX: 'fp32' (OUT.onnx), 'fp16' (OUT.fp16.onnx), 'int8' (OUT.int8.onnx, QDQ)
    network_flags: tuple = ()  # NetworkDefinitionCreationFlag members
    builder_flags: tuple = ()  # BuilderFlag members set
    cleared_flags: tuple = ()  # BuilderFlag members cleared
    trtexec_flags: tuple = ()  # trtexec's options for the same build
    note: str = ""


def build_plan(version, precision):
    """The :class:`BuildPlan` of TensorRT ``version`` (its ``__version__`` string) for ``precision``.

    8.6: weakly typed (EXPLICIT_BATCH; FP16 flag for fp16; INT8 and FP16 flags on the QDQ ONNX for int8).
    10.x: strongly typed (STRONGLY_TYPED); fp16 from the float16 ONNX, int8 from the QDQ ONNX.
    11.x: every network strongly typed, no precision flags exist; the same ONNX files as 10.x.
    fp32 engines clear TF32 (on by default), which rounds convolution inputs to 10-bit mantissas.
    Raises ExportError for anything else (older than 8.6, 9.x, not a version).
    """
    if precision not in PRECISIONS:
        raise common.ExportError(f"unknown precision {precision!r}: one of {', '.join(PRECISIONS)}")
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)*(?:[.+-]?[A-Za-z][\w.+-]*)?",
                         version.strip()) if isinstance(version, str) else None
    if match is None:
        raise common.ExportError(f"{version!r} is not a TensorRT version (MAJOR.MINOR[.PATCH[.BUILD]], e.g. "
                                 "10.13.3.9)")
    major, minor = int(match[1]), int(match[2])
    supported = "export.trt supports TensorRT 8.6, 10.x and 11.x"
    if (major, minor) < (8, 6):
        raise common.ExportError(f"TensorRT {version} is older than 8.6: {supported}")
    if major == 9:
        raise common.ExportError(f"TensorRT {version} (the 9.x early-access releases) is not supported: {supported}")
    tf32 = ("TF32",) if precision == "fp32" else ()
    no_tf32 = ("--noTF32",) if precision == "fp32" else ()
    if major == 8:
        flags = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}[precision]
        return BuildPlan(version, "8.6", precision, "int8" if precision == "int8" else "fp32",
                         network_flags=("EXPLICIT_BATCH",), builder_flags=flags, cleared_flags=tf32,
                         trtexec_flags=(*(f"--{flag.lower()}" for flag in flags), *no_tf32))
    if major == 10:
        return BuildPlan(version, "10.x", precision, precision, network_flags=("STRONGLY_TYPED",),
                         cleared_flags=tf32, trtexec_flags=("--stronglyTyped", *no_tf32))
    note = "" if major == 11 else (f"TensorRT {version} is newer than 11.x, the newest export.trt was written "
                                   "for: built as with 11.x, and checked against Keras as always")
    return BuildPlan(version, "11.x", precision, precision, cleared_flags=tf32, trtexec_flags=no_tf32, note=note)


def local_plan(precision):
    """The plan of the installed ``tensorrt`` package for ``precision``."""
    import tensorrt

    return build_plan(tensorrt.__version__, precision)


def onnx_files(engine_path):
    """The verified ONNX files an engine is built from, beside it: {'fp32': OUT.onnx, 'fp16': OUT.fp16.onnx,
    'int8': OUT.int8.onnx}, OUT the engine's path less its suffix and a precision before it
    (``r152.engine`` -> ``r152``, ``ResNet152.fp16.engine`` -> ``ResNet152``)."""
    path = pathlib.Path(engine_path)
    base, dot, last = path.stem.rpartition(".")
    stem = base if dot and last in PRECISIONS else path.stem
    return {"fp32": path.with_name(f"{stem}.onnx"), "fp16": path.with_name(f"{stem}.fp16.onnx"),
            "int8": path.with_name(f"{stem}.int8.onnx")}


# --------------------------------------------------------------------------------------------- engines

def build_engine(onnx_paths, *, precision="fp16", batch_range=(1, 8, 32), workspace_gb=4.0, plan=None):
    """Serialized engine bytes built with TensorRT's Python API, as ``plan`` (default: the installed
    TensorRT's :func:`build_plan` for ``precision``) says: it parses ``onnx_paths[plan.onnx]`` (``onnx_paths``
    maps 'fp32' / 'fp16' / 'int8' to ONNX files, as :func:`onnx_files`).

    ``batch_range`` = (min, opt, max) of the optimization profile over the dynamic batch dimension.
    """
    import tensorrt as trt

    plan = plan or build_plan(trt.__version__, precision)
    if plan.note:
        log.warning("%s", plan.note)
    onnx_path = onnx_paths.get(plan.onnx)
    if onnx_path is None:
        raise common.ExportError(f"TensorRT {plan.tensorrt} builds {plan.precision} engines from the {plan.onnx} "
                                 "ONNX, which was not given")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    creation_flags = 0
    for flag in plan.network_flags:
        creation_flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, flag))
    network = builder.create_network(creation_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # finds a model's external weights file beside it
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise common.ExportError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, *[(size, *shape) for size in batch_range])
    config.add_optimization_profile(profile)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan.cleared_flags:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise common.ExportError(f"{onnx_path}: TensorRT {plan.tensorrt} could not build a {plan.precision} "
                                 "engine (see its log)")
    return bytes(serialized)


class EngineRunner:
    """Runs a serialized TensorRT engine on numpy images (inputs and outputs copied through the GPU)."""

    def __init__(self, engine_bytes, *, max_batch):
        import tensorrt as trt

        self.trt = trt
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise common.ExportError("TensorRT could not load the engine (another GPU or TensorRT version?)")
        self.context = self.engine.create_execution_context()
        self.max_batch = max_batch
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def _run_chunk(self, chunk):
        trt = self.trt
        name = self.inputs[0]
        self.context.set_input_shape(name, chunk.shape)
        buffers = {name: DeviceBuffer(chunk.nbytes)}
        buffers[name].upload(chunk)
        results = {}
        try:
            for output in self.outputs:
                shape = tuple(self.context.get_tensor_shape(output))
                results[output] = np.empty(shape, trt.nptype(self.engine.get_tensor_dtype(output)))
                buffers[output] = DeviceBuffer(results[output].nbytes)
            for tensor, buffer in buffers.items():
                self.context.set_tensor_address(tensor, int(buffer.pointer))
            if not self.context.execute_async_v3(0):
                raise common.ExportError("TensorRT failed to run the engine")
            _check(_cudart().cudaDeviceSynchronize())
            return [buffers[output].download(results[output]).astype(np.float32) for output in self.outputs]
        finally:
            for buffer in buffers.values():
                buffer.free()

    def __call__(self, images):
        return run_batched(self._run_chunk, np.ascontiguousarray(images, np.float32), self.max_batch,
                                  pad=False)


def engine_output_order(runner, keras_names):
    """Indices putting the engine's outputs in the Keras model's output order."""
    return [runner.outputs.index(name) for name in keras_names]


def export_engine(onnx_paths, output, *, samples, reference, output_names, reference_logits=None,
                  precision="fp16", batch_range=(1, 8, 32), name="model", plan=None):
    """Build (from ``onnx_paths`` as :func:`build_engine`), check and write (atomically, only when it passed)
    a TensorRT engine; returns the report.

    With ``reference_logits`` (``{output index: array}``), fp32 and fp16 engines are judged on the logits of the
    outputs a softmax makes: the engine is built from a copy of the ONNX with those logits as further outputs
    ``<output>_logits`` (:func:`export.onnx.add_logits_outputs`), and the engine written is the one checked, so it
    has those outputs too."""
    plan = plan or local_plan(precision)
    output = pathlib.Path(output)
    result = None
    with atomic_output(output) as tmp:
        paths, positions = dict(onnx_paths), {}
        if reference_logits and plan.onnx != "int8":  # int8 is judged on top-1 agreement and PSNR, not logits
            proto = onnx_export.load_onnx(onnx_paths[plan.onnx])
            positions = onnx_export.add_logits_outputs(proto)
            if positions:
                paths[plan.onnx] = tmp.with_name(pathlib.Path(onnx_paths[plan.onnx]).name)
                onnx_export.write_onnx(proto, paths[plan.onnx])
        engine = build_engine(paths, batch_range=batch_range, plan=plan)
        for written in set(paths.values()) - set(onnx_paths.values()):  # the check copy is no artifact
            for path in (pathlib.Path(written), pathlib.Path(f"{written}.data")):
                path.unlink(missing_ok=True)
        tmp.write_bytes(engine)
        runner = EngineRunner(engine, max_batch=batch_range[2])
        logit_names = {index: f"{output_names[index]}_logits" for index in positions}
        order = engine_output_order(runner, output_names)
        candidate = runner(samples)
        flags = [*plan.network_flags, *plan.builder_flags, *(f"no {flag}" for flag in plan.cleared_flags)]
        result = report.build_report(
            format="tensorrt", model=name, artifact=output, precision=PRECISIONS[precision],
            candidate=[candidate[i] for i in order], reference=reference,
            candidate_logits={index: candidate[runner.outputs.index(logits)] for index, logits in logit_names.items()},
            reference_logits=reference_logits if positions else None, file_size=len(engine),
            speed=report_speeds(tensorrt=lambda: measure(runner, samples, batch=batch_range[1])),
            notes=[f"TensorRT {plan.tensorrt}, {precision} from {pathlib.Path(onnx_paths[plan.onnx]).name}"
                   + (f" ({', '.join(flags)})" if flags else ""),
                   f"batch profile min/opt/max {'/'.join(map(str, batch_range))}", *filter(None, [plan.note]),
                   *([f"the engine also outputs {', '.join(logit_names.values())} (the scores before the softmax "
                      "it was judged on)"] if logit_names else [])])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


# --------------------------------------------------------------------------------------------- instructions

def trtexec_command(plan, paths, engine, size, batch_range, channels=3):
    """trtexec's command line building ``engine`` as ``plan`` says, from ``paths`` (as :func:`onnx_files`)."""
    shapes = [f"--{key}Shapes={onnx_export.INPUT_NAME}:{batch}x{size[0]}x{size[1]}x{channels}"
              for key, batch in zip(("min", "opt", "max"), batch_range)]
    return shlex.join(["trtexec", f"--onnx={paths[plan.onnx]}", f"--saveEngine={engine}", *shapes,
                       *plan.trtexec_flags])


def build_instructions(command, paths, engine, precision, size, batch_range, channels=3):
    """The commands that build the engine on the target GPU host (a few lines of text): ``command`` (this
    command line, as :func:`command_line`), then trtexec's, one per TensorRT family."""
    lines = ["Engines belong to one GPU model and one TensorRT version: build the engine on the target host "
             "(NVIDIA GPU, TensorRT 8.6, 10.x or 11.x with its Python package, cuda-python) with",
             f"  {command}",
             "or, from the verified ONNX files copied there, with TensorRT's trtexec:"]
    for version in FAMILIES:
        plan = build_plan(version, precision)
        lines += [f"  # TensorRT {plan.family}",
                  "  " + trtexec_command(plan, paths, engine, size, batch_range, channels)]
    return "\n".join(lines)


# every option that changes what gets built or checked, repeated by command_line: (flag, destination)
REPEATED_OPTIONS = (("-o", "output"), ("--weights", "weights"), ("--batch", "batch"), ("--min-batch", "min_batch"),
                    ("--opt-batch", "opt_batch"), ("--max-batch", "max_batch"), ("--input-size", "input_size"),
                    ("--samples", "samples"), ("--num-samples", "num_samples"),
                    ("--representative", "representative"), ("--num-representative", "num_representative"),
                    ("--keep-batchnorm", "keep_batchnorm"), ("--opset", "opset"), ("--report", "report"))


def command_line(parser, options):
    """``python -m export.trt MODEL --precision P ...`` repeating every option of ``options`` that matters
    and differs from ``parser``'s default."""
    words = ["python", "-m", "export.trt", str(options.model), "--precision", options.precision]
    for flag, dest in REPEATED_OPTIONS:
        value = getattr(options, dest)
        if value == parser.get_default(dest):
            continue
        if value is True:
            words.append(flag)
        else:
            words += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return shlex.join(words)


# --------------------------------------------------------------------------------------------- command

def make_parser():
    parser = common.make_parser("python -m export.trt", __doc__)
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default="fp16", help="engine precision")
    parser.add_argument("--min-batch", type=int, default=1, help="smallest batch of the optimization profile")
    parser.add_argument("--opt-batch", type=int, default=8, help="batch TensorRT tunes the kernels for")
    parser.add_argument("--max-batch", type=int, default=32, help="largest batch of the optimization profile")
    common.add_calibration_options(parser, 64)
    parser.add_argument("--opset", type=int, default=onnx_export.DEFAULT_OPSET, help="ONNX opset")
    return parser


def main(argv=None):
    parser = make_parser()
    options = parser.parse_args(argv)
    return common.run_main(lambda _: _main(options, command_line(parser, options)), argv)


def _main(options, command):
    batch_range = ((options.batch,) * 3 if options.batch
                   else (options.min_batch, options.opt_batch, options.max_batch))
    if not 1 <= batch_range[0] <= batch_range[1] <= batch_range[2]:
        raise common.ExportError(f"batches must grow: 1 <= min {batch_range[0]} <= opt {batch_range[1]} <= max "
                                 f"{batch_range[2]}")
    why_not = tensorrt_unavailable()
    plan = None if why_not else local_plan(options.precision)  # an unsupported TensorRT fails here, early
    job = common.prepare_job(options, "{name}." + options.precision + ".engine")
    paths = onnx_files(job.output)
    if job.output in paths.values():
        raise common.ExportError(f"{job.output}: the engine would overwrite its own ONNX file: name it "
                                 "OUT.engine")
    # the ONNX files the build needs: this TensorRT's, or, to build elsewhere, those of every family
    needed = {plan.onnx} if plan else {build_plan(version, options.precision).onnx for version in FAMILIES}
    result = onnx_export.export_onnx(job.model, paths["fp32"], samples=job.samples, reference=job.reference,
                                     reference_logits=job.reference_logits, opset=options.opset, name=job.name)
    status = report.finish(result, _report_path(paths["fp32"]), untrained=job.resolved.untrained)
    if status:
        return status
    if "fp16" in needed:
        result = onnx_export.export_onnx_fp16(paths["fp32"], paths["fp16"], samples=job.samples,
                                              reference=job.reference, reference_logits=job.reference_logits,
                                              name=job.name)
        status = report.finish(result, _report_path(paths["fp16"]), untrained=job.resolved.untrained)
        if status:
            return status
    if "int8" in needed:
        result = onnx_export.export_onnx_int8(paths["fp32"], paths["int8"], samples=job.samples,
                                              reference=job.reference, calibration=common.calibration_images(
                                                  job, options), name=job.name, target="tensorrt")
        status = report.finish(result, _report_path(paths["int8"]), untrained=job.resolved.untrained)
        if status:
            return status
    if why_not is not None:
        written = ", ".join(str(paths[kind]) for kind in ("fp32", "fp16", "int8") if kind == "fp32" or kind in needed)
        print(f"error: no TensorRT engine built on this machine: {why_not}.\n"
              f"The ONNX files {written} are written and verified.\n"
              + build_instructions(command, paths, job.output, options.precision, job.size, batch_range,
                                   common.input_channels(job.model)), file=sys.stderr)
        return NO_ENGINE_STATUS
    result = export_engine(paths, job.output, samples=job.samples, reference=job.reference,
                           output_names=onnx_export.output_names(job.model),
                           reference_logits=job.reference_logits, precision=options.precision,
                           batch_range=batch_range, name=job.name, plan=plan)
    return report.finish(result, job.report_path, untrained=job.resolved.untrained)


def _report_path(path):
    return path.parent / f"{path.name}.report.json"


if __name__ == "__main__":
    sys.exit(main())
