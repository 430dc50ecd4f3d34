"""Train the prompt-injection model and write it to ``evaluators/safety/data/injection_model.json``.

    python -m evaluators.safety.train_injection [--data ../shared/data/prompt_injection/deepset_train.jsonl]

Reproducible: the held-out split is :func:`evaluators.safety.injection.heldout_split` (stratified, 30%, fixed
seed, pure Python); the features are stateless hashing vectorizers; logistic regression is deterministic with the
lbfgs solver. Only the training split is used here: C and the decision threshold are chosen by 5-fold stratified
cross-validation on it (best F1 of the out-of-fold probability combined with the pattern lexicon). The held-out
indices and the data file's SHA-256 are stored with the weights so that ``calibrate`` reports held-out figures only.

deepset's benign rows are almost all short questions, so a model trained on them alone learns "long text or an
imperative = injection" and flags ordinary briefs and articles. The training rows therefore also include 70% of our
own benign in-domain inputs (``data/injection_benign.json``, label 0; :func:`~evaluators.safety.injection.benign_split`
holds out the rest). The prompt library's example inputs are deliberately not trained on: they stay an unseen check.
The chosen threshold is folded into the intercept so that the stored decision threshold is 0.5 and ``value = 1 - p``
agrees with a suite's plain 0.5 threshold.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluators.safety.injection import (
    BENIGN_FILE,
    PATTERN_FLOOR,
    benign_digest,
    benign_split,
    build_vectorizers,
    featurize,
    heldout_split,
    pattern_hits,
)

__all__ = ["DEFAULT_DATA", "DEFAULT_OUT", "SEED", "VECTORIZERS", "main", "train"]

SEED = 20240611
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "prompt_injection" / "deepset_train.jsonl"
DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "injection_model.json"
VECTORIZERS: tuple[dict[str, Any], ...] = (
    {"analyzer": "char_wb", "ngram_range": [2, 5], "n_features": 2**15},
    {"analyzer": "word", "ngram_range": [1, 2], "n_features": 2**14},
)
C_GRID = (1.0, 4.0, 16.0, 64.0, 256.0)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSONL rows of the dataset (``text``, ``label``)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _combined(probs: Sequence[float], texts: Sequence[str]) -> list[float]:
    return [max(p, PATTERN_FLOOR) if pattern_hits(t) else p for p, t in zip(probs, texts, strict=True)]


def _best_threshold(labels: Sequence[int], probs: Sequence[float]) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over a 0.05..0.95 grid; ties go to the higher threshold."""
    from sklearn.metrics import f1_score

    grid = [round(0.05 * k, 2) for k in range(1, 20)]
    scored = [(f1_score(labels, [p >= t for p in probs]), t) for t in grid]
    f1, threshold = max(scored)
    return threshold, f1


def _oof(texts: list[str], labels: list[int], c: float, vectorizers: tuple[Any, ...]) -> list[float]:
    """Out-of-fold probabilities from 5-fold stratified cross-validation (seeded)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    x = featurize(vectorizers, texts)
    out = [0.0] * len(texts)
    for fit_idx, val_idx in StratifiedKFold(5, shuffle=True, random_state=SEED).split(texts, labels):
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(x[fit_idx], [labels[i] for i in fit_idx])
        for i, p in zip(val_idx, model.predict_proba(x[val_idx])[:, 1], strict=True):
            out[i] = float(p)
    return out


def train(data: Path) -> dict[str, Any]:
    """Fit the model on the training split and return the JSON-ready weights file."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rows = read_rows(data)
    labels = [int(r["label"]) for r in rows]
    train_idx, test_idx = heldout_split(labels, seed=SEED)
    benign_train, benign_test = benign_split(SEED)
    texts = [rows[i]["text"] for i in train_idx] + benign_train
    y = [labels[i] for i in train_idx] + [0] * len(benign_train)
    vectorizers = build_vectorizers(VECTORIZERS)
    cv = {c: _best_threshold(y, _combined(_oof(texts, y, c, vectorizers), texts)) for c in C_GRID}
    best_c = max(cv, key=lambda c: (cv[c][1], -c))
    model = LogisticRegression(C=best_c, max_iter=2000, class_weight="balanced")
    model.fit(featurize(vectorizers, texts), y)
    coef = model.coef_[0].astype("<f4")
    threshold = cv[best_c][0]
    return {
        "about": "Prompt-injection classifier: logistic regression over hashed n-grams (see train_injection.py).",
        "data_file": data.name,
        "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "seed": SEED,
        "test_fraction": 0.3,
        "test_indices": test_idx,
        "n_train": len(train_idx),
        "benign_file": BENIGN_FILE,
        "benign_sha256": benign_digest(),
        "n_benign_train": len(benign_train),
        "n_benign_heldout": len(benign_test),
        "vectorizers": list(VECTORIZERS),
        "C": best_c,
        "cv_f1_by_C": {str(c): round(f1, 4) for c, (_, f1) in cv.items()},
        "cv_threshold": threshold,
        "threshold": 0.5,
        "intercept": float(model.intercept_[0]) - math.log(threshold / (1.0 - threshold)),
        "coef_f32_b64": base64.b64encode(np.ascontiguousarray(coef).tobytes()).decode("ascii"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train and write the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"no dataset at {args.data}")
    weights = train(args.data)
    args.out.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} (C={weights['C']}, CV threshold={weights['cv_threshold']}, cv F1 {weights['cv_f1_by_C']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
