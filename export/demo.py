"""``python -m export.demo``: classify real sample photos with a zoo model and print the top-5 labels.

The photos ship with scikit-image (or pass ``--images``). The weights are the model's original ones, fetched,
verified, converted and cached on first use; where none can be had (offline, nothing cached) the demo says so
in one line and runs the same pipeline on untrained weights. ``--export DIR`` then exports the model
(SavedModel, TFLite) and verifies the exports against Keras.
"""

import pathlib
import sys

import numpy as np

from converters.errors import ConversionError
from export import common, saved_model, tflite
from keras_zoo import cli
from keras_zoo.evaluate.metrics import top_k
from keras_zoo.images import CropProtocol, read_image, sample_photos
from keras_zoo.resolve import resolve

DEFAULT_MODEL = "googlenet"  # small (54 MB), SHA1-verified original BVLC weights


def top_classes(scores, names, top):
    """``[(label, score)]`` of the ``top`` best classes of one score vector."""
    return [(names[i] if names else f"class {i}", float(scores[i])) for i in top_k(scores, top)]


def scores_per_class(output, task):
    """One score per class and image: the network's output, or for segmentation the share of pixels."""
    if task != "segmentation":
        return output.reshape(len(output), -1)
    labels = output.argmax(-1)
    return np.stack([np.bincount(image.ravel(), minlength=output.shape[-1]) / image.size for image in labels])


def classify(resolved, samples, top=5):
    """``[[(label, score), ...] per sample]`` of the resolved model on ``samples`` (its fitted inputs)."""
    output = resolved.model.predict(samples, verbose=0)
    output = output[0] if isinstance(output, (list, tuple)) else output
    names = resolved.label_names()
    return [top_classes(scores, names, top) for scores in scores_per_class(np.asarray(output), resolved.card.task)]


def export_and_verify(model, samples, directory, *, untrained=False):
    """Export the model (SavedModel, TFLite) and verify each export against Keras on the samples; returns what
    failed, one line each (empty when every export passed). ``untrained``: the reports say the weights were."""
    reference = common.keras_outputs(model, samples)
    directory = pathlib.Path(directory)
    given = {"samples": samples, "reference": reference, "name": model.name}
    serving = saved_model.version_folder(directory / "saved_model")  # TensorFlow Serving's layout, as the command
    exports = {"SavedModel": lambda: saved_model.export_saved_model(model, serving, **given),
               "TFLite": lambda: tflite.export_tflite(model, directory / f"{model.name}.tflite", **given)}
    failed = []
    for what, export in exports.items():
        try:
            result = export()
        except ImportError as error:
            print(f"{what} export skipped: the export extra is not installed ({error})")
            continue
        except common.ExportError as error:
            failed.append(f"{what} export: {error}")
            continue
        result.untrained = untrained
        print(result.table())
        if not result.passed:
            failed.append(f"{what} export {result.artifact}: parity check failed ({'; '.join(result.failures)}); "
                          "not written")
    return failed


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m export.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name or alias")
    parser.add_argument("--weights", default="imagenet", help="'imagenet', a source name or a weights file")
    parser.add_argument("--images", nargs="+", help="image files (default: scikit-image's sample photos)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print per image")
    parser.add_argument("--export", metavar="DIR", help="then export to DIR and verify the exports")
    cli.add_verbose_option(parser)
    options = parser.parse_args(argv)
    cli.setup_logging(options.verbose)
    try:
        photos = ([(str(path), read_image(path)) for path in options.images] if options.images
                  else sample_photos())
        resolved = resolve(options.model, options.weights, untrained_fallback=True)
        card, source = resolved.card, resolved.source
        if card is None:
            raise ValueError(f"{options.model}: the demo shows a zoo model; give a registry name or alias")
        if resolved.unavailable:
            print(f"No weights for {card.name} ({resolved.unavailable}); showing the pipeline on UNTRAINED "
                  "weights.")
        if resolved.untrained and not resolved.unavailable:  # asked for: no weight source to speak of
            print(f"{card.name} (UNTRAINED weights), classes {source.classes}")
        else:
            print(f"{card.name} ({source.name} weights: {source.file.filename}"
                  f"{', UNTRAINED' if resolved.untrained else ''}), classes {source.classes}")
        protocol = CropProtocol.from_card(source)
        samples = np.stack([protocol(photo) for _, photo in photos])
        for (name, _), best in zip(photos, classify(resolved, samples, options.top)):
            print(f"{name}:")
            for label, score in best:
                print(f"  {score:7.4f}  {label}")
        failed = (export_and_verify(resolved.model, samples, options.export, untrained=resolved.untrained)
                  if options.export else [])
        if resolved.untrained:
            print(f"{card.name}: {resolved.weights_note}")
        for line in failed:
            print(f"error: {line}", file=sys.stderr)
        if failed:
            return 1
    except (ConversionError, ValueError, OSError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
