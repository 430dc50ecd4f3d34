"""Multi-step compositions of task chains, each step a named runnable that can run on its own model.

from chains import compose
campaign = compose.campaign(models={"draft": "hf:./models/smollm2", "critique": "openai:gpt-4o-mini"}, config=cfg)
ranked = campaign.invoke({"product_name": "Aurora", "audience": "runners", "brand_guide": "Calm, no hype."})

- ``campaign``: brief -> N ad variants (``draft``) -> self-critique against the brand guide (``critique``) ->
  variants ranked with reasons (``rank``).
- ``pack``: lesson plan (``lesson_plan``) -> quiz grounded in the plan (``quiz``) -> answer-key check (``check``).
- ``pipeline``: outline (``outline``) -> draft (``draft``) -> polish (``polish``).

``models`` maps a step name to a model id; steps not named use ``model``. Ids go through one router, built
from ``config`` (a :class:`~chains.config.ModelsConfig`) or extended from the Router passed as ``model``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from pydantic import BaseModel, Field, ValidationInfo, computed_field, model_validator

from chains.chain import ChainError, ModelLike, TextOutput, chain
from chains.config import ModelsConfig
from chains.registry import ModelRegistry
from chains.router import Router
from chains.tasks import TaskInput, exact_items, marketing, writing
from chains.tasks import education as edu
from chains.tasks.education import LessonPlan, Quiz
from chains.tasks.marketing import AdVariant
from prompts import PromptRegistry

__all__ = [
    "ANSWER_KEY_CHECK",
    "CHAINS",
    "COMPOSITIONS",
    "CRITIQUE",
    "DRAFT",
    "OUTLINE",
    "POLISH",
    "AnswerKeyCheck",
    "Campaign",
    "CampaignBrief",
    "Critique",
    "Draft",
    "EducationPack",
    "Outline",
    "PackBrief",
    "Polished",
    "RankedVariant",
    "UnknownChain",
    "WritingBrief",
    "WritingResult",
    "campaign",
    "get_chain",
    "pack",
    "pipeline",
]

CRITIQUE = "marketing/critique@^1"
ANSWER_KEY_CHECK = "education/answer_key_check@^1"
OUTLINE = "writing/outline@^1"
DRAFT = "writing/draft@^1"
POLISH = "writing/polish@^1"


def _inputs(info: ValidationInfo) -> dict[str, Any]:
    return (info.context or {}).get("inputs", {})


class _Steps:
    """Which model each step of a composition runs on: one router for every model id named."""

    def __init__(
        self,
        model: ModelLike,
        models: Mapping[str, ModelLike] | None,
        config: ModelsConfig | None,
        steps: tuple[str, ...],
    ) -> None:
        unknown = sorted(set(models or {}) - set(steps))
        if unknown:
            raise ChainError(f"unknown step {unknown[0]!r} in models=; this composition's steps are {list(steps)}")
        self.choice = {step: (models or {}).get(step, model) for step in steps}
        ids = list(dict.fromkeys(m for m in self.choice.values() if isinstance(m, str)))
        self.router = _router(model if isinstance(model, Router) else None, ids, config) if ids else None
        self.default = self.router if model is None or isinstance(model, str) else model

    def kwargs(self, step: str) -> dict[str, Any]:
        """``model=`` and ``route=`` for the chain of ``step``."""
        choice = self.choice[step]
        if isinstance(choice, str):
            return {"model": self.router, "route": choice}
        if choice is None and self.default is None:
            return {"model": None}
        return {"model": choice if isinstance(choice, BaseChatModel) else self.default}


def _router(base: Router | None, ids: list[str], config: ModelsConfig | None) -> Router:
    config = (config or ModelsConfig()).model_copy(deep=True)
    if base is None:
        config.router.default = ids[0]
        base = Router.from_config(config)
    registry = ModelRegistry()
    extra = {i: registry.create(i, config) for i in ids if i not in base.backends}
    if not extra:
        return base
    return Router(
        backends={**base.backends, **extra}, config=base.config, auto=base.auto, response_cache=base.response_cache
    )


def _step(name: str, key: str, runnable: Runnable, inputs: Callable[[dict[str, Any]], Any]) -> Runnable:
    """``state -> {**state, key: runnable(inputs(state))}``, traced as ``name``."""
    body = RunnableLambda(inputs, name=f"{name}.inputs") | runnable
    return RunnablePassthrough.assign(**{key: body}).with_config(run_name=name)


# -- marketing campaign -----------------------------------------------------------------------------------


class CampaignBrief(TaskInput):
    """An ad brief plus the brand guide the variants are critiqued against."""

    product_name: str
    audience: str
    brand_guide: str = Field(min_length=1)
    variants: int | None = Field(None, ge=1, le=10)
    platform: Literal["google_search", "meta", "linkedin", "x", "display"] | None = None
    value_proposition: str | None = None
    key_benefits: list[str] | None = None
    proof_points: list[str] | None = None
    offer: str | None = None
    tone: Literal["bold", "friendly", "professional", "playful"] | None = None


class Review(BaseModel):
    """The critique of one variant."""

    index: int = Field(ge=1)
    score: int = Field(ge=1, le=10)
    on_brand: bool
    issues: list[Annotated[str, Field(min_length=1, max_length=160)]] = Field(default_factory=list, max_length=5)
    reason: str = Field(min_length=1, max_length=300)


class Critique(BaseModel):
    """One review per variant, each index once."""

    reviews: list[Review] = Field(min_length=1)

    @classmethod
    def response_schema(cls, inputs: dict[str, Any]) -> dict[str, Any]:
        """The schema with one review per variant."""
        return exact_items(cls, "reviews", len(inputs.get("variants") or []) or None, high=10)

    @model_validator(mode="after")
    def _one_each(self, info: ValidationInfo) -> Critique:
        count = len(_inputs(info).get("variants") or self.reviews)
        if sorted(r.index for r in self.reviews) != list(range(1, count + 1)):
            raise ValueError(f"give exactly one review for each variant, indexes 1 to {count}, each once")
        return self


class RankedVariant(BaseModel):
    """A variant with its rank (1 is best), score, brand verdict, issues and the reason."""

    rank: int
    variant: AdVariant
    score: int
    on_brand: bool
    issues: list[str]
    reason: str


class Campaign(BaseModel):
    """Ranked variants: on-brand before off-brand, then by score."""

    ranked: list[RankedVariant]


def _variant_line(variant: AdVariant) -> str:
    return f"Angle: {variant.angle} | Headline: {variant.headline} | Body: {variant.body} | CTA: {variant.cta}"


def _rank(state: dict[str, Any]) -> Campaign:
    reviews = {r.index: r for r in state["critique"].reviews}
    rows = [(reviews[i], v) for i, v in enumerate(state["variants"], 1)]
    rows.sort(key=lambda rv: (not rv[0].on_brand, -rv[0].score, rv[0].index))
    return Campaign(
        ranked=[
            RankedVariant(rank=n, variant=v, score=r.score, on_brand=r.on_brand, issues=r.issues, reason=r.reason)
            for n, (r, v) in enumerate(rows, 1)
        ]
    )


def campaign(
    model: ModelLike = None,
    *,
    models: Mapping[str, ModelLike] | None = None,
    config: ModelsConfig | None = None,
    registry: PromptRegistry | None = None,
    ad_copy_ref: str = marketing.AD_COPY,
    critique_ref: str = CRITIQUE,
    **model_kwargs: Any,
) -> Runnable[CampaignBrief, Campaign]:
    """``CampaignBrief -> Campaign``: steps ``draft``, ``critique``, ``rank``.

    ``model_kwargs`` (``max_tokens``, ``temperature``, ...) apply to every step, over the prompts' defaults.
    """
    steps = _Steps(model, models, config, ("draft", "critique"))
    common = {"registry": registry or PromptRegistry(), "config": config, **model_kwargs}
    draft = marketing.ad_copy(ref=ad_copy_ref, **common, **steps.kwargs("draft"))
    critique = chain(critique_ref, output=Critique, **common, **steps.kwargs("critique"))
    brief = RunnableLambda(lambda v: {"brief": _brief(CampaignBrief, v)}, name="brief")
    return (
        brief
        | _step("draft", "variants", draft, lambda s: s["brief"].model_dump(exclude={"brand_guide"}, exclude_none=True))
        | _step(
            "critique",
            "critique",
            critique,
            lambda s: {
                "product_name": s["brief"].product_name,
                "audience": s["brief"].audience,
                "brand_guide": s["brief"].brand_guide,
                "variants": [_variant_line(v) for v in s["variants"]],
            },
        )
        | RunnableLambda(_rank, name="rank")
    ).with_config(run_name="marketing.campaign")


def _brief(model: type[TaskInput], value: Any) -> Any:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value.model_dump() if isinstance(value, BaseModel) else value)
    except ValueError as exc:
        raise ChainError(f"invalid input for {model.__name__}: {exc}") from None


# -- education pack ---------------------------------------------------------------------------------------


class PackBrief(edu.LessonPlanInput):
    """A lesson (every lesson-plan input) and the quiz that goes with it."""

    num_questions: int | None = Field(None, ge=1, le=20)
    difficulty: Literal["easy", "medium", "hard", "mixed"] | None = None
    question_types: list[Literal["multiple_choice", "short_answer", "true_false"]] | None = None


class KeyItem(BaseModel):
    """The check of one question's answer key."""

    index: int = Field(ge=1)
    correct: bool
    covered_by_plan: bool
    note: str = Field(min_length=1)


class AnswerKeyCheck(BaseModel):
    """One check per question, each index once."""

    items: list[KeyItem] = Field(min_length=1)

    @classmethod
    def response_schema(cls, inputs: dict[str, Any]) -> dict[str, Any]:
        """The schema with one check per question."""
        return exact_items(cls, "items", len(inputs.get("questions") or []) or None)

    @model_validator(mode="after")
    def _one_each(self, info: ValidationInfo) -> AnswerKeyCheck:
        count = len(_inputs(info).get("questions") or self.items)
        if sorted(i.index for i in self.items) != list(range(1, count + 1)):
            raise ValueError(f"check each question exactly once, indexes 1 to {count}")
        return self


class EducationPack(BaseModel):
    """The plan, the quiz and its answer-key check; ``consistent`` when every key is right and taught."""

    lesson_plan: LessonPlan
    quiz: Quiz
    check: AnswerKeyCheck

    @computed_field
    @property
    def consistent(self) -> bool:
        """Whether every keyed answer is correct and covered by the plan."""
        return all(i.correct and i.covered_by_plan for i in self.check.items)

    @computed_field
    @property
    def problems(self) -> list[str]:
        """The questions whose key is wrong or not taught, with the checker's note."""
        return [f"question {i.index}: {i.note}" for i in self.check.items if not (i.correct and i.covered_by_plan)]


_PLAN_FIELDS = set(edu.LessonPlanInput.model_fields)
_QUIZ_CONTEXT_CHARS = 8000  # education/quiz's context input caps at 8,000 characters


def _question_line(question: Any) -> str:
    choices = f" | Choices: {'; '.join(question.options)}" if question.options else ""
    return f"Q: {question.question}{choices} | Answer: {question.answer}"


def pack(
    model: ModelLike = None,
    *,
    models: Mapping[str, ModelLike] | None = None,
    config: ModelsConfig | None = None,
    registry: PromptRegistry | None = None,
    lesson_plan_ref: str = edu.LESSON_PLAN,
    quiz_ref: str = edu.QUIZ,
    check_ref: str = ANSWER_KEY_CHECK,
    **model_kwargs: Any,
) -> Runnable[PackBrief, EducationPack]:
    """``PackBrief -> EducationPack``: steps ``lesson_plan``, ``quiz`` (grounded in the plan), ``check``."""
    steps = _Steps(model, models, config, ("lesson_plan", "quiz", "check"))
    common = {"registry": registry or PromptRegistry(), "config": config, **model_kwargs}
    plan = edu.lesson_plan(ref=lesson_plan_ref, **common, **steps.kwargs("lesson_plan"))
    quiz = edu.quiz(ref=quiz_ref, **common, **steps.kwargs("quiz"))
    check = chain(check_ref, output=AnswerKeyCheck, **common, **steps.kwargs("check"))

    def quiz_inputs(state: dict[str, Any]) -> dict[str, Any]:
        brief = state["brief"]
        wanted = brief.model_dump(include={"num_questions", "difficulty", "question_types"}, exclude_none=True)
        context = state["lesson_plan"].text[:_QUIZ_CONTEXT_CHARS]
        return {"topic": brief.topic, "grade_level": brief.grade_level, "context": context, **wanted}

    def finish(state: dict[str, Any]) -> EducationPack:
        return EducationPack(lesson_plan=state["lesson_plan"], quiz=state["quiz"], check=state["check"])

    brief = RunnableLambda(lambda v: {"brief": _brief(PackBrief, v)}, name="brief")
    return (
        brief
        | _step(
            "lesson_plan", "lesson_plan", plan, lambda s: s["brief"].model_dump(include=_PLAN_FIELDS, exclude_none=True)
        )
        | _step("quiz", "quiz", quiz, quiz_inputs)
        | _step(
            "check",
            "check",
            check,
            lambda s: {
                "lesson_plan": s["lesson_plan"].text,
                "questions": [_question_line(q) for q in s["quiz"].questions],
            },
        )
        | RunnableLambda(finish, name="pack")
    ).with_config(run_name="education.pack")


# -- writing pipeline -------------------------------------------------------------------------------------


class WritingBrief(TaskInput):
    """What to write, for whom, and the house style of the final edit."""

    topic: str
    audience: str
    purpose: str | None = None
    key_points: list[str] | None = None
    sections: int | None = Field(None, ge=2, le=8)
    tone: str | None = None
    word_count: int | None = Field(None, ge=100)
    style_notes: str | None = None


class Section(BaseModel):
    """One outline section."""

    heading: str = Field(min_length=1, max_length=80)
    points: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=6)


class Outline(BaseModel):
    """A title and its sections (as many as asked for)."""

    title: str = Field(min_length=1, max_length=120)
    sections: list[Section] = Field(min_length=2, max_length=8)

    @classmethod
    def response_schema(cls, inputs: dict[str, Any]) -> dict[str, Any]:
        """The schema with exactly the number of sections asked for."""
        return exact_items(cls, "sections", inputs.get("sections"), low=2, high=8)

    @model_validator(mode="after")
    def _count(self, info: ValidationInfo) -> Outline:
        wanted = _inputs(info).get("sections")
        if isinstance(wanted, int) and len(self.sections) != min(max(wanted, 2), 8):
            raise ValueError(f"{len(self.sections)} sections were written; {min(max(wanted, 2), 8)} were asked for")
        return self

    def markdown(self) -> str:
        """The outline as ``## heading`` blocks with bullet points (the draft prompt's input)."""
        return "\n\n".join(f"## {s.heading}\n" + "\n".join(f"- {p}" for p in s.points) for s in self.sections)


def _headings(text: str) -> list[str]:
    return [h.strip().lower() for h in re.findall(r"(?m)^## (.+)$", text)]


class Draft(TextOutput):
    """A draft with every outline heading as a ``## `` section."""

    @model_validator(mode="after")
    def _follows(self, info: ValidationInfo) -> Draft:
        missing = [h for h in _headings(str(_inputs(info).get("outline") or "")) if h not in _headings(self.text)]
        if missing:
            raise ValueError(f"the draft lacks the outline's sections {missing} (each a '## ' heading)")
        return self


class Polished(TextOutput):
    """The final text, with the draft's sections kept."""

    @model_validator(mode="after")
    def _kept(self, info: ValidationInfo) -> Polished:
        missing = [h for h in _headings(str(_inputs(info).get("draft") or "")) if h not in _headings(self.text)]
        if missing:
            raise ValueError(f"the polished text dropped the draft's sections {missing}")
        return self


class WritingResult(BaseModel):
    """Every stage of the pipeline; ``text`` is the polished piece."""

    outline: Outline
    draft: Draft
    polished: Polished

    @property
    def text(self) -> str:
        """The final text."""
        return self.polished.text


def pipeline(
    model: ModelLike = None,
    *,
    models: Mapping[str, ModelLike] | None = None,
    config: ModelsConfig | None = None,
    registry: PromptRegistry | None = None,
    outline_ref: str = OUTLINE,
    draft_ref: str = DRAFT,
    polish_ref: str = POLISH,
    **model_kwargs: Any,
) -> Runnable[WritingBrief, WritingResult]:
    """``WritingBrief -> WritingResult``: steps ``outline``, ``draft``, ``polish``."""
    steps = _Steps(model, models, config, ("outline", "draft", "polish"))
    common = {"registry": registry or PromptRegistry(), "config": config, **model_kwargs}
    outline = chain(outline_ref, output=Outline, **common, **steps.kwargs("outline"))
    draft = chain(draft_ref, output=Draft, **common, **steps.kwargs("draft"))
    polish = chain(polish_ref, output=Polished, **common, **steps.kwargs("polish"))

    def draft_inputs(state: dict[str, Any]) -> dict[str, Any]:
        brief = state["brief"]
        extra = brief.model_dump(include={"tone", "word_count"}, exclude_none=True)
        outline_value: Outline = state["outline"]
        return {"title": outline_value.title, "outline": outline_value.markdown(), "audience": brief.audience, **extra}

    def polish_inputs(state: dict[str, Any]) -> dict[str, Any]:
        brief = state["brief"]
        extra = brief.model_dump(include={"style_notes"}, exclude_none=True)
        return {"draft": state["draft"].text, "audience": brief.audience, **extra}

    brief = RunnableLambda(lambda v: {"brief": _brief(WritingBrief, v)}, name="brief")
    outline_fields = {"topic", "audience", "purpose", "key_points", "sections"}
    return (
        brief
        | _step(
            "outline", "outline", outline, lambda s: s["brief"].model_dump(include=outline_fields, exclude_none=True)
        )
        | _step("draft", "draft", draft, draft_inputs)
        | _step("polish", "polished", polish, polish_inputs)
        | RunnableLambda(
            lambda s: WritingResult(outline=s["outline"], draft=s["draft"], polished=s["polished"]), name="result"
        )
    ).with_config(run_name="writing.pipeline")


CHAINS: dict[str, Callable[..., Runnable[Any, Any]]] = {
    "marketing.campaign": campaign,
    "education.pack": pack,
    "writing.pipeline": pipeline,
    "marketing.ad_copy": marketing.ad_copy,
    "marketing.social_post": marketing.social_post,
    "marketing.seo_article": marketing.seo_article,
    "writing.product_description": writing.product_description,
    "writing.press_release": writing.press_release,
    "writing.rewrite": writing.rewrite,
    "writing.personalize": writing.personalize,
    "education.quiz": edu.quiz,
    "education.language_dialogue": edu.language_dialogue,
    "education.lesson_plan": edu.lesson_plan,
}
"""Every named chain: compositions and task chains, as ``aigc run NAME`` finds them."""
COMPOSITIONS = frozenset({"marketing.campaign", "education.pack", "writing.pipeline"})


class UnknownChain(ChainError, LookupError):
    """No chain has this name; ``suggestions`` lists near names."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.suggestions = suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown chain {name!r} (chains: {', '.join(sorted(CHAINS))}).{hint}")


def get_chain(name: str) -> Callable[..., Runnable[Any, Any]]:
    """The factory of a named chain (``marketing.campaign``, ``education.quiz``, ...)."""
    if name in CHAINS:
        return CHAINS[name]
    raise UnknownChain(name, difflib.get_close_matches(name, list(CHAINS), n=3, cutoff=0.5))
