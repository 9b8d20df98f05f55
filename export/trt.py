"""``python -m export.trt MODEL``: a TensorRT engine, built from the verified ONNX model with TensorRT's API.

Keras -> ONNX (dynamic batch, operators TensorRT parses; checked with ONNX Runtime against Keras) ->
TensorRT engine (fp32, fp16 or int8; an optimization profile over --min-batch..--max-batch) -> checked
against Keras on the GPU. int8 comes from explicit quantization (a QDQ ONNX calibrated on representative
images; TensorRT >= 10) or from TensorRT's entropy calibrator over the same images (older TensorRT).

An engine belongs to one GPU model and one TensorRT version, so it is built where it runs. On a machine
without an NVIDIA GPU or without the ``tensorrt`` package the command still writes and verifies the ONNX,
then exits with status 3 and prints the commands that build the engine on the target.
"""

import logging
import pathlib
import shlex
import sys

import numpy as np

from export import common, onnx as onnx_export, report
from keras_zoo.files import Rejected, atomic_output

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": "float32", "fp16": "float16", "int8": "int8"}  # -> report precision (thresholds)
NO_ENGINE_STATUS = 3  # the ONNX is written and verified, but no engine can be built on this machine


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


def make_calibrator(images, batch, cache_path=None):
    """A TensorRT ``IInt8EntropyCalibrator2`` feeding ``images`` (float32 NHWC) in batches of ``batch``."""
    import tensorrt as trt

    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise common.ExportError(f"TensorRT {trt.__version__} has no implicit int8 calibration: use "
                                 "--int8-mode explicit")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.buffer = DeviceBuffer(images[:batch].nbytes)

        def get_batch_size(self):
            return batch

        def get_batch(self, names):
            if self.index + batch > len(images):
                return None
            self.buffer.upload(images[self.index:self.index + batch])
            self.index += batch
            return [int(self.buffer.pointer)]

        def read_calibration_cache(self):
            if cache_path and pathlib.Path(cache_path).is_file():
                return pathlib.Path(cache_path).read_bytes()
            return None

        def write_calibration_cache(self, cache):
            if cache_path:
                with atomic_output(cache_path) as tmp:
                    tmp.write_bytes(bytes(cache))

    return EntropyCalibrator()


def default_int8_mode():
    """'explicit' (QDQ ONNX) from TensorRT 10 on, where implicit calibration is deprecated; else 'calibrate'."""
    import tensorrt as trt

    return "explicit" if int(trt.__version__.split(".")[0]) >= 10 else "calibrate"


def build_engine(onnx_path, *, precision="fp16", batch_range=(1, 8, 32), calibration=None, int8_mode="explicit",
                 workspace_gb=4.0):
    """Serialized engine bytes built from an ONNX file with TensorRT's Python API.

    ``batch_range`` = (min, opt, max) of the optimization profile over the dynamic batch dimension.
    ``precision='int8'`` with ``int8_mode='calibrate'`` uses an entropy calibrator over ``calibration``
    images; with ``'explicit'`` the ONNX must already carry QDQ nodes (:func:`export.onnx.quantize_int8`).
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    explicit_batch = 0
    if int(trt.__version__.split(".")[0]) < 10:
        explicit_batch = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(explicit_batch)
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
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if int8_mode == "calibrate":
            if calibration is None:
                raise common.ExportError("int8 calibration needs representative images")
            config.int8_calibrator = make_calibrator(np.asarray(calibration, np.float32), batch_range[0])
            config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise common.ExportError(f"{onnx_path}: TensorRT could not build a {precision} engine (see its log)")
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
        return common.run_batched(self._run_chunk, np.ascontiguousarray(images, np.float32), self.max_batch,
                                  pad=False)


def engine_output_order(runner, keras_names):
    """Indices putting the engine's outputs in the Keras model's output order."""
    return [runner.outputs.index(name) for name in keras_names]


def export_engine(onnx_path, output, *, samples, reference, output_names, precision="fp16",
                  batch_range=(1, 8, 32), calibration=None, int8_mode="explicit", name="model"):
    """Build, check and write (atomically, only when it passed) a TensorRT engine; returns the report."""
    engine = build_engine(onnx_path, precision=precision, batch_range=batch_range, calibration=calibration,
                          int8_mode=int8_mode)
    output = pathlib.Path(output)
    result = None
    with atomic_output(output) as tmp:
        tmp.write_bytes(engine)
        runner = EngineRunner(engine, max_batch=batch_range[2])
        order = engine_output_order(runner, output_names)
        candidate = runner(samples)
        import tensorrt as trt

        result = report.build_report(
            format="tensorrt", model=name, artifact=output, precision=PRECISIONS[precision],
            candidate=[candidate[i] for i in order], reference=reference, file_size=len(engine),
            speed={"tensorrt": report.measure_speed(runner, samples, batch=batch_range[1])},
            notes=[f"TensorRT {trt.__version__}, {precision}"
                   + (f" ({int8_mode} int8)" if precision == "int8" else ""),
                   f"batch profile min/opt/max {'/'.join(map(str, batch_range))}"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def build_instructions(model, onnx_path, precision, size, batch_range, channels=3):
    """The commands that build the engine on the target GPU host (a few lines of text)."""
    shapes = {key: f"{onnx_export.INPUT_NAME}:{batch}x{size[0]}x{size[1]}x{channels}"
              for key, batch in zip(("min", "opt", "max"), batch_range)}
    trtexec = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={pathlib.Path(onnx_path).stem}.{precision}.engine",
               *(f"--{key}Shapes={value}" for key, value in shapes.items())]
    if precision in ("fp16", "int8"):
        trtexec.append("--fp16")
    if precision == "int8":
        trtexec.append("--int8")
    return "\n".join([
        "Engines belong to one GPU model and one TensorRT version: build the engine on the target host "
        "(NVIDIA GPU, TensorRT >= 8.6 with its Python package, cuda-python) with",
        f"  python -m export.trt {shlex.quote(str(model))} --precision {precision}",
        "or, from the verified ONNX file copied there, with TensorRT's trtexec:",
        "  " + " ".join(shlex.quote(part) for part in trtexec),
    ])


def main(argv=None):
    parser = common.make_parser("python -m export.trt", __doc__)
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default="fp16", help="engine precision")
    parser.add_argument("--min-batch", type=int, default=1, help="smallest batch of the optimization profile")
    parser.add_argument("--opt-batch", type=int, default=8, help="batch TensorRT tunes the kernels for")
    parser.add_argument("--max-batch", type=int, default=32, help="largest batch of the optimization profile")
    parser.add_argument("--int8-mode", choices=["auto", "explicit", "calibrate"], default="auto",
                        help="explicit QDQ quantization (TensorRT >= 10) or the entropy calibrator; "
                             "auto: by the TensorRT version")
    common.add_calibration_options(parser, 64)
    parser.add_argument("--opset", type=int, default=onnx_export.DEFAULT_OPSET, help="ONNX opset")
    options = parser.parse_args(argv)
    return common.run_main(lambda _: _main(options), argv)


def _main(options):
    batch_range = ((options.batch,) * 3 if options.batch
                   else (options.min_batch, options.opt_batch, options.max_batch))
    if not 1 <= batch_range[0] <= batch_range[1] <= batch_range[2]:
        raise common.ExportError(f"batches must grow: 1 <= min {batch_range[0]} <= opt {batch_range[1]} <= max "
                                 f"{batch_range[2]}")
    job = common.prepare_job(options, "{name}." + options.precision + ".engine")
    onnx_path = job.output.with_name(f"{job.name}.onnx")
    result = onnx_export.export_onnx(job.model, onnx_path, samples=job.samples, reference=job.reference,
                                     opset=options.opset, name=job.name)
    status = report.finish(result, onnx_path.parent / f"{onnx_path.name}.report.json")
    if status:
        return status
    calibration = None
    if options.precision == "int8":
        calibration = common.calibration_images(job, options)
    why_not = tensorrt_unavailable()
    int8_mode = options.int8_mode
    if options.precision == "int8" and (int8_mode == "explicit" or (int8_mode == "auto" and (
            why_not is not None or default_int8_mode() == "explicit"))):
        int8_mode = "explicit"
        qdq_path = onnx_path.with_name(f"{job.name}.int8.onnx")
        qdq = onnx_export.export_onnx_int8(onnx_path, qdq_path, samples=job.samples, reference=job.reference,
                                           calibration=calibration, name=job.name)
        status = report.finish(qdq, qdq_path.parent / f"{qdq_path.name}.report.json")
        if status:
            return status
        onnx_path = qdq_path
    if why_not is not None:
        print(f"error: no TensorRT engine built on this machine: {why_not}.\n"
              f"The ONNX model {onnx_path} is written and verified.\n"
              + build_instructions(options.model, onnx_path, options.precision, job.size, batch_range,
                                   common.input_channels(job.model)), file=sys.stderr)
        return NO_ENGINE_STATUS
    result = export_engine(onnx_path, job.output, samples=job.samples, reference=job.reference,
                           output_names=onnx_export.output_names(job.model), precision=options.precision,
                           batch_range=batch_range, calibration=calibration,
                           int8_mode="calibrate" if int8_mode == "auto" else int8_mode, name=job.name)
    return report.finish(result, job.report_path)


if __name__ == "__main__":
    sys.exit(main())
