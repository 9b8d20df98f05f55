"""``python -m export.saved_model MODEL``: a TensorFlow SavedModel with serving signatures, in the layout
TensorFlow Serving reads (``OUT/<version>/saved_model.pb``).

Signatures (every one returns the same outputs):
  serving_default   ``images``: float32 RGB 0..255, (N, H, W, 3); the preprocessing is inside the model
  serving_uint8     ``images``: uint8 RGB, (N, H, W, 3)
  serving_bytes     ``images``: string (N,), encoded JPEG/PNG/BMP/GIF; decoded, resized and centre-cropped
                    as the model card says
Classifiers return ``probabilities`` (N, classes), ``top_k_scores``, ``top_k_indices`` and, where the card
names a label set, ``top_k_labels``; a classifier whose last layer is not a softmax also returns ``logits``.
Other models return their outputs under their own names.
"""

import io
import logging
import pathlib
import re
import sys
import tempfile

import numpy as np

from export import common, report
from export.batches import run_batched
from export.runners import cpu_threads
from export.speed import measure, report_speeds, time_artifact
from keras_zoo.files import Rejected, atomic_output
from keras_zoo.images import decode_image_bytes, fit_images, fit_options

log = logging.getLogger(__name__)

SIGNATURES = ("serving_default", "serving_uint8", "serving_bytes")


def version_folder(base, version=1):
    """Where the SavedModel of ``version`` goes under the model base path ``base``: TensorFlow Serving's layout
    ``base/<version>/saved_model.pb``, for the command and the demo alike."""
    return pathlib.Path(base) / str(int(version))


def is_probabilities(outputs):
    """True when a (N, classes) output already is a probability distribution per row."""
    return bool(outputs.min() >= 0 and np.allclose(outputs.sum(-1), 1.0, atol=1e-3))


def output_keys(model):
    """Signature-safe names of the model's outputs."""
    return [re.sub(r"[^A-Za-z0-9_]", "_", name) for name in model.output_names]


def export_saved_model(model, output, *, samples, reference, reference_logits=None, name="model", labels=None,
                       classification=None, fit=None, top_k=5, batch=None, speed_batch=8, threads=None):
    """Write ``model`` as a SavedModel folder ``output`` after checking it against ``reference``.

    ``samples`` are float32 RGB 0..255 inputs and ``reference`` the Keras model's outputs on them; ``fit``
    (:func:`keras_zoo.images.fit_options`) is how encoded images are resized and cropped; ``classification``
    (default: one 2-D output) adds probabilities and top-k. Outputs a softmax makes are judged on their logits
    (``reference_logits``, ``{output index: array}``; default: ``model``'s own), which a second SavedModel,
    written to a temporary folder with them as extra outputs, gives. Returns the
    :class:`~export.report.ParityReport`; ``output`` is written atomically, and only when it passed. The
    report times the SavedModel alone on ``threads`` threads (default: every core).
    """
    import tensorflow as tf

    if classification is None:
        classification = len(reference) == 1 and reference[0].ndim == 2
    check, positions = common.with_logits(model)
    reference_logits = common.given_logits(model, samples, reference_logits) if positions else {}
    softmax_inside = classification and (0 in positions or is_probabilities(reference[0]))
    if not classification:
        labels = None
    elif labels is not None and len(labels) != reference[0].shape[-1]:
        log.warning("%s: %d labels do not match the model's output; no top_k_labels", name, len(labels))
        labels = None
    options = dict(size=tuple(samples.shape[1:3]), channels=samples.shape[-1], batch=batch, fit=fit,
                   classification=classification, softmax_inside=softmax_inside, labels=labels,
                   k=min(top_k, reference[0].shape[-1]) if classification else 0)
    # what the check reads from each signature: the compared outputs (then the logits, for the check model)
    compared = ["probabilities" if softmax_inside else "logits"] if classification else output_keys(model)
    check_names = compared + ["logits"] if classification else output_keys(check)
    inputs = _signature_inputs(samples, fit)

    def signatures(path, names):
        """Each signature's outputs ``names`` (in ``inputs`` order) from the SavedModel in ``path``."""
        loaded = tf.saved_model.load(str(path))

        def run(signature, images):
            outputs = loaded.signatures[signature](images=tf.constant(images))
            return [outputs[key].numpy() for key in names]
        # a fixed batch size: the last batch is filled with copies
        return [run_batched(lambda chunk: run(signature, chunk), images, batch or len(samples), pad=True)
                for signature, images, _ in inputs]

    def by_signature(per_signature):
        """``{output index: logits}`` over the three signatures' outputs, concatenated."""
        return {number * len(reference) + index: value for number, values in enumerate(per_signature)
                for index, value in values.items()}

    wanted, wanted_logits = [], []
    for _, _, keras_input in inputs:
        outputs, logits = ((reference, reference_logits) if keras_input is None
                           else common.reference_outputs(model, keras_input))
        wanted += outputs
        wanted_logits.append(logits)
    with atomic_output(output) as tmp:
        checked = None
        if check is not model:  # the logits come from a SavedModel of the check model
            with tempfile.TemporaryDirectory(prefix="keras_zoo_saved_model_check.") as workdir:
                _archive(check, **options).write_out(workdir, verbose=False)
                checked = signatures(workdir, check_names)
        _archive(model, **options).write_out(str(tmp), verbose=False)
        shipped = signatures(tmp, compared)
        speed = report_speeds(
            saved_model=lambda: time_artifact(tmp, kind="saved_model", batch=batch or speed_batch, num_threads=threads),
            keras=lambda: measure(model.predict_on_batch, samples, batch=batch or speed_batch, threads=cpu_threads()))
        candidate_logits = by_signature([common.check_logits(values, positions) for values in checked or shipped])
        result = report.build_report(
            format="saved_model", model=name, artifact=output, precision="float32",
            candidate=[value for values in shipped for value in values], reference=wanted,
            candidate_logits=candidate_logits, reference_logits=by_signature(wanted_logits),
            file_size=common.path_size(tmp), speed=speed, notes=[f"signatures: {', '.join(SIGNATURES)}"])
        if not result.passed:
            raise Rejected("; ".join(result.failures))
    return result


def _archive(model, *, size, channels, batch, fit, classification, softmax_inside, labels, k):
    """The SavedModel's three serving signatures of ``model`` (a check model: its logits as ``logits``, or
    under their own names)."""
    import keras
    import tensorflow as tf

    keys = output_keys(model)

    def heads(images):
        outputs = model(images, training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        if not classification:
            return dict(zip(keys, outputs))
        result = {}
        if softmax_inside:
            probabilities = outputs[0]
            if len(outputs) > 1:  # a check model: the logits before the softmax
                result["logits"] = outputs[1]
        else:
            result["logits"] = outputs[0]
            probabilities = tf.nn.softmax(outputs[0], axis=-1)
        scores, indices = tf.math.top_k(probabilities, k=k)
        result.update(probabilities=probabilities, top_k_scores=scores, top_k_indices=indices)
        if labels is not None:
            result["top_k_labels"] = tf.gather(tf.constant(list(labels)), indices)
        return result

    def decode(encoded):
        return fit_images(decode_image_bytes(encoded, channels)[None], size, **(fit or {}))[0]

    def serve_float(images):
        return heads(images)

    def serve_uint8(images):
        return heads(tf.cast(images, tf.float32))

    def serve_bytes(images):
        decoded = tf.map_fn(decode, images, fn_output_signature=tf.TensorSpec((*size, channels), tf.float32))
        return heads(decoded)

    archive = keras.export.ExportArchive()
    archive.track(model)
    shape = (batch, *size, channels)
    archive.add_endpoint("serving_default", serve_float,
                         input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    archive.add_endpoint("serving_uint8", serve_uint8,
                         input_signature=[tf.TensorSpec(shape, tf.uint8, name="images")])
    archive.add_endpoint("serving_bytes", serve_bytes,
                         input_signature=[tf.TensorSpec((batch,), tf.string, name="images")])
    return archive


def _signature_inputs(samples, fit):
    """``[(signature, its input, Keras' input)]``: the samples as float32, as uint8 and as PNG bytes; Keras
    takes the same images as float32 (after decoding and fitting, for the bytes; None: the samples)."""
    from PIL import Image

    as_uint8 = np.clip(np.round(samples), 0, 255).astype(np.uint8)
    encoded = []
    for image in as_uint8:
        stream = io.BytesIO()
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(stream, format="PNG")
        encoded.append(stream.getvalue())
    refitted = np.asarray(fit_images(as_uint8, samples.shape[1:3], **(fit or {})), np.float32)
    return [("serving_default", samples, None), ("serving_uint8", as_uint8, as_uint8.astype(np.float32)),
            ("serving_bytes", np.array(encoded, dtype=object), refitted)]


def main(argv=None):
    parser = common.make_parser("python -m export.saved_model", __doc__)
    parser.add_argument("--version", type=int, default=1,
                        help="the TensorFlow Serving version folder: the SavedModel goes to OUT/VERSION")
    parser.add_argument("--top-k", type=int, default=5, help="how many classes the signatures return")
    options = parser.parse_args(argv)
    return common.run_main(lambda _: _main(options), argv)


def _main(options):
    job = common.prepare_job(options, "saved_model")
    # segmentation maps are no classes to rank; otherwise one 2-D output is a classifier
    card = job.resolved.card
    classification = False if card and card.task == "segmentation" else None
    target = version_folder(job.output, options.version)
    result = export_saved_model(
        job.model, target, samples=job.samples, reference=job.reference, reference_logits=job.reference_logits,
        name=job.name, labels=job.resolved.label_names(), classification=classification,
        fit=fit_options(job.resolved.source), top_k=options.top_k, batch=options.batch, threads=options.threads)
    if result.passed:
        print(f"TensorFlow Serving: --model_name={job.name} --model_base_path={job.output.resolve()}")
    return report.finish(result, job.report_path, untrained=job.resolved.untrained)


if __name__ == "__main__":
    sys.exit(main())
