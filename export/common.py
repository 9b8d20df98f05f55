"""What every exporter shares: the command line, sample images, and one export job (the model resolved from
the command line, its sample inputs and Keras's outputs on them)."""

import dataclasses
import logging
import pathlib
import sys

import numpy as np

from converters.errors import ConversionError
from keras_zoo import cli
from keras_zoo.cli import parse_size
from keras_zoo.folding import fold_batchnorm
from keras_zoo.images import fit_images, fit_options, read_images, sample_photos
from keras_zoo.resolve import Resolved, resolve

log = logging.getLogger(__name__)


class ExportError(Exception):
    """An export could not be written or failed its own parity check."""


# --------------------------------------------------------------------------------------------- command line

def make_parser(prog, description):
    """The arguments every ``python -m export.<format>`` command takes."""
    parser = cli.ArgumentParser(prog=prog, description=description)
    parser.add_argument("model", metavar="MODEL",
                        help="registry name or alias (resnet-152, vgg16, caffenet, googlenet, fcn8s...) or a "
                             "model file (.keras, .caffemodel, .mat, or .prototxt with --weights its .caffemodel)")
    parser.add_argument("--weights", default="imagenet",
                        help="what the builders take: 'imagenet' (the card's default source), a weight-source "
                             "name, 'none' (random weights), or a path to a .caffemodel/.mat")
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
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads of the runtime the report times the artifact with (default: every core)")
    parser.add_argument("--keep-batchnorm", action="store_true",
                        help="export batch norms and Scale layers as they are (default: folded into the "
                             "convolution before them; the parity check compares with the unfolded model)")
    cli.add_verbose_option(parser)
    return parser


def run_main(function, argv):
    """Run a command body; any known failure becomes one line on stderr and exit status 1."""
    try:
        return function(argv)
    except (ExportError, ConversionError, OSError, KeyError, ValueError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 1


def setup_logging(verbose):
    cli.setup_logging(verbose)


# --------------------------------------------------------------------------------------------- models

def input_channels(model):
    return int(model.inputs[0].shape[-1])


def default_output(name, leaf):
    return pathlib.Path("exports") / name / leaf


# --------------------------------------------------------------------------------------------- images

def sample_images(size, count, *, folder=None, channels=3, fit=None):
    """``count`` real photos as float32 NHWC 0..255 at ``size``, fitted as the card says.

    Photos come from ``folder`` or the bundled samples (:func:`keras_zoo.images.sample_photos`); when more
    inputs than photos are asked for, further ones are horizontal flips and off-centre crops of the same photos.
    ``fit`` is :func:`keras_zoo.images.fit_options`' dict; ``channels=1`` gives grey images.
    """
    try:
        photos = [photo for _, photo in (read_images(folder) if folder else sample_photos())]
    except (ConversionError, ImportError) as error:
        raise ExportError(f"sample images: {error}") from None
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


def path_size(path):
    """Bytes of a file, or of every file under a folder."""
    path = pathlib.Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# --------------------------------------------------------------------------------------------- one export job

@dataclasses.dataclass
class Job:
    """A model ready to export: the model as resolved from the command line (with its card), the model to
    export (batch norms folded unless asked otherwise), sample inputs and the resolved model's outputs (and the
    logits of those a softmax makes, :func:`reference_outputs`)."""

    resolved: Resolved
    model: object
    size: tuple
    samples: np.ndarray
    reference: list
    output: pathlib.Path
    report_path: pathlib.Path
    reference_logits: dict = dataclasses.field(default_factory=dict)

    @property
    def name(self):
        return self.resolved.name


def keras_outputs(model, images, batch_size=8):
    """The model's outputs on ``images`` as a list of float32 arrays (one per output)."""
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    outputs = list(outputs.values()) if isinstance(outputs, dict) else outputs
    return [np.asarray(o, np.float32) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def _is_softmax(layer):
    import keras

    return isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.softmax)


def with_logits(model):
    """``(check model, {output index: position})``: ``model`` with the logits of the outputs a final Softmax
    layer (or Activation('softmax')) makes, the tensors that layer takes, as further outputs; ``position`` is
    where each output's logits are among the check model's outputs. ``(model, {})`` when no output is a
    softmax's. The parity check judges those logits, since probabilities hide their errors."""
    import keras

    try:
        outputs = list(model.outputs)
    except (AttributeError, ValueError):  # a subclassed model: no graph to read
        return model, {}
    extra, positions = [], {}
    for index, tensor in enumerate(outputs):
        history = getattr(tensor, "_keras_history", None)
        if history is None or not _is_softmax(history.operation):
            continue
        logits = history.operation._inbound_nodes[history.node_index].input_tensors[0]
        known = next((i for i, other in enumerate(outputs + extra) if other is logits), None)
        if known is None:
            extra.append(logits)
            known = len(outputs) + len(extra) - 1
        positions[index] = known
    if not extra:
        return model, positions
    return keras.Model(model.inputs, outputs + extra, name=model.name), positions


def reference_outputs(model, images, batch_size=8):
    """``(outputs, logits)``: the model's outputs on ``images`` (:func:`keras_outputs`) and the logits of those
    a softmax makes, ``{output index: array}`` (:func:`with_logits`), from one pass."""
    check, positions = with_logits(model)
    values = keras_outputs(check, images, batch_size)
    return values[:len(model.outputs)], check_logits(values, positions)


def check_logits(values, positions):
    """``{output index: array}`` of a check model's (or its artifact's) outputs ``values``."""
    return {index: values[position] for index, position in positions.items()}


def given_logits(model, samples, reference_logits):
    """``reference_logits`` when the caller gave them, else those of ``model`` itself on ``samples``."""
    return reference_logits if reference_logits is not None else reference_outputs(model, samples)[1]


def add_calibration_options(parser, count, what="int8"):
    """The options choosing the representative images that calibrate ``what``."""
    parser.add_argument("--representative", default=None, metavar="DIR",
                        help=f"folder of images calibrating {what} (default: the --samples images)")
    parser.add_argument("--num-representative", type=int, default=count,
                        help=f"how many representative images calibrate {what}")


def calibration_images(job, options):
    """The representative images of :func:`add_calibration_options`, fitted to the job's model."""
    return sample_images(job.size, options.num_representative, folder=options.representative or options.samples,
                         channels=input_channels(job.model), fit=fit_options(job.resolved.source))


def prepare_job(options, leaf):
    """Resolve the model named on the command line, make its sample inputs and reference outputs."""
    setup_logging(options.verbose)
    resolved = resolve(options.model, options.weights, size=options.input_size)
    model = resolved.model
    if len(model.inputs) != 1:
        raise ExportError(f"{options.model}: the exporters take models with one image input, "
                          f"this one has {len(model.inputs)}")
    name, size = resolved.name, resolved.input_size
    samples = sample_images(size, options.num_samples, folder=options.samples, channels=input_channels(model),
                            fit=fit_options(resolved.source))
    output = pathlib.Path(options.output) if options.output else default_output(name, leaf.format(name=name))
    report_path = pathlib.Path(options.report) if options.report else output.parent / f"{output.name}.report.json"
    log.info("%s: %d sample inputs of %dx%d", name, len(samples), *size)
    reference, reference_logits = reference_outputs(model, samples)
    return Job(resolved=resolved, model=model if options.keep_batchnorm else fold_batchnorm(model), size=size,
               samples=samples, reference=reference, output=output, report_path=report_path,
               reference_logits=reference_logits)
