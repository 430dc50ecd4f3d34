"""Fit SLOR's CoLA threshold and fluency_long's ridge coefficients on the shared labelled data, and ship them.

    python -m evaluators.fluency.fit_slor [--data ../shared/data]
    # -> evaluators/fluency/data/slor_smollm2.json and data/fluency_long.json (a few numbers each)

Everything is fitted on the shared halves only (the team measures on held-out halves): SLOR's logistic map and
MCC-best cut on CoLA in-domain dev; the ridge on SummEval's summaries against the mean expert fluency. The
cross-validated figures written beside the numbers are recomputed by ``aigc evaluators calibrate``.
SummEval's summaries are lower-cased PTB tokens ("chelsea 's `` deal ''"); they are detokenised and their
sentences capitalised first (:func:`summeval_text`), as an LM reads ordinary text, never by looking at labels.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.fluency import fitting
from evaluators.fluency.text import detokenize

__all__ = ["cola_slor", "fit", "read_cola", "read_summeval", "summeval_features", "summeval_text"]

_DATA = Path(__file__).with_name("data")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")


def read_cola(path: Path) -> tuple[list[str], np.ndarray]:
    """CoLA's sentences and 0/1 acceptability labels."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) >= 4]
    return [r[3] for r in rows], np.array([int(r[1]) for r in rows])


def read_summeval(path: Path) -> list[dict[str, Any]]:
    """SummEval's records (one per summary)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summeval_text(summary: str) -> str:
    """A SummEval summary as ordinary text: PTB quotes and spacing undone, sentence starts and "i" capitalised."""
    text = detokenize(summary.replace("``", '"').replace("''", '"').split())
    text = re.sub(r'" (.*?) "', r'"\1"', text)
    text = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
    return re.sub(r"\bi\b", "I", text)


def cola_slor(path: Path, evaluator: Any) -> tuple[np.ndarray, np.ndarray]:
    """SLOR of every CoLA sentence under ``evaluator`` (a SlorEvaluator), and the labels."""
    sentences, labels = read_cola(path)
    return np.array([r.slor for r in evaluator.results(sentences)]), labels


def summeval_features(records: list[dict[str, Any]], evaluator: Any) -> tuple[np.ndarray, list[Any]]:
    """fluency_long's feature matrix for SummEval's summaries, and the SLOR results behind it."""
    from evaluators.fluency.long import FEATURES, long_features

    texts = [summeval_text(r["summary"]) for r in records]
    results = evaluator.results(texts)
    rows = [long_features(result, text) for result, text in zip(results, texts, strict=True)]
    return np.array([[row[name] for name in FEATURES] for row in rows]), results


def fit(data_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit both and return (slor calibration, fluency_long coefficients) with their in-sample and CV figures."""
    from evaluators.fluency.long import FEATURES
    from evaluators.fluency.slor import SlorEvaluator

    evaluator = SlorEvaluator()
    if evaluator.model is None:
        raise SystemExit("SmolLM2 is not in the model cache: run `aigc models pull smollm2`")
    x, y = cola_slor(data_dir / "cola" / "in_domain_dev.tsv", evaluator)
    cut = fitting.fit_threshold(x, y)
    values = np.array([1.0 / (1.0 + np.exp(-(cut["slope"] * v + cut["intercept"]))) for v in x])
    slor = {
        "model": "smollm2-135m-instruct",
        "unigram": evaluator.unigram_path.name,
        **cut,
        "fitted_on": f"CoLA in_domain_dev (shared half), n={len(y)}",
        "auroc": fitting.auroc(y, x),
        "mcc_in_sample": fitting.mcc(y, (values >= cut["threshold"]).astype(int)),
        "mcc_cv10": fitting.cv_mcc(x, y),
    }
    records = read_summeval(data_dir / "summeval" / "summeval_dev.jsonl")
    features, _ = summeval_features(records, evaluator)
    gold = np.array([r["expert_mean"]["fluency"] for r in records])
    groups = np.array([r["id"] for r in records])
    ridge = fitting.fit_ridge(features, gold)
    oof = fitting.cv_ridge(features, gold, groups)
    long = {
        "features": list(FEATURES),
        **ridge,
        "target": "SummEval mean expert fluency (1-5)",
        "fitted_on": f"SummEval summeval_dev (shared half), n={len(gold)}, {len(set(groups))} documents",
        "spearman_in_sample": fitting.spearman(fitting.predict_ridge(ridge, features), gold),
        "spearman_cv5_grouped": fitting.spearman(oof, gold),
    }
    return slor, long


def main(argv: list[str] | None = None) -> None:
    """Command line: fit and write the two data files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    slor, long = fit(args.data)
    for name, content in (("slor_smollm2.json", slor), ("fluency_long.json", long)):
        (_DATA / name).write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
        figures = {k: v for k, v in content.items() if not isinstance(v, list)}
        print(f"wrote {_DATA / name}: {json.dumps(figures)}")


if __name__ == "__main__":
    main()
