"""Accuracy of the safety evaluators on public labelled data (``calibrate``), held-out figures only.

* toxicity: Davidson et al. (2017), toxic = hate or offensive. The rows are split in two halves with a fixed seed;
  training (``train_toxicity.py``) reads the first half only and chooses the threshold there by cross-validation;
  every figure is reported on the second half, beside version 1's (the lexical part alone). Then our in-house
  implicit-hate check set (``data/implicit_hate_check.json``), written after training and never trained on, against
  version 1, flagging everything, and a MiniLM logistic regression trained on the Davidson half alone.
* pii: presidio-research synthetic sentences; a gold span counts as found when a predicted span of the mapped type
  overlaps it, and a predicted span is correct when it overlaps a gold span of the mapped type.
* prompt_injection: the held-out 30% of deepset's training file recorded with the trained weights (never seen by
  training or threshold selection); German and English rows are told apart by a function-word count. Also the
  false-positive rate on benign in-domain inputs never trained on: the held-out 30% of ``injection_benign.json`` plus
  every example input string of the prompt library.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PII_TYPE_MAP", "PII_UNCOVERED", "calibrate", "davidson_halves", "is_german", "language_rows"]

TOXICITY_FILE = Path("toxicity") / "davidson_balanced_3000.jsonl"
PII_FILE = Path("pii") / "presidio_synth_dev_750.json"
INJECTION_FILE = Path("prompt_injection") / "deepset_train.jsonl"
TOXICITY_SEED = 7
PII_TYPE_MAP = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "STREET_ADDRESS": "STREET_ADDRESS",
}
PII_UNCOVERED = (
    "PERSON", "GPE", "ORGANIZATION", "DATE_TIME", "TITLE", "AGE", "NRP", "ZIP_CODE", "DOMAIN_NAME", "US_DRIVER_LICENSE",
)  # fmt: skip
# fmt: off
_GERMAN = frozenset((
    "der", "die", "das", "und", "ist", "nicht", "ich", "du", "sie", "wie", "was", "wer", "für", "mit", "auf", "ein",
    "eine", "einen", "sich", "auch", "zu", "von", "den", "dem", "im", "sind", "wird", "werden", "kann", "können",
    "bitte", "mir", "mich", "dich", "uns", "über", "oder", "aber", "wenn", "dass", "gibt", "es", "deutschland",
))
_ENGLISH = frozenset((
    "the", "and", "is", "are", "not", "i", "you", "he", "she", "how", "what", "who", "for", "with", "on", "a", "an",
    "to", "of", "in", "it", "this", "that", "be", "can", "please", "me", "my", "your", "about", "or", "but", "if",
    "there", "was", "were", "do", "does", "will", "would", "should",
))
# fmt: on
_WORDS = re.compile(r"[a-zäöüß]+")
Row = dict[str, Any]


def is_german(text: str) -> bool:
    """Whether ``text`` reads as German rather than English (function words, umlauts and ß)."""
    words = _WORDS.findall(text.lower())
    german = sum(w in _GERMAN for w in words) + 2 * sum(any(c in w for c in "äöüß") for w in words)
    return german > sum(w in _ENGLISH for w in words)


def davidson_halves(n: int, seed: int = TOXICITY_SEED) -> tuple[list[int], list[int]]:
    """``(tuning half, test half)`` of Davidson's ``n`` rows, shuffled with ``seed``: training reads the first only."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order[: n // 2], order[n // 2 :]


def _need(data_dir: Path, rel: Path) -> Path:
    path = data_dir / rel
    if not path.parent.is_dir():
        raise FileNotFoundError(f"calibration data folder {path.parent} is missing (expected {rel} under {data_dir})")
    if not path.is_file():
        raise FileNotFoundError(f"calibration data file {path} is missing")
    return path


def _jsonl(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _row(evaluator: str, dataset: str, metric: str, value: float, goal: str, n: int, detail: str) -> Row:
    return {"area": "safety", "evaluator": evaluator, "dataset": dataset, "metric": metric, "value": float(value),
            "goal": goal, "n": n, "detail": detail}  # fmt: skip


def _prf(labels: Sequence[int], predicted: Sequence[bool]) -> tuple[float, float, float, float]:
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and p)
    fn = sum(1 for y, p in zip(labels, predicted, strict=True) if y and not p)
    accuracy = sum(1 for y, p in zip(labels, predicted, strict=True) if bool(y) == p) / max(len(labels), 1)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return accuracy, precision, recall, f1


def _auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _youden(labels: Sequence[int], predicted: Sequence[bool]) -> float:
    """True-positive rate minus false-positive rate (balanced accuracy * 2 - 1): independent of class balance."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and p)
    return (tp / pos if pos else 0.0) - (fp / neg if neg else 0.0)


def _best_threshold(labels: Sequence[int], probs: Sequence[float]) -> float:
    """The 0.05-grid threshold with the highest Youden J (ties: the higher threshold)."""
    grid = [round(0.05 * k, 2) for k in range(1, 20)]
    return max(grid, key=lambda t: (round(_youden(labels, [p >= t for p in probs]), 6), t))


def _toxicity(data_dir: Path) -> list[Row]:
    """Davidson's test half (never trained on) at the shipped threshold, then our implicit-hate check set."""
    from evaluators.safety._text import load_json
    from evaluators.safety.toxicity import LEXICAL_THRESHOLD, default_threshold, toxicity_probabilities
    from evaluators.safety.toxicity_model import MODEL_FILE

    path = _need(data_dir, TOXICITY_FILE)
    meta = load_json(MODEL_FILE)
    if hashlib.sha256(path.read_bytes()).hexdigest() != meta["davidson_sha256"]:
        raise ValueError(f"{path} is not the file the toxicity model was trained on; retrain with train_toxicity")
    rows = _jsonl(path)
    tune, test = davidson_halves(len(rows))
    if len(tune) != meta["n_davidson_tune"] or meta["davidson_seed"] != TOXICITY_SEED:
        raise ValueError("the Davidson split differs from the one the toxicity model was trained on; retrain")
    results = toxicity_probabilities([rows[i]["text"] for i in test])
    y = [int(rows[i]["toxic"]) for i in test]
    threshold = default_threshold()
    name, n = "davidson_balanced_3000 (test half)", len(test)
    how = (
        f"shipped threshold {threshold} = best mean Youden J of 5-fold out-of-fold scores on the other half (seed "
        f"{TOXICITY_SEED}) and our training statements (train_toxicity.py); this half was never trained on"
    )
    p, lexical = [r.probability for r in results], [r.lexical for r in results]
    _, precision, recall, f1 = _prf(y, [x >= threshold for x in p])
    _, v1_precision, v1_recall, v1_f1 = _prf(y, [x >= LEXICAL_THRESHOLD for x in lexical])
    caveat = "alt-profanity-check was itself trained partly on Davidson's tweets, so these figures are optimistic"
    v1 = f"version 1 (lexicon + damped classifier, threshold {LEXICAL_THRESHOLD})"
    return [
        _row("toxicity", name, "auroc", _auroc(y, p), "higher; toxic (class 0/1) vs neither", n,
             f"learned model (MiniLM + lexical) floored by the lexicon; {caveat}"),
        _row("toxicity", name, "f1", f1, "higher", n, f"{how}; precision {precision:.3f}, recall {recall:.3f}"),
        _row("toxicity", name, "youden_j", _youden(y, [x >= threshold for x in p]), "higher", n, how),
        _row("toxicity", name, "auroc[v1 lexical]", _auroc(y, lexical), "reference", n,
             f"{v1}; classifier alone: {_auroc(y, [r.classifier for r in results]):.3f}"),
        _row("toxicity", name, "f1[v1 lexical]", v1_f1, "reference", n,
             f"{v1}; precision {v1_precision:.3f}, recall {v1_recall:.3f}"),
        *_implicit_hate([rows[i] for i in tune], threshold),
    ]  # fmt: skip


def _davidson_only_baseline(tune_rows: list[Row]) -> tuple[Callable[[Sequence[str]], list[float]], float]:
    """The reference model the issue names: logistic regression on MiniLM embeddings trained on the Davidson tuning
    half alone, with its threshold at the best Youden J of 5-fold out-of-fold probabilities there."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from evaluators.embeddings import embed

    x, y = embed([r["text"] for r in tune_rows]), [int(r["toxic"]) for r in tune_rows]
    oof = cross_val_predict(LogisticRegression(max_iter=3000), x, y, cv=5, method="predict_proba")[:, 1]
    threshold = _best_threshold(y, list(oof))
    model = LogisticRegression(max_iter=3000).fit(x, y)
    return lambda texts: [float(v) for v in model.predict_proba(embed(list(texts)))[:, 1]], threshold


def _implicit_hate(tune_rows: list[Row], threshold: float) -> list[Row]:
    """Our check set (written after training, in other styles; never trained on): hate without slurs or profanity
    against benign statements about the same groups. An in-house figure: we wrote both sides."""
    from evaluators.safety.toxicity import LEXICAL_THRESHOLD, toxicity_probabilities
    from evaluators.safety.toxicity_model import CHECK_FILE, written_examples

    texts, y, styles = written_examples(CHECK_FILE)
    results = toxicity_probabilities(texts)
    p, lexical = [r.probability for r in results], [r.lexical for r in results]
    baseline, base_threshold = _davidson_only_baseline(tune_rows)
    b = baseline(texts)
    name, n = "implicit_hate_check (in-house, written after training)", len(texts)
    _, precision, recall, f1 = _prf(y, [x >= threshold for x in p])
    by_style = ", ".join(
        f"{s} {_prf([y[i] for i in idx], [p[i] >= threshold for i in idx])[3]:.2f}"
        for s in sorted(set(styles))
        if (idx := [i for i, g in enumerate(styles) if g == s])
    )
    how = f"{sum(y)} hateful / {n - sum(y)} benign statements about the same groups; threshold {threshold}"
    ref = "reference, same set"
    return [
        _row("toxicity", name, "auroc", _auroc(y, p), "higher", n, f"{how}; ours, so optimistic"),
        _row("toxicity", name, "f1", f1, "higher", n,
             f"{how}; precision {precision:.3f}, recall {recall:.3f}; F1 by style: {by_style}"),
        _row("toxicity", name, "auroc[v1 lexical]", _auroc(y, lexical), ref, n, "version 1: lexicon + classifier"),
        _row("toxicity", name, "f1[v1 lexical]", _prf(y, [x >= LEXICAL_THRESHOLD for x in lexical])[3], ref, n,
             f"version 1 at its threshold {LEXICAL_THRESHOLD}"),
        _row("toxicity", name, "auroc[minilm-lr davidson-only]", _auroc(y, b), ref, n,
             "logistic regression on MiniLM embeddings trained on the Davidson tuning half only"),
        _row("toxicity", name, "f1[minilm-lr davidson-only]", _prf(y, [x >= base_threshold for x in b])[3], ref, n,
             f"that baseline at its Youden-best 5-fold threshold {base_threshold} on the Davidson tuning half"),
        _row("toxicity", name, "f1[flag all]", _prf(y, [True] * n)[3], ref, n, "every statement flagged"),
    ]  # fmt: skip


def _overlap(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def _pii_counts(data: list[Row]) -> dict[str, list[int]]:
    """{our type: [gold found, gold missed, predicted correct, predicted wrong]}."""
    from evaluators.safety.pii import find_pii

    counts: dict[str, list[int]] = {t: [0, 0, 0, 0] for t in PII_TYPE_MAP.values()}
    for row in data:
        gold = [(PII_TYPE_MAP[s["entity_type"]], s["start_position"], s["end_position"]) for s in row["spans"]
                if s["entity_type"] in PII_TYPE_MAP]  # fmt: skip
        pred = [(s.entity_type, s.start, s.end) for s in find_pii(row["full_text"])]
        for g in gold:
            counts[g[0]][0 if any(_overlap(g, p) for p in pred) else 1] += 1
        for p in pred:
            counts.setdefault(p[0], [0, 0, 0, 0])[2 if any(_overlap(p, g) for g in gold) else 3] += 1
    return counts


def _pii(data_dir: Path) -> list[Row]:
    data = json.loads(_need(data_dir, PII_FILE).read_text(encoding="utf-8"))
    out: list[Row] = []
    name = "presidio_synth_dev_750"
    uncovered = f"types not covered: {', '.join(PII_UNCOVERED)}"
    for entity, (found, missed, right, wrong) in sorted(_pii_counts(data).items()):
        source = [k for k, v in PII_TYPE_MAP.items() if v == entity]
        detail = f"their {'/'.join(source) or '(none)'}; overlap matching; {uncovered}"
        if right + wrong:
            out.append(_row("pii", name, f"precision[{entity}]", right / (right + wrong), "higher", right + wrong,
                            f"{detail}; patterns were tuned while reading errors on this same set"))  # fmt: skip
        if found + missed:
            out.append(_row("pii", name, f"recall[{entity}]", found / (found + missed), "higher", found + missed,
                            detail))  # fmt: skip
    return out


def _injection(data_dir: Path) -> list[Row]:
    from evaluators.safety._text import load_json
    from evaluators.safety.injection import MODEL_FILE, default_threshold, heldout_split, injection_probabilities

    path = _need(data_dir, INJECTION_FILE)
    meta = load_json(MODEL_FILE)
    if hashlib.sha256(path.read_bytes()).hexdigest() != meta["data_sha256"]:
        raise ValueError(f"{path} is not the file the injection model was trained on; retrain with train_injection")
    rows = _jsonl(path)
    _, test = heldout_split([int(r["label"]) for r in rows], meta["test_fraction"], meta["seed"])
    if test != meta["test_indices"]:
        raise ValueError("the held-out split differs from the one recorded with the weights; retrain")
    threshold = default_threshold()
    texts, labels = [rows[i]["text"] for i in test], [int(rows[i]["label"]) for i in test]
    probs = [r.probability for r in injection_probabilities(texts)]
    how = (
        f"held-out {meta['test_fraction']:.0%} stratified split (seed {meta['seed']}); n-gram + MiniLM models; "
        f"decision at {threshold} = the models' {meta['cv_threshold']} folded into an offset, chosen by 5-fold CV on "
        f"the training split (best F1 on deepset rows flagging at most {meta['benign_fpr_budget']:.0%} of our benign "
        "training briefs)"
    )
    rows_out = language_rows("prompt_injection", "deepset_train heldout", texts, labels, probs, threshold, how)
    return [*rows_out, _injection_benign(meta, threshold)]


def language_rows(
    evaluator: str,
    dataset: str,
    texts: Sequence[str],
    labels: Sequence[int],
    probs: Sequence[float],
    threshold: float,
    detail: str,
) -> list[Row]:
    """Accuracy, precision, recall and F1 at ``threshold`` for all texts, then German and English ones apart
    (:func:`is_german`): datasets ``"<dataset> [all]"``, ``[de]`` and ``[en]``."""
    german = [is_german(t) for t in texts]
    groups = {"all": [True] * len(texts), "de": german, "en": [not g for g in german]}
    out: list[Row] = []
    for group, keep in groups.items():
        y = [label for label, k in zip(labels, keep, strict=True) if k]
        predicted = [p >= threshold for p, k in zip(probs, keep, strict=True) if k]
        note = f"{detail}; {sum(y)} injections; language by function words"
        for metric, value in zip(("accuracy", "precision", "recall", "f1"), _prf(y, predicted), strict=True):
            out.append(_row(evaluator, f"{dataset} [{group}]", metric, value, "higher", len(y), note))
    return out


def _library_examples() -> list[str]:
    """Every distinct example input string of every version in the built-in prompt library."""
    from evaluators.safety._text import collect_strings
    from prompts import PromptRegistry

    registry = PromptRegistry()
    specs = [
        spec for entry in registry for v in entry.versions for spec in registry.load(entry, v).meta.inputs.values()
    ]
    return sorted({t for spec in specs if spec.example is not None for t in collect_strings(spec.example) if t.strip()})


def _injection_benign(meta: Row, threshold: float) -> Row:
    from evaluators.safety.injection import benign_digest, benign_split, injection_probabilities

    if benign_digest() != meta["benign_sha256"]:
        raise ValueError("the benign injection texts changed since the model was trained; retrain")
    _, held_out = benign_split(meta["seed"])
    library = _library_examples()
    probs = [r.probability for r in injection_probabilities([*held_out, *library])]
    flagged = [p >= threshold for p in probs]
    ours, lib = sum(flagged[: len(held_out)]), sum(flagged[len(held_out) :])
    detail = (
        f"{ours}/{len(held_out)} of our held-out benign briefs (30%, seed {meta['seed']}) and {lib}/{len(library)} "
        f"prompt-library example strings flagged at threshold {threshold}; none of them was trained on"
    )
    return _row("prompt_injection", "in-domain benign briefs (held out)", "false_positive_rate",
                sum(flagged) / len(flagged), "lower", len(flagged), detail)  # fmt: skip


def calibrate(data_dir: Path) -> list[Row]:
    """Held-out accuracy rows of the safety evaluators on the public data under ``data_dir``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"calibration data folder {data_dir} is missing")
    return [*_toxicity(data_dir), *_pii(data_dir), *_injection(data_dir)]
