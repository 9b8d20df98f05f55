"""Benchmark the zoo against keras.applications on this machine, in one run.

1. Cached-load time: ``keras_zoo.VGG16(weights='imagenet')`` (from the converted cache) over
   ``keras.applications.VGG16(weights=<local .h5>)``; target <= 1.2.
2. Inference speed: images/s of ``keras_zoo.ResNet50`` over ``keras.applications.ResNet50`` at batch 1 and 16;
   target >= 1.0. The zoo model runs as an inference model (``fold_batchnorm=True``: BatchNorm and Scale
   folded into the convolutions); the ratio of the model as built, with its BatchNorm and Scale layers, is
   printed beside it.
3. Exported artifacts: images/s of the Keras model, the SavedModel, ONNX Runtime and TFLite fp32/fp16/int8 for
   a few zoo models, side by side with their ratio to Keras (MatConvNet's speed table; ``export.bench``).

Without the original weights here (no converted cache, no keras.applications .h5), both sides load a file
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
            model = models.get_model(card_name, weights=None, include_preprocessing=False)
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


def speeds(batches, seconds):
    """{batch: images/s of [keras_zoo.ResNet50 folded, as built, keras.applications.ResNet50]}."""
    import keras

    import keras_zoo

    with zoo_cache_for("ResNet50"):
        folded = keras_zoo.ResNet50(weights="imagenet", fold_batchnorm=True)
        unfolded = keras_zoo.ResNet50(weights="imagenet")
    reference = keras.applications.ResNet50(weights=None)
    return {batch: images_per_second([folded, unfolded, reference], batch, seconds) for batch in batches}


def main(argv=None):
    from keras_zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="tools/benchmark.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="model loads timed per side (median)")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum seconds of inference per measurement")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--skip-load", action="store_true", help="only the inference speed")
    parser.add_argument("--skip-speed", action="store_true", help="only the cached-load time")
    parser.add_argument("--export-models", nargs="*", default=["googlenet", "resnet-50"],
                        help="zoo models for the export table (none: skip it)")
    parser.add_argument("--export-weights", default="none",
                        help="weights of the export table's models: none is random weights, for speed only")
    options = parser.parse_args(argv)
    from keras_zoo.cli import setup_logging

    setup_logging(False, logging.WARNING)
    try:
        if not options.skip_load:
            zoo, reference, synthetic = load_times(options.repeats)
            note = " (untrained-weight files of the same size: no original weights here)" if synthetic else ""
            print(f"VGG16 cached load: keras_zoo {zoo:.2f} s, keras.applications {reference:.2f} s, "
                  f"ratio {zoo / reference:.2f} (target <= 1.2){note}")
        if not options.skip_speed:
            for batch, (folded, unfolded, reference) in speeds(options.batches, options.seconds).items():
                print(f"ResNet50 batch {batch:>2}: keras_zoo {folded:.1f} images/s (fold_batchnorm=True; "
                      f"{unfolded:.1f} as built), keras.applications {reference:.1f} images/s, ratio "
                      f"{folded / reference:.2f} (target >= 1.0; {unfolded / reference:.2f} as built)")
        if options.export_models:
            from export.bench import export_benchmark, format_table

            rows = export_benchmark(options.export_models, weights=options.export_weights)
            print(format_table(rows))
    except Exception as error:  # a command: one clear line, non-zero exit
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
