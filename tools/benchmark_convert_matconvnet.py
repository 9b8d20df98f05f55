#!/usr/bin/env python
"""Benchmark the MatConvNet conversion path on a VGG-16-sized SimpleNN .mat (~550 MB), MAT v5 and v7.3.

Writes the network with random weights (once per container, into ``--workdir``) with the test-side writer
``tests/mat_writer.py``, then measures each step in its own subprocess (peak RSS from ``resource.getrusage``
in the child; times exclude imports), with the ratios of the Caffe benchmark (tools/benchmark_convert.py):

1. parse: ``read_matconvnet`` time / reading the file's bytes (target <= 2), and its peak RSS / file size
   (target <= 2);
2. time: ``convert_matconvnet`` to ``.keras`` / Keras alone building and saving the same VGG-16 (the
   weightless graph of the Caffe benchmark's prototxt; target <= 1.3);
3. memory: (peak RSS of the conversion - peak RSS of the Keras-only run) / file size (target <= 0.5).
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ["read", "parse", "convert", "keras"]


def simplenn_layers():
    """VGG-16 as MatConvNet SimpleNN layer structs, from the Caffe benchmark's layer list."""
    import numpy as np

    from tools.benchmark_convert import vgg16_layers

    rng = np.random.default_rng(0)
    layers, size = [], 224
    for name, kind, shape, bias, *_ in vgg16_layers():
        if kind == "Convolution":
            weights = rng.standard_normal((3, 3, shape[1], shape[0]), np.float32) / np.float32(3 * shape[1] ** 0.5)
            layers.append({"type": "conv", "name": name, "weights": [weights, np.zeros((1, bias), np.float32)],
                           "pad": np.array([[1.0, 1, 1, 1]]), "stride": np.array([[1.0, 1]])})
        elif kind == "InnerProduct":
            depth = shape[1] // (size * size)
            filters = rng.standard_normal((size, size, depth, shape[0]), np.float32) / np.float32(shape[1] ** 0.5)
            layers.append({"type": "conv", "name": name, "weights": [filters, np.zeros((1, bias), np.float32)],
                           "pad": 0.0, "stride": 1.0})
            size = 1
        elif kind == "Pooling":
            layers.append({"type": "pool", "name": name, "method": "max", "pool": np.array([[2.0, 2]]),
                           "stride": np.array([[2.0, 2]]), "pad": np.zeros((1, 4))})
            size //= 2
        elif kind == "ReLU":
            layers.append({"type": "relu", "name": name, "leak": 0.0})
        elif kind == "Softmax":
            layers.append({"type": "softmax", "name": name})
    return layers


def write_models(workdir):
    """Write (once) the v5 and v7.3 .mat files and the VGG-16 prototxt; return their paths."""
    import numpy as np

    from tests.mat_writer import write_mat
    from tools.benchmark_convert import vgg16_layers

    prototxt = workdir / "vgg16_deploy.prototxt"
    text = ['layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 224 '
            'dim: 224 } } }']
    text += [f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{top}" {params} }}'
             for name, kind, _, _, bottom, top, params in vgg16_layers()]
    prototxt.write_text("\n".join(text) + "\n")
    paths = {}
    for version in ("5", "7.3"):
        path = workdir / f"vgg16_v{version}.mat"
        if not path.exists():
            net = {"layers": simplenn_layers(),
                   "meta": {"normalization": {"imageSize": np.array([[224.0, 224, 3]]),
                                              "averageImage": np.array([[[123.68, 116.779, 103.939]]])}}}
            partial = path.with_suffix(".partial")
            write_mat(partial, net, version=version)
            partial.rename(path)
        paths[version] = path
    return prototxt, paths


def child(mode, mat, prototxt, output):
    """One measurement in this (fresh) process: {'seconds', 'maxrss_bytes'}; parse runs without TensorFlow."""
    from converters.matconvnet import read_matconvnet

    if mode in ("convert", "keras"):
        from converters.caffe import read_caffe
        from keras_zoo.builder import build_model
        from keras_zoo.convert import convert_matconvnet, save_model
    start = time.perf_counter()
    if mode == "read":
        with open(mat, "rb") as handle:
            handle.read()
    elif mode == "parse":
        read_matconvnet(mat)
    elif mode == "convert":
        convert_matconvnet(mat, output)
    elif mode == "keras":
        save_model(build_model(read_caffe(prototxt)), output)
    seconds = time.perf_counter() - start
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "maxrss_bytes": maxrss}))


def measure(mode, mat, prototxt, output):
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", mode, "--mat", str(mat),
               "--prototxt", str(prototxt), "--workdir", str(output.parent)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{mode} run on {mat.name} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def best(mode, mat, prototxt, workdir, repeats):
    runs = [measure(mode, mat, prototxt, workdir / f"{mode}.keras") for _ in range(repeats)]
    return {"seconds": min(run["seconds"] for run in runs),
            "maxrss_bytes": min(run["maxrss_bytes"] for run in runs)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tools/benchmark_convert_matconvnet.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=pathlib.Path,
                        help="where the .mat files are written and kept (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement (best is kept)")
    parser.add_argument("--versions", nargs="+", default=["5", "7.3"], choices=["5", "7.3"],
                        help="MAT containers to measure")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--mat", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--prototxt", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.mat, args.prototxt, args.workdir / f"{args.child}.keras")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or pathlib.Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            print(f"writing the VGG-16 .mat files into {workdir} ...", flush=True)
            prototxt, paths = write_models(workdir)
            keras_only = best("keras", paths["5"], prototxt, workdir, args.repeats)
            print(f"  Keras only: {keras_only['seconds']:8.3f} s   peak RSS "
                  f"{keras_only['maxrss_bytes'] / 1e6:8.1f} MB", flush=True)
            for version in args.versions:
                mat = paths[version]
                size = mat.stat().st_size
                print(f"MAT v{version}: {size / 1e6:.1f} MB", flush=True)
                measure("read", mat, prototxt, workdir / "warm-up.keras")  # the page cache holds the file
                results = {mode: best(mode, mat, prototxt, workdir, args.repeats)
                           for mode in ("read", "parse", "convert")}
                for mode, result in results.items():
                    print(f"  {mode:<8} {result['seconds']:8.3f} s   peak RSS "
                          f"{result['maxrss_bytes'] / 1e6:8.1f} MB", flush=True)
                parse_time = results["parse"]["seconds"] / results["read"]["seconds"]
                parse_memory = results["parse"]["maxrss_bytes"] / size
                time_ratio = results["convert"]["seconds"] / keras_only["seconds"]
                memory_ratio = (results["convert"]["maxrss_bytes"] - keras_only["maxrss_bytes"]) / size
                print(f"  parse / read bytes:               {parse_time:6.3f}  (target <= 2)")
                print(f"  parse peak RSS / file size:       {parse_memory:6.3f}  (target <= 2)")
                print(f"  convert / Keras build+save:       {time_ratio:6.3f}  (target <= 1.3)")
                print(f"  (RSS convert - RSS Keras) / size: {memory_ratio:6.3f}  (target <= 0.5)", flush=True)
        except (RuntimeError, OSError) as exc:
            print(f"benchmark_convert_matconvnet: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
