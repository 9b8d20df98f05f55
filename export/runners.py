"""Runners of exported artifacts on this machine's CPU: ``runner(images) -> [outputs]`` for any number of images.

Every runner uses all the cores this process may run on (:func:`cpu_threads`) unless told a number: LiteRT's
interpreter would otherwise run one thread and ONNX Runtime would pick its own. Each imports its runtime only
when made, so that timing one (:mod:`export.speed`) loads no other.
"""

import logging
import os
import pathlib

import numpy as np

from export.batches import run_batched
from keras_zoo.startup import quiet_stderr

log = logging.getLogger(__name__)

TFLITE_SIGNATURE = "serving_default"
ONNX_INPUT = "images"


def cpu_threads():
    """The number of cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class TFLiteRunner:
    """A ``.tflite`` file (or its bytes) in LiteRT's interpreter: XNNPACK kernels where it takes the graph."""

    def __init__(self, model, *, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.num_threads = num_threads or cpu_threads()
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        self.kernels = "XNNPACK"
        try:
            with quiet_stderr():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = Interpreter(**source, num_threads=self.num_threads)
                self.interpreter.allocate_tensors()
        except RuntimeError as error:  # XNNPACK refuses some mixed int8/float graphs: the plain kernels run them
            log.warning("LiteRT's XNNPACK delegate refused the model (%s); using the builtin kernels",
                        str(error)[:80])
            self.kernels = "builtin"
            plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            self.interpreter = Interpreter(**source, num_threads=self.num_threads,
                                           experimental_op_resolver_type=plain)
        self.runner = self.interpreter.get_signature_runner(TFLITE_SIGNATURE)
        details = self.runner.get_input_details()["images"]
        self.batch, self.fixed = int(details["shape"][0]), True
        self.keys = sorted(self.runner.get_output_details(), key=lambda key: int(key.rsplit("_", 1)[1]))

    def __call__(self, images):
        """Outputs (list, one array per model output) for ``images`` (float32, NHWC)."""
        def run(chunk):
            outputs = self.runner(images=chunk)
            return [outputs[key] for key in self.keys]
        return run_batched(run, np.asarray(images, np.float32), self.batch, pad=True)


def onnx_session_options(num_threads=None, *, optimize=True):
    """ONNX Runtime's session options as keras_zoo runs a model: every optimization, one operator at a time on
    ``num_threads`` threads (default: all cores). ``optimize=False``: each operator as the file writes it, no
    fusion, so a QDQ int8 graph runs in float what its quantized values mean (not this CPU's int8 kernels)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = (onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = num_threads or cpu_threads()
    options.inter_op_num_threads = 1
    return options


class OnnxRunner:
    """An ONNX file in ONNX Runtime on the CPU (:func:`onnx_session_options`, ``optimize`` too); a graph of any
    batch size runs ``batch`` images at a time."""

    def __init__(self, path, *, batch=8, num_threads=None, optimize=True):
        import onnxruntime

        self.num_threads = num_threads or cpu_threads()
        self.session = onnxruntime.InferenceSession(str(path), onnx_session_options(self.num_threads,
                                                                                    optimize=optimize),
                                                    providers=["CPUExecutionProvider"])
        fixed = self.session.get_inputs()[0].shape[0]
        self.batch = fixed if isinstance(fixed, int) else batch
        self.fixed = isinstance(fixed, int)

    def __call__(self, images):
        return run_batched(lambda chunk: self.session.run(None, {ONNX_INPUT: chunk}),
                           np.asarray(images, np.float32), self.batch, pad=self.fixed)


class SavedModelRunner:
    """A SavedModel's ``serving_default`` signature in TensorFlow (its outputs in key order)."""

    def __init__(self, path, *, batch=8, num_threads=None):
        import tensorflow as tf

        self.num_threads = num_threads or cpu_threads()
        tf.config.threading.set_intra_op_parallelism_threads(self.num_threads)
        self.function = tf.saved_model.load(str(path)).signatures["serving_default"]
        fixed = self.function.structured_input_signature[1]["images"].shape[0]
        self.batch, self.fixed = (fixed, True) if fixed else (batch, False)
        self.keys = sorted(self.function.structured_outputs)
        self._constant = tf.constant

    def __call__(self, images):
        def run(chunk):
            outputs = self.function(images=self._constant(chunk))
            return [outputs[key].numpy() for key in self.keys]
        return run_batched(run, np.asarray(images, np.float32), self.batch, pad=self.fixed)


class KerasRunner:
    """A ``.keras`` file in Keras (``predict_on_batch``)."""

    def __init__(self, path, *, batch=8, num_threads=None):
        import tensorflow as tf

        from keras_zoo.weights import load_keras_file

        self.num_threads = num_threads or cpu_threads()
        tf.config.threading.set_intra_op_parallelism_threads(self.num_threads)
        self.model = load_keras_file(path)
        self.batch, self.fixed = batch, False

    def __call__(self, images):
        def run(chunk):
            outputs = self.model.predict_on_batch(chunk)
            return outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return run_batched(run, np.asarray(images, np.float32), self.batch, pad=False)


class OpenCVCaffeRunner:
    """A Caffe prototxt + caffemodel in OpenCV's DNN module (the Caffe runtime a Caffe user reaches for): NHWC
    images in, the net's first output (moved to channels-last when 4-D) out."""

    def __init__(self, prototxt, *, weights, batch=8, num_threads=None):
        try:
            import cv2
        except ImportError:
            raise ImportError("OpenCV DNN needs opencv-python-headless<5 (pip install -e '.[test]')") from None
        self.num_threads = num_threads or cpu_threads()
        cv2.setNumThreads(self.num_threads)
        self.net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
        self.net.enableWinograd(False)  # Caffe's own arithmetic
        self.batch, self.fixed = batch, False

    def __call__(self, images):
        def run(chunk):
            self.net.setInput(np.ascontiguousarray(chunk.transpose(0, 3, 1, 2)))
            output = self.net.forward()
            return [output.transpose(0, 2, 3, 1) if output.ndim == 4 else output]
        return run_batched(run, np.asarray(images, np.float32), self.batch, pad=False)


KINDS = {"tflite": TFLiteRunner, "onnx": OnnxRunner, "saved_model": SavedModelRunner, "keras": KerasRunner,
         "opencv": OpenCVCaffeRunner}


def artifact_kind(path):
    """The kind of an artifact (a key of :data:`KINDS`) by its name: ``.tflite``, ``.onnx``, ``.keras``, a
    ``.prototxt`` (OpenCV DNN) or a SavedModel folder."""
    path = pathlib.Path(path)
    kind = {".tflite": "tflite", ".onnx": "onnx", ".keras": "keras", ".prototxt": "opencv"}.get(path.suffix)
    if kind is None and (path / "saved_model.pb").exists():
        kind = "saved_model"
    if kind is None:
        raise ValueError(f"{path}: not an artifact to time (.tflite, .onnx, .keras, .prototxt or a SavedModel "
                         "folder); name its kind")
    return kind


def runner_for(path, *, kind=None, batch=8, num_threads=None, weights=None):
    """The runner of the artifact at ``path`` (``kind``: a key of :data:`KINDS`, default :func:`artifact_kind`);
    ``weights``: the caffemodel of an OpenCV DNN prototxt."""
    kind = kind or artifact_kind(path)
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r} (choose from {', '.join(KINDS)})")
    if kind == "tflite":
        return TFLiteRunner(path, num_threads=num_threads)
    if kind == "opencv":
        if weights is None:
            raise ValueError(f"{path}: OpenCV DNN needs the caffemodel too (--weights)")
        return OpenCVCaffeRunner(path, weights=weights, batch=batch, num_threads=num_threads)
    return KINDS[kind](path, batch=batch, num_threads=num_threads)
