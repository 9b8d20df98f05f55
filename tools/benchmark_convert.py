"""Benchmark the Caffe conversion path on a VGG-16-sized model (~550 MB of random weights), in one run.

Writes a VGG-16 deploy prototxt and a caffemodel of random weights (once, into ``--workdir``), then measures,
each in its own subprocess (peak RSS from ``resource.getrusage`` in the child; times exclude imports):

1. parse ratio: ``read_caffe(prototxt, caffemodel)`` / reading the caffemodel's bytes (target <= 2). The
   reader maps the weights lazily, so also shown: parsing plus copying every weight value out of the file
   in file order (what a consumer pays once, before any layout transposition);
2. time ratio: ``convert_caffe`` to ``.keras`` / Keras alone building the same model (no weights ported)
   and saving it (target <= 1.3);
3. memory ratio: (peak RSS of the conversion - peak RSS of the Keras-only run) / caffemodel size
   (target <= 0.5).

The caffemodel is written with the test-side writer ``tests/caffe_writer.py`` (independent of the reader).
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


def write_vgg16(prototxt, caffemodel):
    """Write the prototxt and (once) the random-weight caffemodel."""
    import numpy as np

    from tests.caffe_writer import write_caffemodel

    layers = vgg16_layers()
    text = ['name: "VGG_ILSVRC_16_layers"',
            'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 224 '
            'dim: 224 } } }']
    text += [f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{top}" {params} }}'
             for name, kind, _, _, bottom, top, params in layers]
    prototxt.write_text("\n".join(text) + "\n")
    if not caffemodel.exists():
        rng = np.random.default_rng(0)

        def weighted():
            for name, kind, shape, bias, *_ in layers:
                if shape is not None:
                    scale = np.float32(1 / np.sqrt(np.prod(shape[1:])))
                    yield name, kind, [rng.standard_normal(shape, np.float32) * scale,
                                       np.zeros(bias, np.float32)]

        partial = caffemodel.with_suffix(".partial")
        write_caffemodel(partial, weighted(), net_name="VGG_ILSVRC_16_layers")
        partial.rename(caffemodel)


def child(mode, prototxt, caffemodel, output):
    """One measurement in this (fresh) process: {'seconds', 'maxrss_bytes'}."""
    if mode == "write":
        write_vgg16(prototxt, caffemodel)
        return
    if mode in ("convert", "keras"):
        from converters.caffe import read_caffe
        from keras_zoo.builder import build_model
        from keras_zoo.convert import convert_caffe, save_model
    else:
        import numpy as np

        from converters.caffe import read_caffe
    start = time.perf_counter()
    if mode == "read":
        with open(caffemodel, "rb") as handle:
            handle.read()
    elif mode == "parse":
        read_caffe(prototxt, caffemodel)
    elif mode == "parse_copy":
        graph = read_caffe(prototxt, caffemodel)
        for node in graph.nodes:
            for array in node.weights.values():
                np.array(array, order="K")  # every value read, in file order (no transposition)
    elif mode == "convert":
        convert_caffe(prototxt, caffemodel, output)
    elif mode == "keras":
        save_model(build_model(read_caffe(prototxt)), output)
    seconds = time.perf_counter() - start
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "maxrss_bytes": maxrss}))


def measure(mode, prototxt, caffemodel, output):
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", mode, "--workdir",
               str(output.parent), "--prototxt", str(prototxt), "--caffemodel", str(caffemodel)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{mode} run failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=pathlib.Path,
                        help="where the VGG-16 files are written and kept (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement (best is kept)")
    parser.add_argument("--child", choices=["write", "read", "parse", "parse_copy", "convert", "keras"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--prototxt", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--caffemodel", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.prototxt, args.caffemodel, args.workdir / f"{args.child}.keras")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or pathlib.Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            print(f"writing the VGG-16 model into {workdir} ...", flush=True)
            # every step runs in a child: this process stays small, so no child inherits a large peak RSS
            prototxt, caffemodel = workdir / "vgg16_deploy.prototxt", workdir / "vgg16_random.caffemodel"
            subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), "--child", "write",
                            "--workdir", str(workdir), "--prototxt", str(prototxt), "--caffemodel",
                            str(caffemodel)], check=True)
            size = caffemodel.stat().st_size
            print(f"caffemodel: {size / 1e6:.1f} MB", flush=True)
            measure("read", prototxt, caffemodel, workdir / "warm-up.keras")  # the page cache holds the file
            results = {}
            for mode in ["read", "parse", "parse_copy", "convert", "keras"]:
                runs = [measure(mode, prototxt, caffemodel, workdir / f"{mode}.keras")
                        for _ in range(args.repeats)]
                results[mode] = {"seconds": min(run["seconds"] for run in runs),
                                 "maxrss_bytes": min(run["maxrss_bytes"] for run in runs)}
                print(f"  {mode:<10} {results[mode]['seconds']:8.3f} s   peak RSS "
                      f"{results[mode]['maxrss_bytes'] / 1e6:8.1f} MB", flush=True)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            print(f"benchmark_convert: {exc}", file=sys.stderr)
            return 1
    read = results["read"]["seconds"]
    parse_ratio = results["parse"]["seconds"] / read
    copy_ratio = results["parse_copy"]["seconds"] / read
    time_ratio = results["convert"]["seconds"] / results["keras"]["seconds"]
    memory_ratio = (results["convert"]["maxrss_bytes"] - results["keras"]["maxrss_bytes"]) / size
    print(f"parse / read bytes:             {parse_ratio:6.3f}  (target <= 2; parse + copy all weights: "
          f"{copy_ratio:.3f})")
    print(f"convert / Keras build+save:     {time_ratio:6.3f}  (target <= 1.3)")
    print(f"(RSS convert - RSS Keras) / size: {memory_ratio:6.3f}  (target <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
