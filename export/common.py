"""What every exporter shares: the command line, loading a model, sample images and atomic writes."""

import argparse
import contextlib
import dataclasses
import logging
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np

from converters.errors import ConversionError

log = logging.getLogger(__name__)

# Real colour photos shipped inside scikit-image (no download): the bundled samples.
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "stereo_motorcycle", "immunohistochemistry",
                 "hubble_deep_field", "retina")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
DEFAULT_INPUT_SIZE = (224, 224)


class ExportError(Exception):
    """An export could not be written or failed its own parity check."""


class Rejected(Exception):
    """Raised inside :func:`atomic_output` to discard the artifact (e.g. it failed its parity check)."""


# --------------------------------------------------------------------------------------------- command line

def make_parser(prog, description):
    """The arguments every ``python -m export.<format>`` command takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", metavar="MODEL",
                        help="registry name or alias (resnet-152, vgg16, caffenet, googlenet, fcn8s...) "
                             "or a .keras file")
    parser.add_argument("--weights", default=None,
                        help="what the builders take: 'imagenet', a weight-source name, 'none' (random "
                             "weights), or a path to a .caffemodel/.mat; default: the card's first source")
    parser.add_argument("-o", "--output", default=None,
                        help="where to write the artifact (default: exports/<model>/<format name>)")
    parser.add_argument("--batch", type=int, default=None,
                        help="fixed batch size of the artifact (default: dynamic where the format allows it)")
    parser.add_argument("--input-size", type=parse_size, default=None, metavar="H,W",
                        help="input height and width, for models whose size is not fixed (e.g. FCN)")
    parser.add_argument("--samples", default=None, metavar="DIR",
                        help="folder of images for the parity check and calibration "
                             "(default: the photos bundled with scikit-image)")
    parser.add_argument("--num-samples", type=int, default=16,
                        help="number of sample inputs for the parity check")
    parser.add_argument("--report", default=None, metavar="JSON",
                        help="where to write the parity report (default: next to the artifact)")
    parser.add_argument("--keep-batchnorm", action="store_true",
                        help="export batch norms and Scale layers as they are (default: folded into the "
                             "convolution before them; the parity check compares with the unfolded model)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def parse_size(text):
    """'224,224' or '224' -> (224, 224)."""
    try:
        values = [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected H,W (two positive integers), got {text!r}")
    return tuple(values)


def run_main(function, argv):
    """Run a command body; any known failure becomes one line on stderr and exit status 1."""
    try:
        return function(argv)
    except (ExportError, ConversionError, OSError, KeyError, ValueError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 1


def setup_logging(verbose):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")


# --------------------------------------------------------------------------------------------- models

def load_model(spec, *, weights=None, input_size=None):
    """``(keras.Model, card or None)`` for a registry name/alias or a ``.keras`` file."""
    import keras

    import keras_zoo  # noqa: F401  (registers the custom layers for safe-mode loading)

    path = pathlib.Path(spec)
    if path.suffix == ".keras":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such .keras file")
        if weights not in (None, "none"):
            raise ExportError(f"{path}: --weights does not apply to a .keras file (its weights are inside)")
        return keras.saving.load_model(path), None
    from keras_zoo import registry

    card = registry.get_card(spec)
    kwargs = {}
    if weights is not None:
        kwargs["weights"] = None if weights.lower() == "none" else weights
    if input_size is not None:
        kwargs["input_shape"] = (*input_size, 3)
    return registry.get_model(card["name"], **kwargs), card


def weight_source(card, weights=None):
    """The card's weight source that ``weights`` selects (the default one for None/'imagenet'/'none' or a
    file path), or None without a card."""
    if not card:
        return None
    from keras_zoo.registry import get_source

    sources = {source["name"] for source in card["weights"]}
    return get_source(card, weights if weights in sources else "imagenet")


def model_name(spec, card):
    return card["name"] if card else pathlib.Path(spec).stem


def input_size(model, requested=None, source=None):
    """The (H, W) of the model's image input: fixed by the model, or requested, or the card's, or 224."""
    shape = model.inputs[0].shape
    if shape[1] is not None and shape[2] is not None:
        return int(shape[1]), int(shape[2])
    if requested:
        return tuple(requested)
    card_size = ((source or {}).get("preprocessing") or {}).get("input_size")
    return tuple(card_size) if card_size else DEFAULT_INPUT_SIZE


def input_channels(model):
    return int(model.inputs[0].shape[-1])


def default_output(name, leaf):
    return pathlib.Path("exports") / name / leaf


# --------------------------------------------------------------------------------------------- images

def resize_spec(source):
    """The card's ``{resize, crop, interpolation}`` of a weight source (empty without a card)."""
    preprocessing = (source or {}).get("preprocessing") or {}
    return {key: preprocessing[key] for key in ("resize", "crop", "interpolation") if key in preprocessing}


def fit_images(images, size, *, resize=None, crop=None, interpolation="bilinear"):
    """Resize and centre-crop a batch of RGB images (NHWC, any dtype) to ``size`` = (H, W), float32 0..255.

    As a model card says it: ``resize`` is the shorter side before a ``crop='center'`` of ``size`` (or
    [H, W], an exact size before the crop); without a centre crop (or with ``resize`` None) the image is
    warped to ``size``. TensorFlow ops only, so the SavedModel's encoded-image signature runs the same code.
    """
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    height, width = size
    method = "bicubic" if interpolation == "bicubic" else "bilinear"
    if resize is None or crop != "center":
        return tf.image.resize(images, (height, width), method=method, antialias=True)
    if isinstance(resize, (int, float)):
        shape = tf.cast(tf.shape(images)[1:3], tf.float32)
        target = tf.cast(tf.round(shape * (float(resize) / tf.reduce_min(shape))), tf.int32)
        target = tf.maximum(target, tf.constant([height, width]))
    else:
        target = tf.constant([max(int(resize[0]), height), max(int(resize[1]), width)])
    images = tf.image.resize(images, target, method=method, antialias=True)
    top = (target[0] - height) // 2
    left = (target[1] - width) // 2
    return images[:, top:top + height, left:left + width, :]


def _read_folder(folder):
    from PIL import Image

    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of sample images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ExportError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the sample folder")
    photos = []
    for path in files:
        try:
            with Image.open(path) as image:
                photos.append(np.asarray(image.convert("RGB")))
        except OSError as error:
            raise ExportError(f"{path}: not a readable image ({error})") from None
    return photos


def _bundled_photos():
    try:
        import skimage.data
    except ImportError:
        raise ExportError("no sample images: install scikit-image (the bundled photos) or pass --samples DIR")
    photos = []
    for name in SAMPLE_PHOTOS:
        photo = getattr(skimage.data, name)()
        photos.append(photo[0] if isinstance(photo, tuple) else photo)
    return photos


def sample_images(size, count, *, folder=None, channels=3, fit=None):
    """``count`` real photos as float32 NHWC 0..255 at ``size``, fitted as the card says.

    Photos come from ``folder`` or the bundled samples; when more inputs than photos are asked for, further
    ones are horizontal flips and off-centre crops of the same photos. ``fit`` is :func:`resize_spec`'s
    dict; ``channels=1`` gives grey images.
    """
    photos = _read_folder(folder) if folder else _bundled_photos()
    views = []
    for variant in range(-(-count // len(photos))):
        for photo in photos:
            view = photo[:, ::-1] if variant % 2 else photo
            if variant >= 2:  # an off-centre square crop, a different one per variant
                side = min(view.shape[:2])
                offset = (variant * 37) % (max(view.shape[:2]) - side + 1)
                view = view[offset:offset + side] if view.shape[0] > side else view[:, offset:offset + side]
            views.append(np.asarray(fit_images(view[None], size, **(fit or {})))[0])
            if len(views) == count:
                break
    batch = np.stack(views[:count]).astype(np.float32)
    if channels == 1:
        batch = batch @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
    elif channels != 3:
        raise ExportError(f"sample photos are RGB; the model takes {channels} channels")
    return batch


# --------------------------------------------------------------------------------------------- files

@contextlib.contextmanager
def atomic_output(target):
    """Yield a temporary path next to ``target``; on success it replaces ``target`` (file or folder).

    On any exception the temporary file or folder is removed and ``target`` is left as it was; a
    :class:`Rejected` exception is swallowed after that (the caller reports why).
    """
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = workdir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise ExportError(f"{target}: the exporter wrote nothing")
        if tmp.is_dir() and target.exists():
            old = workdir / (target.name + ".old")
            os.replace(target, old)
        os.replace(tmp, target)
    except Rejected as why:
        log.warning("%s: not written (%s)", target, why)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def path_size(path):
    """Bytes of a file, or of every file under a folder."""
    path = pathlib.Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# --------------------------------------------------------------------------------------------- one export job

@dataclasses.dataclass
class Job:
    """A model ready to export: the Keras model, what the card says, sample inputs and Keras's outputs."""

    model: object
    name: str
    card: dict
    source: dict
    size: tuple
    samples: np.ndarray
    reference: list
    output: pathlib.Path
    report_path: pathlib.Path


def keras_outputs(model, images, batch_size=8):
    """The model's outputs on ``images`` as a list of float32 arrays (one per output)."""
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    outputs = list(outputs.values()) if isinstance(outputs, dict) else outputs
    return [np.asarray(o, np.float32) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def add_calibration_options(parser, count, what="int8"):
    """The options choosing the representative images that calibrate ``what``."""
    parser.add_argument("--representative", default=None, metavar="DIR",
                        help=f"folder of images calibrating {what} (default: the --samples images)")
    parser.add_argument("--num-representative", type=int, default=count,
                        help=f"how many representative images calibrate {what}")


def calibration_images(job, options):
    """The representative images of :func:`add_calibration_options`, fitted to the job's model."""
    return sample_images(job.size, options.num_representative, folder=options.representative or options.samples,
                         channels=input_channels(job.model), fit=resize_spec(job.source))


def run_batched(run, images, batch, *, pad):
    """``run(chunk) -> [outputs]`` over ``images`` in chunks of ``batch``; with ``pad`` the last chunk is filled
    up to ``batch`` by repeating its last image (runtimes with a fixed batch) and the extra rows are dropped."""
    images = np.asarray(images, np.float32)
    parts = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        filled = len(chunk)
        if pad and filled < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - filled, axis=0)])
        parts.append([np.asarray(out)[:filled] for out in run(chunk)])
    return [np.concatenate(column) for column in zip(*parts)]


def prepare_job(options, leaf):
    """Load the model named on the command line, make its sample inputs and reference outputs."""
    setup_logging(options.verbose)
    model, card = load_model(options.model, weights=options.weights, input_size=options.input_size)
    if len(model.inputs) != 1:
        raise ExportError(f"{options.model}: the exporters take models with one image input, "
                          f"this one has {len(model.inputs)}")
    name = model_name(options.model, card)
    source = weight_source(card, options.weights)
    size = input_size(model, options.input_size, source)
    samples = sample_images(size, options.num_samples, folder=options.samples, channels=input_channels(model),
                            fit=resize_spec(source))
    output = pathlib.Path(options.output) if options.output else default_output(name, leaf.format(name=name))
    report_path = pathlib.Path(options.report) if options.report else output.parent / f"{output.name}.report.json"
    log.info("%s: %d sample inputs of %dx%d", name, len(samples), *size)
    reference = keras_outputs(model, samples)
    if not options.keep_batchnorm:
        from keras_zoo.folding import fold_batchnorm

        model = fold_batchnorm(model)
    return Job(model=model, name=name, card=card, source=source, size=size, samples=samples,
               reference=reference, output=output, report_path=report_path)
