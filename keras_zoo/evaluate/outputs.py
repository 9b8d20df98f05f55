"""What a model returns: its outputs on a batch as NumPy, the class scores of a classifier, the score map of a
segmentation network."""

import keras
import numpy as np


def run_model(model, batch, preprocess=None):
    """The model's output(s) on one batch (first passed through ``preprocess``, where given), as NumPy (the same
    structure: array, list or dict)."""
    outputs = model(batch if preprocess is None else preprocess(batch), training=False)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def last_output(outputs):
    """The last of a model's outputs (itself for a single output)."""
    if isinstance(outputs, dict):
        return list(outputs.values())[-1]
    return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs


def class_scores(outputs):
    """(N, K) class scores of a classifier's output(s): the output named 'prob' (else the last), with any
    spatial dimensions averaged (fully convolutional heads)."""
    if isinstance(outputs, dict) and "prob" in outputs:
        outputs = outputs["prob"]
    scores = np.asarray(last_output(outputs), dtype=np.float64)
    return scores.reshape(scores.shape[0], -1, scores.shape[-1]).mean(axis=1) if scores.ndim > 2 else scores
