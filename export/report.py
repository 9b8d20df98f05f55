"""The parity report every exporter writes: errors against the Keras model, file size, speed."""

import dataclasses
import logging
import os
import statistics
import time

import numpy as np

from export.common import ExportError
from keras_zoo import files


log = logging.getLogger(__name__)

# precision -> what the artifact must meet against the Keras model.
# 'max_rel_error' is max|y - y_keras| / max|y_keras| over every output; 'top1' the fraction of argmax agreement.
THRESHOLDS = {
    "float32": {"max_rel_error": 1e-4},
    "float16": {"max_rel_error": 1e-2},
    "int8": {"top1_agreement": 0.90},
}


def compare_outputs(candidate, reference):
    """Errors of ``candidate`` against ``reference`` (lists of arrays, one per model output).

    Top-1 agreement is the fraction of positions (images, or pixels of dense outputs) where the argmax over
    the last axis agrees, over every output with more than one channel; None when no output has one.
    """
    if len(candidate) != len(reference):
        raise ExportError(f"the artifact has {len(candidate)} outputs, the Keras model {len(reference)}")
    max_abs, max_rel, agree, total = 0.0, 0.0, 0, 0
    for got, want in zip(candidate, reference):
        got = np.asarray(got, np.float64)
        want = np.asarray(want, np.float64)
        if got.shape != want.shape:
            raise ExportError(f"output shape {got.shape} differs from the Keras model's {want.shape}")
        err = float(np.abs(got - want).max())
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(float(np.abs(want).max()), 1e-12))
        if want.ndim >= 2 and want.shape[-1] > 1:
            agree += int((got.argmax(-1) == want.argmax(-1)).sum())
            total += want[..., 0].size
    return {"max_abs_error": max_abs, "max_rel_error": max_rel,
            "top1_agreement": agree / total if total else None}


def measure_speed(run, images, *, batch=1, min_seconds=None, min_runs=3):
    """Median single-batch latency (ms) and throughput (images/s) of ``run(batch_of_images)``.

    Runs for at least ``min_seconds`` (default: $KERAS_ZOO_SPEED_SECONDS, else 1 s) and ``min_runs`` times.
    """
    if min_seconds is None:
        min_seconds = float(os.environ.get("KERAS_ZOO_SPEED_SECONDS", "1.0"))
    chunk = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])).astype(images.dtype))
    run(chunk)  # warm-up: first-call compilation and allocation
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        tick = time.perf_counter()
        run(chunk)
        times.append(time.perf_counter() - tick)
    median = statistics.median(times)
    return {"batch": batch, "latency_ms": median * 1e3, "images_per_s": batch / median}


def check_thresholds(errors, precision):
    """The list of failed criteria (empty when the errors meet the precision's thresholds)."""
    failures = []
    for key, limit in THRESHOLDS[precision].items():
        value = errors.get(key)
        if key == "top1_agreement":
            if value is None:
                failures.append("top-1 agreement needs an output with classes")
            elif value < limit:
                failures.append(f"top-1 agreement {value:.1%} < {limit:.0%}")
        elif value > limit:
            failures.append(f"{key.replace('_', ' ')} {value:.3g} > {limit:g}")
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
    speed: dict = dataclasses.field(default_factory=dict)  # runtime name -> measure_speed() result
    failures: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    @property
    def passed(self):
        return not self.failures

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["passed"] = self.passed
        data["thresholds"] = THRESHOLDS[self.precision]
        return data

    def write_json(self, path):
        """Write the report as JSON, atomically."""
        return files.write_json(self.to_dict(), path)

    def table(self):
        """The report as a small text table for the terminal."""
        top1 = self.errors.get("top1_agreement")
        rows = [
            ("model", self.model), ("format", f"{self.format} ({self.precision})"),
            ("artifact", self.artifact), ("file size", f"{self.file_size / 1e6:.2f} MB"),
            ("samples", str(self.samples)),
            ("max abs error", f"{self.errors['max_abs_error']:.3g}"),
            ("max rel error", f"{self.errors['max_rel_error']:.3g}"),
            ("top-1 agreement", "n/a" if top1 is None else f"{top1:.1%}"),
        ]
        for runtime, speed in self.speed.items():
            rows.append((f"{runtime} speed", f"{speed['latency_ms']:.2f} ms/batch of {speed['batch']}, "
                                            f"{speed['images_per_s']:.1f} images/s"))
        rows += [("note", note) for note in self.notes]
        rows.append(("parity", "PASSED" if self.passed else "FAILED: " + "; ".join(self.failures)))
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def build_report(*, format, model, artifact, precision, candidate, reference, file_size=0, speed=None,
                 notes=()):
    """A :class:`ParityReport` from the artifact's and the Keras model's outputs on the same samples."""
    errors = compare_outputs(candidate, reference)
    return ParityReport(format=format, model=model, artifact=str(artifact), precision=precision,
                        samples=len(reference[0]), errors=errors, file_size=file_size, speed=dict(speed or {}),
                        failures=check_thresholds(errors, precision), notes=list(notes))


def finish(report, json_path):
    """For commands: write the JSON, print the table; exit status 0 when parity passed, else 1."""
    report.write_json(json_path)
    print(report.table())
    print(f"report: {json_path}")
    if not report.passed:
        print(f"error: {report.artifact}: parity check failed ({'; '.join(report.failures)}); "
              "the artifact was not written")
        return 1
    return 0
