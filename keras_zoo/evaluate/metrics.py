"""Metrics: top-k ranks and hits, the segmentation confusion matrix and the FCN paper's scores (NumPy only)."""

import numpy as np


def top_k(scores, k):
    """Indices of the ``k`` highest scores along the last axis, best first (ties go to the lower index)."""
    return np.argsort(-np.asarray(scores), axis=-1, kind="stable")[..., :k]


def topk_hits(scores, labels, k):
    """Boolean (N,): whether each label is among the ``k`` highest scores (ties go to the lower index)."""
    return (top_k(scores, k) == np.asarray(labels)[:, None]).any(axis=1)


def confusion_matrix(truth, predicted, num_classes, ignore=255):
    """(K, K) int64 counts ``n_ij`` of pixels of true class i predicted as j; ``ignore`` and labels >= K in
    ``truth`` are skipped."""
    truth, predicted = np.asarray(truth).reshape(-1), np.asarray(predicted).reshape(-1)
    if truth.shape != predicted.shape:
        raise ValueError(f"label maps differ in size: {truth.shape} and {predicted.shape}")
    keep = (truth != ignore) & (truth < num_classes)
    if np.any(predicted[keep] >= num_classes):
        raise ValueError(f"predicted labels beyond the {num_classes} classes")
    counts = np.bincount(num_classes * truth[keep].astype(np.int64) + predicted[keep],
                         minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def segmentation_scores(confusion):
    """The FCN paper's metrics (percent) of a confusion matrix (rows: truth): pixel accuracy, mean accuracy,
    mean IU, frequency-weighted IU. Classes absent from truth and prediction are left out of the means."""
    confusion = np.asarray(confusion, dtype=np.float64)
    correct, truth, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    union = truth + predicted - correct
    with np.errstate(invalid="ignore", divide="ignore"):
        class_accuracy = correct / truth
        iou = correct / union
    present = truth > 0
    return {
        "pixel_accuracy_percent": float(100.0 * correct.sum() / truth.sum()),
        "mean_accuracy_percent": float(100.0 * np.nanmean(class_accuracy)),
        "mean_iou_percent": float(100.0 * np.nanmean(iou)),
        "frequency_weighted_iou_percent": float(100.0 * (truth[present] * iou[present]).sum() / truth.sum()),
    }
