"""How fast an artifact runs on its own: in a fresh process, on every core, the best of several timed rounds.

    python -m export.speed model.tflite --batch 16            # also .onnx, .keras, a SavedModel folder
    python -m export.speed deploy.prototxt --weights net.caffemodel   # the same net in OpenCV's DNN module

Timing a runtime in the process that just ran TensorFlow measures both: TensorFlow's thread pools keep cores
busy and slowed LiteRT and ONNX Runtime by up to 2x there. The exporters' reports therefore time every
artifact with :func:`time_artifact` (this module as a child process); :func:`measure` times a function in this
process (Keras itself, TensorRT on its GPU). Each result states the batch, the threads and how it was timed.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from export import runners
from keras_zoo import cli

ROUNDS = 3


def default_seconds():
    """Seconds of timed runs per round: $KERAS_ZOO_SPEED_SECONDS, else 1."""
    return float(os.environ.get("KERAS_ZOO_SPEED_SECONDS", "1.0"))


def report_speeds(**timers):
    """An exporter report's speeds, ``{runtime: timer()}``: none where $KERAS_ZOO_SPEED_SECONDS is 0 (an export
    without timing runs)."""
    return {runtime: timer() for runtime, timer in timers.items()} if default_seconds() > 0 else {}


def measure(run, images, *, batch=1, min_seconds=None, min_runs=3, rounds=ROUNDS, threads=None):
    """Throughput (images/s) and latency (ms per batch) of ``run(batch_of_images)`` in this process: the best of
    ``rounds`` rounds, each the median of at least ``min_runs`` runs and ``min_seconds`` (default:
    :func:`default_seconds`), after one warm-up run."""
    if min_seconds is None:
        min_seconds = default_seconds()
    chunk = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])).astype(images.dtype))
    run(chunk)  # warm-up: first-call compilation and allocation
    medians = []
    for _ in range(rounds):
        times = []
        start = time.perf_counter()
        while len(times) < min_runs or time.perf_counter() - start < min_seconds:
            tick = time.perf_counter()
            run(chunk)
            times.append(time.perf_counter() - tick)
        medians.append(statistics.median(times))
    best = min(medians)
    return {"batch": batch, "latency_ms": best * 1e3, "images_per_s": batch / best, "threads": threads,
            "timed": f"best of {rounds} rounds"}


def time_artifact(path, *, kind=None, batch=1, num_threads=None, weights=None, input_shape=None, seconds=None,
                  rounds=ROUNDS):
    """:func:`measure` of the artifact at ``path`` (see :func:`export.runners.runner_for`) run alone in a fresh
    process; ``input_shape`` (H, W, C) of the random 0..255 images it is timed on (default: the artifact's)."""
    command = [sys.executable, "-m", "export.speed", str(path), "--batch", str(batch), "--json",
               "--rounds", str(rounds), "--seconds", str(default_seconds() if seconds is None else seconds)]
    if kind:
        command += ["--kind", kind]
    if num_threads:
        command += ["--threads", str(num_threads)]
    if weights:
        command += ["--weights", str(weights)]
    if input_shape:
        command += ["--input-shape", ",".join(str(size) for size in input_shape)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(f"timing {path} in a fresh process failed: {lines[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _input_shape(runner, given):
    """(H, W, C) to time ``runner`` on: ``given``, else the artifact's own input shape."""
    if given:
        return given
    if isinstance(runner, runners.TFLiteRunner):
        return tuple(int(size) for size in runner.runner.get_input_details()["images"]["shape"][1:])
    if isinstance(runner, runners.OnnxRunner):
        shape = runner.session.get_inputs()[0].shape[1:]
    elif isinstance(runner, runners.SavedModelRunner):
        shape = runner.function.structured_input_signature[1]["images"].shape[1:]
    elif isinstance(runner, runners.KerasRunner):
        shape = runner.model.inputs[0].shape[1:]
    else:
        shape = (None,)
    if any(not isinstance(size, int) for size in shape):
        raise ValueError("the artifact takes images of any size: give --input-shape H,W,C")
    return tuple(shape)


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m export.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", help=".tflite, .onnx, .keras, a SavedModel folder, or a Caffe .prototxt")
    parser.add_argument("--kind", choices=sorted(runners.KINDS), default=None,
                        help="what the artifact is (default: by its name)")
    parser.add_argument("--weights", help="the caffemodel of a .prototxt (OpenCV DNN)")
    parser.add_argument("--batch", type=int, default=1, help="images per run (a fixed-batch artifact: its own)")
    parser.add_argument("--threads", type=int, default=None, help="threads of the runtime (default: all cores)")
    parser.add_argument("--input-shape", default=None, metavar="H,W,C",
                        help="image size to time (default: the artifact's input size)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed rounds; the best one is reported")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of runs per round (default 1)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    options = parser.parse_args(argv)
    given = tuple(int(size) for size in options.input_shape.split(",")) if options.input_shape else None
    try:
        runner = runners.runner_for(options.artifact, kind=options.kind, batch=options.batch, num_threads=options.threads,
                                    weights=options.weights)
        batch = runner.batch if runner.fixed else options.batch
        images = np.random.default_rng(0).uniform(0, 255, (batch, *_input_shape(runner, given))).astype(np.float32)
        result = measure(runner, images, batch=batch, min_seconds=options.seconds, rounds=options.rounds,
                         threads=runner.num_threads)
    except (ValueError, ImportError, RuntimeError, OSError) as error:
        print(f"error: {options.artifact}: {error}", file=sys.stderr)
        return 1
    result["timed"] += ", a fresh process"
    if options.json:
        print(json.dumps(result))
    else:
        print(f"{options.artifact}: {result['images_per_s']:.1f} images/s, {result['latency_ms']:.2f} ms per batch "
              f"of {result['batch']}, {result['threads']} threads ({result['timed']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
