"""Calibration of the fluency evaluators against public labelled data (read from ``data_dir``, never shipped).

- CoLA in-domain dev (``cola/in_domain_dev.tsv``): AUROC and MCC of slor and of acceptability. slor's cut was
  chosen on this same set (``fit_slor.py``), so its MCC is given in-sample and 10-fold cross-validated (logistic
  map and cut refitted on each training part); acceptability's shipped cut was fixed on synthetic data, and for a
  like-for-like comparison its MCC with a cut chosen on CoLA is given too, in-sample and cross-validated.
- SummEval (``summeval/summeval_dev.jsonl``): Spearman correlation with the mean expert fluency rating, pooled over
  all summaries and per document (G-Eval's "summary-level" protocol, the one its 0.455 uses), of acceptability and
  degeneration (each on its own: multiplying acceptability into degeneration wiped out degeneration's signal,
  0.134 -> -0.020), slor, fluency_long (its ridge fitted on this set: 5-fold CV grouped by document, and
  in-sample) and the local judge tier (geval_fluency, judge_rubric on SmolLM2, first ``JUDGE_DOCUMENTS``
  documents). The model-based rows read summaries detokenised (``fit_slor.summeval_text``).

The model-based rows need SmolLM2 in the model cache; without it the area is skipped with that message.
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
    from evaluators.fluency.fitting import mcc

    return mcc(y, pred)


def _auroc(y: np.ndarray, scores: np.ndarray) -> float:
    from evaluators.fluency.fitting import auroc

    return auroc(y, scores)


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
        *_cut_rows("acceptability", probs, y, "its P(acceptable)"),
    ]


def _cut_rows(evaluator: str, scores: np.ndarray, y: np.ndarray, what: str) -> list[dict[str, Any]]:
    """MCC with a cut chosen on CoLA itself: in-sample (the optimistic figure) and 10-fold cross-validated."""
    from evaluators.fluency.fitting import cv_mcc, fit_threshold

    fit = fit_threshold(scores, y)
    values = 1.0 / (1.0 + np.exp(-(fit["slope"] * scores + fit["intercept"])))
    goal = "MCC >= 0.3"
    return [
        _row(evaluator, "cola_in_domain_dev", "mcc_cut_in_sample", _mcc(y, (values >= fit["threshold"]).astype(int)),
             goal, len(y), f"cut on {what} chosen for the best MCC on this same set: optimistic"),
        _row(evaluator, "cola_in_domain_dev", "mcc_cut_cv10", cv_mcc(scores, y), goal, len(y),
             "logistic map and MCC-best cut refitted on 9/10, verdicts on the held-out tenth (stratified, seed 0)"),
    ]  # fmt: skip


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from evaluators.fluency.fitting import spearman

    return spearman(a, b)


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


def slor_cola_rows(path: Path) -> list[dict[str, Any]]:
    """AUROC of SLOR (no fitting: a monotone score) and the MCC of the shipped cut, in-sample and cross-validated."""
    from evaluators.fluency.fit_slor import cola_slor
    from evaluators.fluency.slor import SlorEvaluator

    evaluator = SlorEvaluator()
    x, y = cola_slor(path, evaluator)
    shipped = _mcc(y, np.array([evaluator.p_acceptable(v) >= evaluator.threshold for v in x], dtype=int))
    auroc_detail = (
        "SLOR under SmolLM2-135M-Instruct (fp32), wordfreq unigram table; the table's word forms and the "
        "<|endoftext|> context were looked at on this set (8 variants: AUROC 0.67-0.70)"
    )
    rows = [
        _row(
            "slor",
            "cola_in_domain_dev",
            "auroc",
            _auroc(y, x),
            "AUROC higher is better (0.5 chance)",
            len(y),
            auroc_detail,
        ),
        _row(
            "slor",
            "cola_in_domain_dev",
            "mcc",
            shipped,
            "MCC >= 0.3",
            len(y),
            f"shipped cut P(acceptable) >= {evaluator.threshold:.3f} (SLOR >= "
            f"{(np.log(evaluator.threshold / (1 - evaluator.threshold)) - evaluator.intercept) / evaluator.slope:.2f})"
            ", chosen on this same set: in-sample",
        ),
    ]
    return rows + [r for r in _cut_rows("slor", x, y, "SLOR") if r["metric"] == "mcc_cut_cv10"]


def summeval_model_rows(path: Path) -> list[dict[str, Any]]:
    """Spearman of slor and of fluency_long (grouped CV and in-sample) with SummEval's expert fluency."""
    from evaluators.fluency import fitting
    from evaluators.fluency.fit_slor import read_summeval, summeval_features
    from evaluators.fluency.long import FEATURES, _coefficients
    from evaluators.fluency.slor import SlorEvaluator

    records = read_summeval(path)
    gold = np.array([r["expert_mean"]["fluency"] for r in records])
    groups = np.array([r["id"] for r in records])
    features, results = summeval_features(records, SlorEvaluator())
    slor = np.array([r.slor for r in results])
    shipped = fitting.predict_ridge(_coefficients(), features)
    oof = fitting.cv_ridge(features, gold, groups)
    length = features[:, FEATURES.index("log_tokens")]
    rows = _spearman_rows("slor", slor, gold, groups, "SLOR alone, no fitting")
    rows += _spearman_rows("fluency_long", oof, gold, groups,
                           f"ridge on {len(FEATURES)} features refitted per fold, 5 folds grouped by document: "
                           f"held-out", suffix="_cv5_grouped")  # fmt: skip
    rows += _spearman_rows("fluency_long", shipped, gold, groups, "the shipped ridge, fitted on this same set: "
                           "in-sample", suffix="_in_sample")  # fmt: skip
    rows += _spearman_rows("fluency_long", length, gold, groups, "reference: token count alone", suffix="_length")
    return rows


def _spearman_rows(
    evaluator: str, pred: np.ndarray, gold: np.ndarray, groups: np.ndarray, detail: str, suffix: str = ""
) -> list[dict[str, Any]]:
    from evaluators.fluency.fitting import per_document_spearman

    per_doc, documents = per_document_spearman(np.asarray(pred, dtype=float), gold, groups)
    goal = "Spearman >= 0.3 (G-Eval GPT-4: 0.455)"
    return [
        _row(evaluator, "summeval_dev", f"spearman_fluency{suffix}", _spearman(pred, gold), goal, len(gold),
             f"pooled over all summaries; {detail}"),
        _row(evaluator, "summeval_dev", f"spearman_fluency_per_doc{suffix}", per_doc, goal, len(gold),
             f"mean over {documents} documents of the per-document Spearman (G-Eval's protocol); {detail}"),
    ]  # fmt: skip


JUDGE_DOCUMENTS = 20
"""SummEval documents (of 58, first by id, 12 summaries each) the local judges read: about 1 s a summary each."""
JUDGE_BRIEF = "Summarise a news article in a few sentences."
JUDGE_CRITERIA = "Well-written: grammatical, fluent sentences that read naturally; no repetition or garbled text."


def judge_rows(path: Path) -> list[dict[str, Any]]:
    """Spearman of geval_fluency and judge_rubric, on SmolLM2 through the router, with the expert fluency."""
    from chains import ModelsConfig
    from chains.model_store import cached_path
    from evaluators.base import safe_score
    from evaluators.fluency.fit_slor import read_summeval, summeval_text
    from evaluators.judge import EVALUATORS

    records = read_summeval(path)
    chosen = set(sorted({r["id"] for r in records})[:JUDGE_DOCUMENTS])
    records = [r for r in records if r["id"] in chosen]
    gold = np.array([r["expert_mean"]["fluency"] for r in records])
    groups = np.array([r["id"] for r in records])
    config = ModelsConfig.model_validate({"router": {"default": f"hf:{cached_path('smollm2-135m-instruct')}"}})
    brief = [{"role": "user", "content": JUDGE_BRIEF}]
    rows = []
    for name, params in (("geval_fluency", {}), ("judge_rubric", {"criteria": JUDGE_CRITERIA})):
        judge = EVALUATORS[name](config=config, retries=0, **params)
        scores = [safe_score(judge, Sample(output=summeval_text(r["summary"]), messages=brief)) for r in records]
        errors = sum(1 for s in scores if s.error)
        detail = (f"SmolLM2-135M-Instruct as hf:<folder>, logprob-weighted digit (top 20), first {JUDGE_DOCUMENTS} "
                  f"documents; {errors} answers held no digit (scored 0)")  # fmt: skip
        rows += _spearman_rows(name, np.array([s.value for s in scores]), gold, groups, detail)
    return rows


def calibrate(data_dir: Path) -> list[dict[str, Any]]:
    """Figures for the fluency evaluators on CoLA and SummEval under ``data_dir``; FileNotFoundError if missing
    (the data, or SmolLM2 in the model cache)."""
    from chains.model_store import cached_path

    data_dir = Path(data_dir)
    cola = _need(_need(data_dir / "cola") / "in_domain_dev.tsv")
    summeval = _need(_need(data_dir / "summeval") / "summeval_dev.jsonl")
    if cached_path("smollm2-135m-instruct") is None:
        raise FileNotFoundError("slor, fluency_long and the local judges need SmolLM2: run `aigc models pull smollm2`")
    rows = cola_rows(cola) + slor_cola_rows(cola) + summeval_rows(summeval)
    return rows + summeval_model_rows(summeval) + judge_rows(summeval)
