"""Build a tiny causal language model offline: a real transformers model with random weights.

The tokenizer is a byte-level BPE trained with ``tokenizers`` on a small built-in corpus, the chat template is
Jinja, and the model is a LlamaConfig of a few hundred thousand parameters. Everything is saved with
``save_pretrained`` so that it loads back with ``from_pretrained`` like any hub model, without a network.

    python -m chains.testing.tiny_model ./tiny-llm
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

__all__ = ["CHAT_TEMPLATE", "build_tiny_model"]

SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}{{ message['content'] }}{{ '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
_WORDS = (  # noqa: SIM905 - a word list reads better as one string
    "the a an our your new fresh quick bright calm bold clear simple smart green local daily product brand team "
    "customer story launch guide lesson quiz student teacher reader writer market price offer value quality "
    "design coffee shoes jacket garden city river morning evening today tomorrow learn write read build share "
    "grow help make find choose start improve explore discover enjoy create plan test check score answer "
    "question because and but so with for from into about over under after before when where why how what "
    "is are was were be been has have had will can should must may it they we you he she this that these those "
    "über café naïve größe"
).split()


def _corpus(lines: int = 600) -> list[str]:
    """Deterministic pseudo-sentences; punctuation and digits so the BPE learns them too."""
    words = itertools.cycle(_WORDS)
    out = []
    for i in range(lines):
        n = 5 + (i * 7) % 11
        sentence = " ".join(next(words) for _ in range(n))
        out.append(f'{sentence.capitalize()}{".!?,;:"[i % 6]} {i % 97} {{"k": [1, 2]}}')
    return out


def build_tiny_model(
    path: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 512,
    hidden_size: int = 128,
    layers: int = 2,
    context: int = 1024,
) -> Path:
    """Write a tokenizer, chat template and random-weight Llama model to ``path``; return the path."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    # The alphabet is what the corpus uses (ASCII plus a few accented letters), so that random weights emit
    # readable word pieces rather than stray UTF-8 bytes.
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        padding_side="left",
        model_max_length=context,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    from chains.hf_engine import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(path)
    return path


def main(argv: list[str]) -> int:
    """Build the model into the folder named on the command line; a core install gets one line, not a traceback."""
    try:
        target = build_tiny_model(argv[0] if argv else "tiny-llm")
    except ImportError as exc:
        print(
            f"python -m chains.testing.tiny_model needs the local extra ({exc}): pip install 'aigc[local]'",
            file=sys.stderr,
        )
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
