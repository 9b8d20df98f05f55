"""The speed table: a zoo model in every runtime it can be deployed on, each timed alone on this machine.

For each model, one set of weights (the caffemodel a prototxt is given with, else random) feeds every runtime:
keras.applications' counterpart where one exists (random weights of the same architecture), keras_zoo as built
(batch norms folded, the default) and unfolded (``fold_batchnorm=False``, where it has batch norms), the
SavedModel, ONNX Runtime fp32 and int8 (U8S8 QDQ, the CPU form), LiteRT fp32 / fp16 / full int8, and OpenCV's
DNN module running the caffemodel itself (the runtime a Caffe user reaches for). Every figure is
:func:`export.speed.time_artifact`: a fresh process, every core, the best of several rounds. Each is given as
images/s, its ratio to keras_zoo as built, and its GFLOP/s as a fraction of this machine's fp32 matrix-multiply
peak, measured in the same run (:func:`matmul_peak`). ``python -m export.bench googlenet --prototxt
googlenet=deploy.prototxt`` prints it; ``tools/benchmark.py`` runs the table BUILD.md quotes.
"""

import dataclasses
import logging
import math
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

from export import common, onnx as onnx_export, saved_model, tflite
from export.runners import cpu_threads, onnx_session_options
from export.speed import time_artifact

log = logging.getLogger(__name__)

# keras.applications' builder of the same architecture, by zoo name
KERAS_APPLICATIONS = {"resnet-50": "ResNet50", "resnet-101": "ResNet101", "resnet-152": "ResNet152",
                      "vgg16": "VGG16", "vgg19": "VGG19"}
RUNTIMES = ("keras.applications", "keras_zoo", "keras_zoo unfolded", "saved_model", "onnxruntime",
            "onnxruntime int8", "litert fp32", "litert fp16", "litert int8", "opencv dnn")
LITERT = {"litert fp32": "float32", "litert fp16": "float16", "litert int8": "int8"}


@dataclasses.dataclass
class Artifact:
    """One runtime's file(s) of a model: ``paths`` by batch size (one path for every batch: a dynamic batch)."""
    runtime: str
    paths: dict
    kind: str
    weights: str = None  # the caffemodel of an OpenCV prototxt


def _matmul_seconds(multiply, rounds):
    multiply()  # warm-up
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        multiply()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak(size=4096, rounds=5):
    """This machine's fp32 matrix-multiply rate (GFLOP/s on every core): the best of NumPy's BLAS and ONNX
    Runtime's MLAS (the faster here) on ``size`` x ``size`` matrices, each the best of ``rounds``."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    seconds = _matmul_seconds(lambda: a @ b, rounds)
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [size, size]) for name in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = min(proto.ir_version, onnx.IR_VERSION)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), onnx_session_options(),
                                           providers=["CPUExecutionProvider"])
    seconds = min(seconds, _matmul_seconds(lambda: session.run(None, {"a": a, "b": b}), rounds))
    return 2 * size ** 3 / seconds / 1e9


def model_flops(model):
    """Multiply-adds x 2 per image of the convolutions and dense layers of ``model`` (kernel size x output
    positions, which counts grouped convolutions right)."""
    total = 0
    for layer in model.layers:
        kernels = [weight for weight in layer.weights if weight.name == "kernel"]
        if not kernels or not hasattr(layer, "output"):
            continue
        positions = math.prod(int(size) for size in layer.output.shape[1:-1])
        total += 2 * math.prod(int(size) for size in kernels[0].shape) * positions
    return total


def _keras_file(model, path):
    model.save(path)
    return Artifact("", {None: path}, "keras")


def _models(name, weights):
    """keras_zoo's model ``name`` (a registry name, or a ``.prototxt`` converted with ``weights`` its caffemodel)
    as built and unfolded."""
    from keras_zoo import models
    from keras_zoo.convert import from_caffe

    if str(name).endswith(".prototxt"):
        return from_caffe(name, weights, fold_batchnorm=True), from_caffe(name, weights)
    return models.get_model(name, weights=weights), models.get_model(name, weights=weights, fold_batchnorm=False)


def build_artifacts(name, workdir, *, prototxt=None, weights=None, batches=(1, 16), calibration=32):
    """``(artifacts, model)``: every runtime's files of model ``name`` (a registry name or a deploy ``.prototxt``)
    written into ``workdir``, with random weights written as a caffemodel of its ``prototxt`` (which OpenCV DNN
    runs too), else ``weights`` (the builders' argument: None random)."""
    import keras

    from keras_zoo.random_weights import random_caffemodel

    workdir = pathlib.Path(workdir)
    prototxt = name if str(name).endswith(".prototxt") else prototxt
    caffemodel = random_caffemodel(prototxt, workdir / "random.caffemodel") if prototxt else None
    weights = str(caffemodel) if caffemodel else weights
    model, unfolded = _models(name, weights)
    artifacts = {"keras_zoo": _keras_file(model, workdir / "zoo.keras")}
    if len(unfolded.layers) != len(model.layers):
        artifacts["keras_zoo unfolded"] = _keras_file(unfolded, workdir / "zoo_unfolded.keras")
    del unfolded
    if name in KERAS_APPLICATIONS:
        reference = getattr(keras.applications, KERAS_APPLICATIONS[name])(weights=None)
        artifacts["keras.applications"] = _keras_file(reference, workdir / "keras_applications.keras")
        del reference
    size = tuple(model.inputs[0].shape[1:3])
    samples = common.sample_images(size, calibration)
    reference = common.reference_outputs(model, samples[:8])
    saved_model.export_saved_model(model, workdir / "saved_model", samples=samples[:8], reference=reference[0],
                                   reference_logits=reference[1], name=name)
    artifacts["saved_model"] = Artifact("", {None: workdir / "saved_model"}, "saved_model")
    onnx_export.write_onnx(onnx_export.convert_onnx(model), workdir / "model.onnx")
    artifacts["onnxruntime"] = Artifact("", {None: workdir / "model.onnx"}, "onnx")
    onnx_export.quantize_int8(workdir / "model.onnx", workdir / "model.int8.onnx", samples, target="onnxruntime")
    artifacts["onnxruntime int8"] = Artifact("", {None: workdir / "model.int8.onnx"}, "onnx")
    for runtime, quantization in LITERT.items():
        paths = {}
        for batch in batches:
            paths[batch] = workdir / f"model.b{batch}.{quantization}.tflite"
            paths[batch].write_bytes(tflite.convert_tflite(model, quantization=quantization, batch=batch,
                                                           representative=samples))
        artifacts[runtime] = Artifact("", paths, "tflite")
    if prototxt:
        artifacts["opencv dnn"] = Artifact("", {None: pathlib.Path(prototxt)}, "opencv", weights=str(caffemodel))
    for runtime, artifact in artifacts.items():
        artifact.runtime = runtime
    return [artifacts[runtime] for runtime in RUNTIMES if runtime in artifacts], model


def benchmark(names, *, prototxts=None, weights=None, batches=(1, 16), seconds=None, rounds=3, workdir=None):
    """Rows ``{model, runtime, batch, images_per_s, ratio, gflops, threads}`` for each model, runtime and batch
    (``prototxts``: ``{model: deploy prototxt}``, see :func:`build_artifacts`)."""
    prototxts = prototxts or {}
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="keras_zoo_bench.", dir=workdir) as folder:
            artifacts, model = build_artifacts(name, folder, prototxt=prototxts.get(name), weights=weights,
                                               batches=batches)
            flops, shape = model_flops(model), tuple(int(size) for size in model.inputs[0].shape[1:])
            label = pathlib.Path(name).stem if str(name).endswith(".prototxt") else name
            del model
            for batch in batches:
                timed = {}
                for artifact in artifacts:
                    path = artifact.paths.get(batch, artifact.paths.get(None))
                    try:
                        timed[artifact.runtime] = time_artifact(path, kind=artifact.kind, batch=batch, seconds=seconds,
                                                                rounds=rounds, weights=artifact.weights,
                                                                input_shape=shape)
                    except RuntimeError as error:
                        log.warning("%s %s at batch %d: %s", label, artifact.runtime, batch, error)
                base = timed.get("keras_zoo", {}).get("images_per_s")
                for runtime, result in timed.items():
                    rows.append({"model": label, "runtime": runtime, "batch": batch,
                                 "images_per_s": result["images_per_s"], "threads": result["threads"],
                                 "ratio": result["images_per_s"] / base if base else None,
                                 "gflops": result["images_per_s"] * flops / 1e9})
                    log.info("%s %s batch %d: %.1f images/s", label, runtime, batch, result["images_per_s"])
    return rows


def format_table(rows, peak):
    """A right-aligned Markdown table, one line per model and runtime: per batch, images/s, the ratio to
    keras_zoo as built, and the share of the fp32 matmul peak (``peak`` GFLOP/s)."""
    batches = sorted({row["batch"] for row in rows})
    cells = {(row["model"], row["runtime"], row["batch"]): row for row in rows}
    header = ["model", "runtime"]
    for batch in batches:
        header += [f"b{batch} img/s", f"b{batch} ratio", f"b{batch} % peak"]
    lines = [header]
    for model, runtime in dict.fromkeys((row["model"], row["runtime"]) for row in rows):
        line = [model, runtime]
        for batch in batches:
            row = cells.get((model, runtime, batch))
            line += (["", "", ""] if row is None else
                     [f"{row['images_per_s']:.1f}", "" if row["ratio"] is None else f"{row['ratio']:.2f}x",
                      f"{100 * row['gflops'] / peak:.0f}%"])
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["|" + "|".join(cell.rjust(width) for cell, width in zip(line, widths)) + "|" for line in lines]
    text.insert(1, "|" + "|".join("-" * (width - 1) + ":" for width in widths) + "|")
    return "\n".join(text)


def machine():
    return f"{platform.processor() or platform.machine()}, {cpu_threads()} cores, {platform.system()}"


def parse_prototxts(values):
    """``['googlenet=deploy.prototxt', ...]`` -> ``{'googlenet': Path}``."""
    result = {}
    for value in values or ():
        name, separator, path = value.partition("=")
        if not separator or not path:
            raise ValueError(f"--prototxt takes MODEL=PATH, got {value!r}")
        if not os.path.isfile(path):
            raise ValueError(f"--prototxt {name}: no file {path}")
        result[name] = pathlib.Path(path)
    return result


def print_benchmark(names, *, prototxts=None, weights=None, batches=(1, 16), seconds=None, rounds=3):
    """Measure the peak, then the table; print both (what ``python -m export.bench`` and tools/benchmark.py do)."""
    peak = matmul_peak()
    rows = benchmark(names, prototxts=prototxts, weights=weights, batches=batches, seconds=seconds, rounds=rounds)
    untrained = prototxts or weights in (None, "none", "None")
    threads = sorted({row["threads"] for row in rows})
    print(f"images/s on {machine()}; each runtime alone in a fresh process, {'/'.join(map(str, threads))} threads, "
          f"best of {rounds} rounds; ratio to keras_zoo as built; % of this machine's fp32 matmul peak, "
          f"{peak:.0f} GFLOP/s (the faster of NumPy and ONNX Runtime, every core){'; UNTRAINED (random) weights: speed only' if untrained else ''}:")
    print(format_table(rows, peak))
    return rows


def main(argv=None):
    parser = common.cli.ArgumentParser(prog="python -m export.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="registry names (googlenet, resnet-50, ...) or deploy .prototxt files (random weights)")
    parser.add_argument("--prototxt", action="append", metavar="MODEL=PATH",
                        help="the model's deploy prototxt: random weights are written as a caffemodel of it, which "
                             "every runtime and OpenCV DNN then run (without it: --weights, no OpenCV)")
    parser.add_argument("--weights", default="none",
                        help="weights of the models without a prototxt: 'none' (random) or what the builders take")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="batch sizes to time")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds of runs per timed round (default: $KERAS_ZOO_SPEED_SECONDS, else 1)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per figure; the best counts")
    common.cli.add_verbose_option(parser)
    options = parser.parse_args(argv)
    common.setup_logging(options.verbose)

    def body(_):
        print_benchmark(options.models, prototxts=parse_prototxts(options.prototxt), weights=options.weights,
                        batches=options.batches, seconds=options.seconds, rounds=options.rounds)
        return 0
    return common.run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
