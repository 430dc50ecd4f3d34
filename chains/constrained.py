"""Constrained decoding: a JSON schema compiled into a grammar that masks, at every step, the tokens that would
take a local model's answer outside the schema. Even a 135M-parameter model then returns JSON that parses, with
the keys, types, enums, lengths and item counts the schema asks for.

:class:`GrammarCompiler` turns a schema into a :class:`Grammar` for one tokenizer (cached per schema); each row of
a batch that decodes under it gets its own :class:`RowConstraint` (``mask`` the logits, ``advance`` by the chosen
token, ``is_done`` once the value is complete). Rows without a grammar pay nothing.

The grammar engine is llguidance (MIT, the engine behind llama.cpp's and vLLM's JSON-schema modes), chosen over
the other two on PyPI after trying all three on our built-in schemas and SmolLM2's 49,152-token vocabulary:

- llguidance: a 7.6 MB abi3 wheel with no Python dependencies; masks are computed on the CPU, lazily, without a
  vocabulary-wide precompilation: a new matcher is ~1 ms, a copy of a compiled one ~7 us, a mask ~40-80 us per
  row and step (a SmolLM2 decode step is ~20 ms); it reads a Hugging Face fast tokenizer directly. Coverage:
  types, enum/const, anyOf/oneOf/allOf, $ref/$defs, string length, pattern and format, numeric bounds, item
  counts, additionalProperties. What a grammar cannot express it refuses by name ("Unimplemented keys: [...]").
- xgrammar (Apache-2.0): the fastest masks (~10 us), but on Linux x86_64 it requires triton (~1 GB installed)
  and apache-tvm-ffi besides torch, and it accepts ``if``/``then`` silently while ignoring them, so the quiz
  prompt's "multiple_choice has exactly 4 options" rule would be dropped without a word.
- lm-format-enforcer (MIT, pure Python): ~2-3 ms per token on this vocabulary and a ~3 s tokenizer scan; its
  transformers integration fails to import under transformers 5, and it rejects an ``enum`` without ``type``,
  which both built-in quiz schemas use.

Before compiling, the schema is rewritten for the grammar (the answer is still validated against the original
schema afterwards): ``if``/``then``/``else`` switching on one required enum property (the quiz prompt's
per-question-type rules) becomes the equivalent ``anyOf`` over that property's values; ``uniqueItems`` (which
pydantic emits for ``set`` fields, and no grammar can check) is dropped; and an object with ``properties`` that
says nothing about other keys (every pydantic model) is closed to them, as OpenAI's strict mode requires, since a
small model let loose on free-form extra keys rarely stops. Answers are written as ``json.dumps`` writes them
(``", "`` and ``": "``, no other whitespace): small models under a free-whitespace grammar tend to loop on blank
lines. A schema may override that, or opt into ignoring unimplemented keywords, with llguidance's own
``"x-guidance"`` key.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from chains.errors import InvalidRequest, ModelUnavailable

if TYPE_CHECKING:
    import torch

__all__ = ["Grammar", "GrammarCompiler", "RowConstraint", "schema_of_response_format"]

JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else")
# An object that says any of these about its other keys, or is composed, keeps its own rule for extra keys.
_OPEN_KEYS = {"additionalProperties", "patternProperties", "unevaluatedProperties", "allOf", "anyOf", "oneOf", "$ref"}


class RowConstraint:
    """The grammar state of one row: which tokens may come next, and whether the value is complete."""

    __slots__ = ("_eos_ids", "_matcher")

    def __init__(self, matcher: Any, eos_ids: list[int]) -> None:
        self._matcher = matcher
        self._eos_ids = eos_ids

    def mask(self, logits: torch.Tensor) -> None:
        """Set, in place, every logit the grammar forbids to -inf: also ids past the tokenizer's vocabulary (a
        model whose embedding is padded) and the special tokens other than end-of-sequence. When the grammar
        allows nothing (the tokenizer cannot spell what the schema requires), only end-of-sequence is left, so
        the row ends with what it has instead of sampling from nothing."""
        bits = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
        allowed = np.unpackbits(bits, bitorder="little")
        width = logits.shape[-1]
        forbidden = np.ones(width, dtype=bool)
        forbidden[: min(width, allowed.size)] = allowed[:width] == 0
        if forbidden.all():
            forbidden[[i for i in self._eos_ids if i < width]] = False
        if logits.device.type == "cpu":  # numpy: torch's threaded masked_fill stalls on a busy 2-core machine
            logits.numpy()[forbidden] = -np.inf
        else:
            import torch

            logits.masked_fill_(torch.from_numpy(forbidden).to(logits.device), float("-inf"))

    def advance(self, token: int) -> bool:
        """Consume the chosen token; False when the grammar refused it (the row should end)."""
        return bool(self._matcher.consume_token(token))

    def is_done(self) -> bool:
        """True when the value is complete (nothing but end-of-sequence may follow) or the matcher failed."""
        return bool(self._matcher.is_stopped())

    @property
    def error(self) -> str:
        """Why the matcher stopped in error, or ``""``."""
        return str(self._matcher.get_error())


class Grammar:
    """A JSON schema compiled for one tokenizer: immutable and shared by every row that decodes under it."""

    __slots__ = ("_compiled", "_eos_ids", "schema")

    def __init__(self, schema: dict[str, Any], compiled: Any, eos_ids: list[int]) -> None:
        self.schema = schema
        self._compiled = compiled
        self._eos_ids = eos_ids

    def start(self) -> RowConstraint:
        """A fresh constraint for one row, at the start of the value."""
        return RowConstraint(self._compiled.deep_copy(), self._eos_ids)

    def __repr__(self) -> str:
        return f"Grammar({self.schema.get('title') or 'schema'!r})"


class GrammarCompiler:
    """Compiles JSON schemas into grammars for one tokenizer; keeps the last ``cache_size`` of them.

    ``label`` names the model in errors (``hf:...``); ``eos_ids`` are the tokens that may end a complete value.
    """

    def __init__(self, tokenizer: Any, *, eos_ids: Iterable[int], label: str = "", cache_size: int = 64) -> None:
        self.tokenizer = tokenizer
        self.eos_ids = sorted(eos_ids)
        self.label = label
        self.cache_size = cache_size
        self._lltokenizer: Any = None
        self._cache: OrderedDict[str, Grammar] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, schema: dict[str, Any]) -> Grammar:
        """The grammar of ``schema``; a schema the grammar engine cannot enforce raises :class:`InvalidRequest`."""
        key = json.dumps(schema, sort_keys=True, default=str)
        with self._lock:
            if (hit := self._cache.get(key)) is not None:
                self._cache.move_to_end(key)
                return hit
            tokenizer = self._tokenizer()
        grammar = Grammar(schema, self._matcher(schema, tokenizer), self.eos_ids)
        with self._lock:
            self._cache[key] = grammar
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return grammar

    def _tokenizer(self) -> Any:
        if self._lltokenizer is None:
            try:
                import llguidance.hf
            except ImportError as exc:
                from chains.registry import local_extra_missing

                raise local_extra_missing(self.label or "constrained decoding", str(exc)) from None
            try:
                self._lltokenizer = llguidance.hf.from_tokenizer(self.tokenizer, eos_token=self.eos_ids)
            except ValueError as exc:  # a slow (Python) tokenizer
                raise ModelUnavailable(
                    f"{self.label}: constrained decoding needs a fast tokenizer (tokenizer.json): {exc}",
                    model=self.label or None,
                ) from None
        return self._lltokenizer

    def _matcher(self, schema: dict[str, Any], tokenizer: Any) -> Any:
        from llguidance import LLMatcher

        prepared = prepare_schema(schema)
        try:
            source = LLMatcher.grammar_from_json_schema(prepared, defaults=JSON_STYLE)
        except (ValueError, TypeError) as exc:
            raise self._refused(schema, str(exc)) from None
        failed, messages = LLMatcher.validate_grammar_with_warnings(source, tokenizer)
        if failed:
            raise self._refused(prepared, messages[0] if messages else "unknown error")
        return LLMatcher(tokenizer, source, log_level=0)

    def _refused(self, schema: dict[str, Any], problem: str) -> InvalidRequest:
        problem = " ".join(problem.split())
        keys = re.search(r"Unimplemented keys: (\[[^\]]*\])", problem)
        hint = "fix the schema"
        if keys:
            names = json.loads(keys.group(1))
            where = _find(schema, lambda node: any(k in node for k in names))
            problem = f"{problem}{f' at {where}' if where else ''}"
            hint = (
                'a grammar cannot express these keywords: remove them, or add "x-guidance": {"lenient": true} '
                "to the schema to decode with them ignored (the answer is still validated against the full schema)"
            )
        title = schema.get("title") or "the output schema"
        prefix = f"{self.label}: " if self.label else ""
        return InvalidRequest(
            f"{prefix}{title} cannot be enforced while decoding: {problem}; {hint}", model=self.label or None
        )


def schema_of_response_format(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema an OpenAI-style ``response_format`` asks for (None for free text).

    Accepts ``{"type": "json_schema", "json_schema": {"schema": {...}}}``, ``{"type": "json_object"}`` (any JSON
    object), ``{"type": "text"}`` and, as langchain-openai does, a pydantic class.
    """
    if response_format is None:
        return None
    if isinstance(response_format, type):
        from chains.structured import json_schema_of

        return json_schema_of(response_format)
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "text":
            return None
        if kind == "json_object":
            return {"type": "object"}
        spec = response_format.get("json_schema")
        if kind == "json_schema" and isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            return spec["schema"]
    raise ValueError(
        'response_format must be {"type": "json_schema", "json_schema": {"schema": {...}}}, '
        f'{{"type": "json_object"}}, {{"type": "text"}} or a pydantic class; got {str(response_format)[:200]}'
    )


def prepare_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` rewritten for the grammar: enum-switched ``if``/``then`` as ``anyOf``, no ``uniqueItems``, objects
    with listed properties closed to other keys."""
    return _rewrite(copy.deepcopy(schema))


def _rewrite(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {name: _rewrite(sub) for name, sub in node[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            node[key] = [_rewrite(sub) for sub in node[key]]
    for key in _SCHEMA_VALUES:
        if key in node:
            node[key] = _rewrite(node[key])
    node.pop("uniqueItems", None)
    if node.get("type") == "object" and "properties" in node and not _OPEN_KEYS & set(node):
        node["additionalProperties"] = False  # closed, as OpenAI's strict mode has it: no wandering extra keys
    return _lower_conditionals(node)


def _lower_conditionals(node: dict[str, Any]) -> dict[str, Any]:
    """``if {k: const v} then A else B`` (alone or in ``allOf``), where ``k`` is a required property with an
    ``enum``, is the same as ``anyOf`` over k's values, each branch holding the ``then``/``else`` parts it gets."""
    own = {k: node[k] for k in ("if", "then", "else") if k in node}
    rules = [c for c in node.get("allOf", []) if _is_conditional(c)] + ([own] if own else [])
    switches = {_switch(rule) for rule in rules}
    if not rules or len(switches) != 1 or None in switches:
        return node  # nothing to lower, or a form a grammar cannot take: left for the compiler to name
    (key,) = switches
    values = _enum_of(node, key)
    if values is None:
        return node
    branches = []
    for value in values:
        parts = [rule.get("then" if value in _if_values(rule, key) else "else") for rule in rules]
        branch: dict[str, Any] = {"properties": {key: {"const": value}}}
        if kept := [p for p in parts if p is not None]:
            branch["allOf"] = kept
        branches.append(branch)
    for k in own:
        del node[k]
    rest = [c for c in node.get("allOf", []) if not _is_conditional(c)]
    node.pop("allOf", None)
    node["allOf"] = [*rest, {"anyOf": branches}]
    return node


def _is_conditional(schema: Any) -> bool:
    return isinstance(schema, dict) and "if" in schema and set(schema) <= {"if", "then", "else"}


def _switch(rule: dict[str, Any]) -> str | None:
    """The property an ``if`` tests by const or enum (and nothing else), or None."""
    test = rule.get("if")
    if not isinstance(test, dict) or set(test) - {"properties", "required"}:
        return None
    props = test.get("properties")
    if not isinstance(props, dict) or len(props) != 1:
        return None
    ((key, check),) = props.items()
    if not isinstance(check, dict) or len(check) != 1 or not ({"const", "enum"} & set(check)):
        return None
    return key


def _if_values(rule: dict[str, Any], key: str) -> list[Any]:
    check = rule["if"]["properties"][key]
    return [check["const"]] if "const" in check else list(check["enum"])


def _enum_of(node: dict[str, Any], key: str) -> list[Any] | None:
    """The finite values of a required property (so that an ``if`` on it is never vacuously true)."""
    prop = node.get("properties", {}).get(key)
    if key not in node.get("required", []) or not isinstance(prop, dict):
        return None
    values = [prop["const"]] if "const" in prop else prop.get("enum")
    if not isinstance(values, list) or not all(isinstance(v, str | int | float | bool) for v in values):
        return None
    return values


def _find(node: Any, test: Callable[[dict[str, Any]], bool], path: str = "") -> str | None:
    """The JSON pointer of the first subschema that passes ``test`` (``#`` for the root)."""
    if not isinstance(node, dict):
        return None
    if test(node):
        return path or "#"
    for key in _SCHEMA_MAPS:
        for name, sub in (node.get(key) or {}).items() if isinstance(node.get(key), dict) else ():
            if found := _find(sub, test, f"{path}/{key}/{name}"):
                return found
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(node.get(key) or []) if isinstance(node.get(key), list) else ():
            if found := _find(sub, test, f"{path}/{key}/{i}"):
                return found
    for key in _SCHEMA_VALUES:
        if found := _find(node.get(key), test, f"{path}/{key}"):
            return found
    return None
