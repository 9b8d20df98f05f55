"""Benchmark conversion on a VGG-16-sized model (~550 MB of random weights): Caffe and MatConvNet, in one run.

Writes VGG-16 (once, into ``--workdir``) as a deploy prototxt + caffemodel (test-side writer
``converters/writers/caffe.py``, independent of the reader) and as MatConvNet SimpleNN .mat files in MAT v5 and v7.3
(``converters/writers/mat.py``), then measures each step in its own subprocess (peak RSS from ``resource.getrusage``
in the child; times exclude imports) and prints, per format:

1. parse: reading the weights file into the neutral graph / reading the file's bytes (target <= 2); for the
   caffemodel, whose weights are mapped lazily, also parsing plus copying every value once; for .mat files,
   the parse's peak RSS / file size (target <= 2);
2. time: conversion to ``.keras`` / Keras alone building the same model (no weights ported) and saving it with
   ``model.save`` (target <= 0.7 for the caffemodel, <= 1.3 for the .mat files);
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

# VGG-16 (configuration D): conv channels per block, then the classifier.
VGG16_BLOCKS = [(64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)]
VGG16_FC = [("fc6", 4096), ("fc7", 4096), ("fc8", 1000)]
FORMATS = {"caffe": "vgg16_random.caffemodel", "mat-v5": "vgg16_v5.mat", "mat-v7.3": "vgg16_v7.3.mat"}
TIME_TARGETS = {"caffe": 0.7, "mat-v5": 1.3, "mat-v7.3": 1.3}  # conversion time / Keras alone building and saving


def vgg16_layers():
    """(name, type, caffe weight shape, bias size, bottom, top, params text) of VGG-16, in order."""
    layers, blob, channels = [], "data", 3
    for block, widths in enumerate(VGG16_BLOCKS, 1):
        for index, width in enumerate(widths, 1):
            name = f"conv{block}_{index}"
            layers.append((name, "Convolution", (width, channels, 3, 3), width, blob, name,
                           f"convolution_param {{ num_output: {width} pad: 1 kernel_size: 3 }}"))
            layers.append((f"relu{block}_{index}", "ReLU", None, 0, name, name, ""))
            blob, channels = name, width
        layers.append((f"pool{block}", "Pooling", None, 0, blob, f"pool{block}",
                       "pooling_param { pool: MAX kernel_size: 2 stride: 2 }"))
        blob = f"pool{block}"
    features = channels * 7 * 7
    for name, width in VGG16_FC:
        layers.append((name, "InnerProduct", (width, features), width, blob, name,
                       f"inner_product_param {{ num_output: {width} }}"))
        blob, features = name, width
        if name != "fc8":
            layers.append((f"relu{name[2:]}", "ReLU", None, 0, name, name, ""))
    layers.append(("prob", "Softmax", None, 0, blob, "prob", ""))
    return layers


def random_weights(layers, seed=0):
    """{layer name: (weight in Caffe layout, bias)} for the weighted layers, He-like scaled."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {name: (rng.standard_normal(shape, np.float32) * np.float32(1 / np.sqrt(np.prod(shape[1:]))),
                   np.zeros(bias, np.float32))
            for name, _, shape, bias, *_ in layers if shape is not None}


def simplenn(layers, weights):
    """VGG-16 as MatConvNet SimpleNN layer structs (fully connected layers as whole-input convolutions)."""
    import numpy as np

    structs, size = [], 224
    for name, kind, shape, _, *_ in layers:
        if kind == "Convolution":
            kernel, bias = weights[name]
            structs.append({"type": "conv", "name": name, "weights": [kernel.transpose(2, 3, 1, 0), bias[None]],
                            "pad": np.array([[1.0, 1, 1, 1]]), "stride": np.array([[1.0, 1]])})
        elif kind == "InnerProduct":
            kernel, bias = weights[name]
            depth = shape[1] // (size * size)
            filters = kernel.reshape(shape[0], depth, size, size).transpose(2, 3, 1, 0)
            structs.append({"type": "conv", "name": name, "weights": [filters, bias[None]], "pad": 0.0,
                            "stride": 1.0})
            size = 1
        elif kind == "Pooling":
            structs.append({"type": "pool", "name": name, "method": "max", "pool": np.array([[2.0, 2]]),
                            "stride": np.array([[2.0, 2]]), "pad": np.zeros((1, 4))})
            size //= 2
        elif kind == "ReLU":
            structs.append({"type": "relu", "name": name, "leak": 0.0})
        elif kind == "Softmax":
            structs.append({"type": "softmax", "name": name})
    return structs


def write_models(workdir, formats):
    """Write the prototxt and (once each) the weights files of ``formats``; return {format: path}."""
    import numpy as np

    from converters.writers.caffe import write_caffemodel
    from converters.writers.mat import write_mat

    layers = vgg16_layers()
    text = ['name: "VGG_ILSVRC_16_layers"',
            'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 224 '
            'dim: 224 } } }']
    text += [f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{top}" {params} }}'
             for name, kind, _, _, bottom, top, params in layers]
    (workdir / "vgg16_deploy.prototxt").write_text("\n".join(text) + "\n")
    paths = {name: workdir / FORMATS[name] for name in formats}
    missing = [name for name, path in paths.items() if not path.exists()]
    weights = random_weights(layers) if missing else {}
    for name in missing:
        partial = paths[name].with_suffix(".partial")
        if name == "caffe":
            write_caffemodel(partial, ((layer, kind, list(weights[layer])) for layer, kind, shape, *_ in layers
                                       if shape is not None), net_name="VGG_ILSVRC_16_layers")
        else:
            net = {"layers": simplenn(layers, weights),
                   "meta": {"normalization": {"imageSize": np.array([[224.0, 224, 3]]),
                                              "averageImage": np.array([[[123.68, 116.779, 103.939]]])}}}
            write_mat(partial, net, version=name.split("-v")[1])
        partial.rename(paths[name])
    return paths


def child(mode, path, output):
    """One measurement in this (fresh) process; prints {'seconds', 'maxrss_bytes'}."""
    from converters.caffe import read_caffe
    from converters.matconvnet import read_matconvnet

    prototxt = path.parent / "vgg16_deploy.prototxt"
    is_caffe = path.suffix == ".caffemodel"
    if mode in ("convert", "keras"):
        from keras_zoo.builder import build_model
        from keras_zoo.convert import convert_caffe, convert_matconvnet
    start = time.perf_counter()
    if mode == "read":
        with open(path, "rb") as handle:
            handle.read()
    elif mode in ("parse", "parse_copy"):
        graph = read_caffe(prototxt, path) if is_caffe else read_matconvnet(path)
        if mode == "parse_copy":
            import numpy as np

            for node in graph.nodes:
                for array in node.weights.values():
                    np.array(array, order="K")  # every value read once, in file order
    elif mode == "convert":
        convert_caffe(prototxt, path, output) if is_caffe else convert_matconvnet(path, output)
    elif mode == "keras":
        build_model(read_caffe(prototxt)).save(output)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def measure(mode, path, repeats):
    """The best of ``repeats`` runs of ``mode`` on ``path``, each in a fresh child process."""
    runs = []
    for _ in range(repeats):
        command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", mode, "--path", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode:
            raise RuntimeError(f"{mode} run on {path.name} failed: {result.stderr.strip().splitlines()[-1:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {key: min(run[key] for run in runs) for key in ("seconds", "maxrss_bytes")}


def report(name, size, results, keras_only):
    read = results["read"]["seconds"]
    print(f"{name}: {size / 1e6:.1f} MB")
    for mode, result in results.items():
        print(f"  {mode:<10} {result['seconds']:8.3f} s   peak RSS {result['maxrss_bytes'] / 1e6:8.1f} MB")
    line = f"  parse / read bytes:               {results['parse']['seconds'] / read:6.3f}  (target <= 2)"
    if "parse_copy" in results:
        line += f"; parse + copy every value: {results['parse_copy']['seconds'] / read:.3f}"
    print(line)
    if name != "caffe":
        print(f"  parse peak RSS / file size:       {results['parse']['maxrss_bytes'] / size:6.3f}  (target <= 2)")
    print(f"  convert / Keras build+save:       {results['convert']['seconds'] / keras_only['seconds']:6.3f}  "
          f"(target <= {TIME_TARGETS[name]})")
    extra = (results["convert"]["maxrss_bytes"] - keras_only["maxrss_bytes"]) / size
    print(f"  (RSS convert - RSS Keras) / size: {extra:6.3f}  (target <= 0.5)", flush=True)


def main(argv=None):
    from keras_zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="tools/benchmark_convert.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=pathlib.Path,
                        help="where the VGG-16 files are written and kept (default: a temporary folder)")
    parser.add_argument("--formats", nargs="+", choices=sorted(FORMATS), default=list(FORMATS))
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement (the best is kept)")
    parser.add_argument("--child", choices=["write", "read", "parse", "parse_copy", "convert", "keras"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--path", type=pathlib.Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child == "write":
        write_models(options.path, options.formats)
        return 0
    if options.child:
        child(options.child, options.path, options.path.parent / f"{options.child}.keras")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        workdir = options.workdir or pathlib.Path(scratch)
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            print(f"writing VGG-16 ({', '.join(options.formats)}) into {workdir} ...", flush=True)
            # written by a child: a child inherits its parent's peak RSS across fork + exec, so this one stays small
            subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), "--child", "write", "--path",
                            str(workdir), "--formats", *options.formats], check=True)
            paths = {name: workdir / FORMATS[name] for name in options.formats}
            keras_only = measure("keras", next(iter(paths.values())), options.repeats)
            print(f"Keras alone, build + save: {keras_only['seconds']:.3f} s, peak RSS "
                  f"{keras_only['maxrss_bytes'] / 1e6:.1f} MB", flush=True)
            for name, path in paths.items():
                measure("read", path, 1)  # the page cache holds the file
                modes = ["read", "parse", "parse_copy", "convert"] if name == "caffe" else ["read", "parse", "convert"]
                report(name, path.stat().st_size, {mode: measure(mode, path, options.repeats) for mode in modes},
                       keras_only)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
