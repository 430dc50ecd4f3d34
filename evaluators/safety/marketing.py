"""Unsubstantiated marketing claims: guaranteed results, disease cures, risk-free money, "100% safe", "#1" and
"best in the world" without proof, income promises and fake urgency (English, some German).

A superlative or "clinically proven" counts as substantiated when a citation marker follows closely (a footnote
``[1]``, ``*``, ``†``, "according to", "(source"), so copy that cites its proof passes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from evaluators.base import Sample, Score

__all__ = ["CLAIM_PATTERNS", "Claim", "MarketingClaimsEvaluator", "find_claims"]

_DISEASES = (
    r"(?:cancer|tumou?rs?|diabetes|covid(?:-19)?|coronavirus|alzheimer'?s|dementia|arthritis|depression|anxiety|"
    r"diseases?|infections?|(?:the\s+)?flu|hiv|aids|obesity|heart\s+disease|autism|acne|hair\s+loss|insomnia|"
    r"high\s+blood\s+pressure|hypertension|asthma|krebs|krankheiten?)"
)
CLAIM_PATTERNS: tuple[tuple[str, str], ...] = (
    ("guarantee", r"\bguaranteed\s+(?:results?|success|weight\s+loss|to\s+(?:work|win|lose|cure|make)|approval)\b|"
     r"\b(?:results?|success)\s+(?:are\s+)?guaranteed\b|\bwe\s+guarantee\s+(?:you\s+will|results|success|that\s+you)"
     r"|\bgarantiert(?:er|e)?\s+(?:erfolg|ergebnisse?|abnehmen)\b"),
    ("health_claim", rf"\b(?:cures?|cured|curing|heals?|healed|treats?|prevents?|reverses?|eliminates?|fights?)\s+"
     rf"(?:\w+\s+){{0,2}}?{_DISEASES}\b|\bmiracle\s+(?:cure|pill|drug)\b|\bheilt\s+(?:\w+\s+){{0,2}}?{_DISEASES}\b"),
    ("clinically_proven", r"\b(?:clinically|scientifically|medically)\s+proven\b|\bklinisch\s+(?:erwiesen|getestet)"),
    ("risk_free", r"\brisk[\s-]free\b|\bzero\s+risk\b|\bno\s+risk\s+(?:at\s+all|whatsoever)?\b|\bcan'?t\s+lose\b|"
     r"\brisikofrei\b|\bohne\s+(?:jedes\s+)?risiko\b"),
    ("absolute_safety", r"\b100\s?%\s+(?:safe|natural|effective|secure|guaranteed|sicher|wirksam)\b|\bno\s+side\s+"
     r"effects\b|\bcompletely\s+(?:safe|harmless)\b|\bkeine\s+nebenwirkungen\b"),
    ("superlative", r"(?<!\w)#\s?1\b|\bnumber\s+one\b|\bno\.\s?1\b|\bnr\.\s?1\b|\bbest\s+(?:\w+\s+){0,2}?in\s+the\s+"
     r"(?:world|country|industry|market|universe|galaxy)\b|\bworld'?s\s+(?:best|leading|first|finest|most\s+\w+)\b|"
     r"\bunbeatable\b|\bunmatched\b|\bbeste[nr]?\s+(?:\w+\s+){0,2}?der\s+welt\b"),
    ("income_promise", r"\b(?:earn|make|verdiene)\s+(?:up\s+to\s+)?[$€£]?\s?\d[\d,.]*\s?(?:k|K|dollars|euros?|€|\$)?"
     r"\s+(?:a|per|every|each|pro|im|in\s+the\s+first)\s+(?:day|week|month|hour|tag|woche|monat|stunde)\b|"
     r"\bget[\s-]rich[\s-]quick\b|\bguaranteed\s+(?:income|returns?|profits?)\b|\bdouble\s+your\s+(?:money|income|"
     r"investment)\b|\bfinancial\s+freedom\s+(?:in|within)\b|\bquit\s+your\s+(?:day\s+)?job\b"),
    ("urgency", r"\bact\s+now\b|\blimited\s+time\s+only\b|\bonly\s+\d{1,3}\s+left\b|\boffer\s+ends\s+(?:today|"
     r"tonight|soon|at\s+midnight)\b|\blast\s+chance\b|\bhurry\b|\bdon'?t\s+miss\s+out\b|\bexpires\s+(?:today|"
     r"tonight|in\s+\d{1,3}\s+(?:hours|minutes))\b|\bwhile\s+supplies\s+last\b|\bonly\s+today\b|\bnur\s+heute\b|"
     r"\bletzte\s+chance\b|\bsolange\s+der\s+vorrat\s+reicht\b"),
)  # fmt: skip
# Lower-case substrings one of which a text must contain for the kind's pattern to run (a fast C-level pre-check).
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "guarantee": ("guarant", "garantiert"),
    "health_claim": ("cur", "heal", "treat", "prevent", "revers", "eliminat", "fight", "miracle", "heilt"),
    "clinically_proven": ("proven", "klinisch"),
    "risk_free": ("risk", "lose", "risiko"),
    "absolute_safety": ("100", "side effect", "completely", "nebenwirkung"),
    "superlative": ("#", "number one", "no.", "nr.", "best", "world", "unbeatable", "unmatched"),
    "income_promise": ("earn", "make", "verdiene", "rich", "guaranteed", "double", "freedom", "quit"),
    "urgency": ("act now", "limited", "left", "offer ends", "last chance", "hurry", "miss out", "expires", "supplies",
                "only today", "nur heute", "letzte", "vorrat"),
}  # fmt: skip
_NEEDS_PROOF = frozenset({"superlative", "clinically_proven"})
_SENTENCE_END = re.compile(r"[.!?\n](?:\s|$)")
_CITATION = re.compile(r"(?:\[\d{1,3}\]|\*|†|¹|²|³|\(\s*(?:source|see|quelle)\b|,?\s*according\s+to\b|\s*laut\b)",
                       re.IGNORECASE)  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """One claim found in a text."""

    kind: str
    start: int
    end: int
    text: str
    substantiated: bool = False

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"kind": self.kind, "start": self.start, "end": self.end, "text": self.text,
                "substantiated": self.substantiated}  # fmt: skip


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((kind, re.compile(p, re.IGNORECASE)) for kind, p in CLAIM_PATTERNS)


def _cited(text: str, end: int) -> bool:
    """Whether a citation marker follows within the rest of the sentence (at most 80 characters)."""
    window = _SENTENCE_END.split(text[end : end + 80], maxsplit=1)[0]
    return _CITATION.search(window) is not None


def find_claims(text: str) -> list[Claim]:
    """Marketing claims in ``text`` with their spans, in order of position."""
    lowered = text.lower()
    claims = []
    for kind, pattern in _patterns():
        if not any(t in lowered for t in _TRIGGERS[kind]):
            continue
        for m in pattern.finditer(text):
            cited = kind in _NEEDS_PROOF and _cited(text, m.end())
            claims.append(Claim(kind, m.start(), m.end(), m.group(0), cited))
    return sorted(claims, key=lambda c: c.start)


class MarketingClaimsEvaluator:
    """Unsubstantiated claims in marketing copy. value = 1 - 0.25 per unsubstantiated claim; fails on any."""

    name = "marketing_claims"
    version = "1"

    def __init__(self, allow: Sequence[str] = ()) -> None:
        unknown = sorted(set(allow) - {kind for kind, _ in CLAIM_PATTERNS})
        if unknown:
            raise ValueError(f"unknown claim kinds {unknown}; known: {[k for k, _ in CLAIM_PATTERNS]}")
        self.allow = frozenset(allow)

    def score(self, sample: Sample) -> Score:
        """Score one sample."""
        claims = [c for c in find_claims(sample.output) if c.kind not in self.allow]
        bad = [c for c in claims if not c.substantiated]
        reason = "; ".join(f"{c.kind}: {c.text!r}" for c in bad[:5]) or "no unsubstantiated claims"
        details = {"claims": [c.to_dict() for c in claims], "unsubstantiated": len(bad)}
        return Score(self.name, max(0.0, 1.0 - 0.25 * len(bad)), not bad, None, reason, details, self.version)
