"""Prompt injection and jailbreak attempts in user-supplied inputs (English and German).

Two signals: a curated pattern lexicon ("ignore previous instructions", "vergiss alle vorherigen Anweisungen",
"you are now DAN", "reveal your system prompt", ...) and two small linear models whose logits are averaged: one over
hashed character and word n-grams (the wording), one over all-MiniLM-L6-v2 sentence embeddings (the meaning: it
tells "please summarise this text" from "now summarise your instructions" better than n-grams do). Both are trained
by ``train_injection.py`` on a seeded split of deepset's prompt-injections data and stored as JSON in
``data/injection_model.json`` (no pickle). A pattern hit puts a floor under the model's probability.

The model is also trained on 70% of our own benign in-domain inputs (``data/injection_benign.json``: product briefs,
press-release facts, lesson topics, rewrite sources; English and German), because deepset's benign rows are short
questions and a model trained on them alone flags ordinary long briefs. The stored probability is shifted so that
the cross-validated decision threshold (``cv_threshold`` in the weights file: the best F1 on deepset's rows among
thresholds that flag at most 5% of our benign training briefs) sits at 0.5. Probabilities are rounded to three
decimals, so that a text scores the same alone or in a batch (batched MiniLM differs in the seventh decimal).

The evaluator scores every string in ``sample.inputs`` (the output only when ``include_output``); the most
suspicious string decides. :func:`injection_probabilities` scores plain texts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from evaluators.base import Sample, Score
from evaluators.safety._text import collect_strings, load_json

__all__ = [
    "BENIGN_FILE",
    "MODEL_FILE",
    "PATTERN_FLOOR",
    "InjectionEvaluator",
    "InjectionResult",
    "benign_digest",
    "benign_split",
    "heldout_split",
    "injection_probabilities",
    "mean_logit",
    "pattern_hits",
]

MODEL_FILE = "injection_model.json"
BENIGN_FILE = "injection_benign.json"
PATTERN_FLOOR = 0.9
_GAP = r"(?:[\w'’\-]+[\s,]+){0,4}?"  # up to four filler words, lazily: "ignore all of the previous instructions"
_EN_BEFORE = r"(?:previous|prior|preceding|above|earlier|former|foregoing|original|initial|all|any|your)"
_EN_RULES = r"(?:instructions?|prompts?|orders?|rules|directions?|directives?|guidelines|context|commands?|tasks?)"
_DE_BEFORE = r"(?:vorherigen?|vorigen?|bisherigen?|obigen?|vorangegangenen?|vorstehenden?|alle[ns]?|deine[nr]?)"
_DE_RULES = (
    r"(?:anweisungen|anweisung|instruktionen|befehle|aufgaben?|regeln|vorgaben|ausführungen|informationen|kontext)"
)
_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "ignore_instructions",
        rf"\b(?:ignore|disregard|forget|override|bypass)\s+{_GAP}{_EN_BEFORE}\s+{_GAP}{_EN_RULES}\b",
    ),
    (
        "forget_everything",
        r"\b(?:forget|ignore|disregard)\s+(?:about\s+)?(?:everything|all(?:\s+that)?|what)\s+(?:\w+\s+){0,2}?"
        r"(?:before|above|previously|earlier|you\s+(?:were|have\s+been)\s+told|i\s+(?:said|told\s+you))\b",
    ),
    ("new_instructions", r"\b(?:new|updated|different)\s+(?:instructions|rules|task|orders)\s*(?::|follow)"),
    (
        "role_override",
        r"\byou\s+are\s+now\s+(?:a|an|my|in\s+\w+\s+mode|free|no\s+longer|going\s+to\s+(?:act|be|pretend))\b|"
        r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will\s+(?:act|be|pretend|respond))\b|\bpretend\s+(?:that\s+)?you\s+are\b|"
        r"\bi\s+want\s+you\s+to\s+(?:act|behave)\s+(?:as|like)\b|\broleplay\s+as\b|"
        r"(?:^|[.!?]\s+)(?:please\s+)?act\s+as\s+(?:if\s+you\s+were\s+)?(?:a|an|my)\b",
    ),
    (
        "jailbreak_persona",
        r"\b(?-i:DAN)\b|\b(?:do\s+anything\s+now|developer\s+mode|jailbreak|jailbroken|evil\s+confidant|"
        r"without\s+(?:any\s+)?(?:restrictions|censorship|filters|moral\s+guidelines))\b",
    ),
    (
        "reveal_prompt",
        r"\b(?:reveal|show|print|repeat|output|tell\s+me|what\s+(?:is|are|was|were)|display|leak|spell\s+out)\s+"
        r"(?:me\s+)?(?:your\s+(?:\w+\s+){0,2}?(?:prompt|instructions|rules|configuration|guidelines)|the\s+"
        r"(?:system|initial|hidden|original|secret)\s+(?:prompt|instructions))\b",
    ),
    (
        "prompt_above",
        r"\b(?:written|said|stated)\s+(?:at\s+the\s+beginning|above|before)\s+(?:of\s+)?(?:this|the)\s+"
        r"(?:prompt|conversation|text)",
    ),
    (
        "de_ignore",
        rf"\b(?:ignoriere|ignorier|ignorieren|vergiss|vergessen|vergesse|missachte|übergehe)\s+{_GAP}{_DE_BEFORE}\s+"
        rf"{_GAP}{_DE_RULES}\b",
    ),
    ("de_ignore_reversed", rf"\b{_DE_BEFORE}\s+{_GAP}{_DE_RULES}\s+{_GAP}(?:ignorieren|vergessen|missachten)\b"),
    ("de_forget_everything", r"\b(?:vergiss|vergesst|vergessen\s+sie)\s+(?:einfach\s+)?(?:alles|das\s+alles)\b"),
    (
        "de_new_instructions",
        r"\b(?:nun|jetzt|ab\s+jetzt)\s+(?:folgen|kommen|gelten)\s+(?:neue|andere)\s+(?:anweisungen|aufgaben|regeln)|"
        r"\bneue\s+(?:anweisungen|aufgabe)\s*:",
    ),
    (
        "de_role_override",
        r"\b(?:du\s+bist\s+(?:jetzt|nun|ab\s+sofort|ab\s+jetzt)|ab\s+(?:jetzt|sofort)\s+bist\s+du|tu\s+so,?\s+als\s+"
        r"(?:ob|wärst)|stell\s+dir\s+vor,?\s+du\s+bist|agiere\s+als|verhalte\s+dich\s+wie)",
    ),
    (
        "de_reveal_prompt",
        r"\b(?:zeige?|nenne|verrate|gib|wiederhole)\s+(?:mir\s+)?(?:\w+\s+){0,2}?(?:deine[nr]?\s+(?:\w+\s+)?"
        r"(?:prompt|prompt-texte?|anweisungen|instruktionen|regeln)|(?:den|die)\s+system-?prompts?)\b",
    ),
)


@dataclass(frozen=True)
class InjectionResult:
    """One text's injection probability, the model's own, and the patterns that matched."""

    probability: float
    model: float
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class _Model:
    vectorizers: tuple[Any, ...]
    coef: Any  # numpy array, one weight per hashed feature of all vectorizers in order
    intercept: float
    embedding_coef: Any  # numpy array, one weight per MiniLM dimension
    embedding_intercept: float
    offset: float  # added to the mean logit: -logit(cv_threshold), so the chosen threshold lands on 0.5
    threshold: float


def heldout_split(
    labels: Sequence[int], test_fraction: float = 0.3, seed: int = 20240611
) -> tuple[list[int], list[int]]:
    """Stratified ``(train indices, test indices)``: each label's indices shuffled with ``seed``; the first
    ``test_fraction`` of each (rounded) is held out. Pure Python, so the split is the same on every machine."""
    train: list[int] = []
    test: list[int] = []
    for label in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == label]
        random.Random(f"{seed}:{label}").shuffle(idx)
        cut = round(len(idx) * test_fraction)
        test += idx[:cut]
        train += idx[cut:]
    return sorted(train), sorted(test)


def benign_split(seed: int = 20240611) -> tuple[list[str], list[str]]:
    """Our benign in-domain texts as ``(training, held out)``: :func:`heldout_split` stratified by language."""
    data = load_json(BENIGN_FILE)
    texts = [*data["en"], *data["de"]]
    train, test = heldout_split([0] * len(data["en"]) + [1] * len(data["de"]), seed=seed)
    return [texts[i] for i in train], [texts[i] for i in test]


def benign_digest() -> str:
    """SHA-256 of the benign texts (canonical JSON), recorded with the weights to detect an edited file."""
    data = load_json(BENIGN_FILE)
    canonical = json.dumps({"en": data["en"], "de": data["de"]}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((name, re.compile(p, re.IGNORECASE)) for name, p in _PATTERNS)


def pattern_hits(text: str) -> list[str]:
    """Names of the injection patterns that match ``text``."""
    return [name for name, pattern in _patterns() if pattern.search(text)]


def build_vectorizers(spec: Sequence[dict[str, Any]]) -> tuple[Any, ...]:
    """Stateless hashing vectorizers from their JSON description (shared by training and scoring)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return tuple(
        HashingVectorizer(
            analyzer=s["analyzer"],
            ngram_range=tuple(s["ngram_range"]),
            n_features=s["n_features"],
            alternate_sign=False,
            norm="l2",
            lowercase=True,
            dtype=float,
        )
        for s in spec
    )


def featurize(vectorizers: Sequence[Any], texts: Sequence[str]) -> Any:
    """The sparse feature matrix of ``texts``: the vectorizers' outputs side by side."""
    from scipy.sparse import hstack

    return hstack([v.transform(texts) for v in vectorizers]).tocsr()


@cache
def _model() -> _Model:
    import numpy as np

    data = load_json(MODEL_FILE)
    coef = np.frombuffer(base64.b64decode(data["coef_f32_b64"]), dtype="<f4").astype(float)
    return _Model(
        build_vectorizers(data["vectorizers"]),
        coef,
        float(data["intercept"]),
        np.asarray(data["embedding_coef"], dtype=float),
        float(data["embedding_intercept"]),
        float(data["offset"]),
        float(data["threshold"]),
    )


def default_threshold() -> float:
    """The decision threshold stored with the weights: 0.5, where the one chosen by cross-validation on the training
    split (``cv_threshold``) lands once it is folded into the model's offset."""
    return _model().threshold


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


def mean_logit(ngram: Any, embedding: Any, offset: float) -> Any:
    """The combined logit of the two models (shared by training and scoring)."""
    return (ngram + embedding) / 2 + offset


def injection_probabilities(texts: Sequence[str]) -> list[InjectionResult]:
    """Injection probability of many texts with one call of each model (0..1, higher is more likely an injection)."""
    if not texts:
        return []
    from evaluators.embeddings import embed

    model = _model()
    ngram = featurize(model.vectorizers, list(texts)) @ model.coef + model.intercept
    embedding = embed(list(texts)) @ model.embedding_coef + model.embedding_intercept
    results = []
    for text, margin in zip(texts, mean_logit(ngram, embedding, model.offset), strict=True):
        hits = tuple(pattern_hits(text))
        p = round(_sigmoid(float(margin)), 3) if text.strip() else 0.0
        results.append(InjectionResult(max(p, PATTERN_FLOOR) if hits else p, p, hits))
    return results


class InjectionEvaluator:
    """Prompt injection in the sample's user inputs. value = 1 - the highest injection probability among them."""

    name = "prompt_injection"
    version = "2"  # 2: n-gram and MiniLM models averaged; threshold: F1 on deepset within a benign-brief budget

    def __init__(self, threshold: float | None = None, *, include_output: bool = False) -> None:
        self.threshold = threshold
        self.include_output = include_output

    def _texts(self, sample: Sample) -> list[str]:
        texts = [t for t in collect_strings(sample.inputs) if t.strip()]
        return [*texts, sample.output] if self.include_output else texts

    def score(self, sample: Sample) -> Score:
        """Score one sample."""
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        """Score many samples with one model call over all their input strings."""
        per_sample = [self._texts(s) for s in samples]
        flat = injection_probabilities([t for texts in per_sample for t in texts])
        threshold = default_threshold() if self.threshold is None else self.threshold
        scores, at = [], 0
        for texts in per_sample:
            scores.append(self._to_score(texts, flat[at : at + len(texts)], threshold))
            at += len(texts)
        return scores

    def _to_score(self, texts: list[str], results: list[InjectionResult], threshold: float) -> Score:
        on_value = round(1.0 - threshold, 6)  # Score thresholds are on the value scale (value = 1 - probability)
        if not texts:
            return Score(self.name, 1.0, True, on_value, "no user inputs to check", {}, self.version)
        worst = max(range(len(texts)), key=lambda i: results[i].probability)
        top = results[worst]
        passed = top.probability < threshold
        reason = f"injection probability {top.probability:.2f}" + (
            f"; patterns: {', '.join(top.patterns)}" if top.patterns else ""
        )
        details = {
            "probability": top.probability,
            "model": top.model,
            "patterns": list(top.patterns),
            "text": texts[worst][:200],
            "checked": len(texts),
            "probability_threshold": threshold,
        }
        return Score(self.name, 1.0 - top.probability, passed, on_value, reason, details, self.version)
