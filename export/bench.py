"""Images/s of zoo models in Keras and in every exported form, on this machine, side by side.

``export_benchmark(['caffenet', 'googlenet', 'resnet-50'])`` exports each model (SavedModel, ONNX, TFLite
float32/float16/int8) into a temporary folder, checks each against Keras, and measures its throughput (the
exports and the Keras model they are timed against have their batch norms folded, as the exporters do);
``format_table(rows)`` prints them as MatConvNet's speed table, with each runtime's ratio to Keras.
"""

import logging
import os
import pathlib
import platform
import sys
import tempfile

from export import common, onnx as onnx_export, saved_model, tflite
from keras_zoo.folding import fold_batchnorm
from keras_zoo.images import fit_options
from keras_zoo.resolve import resolve

log = logging.getLogger(__name__)

RUNTIMES = ("keras", "saved_model", "onnxruntime", "tflite_float32", "tflite_float16", "tflite_int8")


def _exports(model, workdir, samples, reference, reference_logits, batch, name):
    """runtime -> ParityReport of each export (each carries the artifact's speed)."""
    workdir = pathlib.Path(workdir)
    given = {"samples": samples, "reference": reference, "reference_logits": reference_logits, "name": name}
    reports = {"saved_model": saved_model.export_saved_model(model, workdir / "saved_model", speed_batch=batch,
                                                             **given),
               "onnxruntime": onnx_export.export_onnx(model, workdir / "model.onnx", speed_batch=batch, **given)}
    for quantization in ("float32", "float16", "int8"):
        reports[f"tflite_{quantization}"] = tflite.export_tflite(
            model, workdir / f"model.{quantization}.tflite", quantization=quantization, batch=batch, **given)
    return reports


def export_benchmark(model_names, *, weights="imagenet", batch=8, num_samples=16, samples_folder=None,
                     runtimes=RUNTIMES):
    """One row per (model, runtime): images/s, latency per batch, the ratio to Keras and the parity result.

    ``weights`` goes to the resolver (:func:`keras_zoo.resolve.resolve`: 'imagenet' the card's default; 'none'
    random weights, for speed only).
    """
    rows = []
    for spec in model_names:
        resolved = resolve(spec, weights)
        name, model = resolved.name, resolved.model
        samples = common.sample_images(resolved.input_size, num_samples, folder=samples_folder,
                                       channels=common.input_channels(model), fit=fit_options(resolved.source))
        reference, reference_logits = common.reference_outputs(model, samples)
        model = fold_batchnorm(model)  # what the exporters export
        with tempfile.TemporaryDirectory(prefix="keras_zoo_bench.") as workdir:
            reports = _exports(model, workdir, samples, reference, reference_logits, batch, name)
        keras_speed = reports["saved_model"].speed["keras"]
        for runtime in runtimes:
            if runtime == "keras":
                speed, result = keras_speed, None
            else:
                result = reports[runtime]
                speed = next(value for key, value in result.speed.items() if key != "keras")
            rows.append({"model": name, "runtime": runtime, "batch": speed["batch"],
                         "images_per_s": speed["images_per_s"], "latency_ms": speed["latency_ms"],
                         "ratio": speed["images_per_s"] / keras_speed["images_per_s"],
                         "passed": None if result is None else result.passed,
                         "max_rel_error": None if result is None else result.errors["max_rel_error"],
                         "top1_agreement": None if result is None else result.errors["top1_agreement"],
                         "file_size": None if result is None else result.file_size,
                         "untrained": resolved.untrained})
            log.info("%s %s: %.1f images/s", name, runtime, speed["images_per_s"])
    return rows


def format_table(rows):
    """A Markdown table shaped like the seed's speed table: one line per model, images/s (ratio to Keras)."""
    runtimes = list(dict.fromkeys(row["runtime"] for row in rows))
    models = list(dict.fromkeys(row["model"] for row in rows))
    cells = {(row["model"], row["runtime"]): row for row in rows}
    untrained = {row["model"] for row in rows if row.get("untrained")}
    header = ["model", *[f"{runtime} img/s" for runtime in runtimes]]
    lines = [header]
    for model in models:
        line = [f"{model} (UNTRAINED weights)" if model in untrained else model]
        for runtime in runtimes:
            row = cells.get((model, runtime))
            if row is None:
                line.append("")
                continue
            mark = "" if row["passed"] in (None, True) else " (parity failed)"
            line.append(f"{row['images_per_s']:.1f} ({row['ratio']:.2f}x){mark}")
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["|" + "|".join(cell.rjust(width) for cell, width in zip(line, widths)) + "|" for line in lines]
    text.insert(1, "|" + "|".join("-" * width for width in widths) + "|")
    return "\n".join(text)


def machine():
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"


def main(argv=None):
    parser = common.cli.ArgumentParser(prog="python -m export.bench", description=__doc__)
    parser.add_argument("models", nargs="+", metavar="MODEL", help="registry names or model files (.keras...)")
    parser.add_argument("--weights", default="imagenet",
                        help="weights for every model ('none': random, speed only)")
    parser.add_argument("--batch", type=int, default=8, help="batch size of every runtime")
    parser.add_argument("--num-samples", type=int, default=16, help="number of sample inputs for each parity check")
    parser.add_argument("--samples", default=None, metavar="DIR",
                        help="folder of sample images (default: the photos bundled with scikit-image)")
    common.cli.add_verbose_option(parser)
    options = parser.parse_args(argv)
    common.setup_logging(options.verbose)

    def body(_):
        rows = export_benchmark(options.models, weights=options.weights, batch=options.batch,
                                num_samples=options.num_samples, samples_folder=options.samples)
        print(f"images/s at batch {options.batch} on {machine()} (ratio to Keras):")
        print(format_table(rows))
        return 0

    return common.run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
