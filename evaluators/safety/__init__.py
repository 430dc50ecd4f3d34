"""Safety evaluators: toxicity, personal data, prompt injection, task policies and OpenAI moderation.

    from evaluators.safety import EVALUATORS
    scorer = EVALUATORS["pii"]()            # offline evaluators take no required arguments
    scorer.score(Sample(output="Call me at +44 20 7946 0958"))

Importing this package is cheap: scikit-learn, MiniLM (toxicity and injection read meaning through it), the
lexicons and the trained weights load at first use.
``calibrate(data_dir)`` measures the evaluators on the public labelled data (held-out figures only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.base import Evaluator
from evaluators.safety.injection import InjectionEvaluator, injection_probabilities
from evaluators.safety.leakage import PromptLeakageEvaluator, canary_token, find_canaries
from evaluators.safety.learner import LearnerAppropriateEvaluator, parse_grade
from evaluators.safety.marketing import MarketingClaimsEvaluator, find_claims
from evaluators.safety.moderation import ModerationEvaluator
from evaluators.safety.pii import PIIEvaluator, PIISpan, find_pii, redact
from evaluators.safety.toxicity import ToxicityEvaluator, toxicity_probabilities

__all__ = [
    "EVALUATORS",
    "InjectionEvaluator",
    "LearnerAppropriateEvaluator",
    "MarketingClaimsEvaluator",
    "ModerationEvaluator",
    "PIIEvaluator",
    "PIISpan",
    "PromptLeakageEvaluator",
    "ToxicityEvaluator",
    "calibrate",
    "canary_token",
    "find_canaries",
    "find_claims",
    "find_pii",
    "injection_probabilities",
    "parse_grade",
    "redact",
    "toxicity_probabilities",
]

EVALUATORS: dict[str, Callable[..., Evaluator]] = {
    "toxicity": ToxicityEvaluator,
    "pii": PIIEvaluator,
    "prompt_injection": InjectionEvaluator,
    "marketing_claims": MarketingClaimsEvaluator,
    "learner_appropriate": LearnerAppropriateEvaluator,
    "prompt_leakage": PromptLeakageEvaluator,
    "moderation": ModerationEvaluator,
}


def calibrate(data_dir: Path) -> list[dict[str, Any]]:
    """Held-out accuracy of toxicity (Davidson's test half and our implicit-hate check set), PII and prompt
    injection (by language, and the false-positive rate on benign briefs) on the public data under ``data_dir``: rows
    of ``{area, evaluator, dataset, metric, value, goal, n, detail}``. A missing folder raises FileNotFoundError."""
    from evaluators.safety.calibration import calibrate as run

    return run(data_dir)
