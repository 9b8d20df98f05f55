"""Benchmark the zoo on this machine, in one run: what BUILD.md's speed table and advice come from.

1. Cached-load time: ``keras_zoo.VGG16(weights='imagenet')`` (from the converted cache) over
   ``keras.applications.VGG16(weights=<local .h5>)``; target <= 1.2.
2. Keras speed, interleaved in one process: images/s of each zoo builder with a keras.applications counterpart
   (ResNet50, ResNet101, ResNet152, VGG16, VGG19) as built (batch norms folded, the default) and, where it has
   batch norms, unfolded (``fold_batchnorm=False``), over its counterpart at batch 1 and 16; target >= 1.1 as built.
3. The speed table (:mod:`export.bench`) of GoogLeNet, ResNet-50, VGG-16 and CaffeNet at batch 1 and 16:
   keras.applications, keras_zoo as built and unfolded, SavedModel, ONNX Runtime fp32/int8, LiteRT
   fp32/fp16/int8 and OpenCV DNN, each alone in a fresh process; images/s, ratio to keras_zoo as built, share of
   the fp32 matmul peak. The original deploy prototxts (``--prototxts DIR``, default: the fixtures folder) get
   random weights written as a caffemodel, which every runtime runs (mean images: :func:`mean_files_mirror`).

Without the original weights here (no converted cache, no keras.applications .h5), both sides of 1. load a file
of the same size written from untrained weights: the timings measure the loading path, not the values.
"""

import contextlib
import logging
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

KERAS_VGG16_H5 = pathlib.Path.home() / ".keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


def median_times(functions, repeats):
    """Median wall time (seconds) of each function, calling them in turn ``repeats`` times (fair under load)."""
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, spent in zip(functions, times):
            start = time.perf_counter()
            function()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


@contextlib.contextmanager
def zoo_cache_for(card_name):
    """A KERAS_ZOO_HOME holding the converted cache of the card's default source; yields (home, synthetic)."""
    import numpy as np

    from keras_zoo import cache, cards, downloads, models

    card = cards.get_card(card_name)
    source = card.source()
    if cache.cache_path(card, source).exists():
        yield downloads.home(), False
        return
    previous = os.environ.get("KERAS_ZOO_HOME")
    with tempfile.TemporaryDirectory(prefix="keras_zoo_bench_") as home:
        os.environ["KERAS_ZOO_HOME"] = home
        try:
            model = models.get_model(card_name, weights=None, include_preprocessing=False,
                                     fold_batchnorm=False)  # the cache holds the original layers
            cache.save_by_name(model, cache.cache_path(card, source),
                               {layer.name for layer in model.layers
                                if any(weight.trainable for weight in layer.weights)})
            if source.input.mean == "meta":  # the average image the .mat would have given
                cache.save_mean(source, np.zeros(3, np.float32))
            del model
            yield pathlib.Path(home), True
        finally:
            if previous is None:
                os.environ.pop("KERAS_ZOO_HOME", None)
            else:
                os.environ["KERAS_ZOO_HOME"] = previous


@contextlib.contextmanager
def keras_vgg16_weights():
    """keras.applications' own VGG16 .h5 where downloaded before, else a file of the same (legacy h5) format
    written from untrained weights; yields (path, synthetic)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    if KERAS_VGG16_H5.exists():
        yield KERAS_VGG16_H5, False
        return
    with tempfile.TemporaryDirectory(prefix="keras_bench_") as directory:
        path = pathlib.Path(directory) / "vgg16_weights.h5"
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, keras.applications.VGG16(weights=None))
        yield path, True


def load_times(repeats):
    import keras

    import keras_zoo

    with zoo_cache_for("VGG16") as (_, zoo_synthetic), keras_vgg16_weights() as (h5, keras_synthetic):
        zoo, reference = median_times([lambda: keras_zoo.VGG16(weights="imagenet"),
                                       lambda: keras.applications.VGG16(weights=str(h5))], repeats + 1)
    return zoo, reference, zoo_synthetic or keras_synthetic


def images_per_second(models, batch, seconds):
    """Throughput of each model's ``predict_on_batch`` on random RGB 0..255 images, the models taking turns
    (one batch each) so that a shared CPU's load hits them alike."""
    import numpy as np

    images = np.random.default_rng(0).uniform(0, 255, (batch, 224, 224, 3)).astype("float32")
    for model in models:
        for _ in range(2):  # warm-up
            model.predict_on_batch(images)
    spent, rounds = [0.0] * len(models), 0
    while rounds < 3 or sum(spent) < seconds * len(models):
        for index, model in enumerate(models):
            start = time.perf_counter()
            model.predict_on_batch(images)
            spent[index] += time.perf_counter() - start
        rounds += 1
    return [rounds * batch / total for total in spent]


# zoo builders with a keras.applications counterpart of the same name
COUNTERPARTS = ("ResNet50", "ResNet101", "ResNet152", "VGG16", "VGG19")


def speeds(name, batches, seconds):
    """{batch: images/s of [keras_zoo.<name> as built, keras.applications.<name>, keras_zoo.<name> unfolded]};
    without batch norms to fold, the unfolded model is the built one and is left out."""
    import keras

    import keras_zoo

    with zoo_cache_for(name):
        built = getattr(keras_zoo, name)(weights="imagenet")
        unfolded = getattr(keras_zoo, name)(weights="imagenet", fold_batchnorm=False)
    models = [built, getattr(keras.applications, name)(weights=None)]
    if len(unfolded.layers) != len(built.layers):
        models.append(unfolded)
    try:
        return {batch: images_per_second(models, batch, seconds) for batch in batches}
    finally:
        keras.backend.clear_session()


@contextlib.contextmanager
def mean_files_mirror(fixtures):
    """Offline, the mean images the table's builders subtract, as a KERAS_ZOO_MIRROR (unless one is named): the
    fixtures' copy of Caffe's ILSVRC-2012 mean (CaffeNet) and, for ResNet's mean image (published on OneDrive
    only, no checksum), a zero stand-in of its size: the weights are random too, and the subtraction costs the
    same."""
    if os.environ.get("KERAS_ZOO_MIRROR"):
        yield
        return
    import numpy as np

    from converters.writers.caffe import write_binaryproto

    with tempfile.TemporaryDirectory(prefix="keras_zoo_bench_means.") as mirror:
        imagenet = fixtures / "labels" / "ilsvrc12" / "imagenet_mean.binaryproto"
        if imagenet.exists():
            os.symlink(imagenet, pathlib.Path(mirror) / imagenet.name)
        write_binaryproto(pathlib.Path(mirror) / "ResNet_mean.binaryproto", np.zeros((1, 3, 224, 224), np.float32))
        os.environ["KERAS_ZOO_MIRROR"] = mirror
        try:
            yield
        finally:
            del os.environ["KERAS_ZOO_MIRROR"]


# the original deploy prototxts of the table's models, under --prototxts
TABLE_PROTOTXTS = {"googlenet": "bvlc/bvlc_googlenet/deploy.prototxt",
                   "resnet-50": "resnet/ResNet-50-deploy.prototxt",
                   "vgg16": "vgg/VGG_ILSVRC_16_layers_deploy.prototxt",
                   "caffenet": "bvlc/bvlc_reference_caffenet/deploy.prototxt"}
FIXTURES = pathlib.Path(os.environ.get("KERAS_ZOO_FIXTURES", pathlib.Path(__file__).resolve().parents[2] / "shared"
                                       / "fixtures"))


def main(argv=None):
    from keras_zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="tools/benchmark.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="model loads timed per side (median)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="minimum seconds of inference per measurement of 2.; per timed round of 3. a fifth")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--skip-load", action="store_true", help="skip 1., the cached-load time")
    parser.add_argument("--skip-speed", action="store_true", help="skip 2., the interleaved Keras speeds")
    parser.add_argument("--speed-models", nargs="+", default=list(COUNTERPARTS), choices=COUNTERPARTS,
                        metavar="NAME", help=f"zoo builders of 2. (of {', '.join(COUNTERPARTS)})")
    parser.add_argument("--table-models", nargs="*", default=list(TABLE_PROTOTXTS),
                        help="zoo models of the speed table (none: skip it)")
    parser.add_argument("--prototxts", type=pathlib.Path, default=FIXTURES, metavar="DIR",
                        help="folder holding the original deploy prototxts (bvlc/..., resnet/..., vgg/...)")
    options = parser.parse_args(argv)
    from keras_zoo.cli import setup_logging

    setup_logging(False, logging.WARNING)
    try:
        if not options.skip_load:
            zoo, reference, synthetic = load_times(options.repeats)
            note = " (untrained-weight files of the same size: no original weights here)" if synthetic else ""
            print(f"VGG16 cached load: keras_zoo {zoo:.2f} s, keras.applications {reference:.2f} s, "
                  f"ratio {zoo / reference:.2f} (target <= 1.2){note}")
        for name in [] if options.skip_speed else options.speed_models:
            for batch, (built, reference, *unfolded) in speeds(name, options.batches, options.seconds).items():
                print(f"{name} batch {batch:>2}, interleaved in one process: keras_zoo {built:.1f} images/s as built, "
                      f"keras.applications {reference:.1f}: ratio {built / reference:.2f} (target >= 1.1)"
                      + "".join(f"; unfolded {value:.1f}, ratio {value / reference:.2f}" for value in unfolded))
        if options.table_models:
            from export.bench import print_benchmark

            prototxts = {name: options.prototxts / TABLE_PROTOTXTS[name] for name in options.table_models
                         if name in TABLE_PROTOTXTS and (options.prototxts / TABLE_PROTOTXTS[name]).exists()}
            with mean_files_mirror(options.prototxts):
                print_benchmark(options.table_models, prototxts=prototxts, batches=options.batches,
                                seconds=options.seconds / 5, rounds=3)
    except Exception as error:  # a command: one clear line, non-zero exit
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
