"""``python -m keras_zoo demo``: classify real sample photos with a zoo model and print the top-5 labels.

The photos ship with scikit-image (or pass ``--images``). The weights are the model's original ones, fetched,
verified, converted and cached on first use; where none can be had (offline, nothing cached) the demo says so
in one line and runs the same pipeline on untrained weights. ``--export DIR`` then exports the model
(SavedModel, TFLite) and verifies the exports against Keras.
"""

import argparse
import logging
import sys

import numpy as np

from converters.errors import ConversionError

log = logging.getLogger(__name__)

SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
DEFAULT_MODEL = "googlenet"  # small (54 MB), SHA1-verified original BVLC weights


def sample_photos(names=SAMPLE_PHOTOS):
    """``[(name, RGB uint8 array)]`` of scikit-image's bundled sample photos."""
    import skimage.data

    return [(name, np.asarray(getattr(skimage.data, name)())[..., :3]) for name in names]


def read_photos(paths):
    from PIL import Image

    photos = []
    for path in paths:
        try:
            photos.append((str(path), np.asarray(Image.open(path).convert("RGB"))))
        except OSError as error:
            raise ConversionError(f"cannot read the image: {error}", path=path) from None
    return photos


def build(card, weights="imagenet"):
    """``(model, trained)``: the zoo model with its weights, or untrained where none can be had."""
    from keras_zoo import registry
    from keras_zoo.weights import WeightsUnavailable

    try:
        return registry.get_model(card["name"], weights=weights), True
    except WeightsUnavailable as error:
        print(f"No weights for {card['name']} ({error}); showing the pipeline on UNTRAINED weights.")
        return registry.get_model(card["name"], weights=None), False


def class_names(source):
    from keras_zoo import labels
    from keras_zoo.weights import WeightsUnavailable

    try:
        return labels.get_labels(source["classes"])
    except WeightsUnavailable as error:
        log.warning("labels %s unavailable (%s); printing class numbers", source["classes"], error)
        return None


def top_classes(scores, names, top):
    """``[(label, score)]`` of the ``top`` best classes of one score vector."""
    best = np.argsort(-scores, kind="stable")[:top]
    return [(names[i] if names else f"class {i}", float(scores[i])) for i in best]


def scores_per_class(output, task):
    """One score per class and image: the network's output, or for segmentation the share of pixels."""
    if task != "segmentation":
        return output.reshape(len(output), -1)
    labels = output.argmax(-1)
    return np.stack([np.bincount(image.ravel(), minlength=output.shape[-1]) / image.size for image in labels])


def classify(model, photos, source, task, top=5):
    """``[(photo name, [(label, score), ...])]`` for each photo."""
    from keras_zoo.imagenet_utils import prepare_image

    batch = np.stack([prepare_image(photo, source) for _, photo in photos])
    output = model.predict(batch, verbose=0)
    output = output[0] if isinstance(output, (list, tuple)) else output
    names = class_names(source)
    return [(name, top_classes(scores, names, top))
            for (name, _), scores in zip(photos, scores_per_class(np.asarray(output), task))]


def export_and_verify(model, photos, source, directory):
    """Export the model (SavedModel, TFLite) and verify each export against Keras on the photos; False when an
    export failed its parity check."""
    import pathlib

    from keras_zoo.imagenet_utils import prepare_image

    try:
        from export import common, saved_model, tflite
    except ImportError as error:
        print(f"export skipped: the export package is not available ({error})")
        return True
    samples = np.stack([prepare_image(photo, source) for _, photo in photos])
    reference = [np.asarray(model.predict(samples, verbose=0))]
    directory = pathlib.Path(directory)
    try:
        for result in (saved_model.export_saved_model(model, directory / "saved_model", samples=samples,
                                                      reference=reference, name=model.name),
                       tflite.export_tflite(model, directory / f"{model.name}.tflite", samples=samples,
                                            reference=reference, name=model.name)):
            print(result.table())
    except (common.ExportError, common.Rejected) as error:
        print(f"export failed: {error}", file=sys.stderr)
        return False
    return True


def main(argv=None):
    from keras_zoo import registry
    from keras_zoo.weights import WEIGHT_SUFFIXES

    parser = argparse.ArgumentParser(prog="python -m keras_zoo demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or alias (default {DEFAULT_MODEL})")
    parser.add_argument("--weights", default="imagenet", help="'imagenet', a source name or a weights file")
    parser.add_argument("--images", nargs="+", help="image files (default: scikit-image's sample photos)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print per image")
    parser.add_argument("--export", metavar="DIR", help="then export to DIR and verify the exports")
    options = parser.parse_args(argv)
    try:
        card = registry.get_card(options.model)
        is_file = options.weights.lower().endswith(WEIGHT_SUFFIXES)
        source = registry.get_source(card, "imagenet" if is_file else options.weights)
        photos = read_photos(options.images) if options.images else sample_photos()
        model, trained = build(card, options.weights)
        print(f"{card['name']} ({source['name']} weights: {source['filename']}"
              f"{'' if trained else ', UNTRAINED'}), classes {source['classes']}")
        for name, best in classify(model, photos, source, card["task"], options.top):
            print(f"{name}:")
            for label, score in best:
                print(f"  {score:7.4f}  {label}")
        if options.export and not export_and_verify(model, photos, source, options.export):
            return 1
    except (ConversionError, ValueError, OSError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
