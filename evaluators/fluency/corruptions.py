"""Synthetic grammatical corruptions of fluent sentences: the negative examples the acceptability scorer learns from.

Each corruption takes word tokens and a ``random.Random`` and returns new tokens, or None when it does not apply.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from evaluators.fluency.text import detokenize, word_tokens

__all__ = ["CORRUPTIONS", "corrupt"]

Corruption = Callable[[list[str], random.Random], list[str] | None]

_PAIRS = (
    ("is", "are"),
    ("was", "were"),
    ("has", "have"),
    ("does", "do"),
    ("this", "these"),
    ("that", "those"),
    ("much", "many"),
    ("he", "him"),
    ("she", "her"),
    ("they", "them"),
    ("we", "us"),
    ("i", "me"),
    ("who", "whom"),
    ("a", "an"),
    ("its", "it's"),
    ("their", "there"),
    ("than", "then"),
    ("isn't", "aren't"),
    ("doesn't", "don't"),
    ("wasn't", "weren't"),
    ("hasn't", "haven't"),
    ("each", "all"),
    ("every", "all"),
    ("one", "ones"),
)
_FUNCTION_CLASSES = (
    ("in", "on", "at", "of", "to", "for", "with", "by", "from", "into", "about", "over", "under", "than"),
    ("the", "a", "an", "this", "that", "some", "every", "each", "any", "no", "its", "their"),
    ("and", "or", "but", "because", "although", "if", "so", "that", "which", "who", "when", "while"),
    ("can", "will", "must", "should", "may", "might", "would", "could", "to", "not"),
)
_FUNCTION_WORDS = sorted({w for group in _FUNCTION_CLASSES for w in group})
_VERB_FORMS = (
    ("be", "being", "been", "was", "is"),
    ("go", "went", "gone", "going", "goes"),
    ("take", "took", "taken", "taking", "takes"),
    ("give", "gave", "given", "giving", "gives"),
    ("see", "saw", "seen", "seeing", "sees"),
    ("write", "wrote", "written", "writing", "writes"),
    ("make", "made", "making", "makes"),
    ("get", "got", "gotten", "getting", "gets"),
    ("know", "knew", "known", "knowing", "knows"),
    ("come", "came", "coming", "comes"),
    ("run", "ran", "running", "runs"),
    ("do", "did", "done", "doing", "does"),
    ("have", "had", "having", "has"),
    ("find", "found", "finding", "finds"),
    ("begin", "began", "begun", "beginning", "begins"),
    ("choose", "chose", "chosen", "choosing", "chooses"),
    ("eat", "ate", "eaten", "eating", "eats"),
    ("buy", "bought", "buying", "buys"),
    ("say", "said", "saying", "says"),
    ("tell", "told", "telling", "tells"),
)
_FORM_OF = {form: group for group in _VERB_FORMS for form in group}


def _swap_adjacent(tokens: list[str], rng: random.Random) -> list[str] | None:
    """Two neighbouring words change places."""
    spots = [i for i in range(len(tokens) - 1) if tokens[i].isalpha() and tokens[i + 1].isalpha()]
    if not spots:
        return None
    i = rng.choice(spots)
    return [*tokens[:i], tokens[i + 1], tokens[i], *tokens[i + 2 :]]


def _move_word(tokens: list[str], rng: random.Random) -> list[str] | None:
    """One word moves two to five places away."""
    if len(tokens) < 5:
        return None
    i = rng.randrange(len(tokens) - 1)
    word, rest = tokens[i], tokens[:i] + tokens[i + 1 :]
    j = min(max(0, i + rng.choice((-1, 1)) * rng.randint(2, 5)), len(rest) - 1)
    return [*rest[:j], word, *rest[j:]]


def _delete_word(tokens: list[str], rng: random.Random) -> list[str] | None:
    """A word, usually a function word or a verb, disappears."""
    spots = [i for i, t in enumerate(tokens) if t.lower() in _FUNCTION_WORDS or t.lower() in _FORM_OF]
    spots = spots or [i for i, t in enumerate(tokens) if t.isalpha()]
    if len(tokens) < 4 or not spots:
        return None
    i = rng.choice(spots)
    return tokens[:i] + tokens[i + 1 :]


def _duplicate(tokens: list[str], rng: random.Random) -> list[str] | None:
    """A word or a two-word phrase is repeated."""
    i = rng.randrange(len(tokens) - 1)
    span = rng.choice((1, 1, 2))
    return tokens[: i + span] + tokens[i : i + span] + tokens[i + span :]


def _agreement(tokens: list[str], rng: random.Random) -> list[str] | None:
    """A word swaps with its partner of the other number or case (is/are, he/him, this/these, a/an)."""
    partner = {a: b for a, b in _PAIRS} | {b: a for a, b in _PAIRS}
    spots = [i for i, t in enumerate(tokens) if t.lower() in partner]
    if not spots:
        return _toggle_s(tokens, rng)
    i = rng.choice(spots)
    word = partner[tokens[i].lower()]
    return [*tokens[:i], word.capitalize() if tokens[i][0].isupper() else word, *tokens[i + 1 :]]


def _toggle_s(tokens: list[str], rng: random.Random) -> list[str] | None:
    """A noun or verb gains or loses a final -s."""
    spots = [i for i, t in enumerate(tokens) if t.isalpha() and len(t) > 3 and not t.endswith("ss")]
    if not spots:
        return None
    i = rng.choice(spots)
    word = tokens[i][:-1] if tokens[i].endswith("s") else tokens[i] + "s"
    return [*tokens[:i], word, *tokens[i + 1 :]]


def _verb_form(tokens: list[str], rng: random.Random) -> list[str] | None:
    """A verb takes a wrong form (took -> taken, writes -> writing), or -ing / -ed endings are swapped."""
    spots = [i for i, t in enumerate(tokens) if t.lower() in _FORM_OF]
    if spots:
        i = rng.choice(spots)
        word = rng.choice([f for f in _FORM_OF[tokens[i].lower()] if f != tokens[i].lower()])
        return [*tokens[:i], word, *tokens[i + 1 :]]
    spots = [i for i, t in enumerate(tokens) if len(t) > 5 and t.endswith(("ing", "ed", "es"))]
    if not spots:
        return None
    i = rng.choice(spots)
    stem = tokens[i][:-3] if tokens[i].endswith("ing") else tokens[i][:-2]
    return [*tokens[:i], stem + rng.choice(("ing", "ed", "s", "")), *tokens[i + 1 :]]


def _function_word(tokens: list[str], rng: random.Random) -> list[str] | None:
    """A function word is replaced by another of its class, or a stray one is inserted."""
    spots = [i for i, t in enumerate(tokens) if any(t.lower() in group for group in _FUNCTION_CLASSES)]
    if not spots or rng.random() < 0.3:
        i = rng.randrange(1, len(tokens))
        return [*tokens[:i], rng.choice(_FUNCTION_WORDS), *tokens[i:]]
    i = rng.choice(spots)
    group = next(g for g in _FUNCTION_CLASSES if tokens[i].lower() in g)
    return [*tokens[:i], rng.choice([w for w in group if w != tokens[i].lower()]), *tokens[i + 1 :]]


def _truncate(tokens: list[str], rng: random.Random) -> list[str] | None:
    """The sentence stops early: anywhere without its full stop, or after a function word with one."""
    if len(tokens) < 6:
        return None
    dangling = [i + 1 for i in range(2, len(tokens) - 2) if tokens[i].lower() in _FUNCTION_WORDS]
    if dangling and rng.random() < 0.5:
        return [*tokens[: rng.choice(dangling)], "."]
    return tokens[: rng.randint(max(2, len(tokens) // 3), len(tokens) - 2)]


def _shuffle(tokens: list[str], rng: random.Random) -> list[str] | None:
    """Words are shuffled: all of them, or a window of three to five."""
    body, end = (tokens[:-1], tokens[-1:]) if tokens[-1] in ".!?" else (tokens, [])
    if len(body) < 4:
        return None
    width = len(body) if rng.random() < 0.4 else rng.randint(3, min(5, len(body)))
    i = rng.randrange(len(body) - width + 1)
    window = body[i : i + width]
    rng.shuffle(window)
    return [*body[:i], *window, *body[i + width :], *end]


CORRUPTIONS: dict[str, Corruption] = {
    "swap": _swap_adjacent,
    "move": _move_word,
    "delete": _delete_word,
    "duplicate": _duplicate,
    "agreement": _agreement,
    "verb_form": _verb_form,
    "function_word": _function_word,
    "truncate": _truncate,
    "shuffle": _shuffle,
}


def corrupt(sentence: str, rng: random.Random, kind: str | None = None) -> tuple[str, str] | None:
    """A corrupted copy of ``sentence`` and the corruption's name (random kind unless given); None if none applies."""
    tokens = word_tokens(sentence)
    if len(tokens) < 3:
        return None
    kinds = [kind] if kind else rng.sample(sorted(CORRUPTIONS), len(CORRUPTIONS))
    for name in kinds:
        changed = CORRUPTIONS[name](list(tokens), rng)
        if changed and [t.lower() for t in changed] != [t.lower() for t in tokens]:
            return detokenize(changed), name
    return None
