"""The plan of a run: every prompt version x model x case x repeat expanded into slots, checked before anything runs.

    plan = build_plan(suite, config=config, options=options)
    console.print(plan.table())          # the matrix, with the estimated cost
    plan.slots[0].key                    # ("trail-shoes", "marketing/ad_copy@1.1.0", "hf:smollm2-135m-instruct", 0)

Every case's variables are validated against every prompt up front, so a missing variable is reported with the
case, its file and line, the prompt and the variable, before a single model call.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigc_app.runner.cases import Case, filter_cases, resolve_cases
from aigc_app.runner.errors import CostLimitExceeded, SuiteError
from aigc_app.runner.models import ModelChoice, best_available_model, check_model_id
from aigc_app.runner.spec import EvalSuite

if TYPE_CHECKING:
    from rich.table import Table

    from aigc_app.runner.execute import RunOptions
    from chains.config import ModelsConfig
    from evaluators.suite import Suite
    from prompts import Prompt

__all__ = ["Plan", "Slot", "build_plan", "estimate_tokens"]

_PARAM_KEYS = ("temperature", "top_p", "max_tokens", "stop")


@dataclass(frozen=True)
class Slot:
    """One generation to make: a case rendered by one prompt version, sent to one model, as repeat ``sample_index``."""

    case: Case
    prompt: Prompt
    model: str
    sample_index: int
    messages: tuple[Mapping[str, str], ...]
    inputs: Mapping[str, Any]
    params: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str, str, int]:
        """``(case_id, prompt_ref, model, sample_index)``: what the store's ``done_slots`` holds."""
        return (self.case.id, self.prompt.ref, self.model, self.sample_index)


@dataclass
class Plan:
    """What a run will do, and what it is estimated to cost."""

    suite: EvalSuite
    prompts: list[Prompt]
    models: list[str]
    cases: list[Case]
    repeat: int
    slots: list[Slot]
    evaluators: Suite
    scorings: int
    costs: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def scores(self) -> int:
        """Scores to compute: per generation, each evaluator that applies to its prompt's task, per scoring."""
        per_task = {p.ref: sum(_applies(e, p.meta.task) for e, _ in self.evaluators.entries) for p in self.prompts}
        return sum(per_task[s.prompt.ref] for s in self.slots) * self.scorings

    @property
    def estimated_cost(self) -> float | None:
        """USD for the priced models (None when no model has a price)."""
        known = [c for c in self.costs.values() if c is not None]
        return sum(known) if known else None

    def table(self) -> Table:
        """The matrix as a two-column table that fits 80 columns."""
        from rich import box
        from rich.table import Table

        title = f"eval plan: {self.suite.name}"
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_header=False)
        table.add_column("what", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_row("prompts", "\n".join(p.ref for p in self.prompts))
        table.add_row("models", "\n".join(self.models))
        table.add_row("cases", str(len(self.cases)))
        table.add_row("repeats", str(self.repeat))
        table.add_row(
            "generations",
            f"{len(self.slots)} = {len(self.prompts)} x {len(self.models)} x {len(self.cases)} x {self.repeat}",
        )
        names = ", ".join(dict.fromkeys(e.evaluator for e, _ in self.evaluators.entries))
        table.add_row("evaluators", f"{self.evaluators.name}: {names}")
        rescored = f" ({self.scorings} scorings each)" if self.scorings > 1 else ""
        table.add_row("scores", f"{self.scores}{rescored}")
        table.add_row("max tokens", ", ".join(f"{p.ref}: {_max_tokens(self, p)}" for p in self.prompts))
        table.add_row("est. cost", "\n".join(f"{m}: {_cost_text(m, self.costs.get(m))}" for m in self.models))
        return table


def build_plan(suite: EvalSuite, *, config: ModelsConfig, options: RunOptions) -> Plan:
    """Resolve prompts, models, cases and evaluators; render every case with every prompt; expand the slots."""
    from prompts import PromptRegistry

    registry = PromptRegistry(list(options.prompts_dirs))
    prompts = [_prompt(registry, suite, i, ref) for i, ref in enumerate(suite.prompts)]
    models, notes = _models(suite, config, options)
    cases = filter_cases(resolve_cases(suite), options.filter)
    if not cases:
        raise SuiteError(f"{suite.where('cases')}: no case matches --filter {' '.join(options.filter)}")
    _check_unknown_vars(suite, cases, prompts)
    evaluators = _evaluators(suite, config)
    repeat = options.repeat or suite.repeat
    slots = []
    for prompt in prompts:
        params = _params(suite, prompt, options)
        for case in cases:
            inputs, messages = _render(prompt, case)
            for model in models:
                for index in range(repeat):
                    slots.append(Slot(case, prompt, model, index, messages, inputs, params))
    plan = Plan(suite, prompts, models, cases, repeat, slots, evaluators, max(1, suite.rescore), notes=notes)
    plan.costs = {m: _estimate_cost(config, m, [s for s in slots if s.model == m]) for m in models}
    if options.max_cost is not None and (plan.estimated_cost or 0.0) > options.max_cost:
        raise CostLimitExceeded(
            f"the run is estimated to cost ${plan.estimated_cost:.4f}, over --max-cost ${options.max_cost:.4f}; "
            f"narrow it with --filter or --model, lower --max-tokens, or raise --max-cost"
        )
    return plan


def estimate_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """About four characters a token plus a few per message (no tokenizer download)."""
    return sum(len(m["content"]) // 4 + 4 for m in messages)


# -- pieces -------------------------------------------------------------------------------------------------------


def _prompt(registry: Any, suite: EvalSuite, index: int, ref: str) -> Prompt:
    from prompts import PromptError

    try:
        return registry.get(ref)
    except PromptError as exc:
        raise SuiteError(f"{suite.where('prompts', index)}: prompts[{index}]: {exc}") from None


def _models(suite: EvalSuite, config: ModelsConfig, options: RunOptions) -> tuple[list[str], list[str]]:
    from chains.registry import ModelRegistry

    providers = ModelRegistry().providers
    wanted = list(options.models) or list(suite.models)
    models, notes = [], []
    choice: ModelChoice | None = None
    for index, model in enumerate(wanted):
        if model == "auto":
            choice = choice or best_available_model(config)
            model = choice.model_id
            if choice.note:
                notes.append(choice.note)
        else:
            where = "--model" if options.models else f"{suite.where('models', index)}: models[{index}]"
            check_model_id(model, providers, where)
        if model not in models:
            models.append(model)
    return models, notes


def _check_unknown_vars(suite: EvalSuite, cases: list[Case], prompts: list[Prompt]) -> None:
    declared = {name for p in prompts for name in p.meta.inputs}
    for case in cases:
        for name in case.vars:
            if name not in declared:
                close = difflib.get_close_matches(name, sorted(declared), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                refs = ", ".join(p.ref for p in prompts)
                raise SuiteError(
                    f"{case.origin}: case {case.id!r}: variable {name!r} is not an input of any prompt of the suite"
                    f"{hint} (inputs of {refs}: {', '.join(sorted(declared))})"
                )


def _render(prompt: Prompt, case: Case) -> tuple[dict[str, Any], tuple[Mapping[str, str], ...]]:
    from prompts import PromptError

    values = {k: v for k, v in case.vars.items() if k in prompt.meta.inputs}
    try:
        inputs = prompt.validate_inputs(values)
        messages = tuple({"role": m.role, "content": m.content} for m in prompt.render(**values))
    except PromptError as exc:
        raise SuiteError(f"{case.origin}: case {case.id!r}: prompt {prompt.ref}: {exc}") from None
    return inputs, messages


def _params(suite: EvalSuite, prompt: Prompt, options: RunOptions) -> dict[str, Any]:
    defaults = prompt.meta.model.model_dump(include=set(_PARAM_KEYS))
    overrides = suite.params.model_dump(exclude_none=True)
    flags = {"max_tokens": options.max_tokens, "temperature": options.temperature}
    merged = {**defaults, **overrides, **{k: v for k, v in flags.items() if v is not None}}
    return {k: v for k, v in merged.items() if v is not None}


def _evaluators(suite: EvalSuite, config: ModelsConfig) -> Suite:
    from evaluators import errors
    from evaluators.registry import EvaluatorRegistry
    from evaluators.suite import Suite, SuiteSpec, load_suite

    registry = EvaluatorRegistry(models_config=config)
    if suite.evaluators:
        spec = SuiteSpec(name=f"{suite.name} (inline)", evaluators=suite.evaluators)
        try:
            return Suite(spec, registry, where=lambda i: f"{suite.where('evaluators', i)}: evaluators[{i}]: ")
        except errors.EvaluatorError as exc:
            raise SuiteError(str(exc)) from None
    name = suite.evaluator_suite or "offline"
    local = suite.base_dir / name
    try:
        return load_suite(local if Path(name).suffix and local.is_file() else name, registry)
    except errors.EvaluatorError as exc:
        raise SuiteError(f"{suite.where('evaluators')}: evaluators: {exc}") from None


def _applies(entry: Any, task: str | None) -> bool:
    return entry.tasks is None or task in entry.tasks


def _max_tokens(plan: Plan, prompt: Prompt) -> str:
    slot = next((s for s in plan.slots if s.prompt is prompt), None)
    return str(slot.params.get("max_tokens", "model default")) if slot else "-"


def _estimate_cost(config: ModelsConfig, model: str, slots: Sequence[Slot]) -> float | None:
    price = config.router.prices.get(model)
    if model.startswith("hf:"):
        return 0.0
    if price is None:
        return None
    tokens_in = sum(estimate_tokens(s.messages) for s in slots)
    tokens_out = sum(int(s.params.get("max_tokens") or 512) for s in slots)
    return (tokens_in * price.input + tokens_out * price.output) / 1e6


def _cost_text(model: str, cost: float | None) -> str:
    if model.startswith("hf:"):
        return "free (local)"
    if cost is None:
        return "unknown (no price in the config: models.router.prices)"
    return f"at most ${cost:.4f}"
