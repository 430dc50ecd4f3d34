"""Build the unigram table SLOR needs for a model's tokenizer, from wordfreq's English word frequencies.

    pip install -c constraints.txt wordfreq     # only to build; scoring reads the shipped .npz
    python -m evaluators.fluency.build_unigram                   # the cached SmolLM2 -> data/unigram_smollm2.npz
    python -m evaluators.fluency.build_unigram --model PATH --out TABLE.npz

wordfreq (Robyn Speer; code Apache-2.0, word data CC BY-SA 4.0) is read offline from its own package. The table
is a derived work of that data and carries the attribution in its metadata and in ``SLOR.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evaluators.fluency.unigram import build_table, save_table

__all__ = ["DEFAULT_TABLE", "build", "main"]

DEFAULT_TABLE = Path(__file__).with_name("data") / "unigram_smollm2.npz"
TOP_WORDS = 100_000


def build(model: str | Path, out: Path, top: int = TOP_WORDS) -> dict:
    """Build and write the table for ``model``'s tokenizer; return its metadata."""
    from importlib import metadata

    import wordfreq
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    words = wordfreq.top_n_list("en", top, wordlist="large")
    pairs = [(w, wordfreq.word_frequency(w, "en", wordlist="large")) for w in words]
    logp, meta = build_table(
        tokenizer,
        pairs,
        source=f"wordfreq {metadata.version('wordfreq')} en 'large', top {top}",
        attribution="word frequencies from wordfreq by Robyn Speer, data CC BY-SA 4.0",
        model=Path(str(model)).name,
    )
    save_table(out, logp, meta)
    return meta


def main(argv: list[str] | None = None) -> None:
    """Command line: build a table (default: for the cached SmolLM2, into the shipped location)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder or hub id (default: the cached SmolLM2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--top", type=int, default=TOP_WORDS, help="how many of the most frequent words to use")
    args = parser.parse_args(argv)
    model = args.model
    if model is None:
        from chains.model_store import cached_path

        model = cached_path("smollm2-135m-instruct")
        if model is None:
            raise SystemExit("SmolLM2 is not in the model cache: run `aigc models pull smollm2` or pass --model")
    meta = build(model, args.out, args.top)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB): {meta['source']}, vocabulary {meta['vocab_hash']}")


if __name__ == "__main__":
    main()
