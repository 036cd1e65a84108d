"""Where a model stands on each sample: the paper's difficulty classes (Figures 2 and 10).

A sample's difficulty is read off p_t, the predicted probability of its true
class (p for a click, 1 − p for a non-click), with the paper's thresholds
{0.3, 0.6} (§IV-H):

* **well-classified** (easy): p_t ≥ 0.6;
* **poorly classified** (challenging): 0.3 ≤ p_t < 0.6;
* **misclassified** (hard): p_t < 0.3.

The paper states the thresholds, not whether they apply to p or to p_t; p_t
treats clicks and non-clicks alike, as the TF Loss's modulating terms do.
Counts are kept separately for positives and negatives, as the paper plots them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DIFFICULTY_CLASSES", "DIFFICULTY_THRESHOLDS", "difficulty_counts"]

DIFFICULTY_THRESHOLDS = (0.3, 0.6)
DIFFICULTY_CLASSES = ("well", "poor", "mis")


def difficulty_counts(
    labels: np.ndarray,
    logits: np.ndarray,
    thresholds: tuple[float, float] = DIFFICULTY_THRESHOLDS,
) -> dict[str, dict[str, int]]:
    """``{"positive": {"well", "poor", "mis"}, "negative": {...}}`` sample counts."""
    low, high = thresholds
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"thresholds must satisfy 0 <= low < high <= 1, got {thresholds}")
    labels = np.asarray(labels)
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
    p_true = np.where(labels == 1, p, 1.0 - p)
    result: dict[str, dict[str, int]] = {}
    for name, mask in (("positive", labels == 1), ("negative", labels == 0)):
        pt = p_true[mask]
        result[name] = {
            "well": int(np.count_nonzero(pt >= high)),
            "poor": int(np.count_nonzero((pt >= low) & (pt < high))),
            "mis": int(np.count_nonzero(pt < low)),
        }
    return result
