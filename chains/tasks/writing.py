"""Writing chains: product descriptions, press releases, rewrite/expand/shorten, audience personalisation."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import Runnable
from pydantic import Field, ValidationInfo, model_validator

from chains.chain import ModelLike, TextOutput
from chains.tasks import TaskInput, task_chain

__all__ = [
    "CHANNEL_LIMITS",
    "PERSONALIZE",
    "PRESS_RELEASE",
    "PRODUCT_DESCRIPTION",
    "REWRITE",
    "PersonalizeInput",
    "Personalized",
    "PressRelease",
    "PressReleaseInput",
    "ProductDescription",
    "ProductDescriptionInput",
    "Rewrite",
    "RewriteInput",
    "personalize",
    "press_release",
    "product_description",
    "rewrite",
]

PRODUCT_DESCRIPTION = "writing/product_description@^1"
PRESS_RELEASE = "writing/press_release@^1"
REWRITE = "writing/rewrite@^1"
PERSONALIZE = "writing/personalize@^1"
CHANNEL_LIMITS = {"email": 2500, "sms": 160, "push": 150, "in_app": 400, "letter": 4000}


def _inputs(info: ValidationInfo) -> dict[str, Any]:
    return (info.context or {}).get("inputs", {})


def _missing(text: str, terms: list[str] | None) -> list[str]:
    return [t for t in terms or [] if t not in text]


class ProductDescriptionInput(TaskInput):
    """A product, its facts and who the description is for."""

    product_name: str
    features: list[str] = Field(min_length=1)
    audience: str
    tone: Literal["friendly", "premium", "technical", "playful"] | None = None
    length: Literal["short", "medium", "long"] | None = None
    brand_voice: str | None = None
    seo_keywords: list[str] | None = None


class ProductDescription(TextOutput):
    """A description that names the product."""

    @model_validator(mode="after")
    def _names_product(self, info: ValidationInfo) -> ProductDescription:
        name = str(_inputs(info).get("product_name") or "")
        if name and name.lower() not in self.text.lower():
            raise ValueError(f"the description never names the product {name!r}")
        return self


def product_description(
    model: ModelLike = None, *, ref: str = PRODUCT_DESCRIPTION, **chain_kwargs: Any
) -> Runnable[ProductDescriptionInput, ProductDescription]:
    """``ProductDescriptionInput -> ProductDescription``."""
    return task_chain(
        ref,
        ProductDescriptionInput,
        ProductDescription,
        name="writing.product_description",
        model=model,
        **chain_kwargs,
    )


class PressReleaseInput(TaskInput):
    """An announcement and the facts a release may use."""

    company: str
    announcement: str
    key_points: list[str] = Field(min_length=1)
    style: Literal["press_release", "news_article"] | None = None
    tone: Literal["formal", "neutral", "upbeat"] | None = None
    quote_source: str | None = None
    quote_message: str | None = None
    dateline: str | None = None
    boilerplate: str | None = None
    contact: str | None = None
    word_count: int | None = Field(None, ge=100)


class PressRelease(TextOutput):
    """A release naming the company; ``headline`` is its first line."""

    @property
    def headline(self) -> str:
        """The first non-empty line, without Markdown heading marks."""
        return next((line.lstrip("# ").strip() for line in self.text.splitlines() if line.strip()), "")

    @model_validator(mode="after")
    def _names_company(self, info: ValidationInfo) -> PressRelease:
        company = str(_inputs(info).get("company") or "")
        if company and company not in self.text:
            raise ValueError(f"the release never names the company {company!r}")
        return self


def press_release(
    model: ModelLike = None, *, ref: str = PRESS_RELEASE, **chain_kwargs: Any
) -> Runnable[PressReleaseInput, PressRelease]:
    """``PressReleaseInput -> PressRelease``."""
    return task_chain(ref, PressReleaseInput, PressRelease, name="writing.press_release", model=model, **chain_kwargs)


class RewriteInput(TaskInput):
    """A text and how to transform it."""

    text: str = Field(min_length=1)
    mode: Literal["rewrite", "expand", "shorten", "simplify"] | None = None
    tone: str | None = None
    audience: str | None = None
    target_words: int | None = Field(None, ge=0)
    keep_terms: list[str] | None = None


class Rewrite(TextOutput):
    """The transformed text, with every ``keep_terms`` entry unchanged."""

    @model_validator(mode="after")
    def _kept(self, info: ValidationInfo) -> Rewrite:
        missing = _missing(self.text, _inputs(info).get("keep_terms"))
        if missing:
            raise ValueError(f"these terms must appear unchanged and are missing: {missing}")
        return self


def rewrite(
    model: ModelLike = None,
    *,
    mode: Literal["rewrite", "expand", "shorten", "simplify"] | None = None,
    ref: str = REWRITE,
    **chain_kwargs: Any,
) -> Runnable[RewriteInput, Rewrite]:
    """``RewriteInput -> Rewrite``; ``mode`` fixes the default transformation (an input's ``mode`` wins)."""
    defaults = {"mode": mode} if mode else None
    return task_chain(
        ref,
        RewriteInput,
        Rewrite,
        name=f"writing.{mode or 'rewrite'}",
        defaults=defaults,
        model=model,
        **chain_kwargs,
    )


class PersonalizeInput(TaskInput):
    """A base message and the persona and channel to adapt it to."""

    base_message: str = Field(min_length=1)
    persona: str
    segment: str | None = None
    channel: Literal["email", "sms", "push", "in_app", "letter"] | None = None
    goal: str | None = None
    must_keep: list[str] | None = None
    reading_level: int | None = Field(None, ge=1, le=12)


class Personalized(TextOutput):
    """The adapted message: ``must_keep`` strings intact, within the channel's length."""

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Personalized:
        inputs = _inputs(info)
        missing = _missing(self.text, inputs.get("must_keep"))
        if missing:
            raise ValueError(f"these strings must survive unchanged and are missing: {missing}")
        channel = inputs.get("channel") or "email"
        if len(self.text) > CHANNEL_LIMITS.get(channel, 10**9):
            raise ValueError(f"the message has {len(self.text)} characters; {channel} allows {CHANNEL_LIMITS[channel]}")
        return self


def personalize(
    model: ModelLike = None, *, ref: str = PERSONALIZE, **chain_kwargs: Any
) -> Runnable[PersonalizeInput, Personalized]:
    """``PersonalizeInput -> Personalized``."""
    return task_chain(ref, PersonalizeInput, Personalized, name="writing.personalize", model=model, **chain_kwargs)
