"""The parity report every exporter writes: errors against the Keras model, file size, speed."""

import dataclasses
import logging
import sys

import numpy as np

from export.common import ExportError
from keras_zoo import files


log = logging.getLogger(__name__)

UNTRAINED_ROW = "UNTRAINED (random): the parity check holds, the artifact classifies nothing"

# precision -> what the artifact must meet against the Keras model. 'max_rel_error' is max|y - y_keras| /
# max|y_keras| over the judged tensors: each output, or for an output a softmax makes, the logits before it.
# (A probability's error is its logits' absolute error, which grows with their size; the probabilities are held
# to an absolute bound and their top-1 class instead. The softmax's Jacobian has infinity-norm <= 1/2, so
# logits within float32's bound of logits up to +-100 move no probability by more than 5e-3; float16's bound
# allows typical float16 errors, 1e-3 of such logits.) int8's criteria: 'top1_agreement', the fraction of
# positions whose argmax agrees, for outputs with classes; 'psnr_db', 20 log10(range / RMS error) of the outputs
# without (a super-resolution net's picture, one channel), the range the Keras output's (measured on real weights:
# 40-47 dB for the int8 super-resolution models of tests/export/test_int8_real.py; 30 dB is an RMS error of 3%).
THRESHOLDS = {
    "float32": {"max_rel_error": 1e-4, "probabilities_max_abs_error": 5e-3, "probabilities_top1_agreement": 1.0},
    "float16": {"max_rel_error": 1e-2, "probabilities_max_abs_error": 5e-2, "probabilities_top1_agreement": 1.0},
    "int8": {"top1_agreement": 0.90, "psnr_db": 30.0},
}
PSNR_CEILING = 200.0  # dB: an output equal to the Keras model's


def _error(got, want):
    """(max abs error, max rel error) of one array against its reference."""
    err = float(np.abs(got - want).max()) if want.size else 0.0
    return err, err / max(float(np.abs(want).max()) if want.size else 0.0, 1e-12)


def compare_outputs(candidate, reference, *, candidate_logits=None, reference_logits=None, tie=0.0):
    """Errors of ``candidate`` against ``reference`` (lists of arrays, one per model output).

    ``candidate_logits`` and ``reference_logits`` (``{output index: array}``) hold the logits of the outputs a
    softmax makes: those outputs are judged on them ('max_abs_error', 'max_rel_error'), their probabilities
    by 'probabilities_max_abs_error' and 'probabilities_top1_agreement' (where the artifact's best class is
    not the reference's, a near tie, the two within ``tie`` in the reference, still agrees). 'top1_agreement'
    is the fraction of positions (images, or pixels of dense outputs) where the argmax over the last axis
    agrees, over every output with more than one channel; None when no output has one. 'psnr_db' is the least
    20 log10(range / RMS error) over the outputs without classes (one channel), the range the reference's; None
    when every output has classes.
    """
    if len(candidate) != len(reference):
        raise ExportError(f"the artifact has {len(candidate)} outputs, the Keras model {len(reference)}")
    logits = {index: (candidate_logits[index], reference_logits[index])
              for index in sorted(set(candidate_logits or {}) & set(reference_logits or {}))}
    judged = {"abs": 0.0, "rel": 0.0}
    probabilities = {"abs": 0.0, "rel": 0.0, "agree": 0, "total": 0}
    agree, total, psnr = 0, 0, []
    for index, (got, want) in enumerate(zip(candidate, reference)):
        got = np.asarray(got, np.float64)
        want = np.asarray(want, np.float64)
        if got.shape != want.shape:
            raise ExportError(f"output shape {got.shape} differs from the Keras model's {want.shape}")
        if want.ndim >= 2 and want.shape[-1] > 1:
            agree += int((got.argmax(-1) == want.argmax(-1)).sum())
            total += want[..., 0].size
        elif want.size:
            psnr.append(_psnr(got, want))
        if index in logits:
            abs_error, rel_error = _error(got, want)
            probabilities["abs"] = max(probabilities["abs"], abs_error)
            probabilities["rel"] = max(probabilities["rel"], rel_error)
            best = np.take_along_axis(want, got.argmax(-1)[..., None], -1)[..., 0]
            probabilities["agree"] += int((best >= want.max(-1) - tie).sum())
            probabilities["total"] += want[..., 0].size
            got, want = (np.asarray(array, np.float64) for array in logits[index])
            if got.shape != want.shape:
                raise ExportError(f"logits shape {got.shape} differs from the Keras model's {want.shape}")
        abs_error, rel_error = _error(got, want)
        judged["abs"], judged["rel"] = max(judged["abs"], abs_error), max(judged["rel"], rel_error)
    count = probabilities["total"]
    return {"judged_on": "logits" if len(logits) == len(reference) else "outputs and logits" if logits
            else "outputs",
            "max_abs_error": judged["abs"], "max_rel_error": judged["rel"],
            "probabilities_max_abs_error": probabilities["abs"] if logits else None,
            "probabilities_max_rel_error": probabilities["rel"] if logits else None,
            "probabilities_top1_agreement": probabilities["agree"] / count if count else None,
            "top1_agreement": agree / total if total else None, "psnr_db": min(psnr) if psnr else None}


def _psnr(got, want):
    """20 log10(range / RMS error) of ``got`` against ``want``, the range ``want``'s (its largest magnitude where it
    is constant), at most :data:`PSNR_CEILING`."""
    peak = float(np.ptp(want)) or float(np.abs(want).max()) or 1.0
    error = float(np.sqrt(np.mean((got - want) ** 2)))
    return min(PSNR_CEILING, 20 * np.log10(peak / error)) if error else PSNR_CEILING


def thresholds(errors, precision):
    """The precision's criteria that apply to ``errors``: those of the probabilities only where an output a
    softmax makes was judged on its logits, PSNR only where an output has no classes, top-1 agreement unless
    only such outputs were judged."""

    def applies(key):
        if key == "top1_agreement":  # also where nothing else judges an int8 artifact: check_thresholds refuses it
            return errors.get(key) is not None or errors.get("psnr_db") is None
        measured_only = key.startswith("probabilities_") or key == "psnr_db"
        return not measured_only or errors.get(key) is not None

    return {key: limit for key, limit in THRESHOLDS[precision].items() if applies(key)}


def _criterion(key, errors):
    """How a failed criterion reads: 'max rel error of the logits', 'top-1 agreement of the probabilities'."""
    name = key.removeprefix("probabilities_").replace("_", " ").replace("top1", "top-1")
    if key.startswith("probabilities_"):
        return f"{name} of the probabilities"
    if key.startswith("max_") and errors.get("judged_on", "outputs") != "outputs":
        return f"{name} of the {errors['judged_on']}"
    return name


def check_thresholds(errors, precision):
    """The list of failed criteria (empty when the errors meet the precision's thresholds)."""
    failures = []
    for key, limit in thresholds(errors, precision).items():
        value = errors.get(key)
        if key.endswith("top1_agreement"):
            if value is None:
                failures.append("top-1 agreement needs an output with classes")
            elif value < limit:
                failures.append(f"{_criterion(key, errors)} {value:.1%} < {limit:.0%}")
        elif key == "psnr_db":
            if value < limit:
                failures.append(f"PSNR of the outputs without classes {value:.1f} dB < {limit:g} dB")
        elif value > limit:
            failures.append(f"{_criterion(key, errors)} {value:.3g} > {limit:g}")
    return failures


@dataclasses.dataclass
class ParityReport:
    """What one export produced and how close it is to the Keras model."""

    format: str
    model: str
    artifact: str
    precision: str
    samples: int
    errors: dict
    file_size: int = 0
    speed: dict = dataclasses.field(default_factory=dict)  # runtime -> export.speed.measure()'s result
    failures: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    untrained: bool = False  # exported from untrained weights: the parity holds, the classes mean nothing

    @property
    def passed(self):
        return not self.failures

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["passed"] = self.passed
        data["thresholds"] = thresholds(self.errors, self.precision)
        return data

    def write_json(self, path):
        """Write the report as JSON, atomically."""
        return files.write_json(self.to_dict(), path)

    def table(self):
        """The report as a small text table for the terminal."""
        errors = self.errors
        judged = errors.get("judged_on", "outputs")

        def value(key, percent=False):
            number = errors.get(key)
            return "n/a" if number is None else f"{number:.1%}" if percent else f"{number:.3g}"

        rows = [
            ("model", self.model), *([("weights", UNTRAINED_ROW)] if self.untrained else []),
            ("format", f"{self.format} ({self.precision})"),
            ("artifact", self.artifact), ("file size", f"{self.file_size / 1e6:.2f} MB"),
            ("samples", str(self.samples)),
            ("judged on", {"outputs": "the outputs", "logits": "the logits before the softmax"}.get(
                judged, "the logits before the softmax where a softmax makes the output, else the output")),
            ("max abs error", value("max_abs_error")),
            ("max rel error", value("max_rel_error")),
        ]
        if errors.get("probabilities_max_abs_error") is not None:
            tie = THRESHOLDS[self.precision].get("probabilities_max_abs_error")
            rows += [("probabilities", f"max abs error {value('probabilities_max_abs_error')}, "
                                       f"max rel error {value('probabilities_max_rel_error')}, top-1 agreement "
                                       f"{value('probabilities_top1_agreement', True)}"
                                       + (f" (near ties within {tie:g} agree)" if tie else ""))]
        rows.append(("top-1 agreement", value("top1_agreement", True)))
        if errors.get("psnr_db") is not None:
            rows.append(("PSNR", f"{errors['psnr_db']:.1f} dB (outputs without classes; peak: the Keras output's "
                                 "range)"))
        for runtime, speed in self.speed.items():
            threads = f", {speed['threads']} threads" if speed.get("threads") else ""
            timed = f" ({speed['timed']})" if speed.get("timed") else ""
            rows.append((f"{runtime} speed", f"{speed['images_per_s']:.1f} images/s, {speed['latency_ms']:.2f} ms per "
                                            f"batch of {speed['batch']}{threads}{timed}"))
        rows += [("note", note) for note in self.notes]
        rows.append(("parity", ("PASSED" if self.passed else "FAILED: " + "; ".join(self.failures))
                     + (" (on UNTRAINED weights)" if self.untrained else "")))
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def build_report(*, format, model, artifact, precision, candidate, reference, candidate_logits=None,
                 reference_logits=None, file_size=0, speed=None, notes=(), untrained=False):
    """A :class:`ParityReport` from the artifact's and the Keras model's outputs on the same samples (and the
    logits of the outputs a softmax makes, ``{output index: array}``, which are judged instead: int8 artifacts
    are judged on their top-1 agreement alone, and their outputs without classes on PSNR)."""
    tie = THRESHOLDS[precision].get("probabilities_max_abs_error", 0.0)
    errors = compare_outputs(candidate, reference, candidate_logits=candidate_logits,
                             reference_logits=reference_logits, tie=tie)
    return ParityReport(format=format, model=model, artifact=str(artifact), precision=precision,
                        samples=len(reference[0]), errors=errors, file_size=file_size, speed=dict(speed or {}),
                        failures=check_thresholds(errors, precision), notes=list(notes), untrained=untrained)


def finish(report, json_path, *, untrained=False):
    """For commands: write the JSON, print the table; exit status 0 when parity passed, else 1. ``untrained``:
    the model's weights are untrained (the table and the JSON say so)."""
    report.untrained = report.untrained or untrained
    report.write_json(json_path)
    print(report.table())
    print(f"report: {json_path}")
    if not report.passed:
        print(f"error: {report.artifact}: parity check failed ({'; '.join(report.failures)}); "
              "the artifact was not written", file=sys.stderr)
        return 1
    return 0
