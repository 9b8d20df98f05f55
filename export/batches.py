"""Running a runtime over any number of images, a batch at a time."""

import numpy as np


def run_batched(run, images, batch, *, pad):
    """``run(chunk) -> [outputs]`` over ``images`` (an array of any dtype) in chunks of ``batch``; with ``pad``
    the last chunk is filled up to ``batch`` by repeating its last image (runtimes with a fixed batch) and the
    extra rows are dropped."""
    images = np.asarray(images)
    parts = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        filled = len(chunk)
        if pad and filled < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - filled, axis=0)])
        parts.append([np.asarray(out)[:filled] for out in run(chunk)])
    return [np.concatenate(column) for column in zip(*parts)]
