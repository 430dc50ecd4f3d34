"""/v1/moderations answers from aigc's own safety evaluators (offline), in OpenAI's result shape.

What each category is scored by, honestly (our models do not tell OpenAI's categories apart as finely):

| category | score | flagged |
|---|---|---|
| ``harassment``, ``hate`` | the toxicity probability (one model: offensive language and hate) | toxicity threshold |
| ``harassment/threatening``, ``violence`` | the same where a threat term of the lexicon matched, else 0 | same |
| ``sexual`` | the same where a sexual term matched, else 0 | same |
| ``prompt_injection`` (aigc's) | the injection probability | at the injection threshold |
| ``pii`` (aigc's) | 1 where personal data was found, else 0 | any span |
| every other OpenAI category | 0, not assessed: its ``category_applied_input_types`` entry is empty | never |

``flagged`` is true when any category is flagged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ASSESSED", "MODERATION_MODEL", "moderate"]

MODERATION_MODEL = "aigc-safety"
OPENAI_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
ASSESSED = ("harassment", "harassment/threatening", "hate", "sexual", "violence", "prompt_injection", "pii")
_LEXICON_GATED = {"harassment/threatening": "threat", "violence": "threat", "sexual": "sexual"}


def moderate(texts: list[str]) -> list[dict[str, Any]]:
    """One OpenAI moderation result per text."""
    from evaluators.safety.injection import default_threshold as injection_threshold
    from evaluators.safety.injection import injection_probabilities
    from evaluators.safety.pii import find_pii
    from evaluators.safety.toxicity import default_threshold as toxicity_threshold
    from evaluators.safety.toxicity import toxicity_probabilities

    toxic = toxicity_probabilities(texts)
    injected = injection_probabilities(texts)
    tox_at, inj_at = toxicity_threshold(), injection_threshold()
    results = []
    for text, tox, inj in zip(texts, toxic, injected, strict=True):
        matched = {category for _, category in tox.matches}
        scores: dict[str, float] = dict.fromkeys(OPENAI_CATEGORIES, 0.0)
        flags: dict[str, bool] = dict.fromkeys(OPENAI_CATEGORIES, False)
        for category in ("harassment", "hate", *_LEXICON_GATED):
            gate = _LEXICON_GATED.get(category)
            scores[category] = round(tox.probability, 4) if gate is None or gate in matched else 0.0
            flags[category] = scores[category] >= tox_at
        scores["prompt_injection"], flags["prompt_injection"] = round(inj.probability, 4), inj.probability >= inj_at
        has_pii = bool(find_pii(text))
        scores["pii"], flags["pii"] = float(has_pii), has_pii
        applied = {c: (["text"] if c in ASSESSED else []) for c in scores}
        results.append(
            {
                "flagged": any(flags.values()),
                "categories": flags,
                "category_scores": scores,
                "category_applied_input_types": applied,
            }
        )
    return results
