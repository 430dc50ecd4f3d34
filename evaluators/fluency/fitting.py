"""The statistics behind SLOR's threshold and fluency_long's coefficients, shared by ``fit_slor.py`` (which writes
the shipped numbers) and ``calibration.py`` (which reports them with their cross-validated counterparts).

- A threshold is fitted as a one-feature logistic regression (value = P(acceptable)) plus the cut on that value
  with the best MCC; its honest figure is the MCC of out-of-fold predictions (stratified k-fold, refitted per fold).
- fluency_long is a ridge regression on standardised features; its honest figure is the Spearman correlation of
  out-of-fold predictions with folds grouped by document, so no document's summaries sit on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "RIDGE_ALPHA",
    "auroc",
    "cv_mcc",
    "cv_ridge",
    "fit_ridge",
    "fit_threshold",
    "mcc",
    "per_document_spearman",
    "predict_ridge",
    "spearman",
]

RIDGE_ALPHA = 10.0
"""Ridge penalty on standardised features (0.27-0.28 cross-validated Spearman for alpha 1 to 100: not tuned)."""


def mcc(y: np.ndarray, pred: np.ndarray) -> float:
    """Matthews correlation of 0/1 predictions with 0/1 labels (0 when a margin is empty)."""
    tp, tn = float(((pred == 1) & (y == 1)).sum()), float(((pred == 0) & (y == 0)).sum())
    fp, fn = float(((pred == 1) & (y == 0)).sum()), float(((pred == 0) & (y == 1)).sum())
    denom = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (tp * tn - fp * fn) / denom if denom else 0.0


def auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the chance that a positive outscores a negative; ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def per_document_spearman(pred: np.ndarray, gold: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Mean over documents of the Spearman correlation between one document's summaries' scores and ratings
    (G-Eval's "summary-level" protocol), and how many documents had variation on both sides to count."""
    values = []
    for group in np.unique(groups):
        mask = groups == group
        if np.ptp(gold[mask]) > 0 and np.ptp(pred[mask]) > 0:
            values.append(spearman(pred[mask], gold[mask]))
    return (float(np.mean(values)) if values else float("nan")), len(values)


def fit_threshold(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """slope and intercept of P(y=1 | x) = sigmoid(slope * x + intercept), and the cut on it with the best MCC."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, max_iter=1000).fit(x[:, None], y)
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    values = 1.0 / (1.0 + np.exp(-(slope * x + intercept)))
    cuts = np.unique(values)
    best = int(np.argmax([mcc(y, (values >= cut).astype(int)) for cut in cuts]))
    # Halfway to the next lower value: the same verdicts here, and no sample sits on the cut's rounding edge.
    threshold = (cuts[best - 1] + cuts[best]) / 2 if best > 0 else cuts[best]
    return {"slope": slope, "intercept": intercept, "threshold": float(threshold)}


def cv_mcc(x: np.ndarray, y: np.ndarray, folds: int = 10, seed: int = 0) -> float:
    """MCC of out-of-fold pass/fail verdicts, the logistic fit and its threshold refitted on each training part."""
    from sklearn.model_selection import StratifiedKFold

    pred = np.zeros_like(y)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x[:, None], y):
        fit = fit_threshold(x[train], y[train])
        values = 1.0 / (1.0 + np.exp(-(fit["slope"] * x[test] + fit["intercept"])))
        pred[test] = (values >= fit["threshold"]).astype(int)
    return mcc(y, pred)


def fit_ridge(features: np.ndarray, target: np.ndarray, alpha: float = RIDGE_ALPHA) -> dict[str, Any]:
    """Ridge regression on standardised features, as plain numbers: ``means``, ``scales``, ``coef``, ``intercept``."""
    from sklearn.linear_model import Ridge

    means, scales = features.mean(axis=0), features.std(axis=0)
    scales[scales == 0] = 1.0
    model = Ridge(alpha=alpha).fit((features - means) / scales, target)
    return {
        "means": means.tolist(),
        "scales": scales.tolist(),
        "coef": model.coef_.tolist(),
        "intercept": float(model.intercept_),
        "alpha": alpha,
    }


def predict_ridge(fit: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """Predictions of a :func:`fit_ridge` model."""
    standard = (features - np.asarray(fit["means"])) / np.asarray(fit["scales"])
    return standard @ np.asarray(fit["coef"]) + fit["intercept"]


def cv_ridge(features: np.ndarray, target: np.ndarray, groups: np.ndarray, folds: int = 5) -> np.ndarray:
    """Out-of-fold ridge predictions, folds grouped so that each group (document) is in exactly one."""
    from sklearn.model_selection import GroupKFold

    pred = np.zeros(len(target))
    for train, test in GroupKFold(folds).split(features, target, groups):
        pred[test] = predict_ridge(fit_ridge(features[train], target[train]), features[test])
    return pred
