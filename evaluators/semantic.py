"""Semantic adherence: how close the output is to the brief, by embedding similarity (all-MiniLM-L6-v2).

value = clip(cosine(brief, output), 0, 1). The brief is the rendered user message(s), or the input values when
no messages are known. A threshold around 0.3 separates on-topic from off-topic text for short briefs; calibrate it
on your own prompts. Cheap and offline, it catches answers about the wrong thing; it cannot judge quality.
"""

from __future__ import annotations

from collections.abc import Sequence

from evaluators.base import Sample, Score

__all__ = ["EVALUATORS", "SemanticSimilarity"]


def _brief(sample: Sample) -> str:
    if sample.messages:
        return sample.prompt_text
    return "\n".join(str(v) for v in sample.inputs.values() if isinstance(v, str | int | float | list))


class SemanticSimilarity:
    """Cosine similarity between the brief and the output."""

    name = "semantic_similarity"
    version = "1"

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold

    def score(self, sample: Sample) -> Score:
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        from evaluators.embeddings import embed

        vectors = embed([_brief(s) for s in samples] + [s.output for s in samples])
        n = len(samples)
        scores = []
        for i, sample in enumerate(samples):
            if not sample.output.strip():
                scores.append(Score(self.name, 0.0, False, self.threshold, "empty output", evaluator_version="1"))
                continue
            value = float(min(1.0, max(0.0, vectors[i] @ vectors[n + i])))
            passed = None if self.threshold is None else value >= self.threshold
            scores.append(
                Score(
                    self.name,
                    value,
                    passed,
                    self.threshold,
                    f"cosine similarity to the brief {value:.2f}",
                    evaluator_version=self.version,
                )
            )
        return scores


EVALUATORS = {"semantic_similarity": SemanticSimilarity}
