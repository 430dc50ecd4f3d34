"""Calibration of the fluency evaluators against public labelled data (read from ``data_dir``, never shipped).

- CoLA in-domain dev (``cola/in_domain_dev.tsv``): acceptability's MCC at the shipped threshold (fixed on the
  synthetic validation split by ``train_acceptability.py``, never on CoLA) and its AUROC.
- SummEval (``summeval/summeval_dev.jsonl``): Spearman correlation of acceptability and of degeneration with the
  mean expert fluency rating, each on its own. They are never combined: acceptability is advisory and near chance,
  and multiplying it into degeneration (a gating score) wiped out degeneration's signal (Spearman 0.134 -> -0.020
  on summeval_dev; a held-out probe found 0.231 -> 0.022).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.base import Sample

__all__ = ["calibrate"]


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"calibration data not found: {path}")
    return path


def _row(evaluator: str, dataset: str, metric: str, value: float, goal: str, n: int, detail: str) -> dict[str, Any]:
    return {
        "area": "fluency",
        "evaluator": evaluator,
        "dataset": dataset,
        "metric": metric,
        "value": float(value),
        "goal": goal,
        "n": n,
        "detail": detail,
    }


def _mcc(y: np.ndarray, pred: np.ndarray) -> float:
    tp, tn = float(((pred == 1) & (y == 1)).sum()), float(((pred == 0) & (y == 0)).sum())
    fp, fn = float(((pred == 1) & (y == 0)).sum()), float(((pred == 0) & (y == 1)).sum())
    denom = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (tp * tn - fp * fn) / denom if denom else 0.0


def _auroc(y: np.ndarray, scores: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def cola_rows(path: Path) -> list[dict[str, Any]]:
    """MCC and AUROC of the acceptability classifier on CoLA in-domain dev."""
    from evaluators.fluency.acceptability import load_model

    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) >= 4]
    y = np.array([int(r[1]) for r in rows])
    model = load_model()
    probs = model.probabilities([r[3] for r in rows])
    t = model.threshold
    detail = f"threshold {t} fixed on the synthetic validation split (MCC {model.meta['validation_mcc']} there)"
    return [
        _row(
            "acceptability",
            "cola_in_domain_dev",
            "mcc",
            _mcc(y, (probs >= t).astype(int)),
            "MCC >= 0.3",
            len(y),
            detail,
        ),
        _row(
            "acceptability",
            "cola_in_domain_dev",
            "auroc",
            _auroc(y, probs),
            "AUROC higher is better (0.5 chance)",
            len(y),
            "P(acceptable) per sentence",
        ),
    ]


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def summeval_rows(path: Path) -> list[dict[str, Any]]:
    """Spearman correlation of each fluency score, separately, with SummEval's mean expert fluency."""
    from evaluators.fluency.acceptability import AcceptabilityEvaluator
    from evaluators.fluency.degeneration import DegenerationEvaluator

    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    samples = [Sample(output=r["summary"]) for r in records]
    gold = [r["expert_mean"]["fluency"] for r in records]
    acc = [s.value for s in AcceptabilityEvaluator().score_batch(samples)]
    degeneration = DegenerationEvaluator()
    deg = [degeneration.score(s).value for s in samples]
    goal = "Spearman >= 0.3 (G-Eval GPT-4: 0.455)"
    detail = "vs mean of 3 expert fluency ratings"
    return [
        _row("acceptability", "summeval_dev", "spearman_fluency", _spearman(acc, gold), goal, len(gold),
             f"{detail}; advisory, never combined with degeneration"),
        _row("degeneration", "summeval_dev", "spearman_fluency", _spearman(deg, gold), goal, len(gold), detail),
    ]  # fmt: skip


def calibrate(data_dir: Path) -> list[dict[str, Any]]:
    """Figures for the fluency evaluators on CoLA and SummEval under ``data_dir``; FileNotFoundError if missing."""
    data_dir = Path(data_dir)
    cola = _need(_need(data_dir / "cola") / "in_domain_dev.tsv")
    summeval = _need(_need(data_dir / "summeval") / "summeval_dev.jsonl")
    return cola_rows(cola) + summeval_rows(summeval)
