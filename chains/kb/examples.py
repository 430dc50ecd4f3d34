"""Few-shot examples chosen by similarity from a Chroma collection: a LangChain ``BaseExampleSelector``.

Examples are records: lines of an ingested JSONL file, rows of a CSV, or dicts given to ``add_example``. The
selector matches the input variables against the examples' input fields and returns the stored records; other
chunks of the collection (Markdown, text, PDF passages) are never chosen. Records shaped ``{"input": ...,
"output": ...}`` (what ``chains.chain`` turns into few-shot turns) are matched on ``input``.

    selector = kb.example_selector(k=3, input_keys=["product"])
    selector.add_example({"product": "trail shoe", "ad": "Grip that never quits."})
    selector.select_examples({"product": "running shoe"})   # -> [{"product": "trail shoe", "ad": ...}, ...]
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.example_selectors import BaseExampleSelector

from chains.kb.ingest import RECORD_KEY, Chunk, chunk_id

__all__ = ["KBExampleSelector"]

_SOURCE = "aigc:examples"  # the source key of examples added one by one


class KBExampleSelector(BaseExampleSelector):
    """Select the ``k`` stored examples most similar to the input variables."""

    def __init__(self, kb: Any, k: int = 3, input_keys: list[str] | None = None) -> None:
        self.kb = kb
        self.k = k
        self.input_keys = input_keys

    def _text(self, variables: dict[str, Any]) -> str:
        """What is embedded: the input keys' values (default: ``input`` when there is one, else every key)."""
        keys = self.input_keys or (["input"] if "input" in variables else sorted(variables))
        if len(keys) == 1:
            return str(variables.get(keys[0], ""))
        return "\n".join(f"{key}: {variables[key]}" for key in keys if key in variables)

    def add_example(self, example: dict[str, str]) -> str:
        """Store one example; its id (the same example added twice is stored once)."""
        text = self._text(example)
        record = json.dumps(example, ensure_ascii=False, sort_keys=True, default=str)
        cid = chunk_id(_SOURCE, 0, record)
        meta = {"source": _SOURCE, "title": "example", "chunk": 0, "file_hash": cid, "record": True, RECORD_KEY: record}
        self.kb.add_chunks([Chunk(cid, text, meta)])
        return cid

    def select_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
        """The stored examples nearest ``input_variables``, most similar first."""
        passages = self.kb.search(self._text(input_variables), k=self.k, where={"record": True})
        return [_record(p) for p in passages]


def _record(passage: Any) -> dict[str, Any]:
    raw = passage.metadata.get(RECORD_KEY)
    if isinstance(raw, str):
        try:
            record = json.loads(raw)
            if isinstance(record, dict):
                return record
        except json.JSONDecodeError:
            pass
    return {"text": passage.text, "source": passage.source}
