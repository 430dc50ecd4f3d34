"""Marketing chains: A/B ad copy, platform-aware social posts, SEO articles."""

from __future__ import annotations

import re
from typing import Any, Literal

from langchain_core.runnables import Runnable
from pydantic import BaseModel, Field, ValidationInfo, model_validator

from chains.chain import ModelLike, TextOutput
from chains.tasks import TaskInput, exact_items, task_chain

__all__ = [
    "AD_COPY",
    "PLATFORM_LIMITS",
    "SEO_ARTICLE",
    "SOCIAL_POST",
    "AdCopy",
    "AdCopyInput",
    "AdVariant",
    "SeoArticle",
    "SeoArticleInput",
    "SocialPost",
    "SocialPostInput",
    "ad_copy",
    "seo_article",
    "social_post",
]

AD_COPY = "marketing/ad_copy@^1"
SOCIAL_POST = "marketing/social_post@^1"
SEO_ARTICLE = "marketing/seo_article@^1"
PLATFORM_LIMITS = {"x": 280, "linkedin": 3000, "instagram": 2200}


def _inputs(info: ValidationInfo) -> dict[str, Any]:
    return (info.context or {}).get("inputs", {})


class AdCopyInput(TaskInput):
    """A brief for A/B ad variants."""

    product_name: str
    audience: str
    variants: int | None = Field(None, ge=1, le=10)
    platform: Literal["google_search", "meta", "linkedin", "x", "display"] | None = None
    value_proposition: str | None = None
    key_benefits: list[str] | None = None
    proof_points: list[str] | None = None
    offer: str | None = None
    tone: Literal["bold", "friendly", "professional", "playful"] | None = None


class AdVariant(BaseModel):
    """One ad variant: the angle it leads with, headline, body and call to action."""

    angle: str = Field(min_length=1, max_length=40)
    headline: str = Field(min_length=1, max_length=70)
    body: str = Field(min_length=1, max_length=250)
    cta: str = Field(min_length=1, max_length=20, description="Call to action.")


class AdCopy(BaseModel):
    """The prompt's answer: exactly the number of variants asked for."""

    variants: list[AdVariant] = Field(min_length=1, max_length=10)

    @classmethod
    def response_schema(cls, inputs: dict[str, Any]) -> dict[str, Any]:
        """The schema with exactly the number of variants asked for."""
        return exact_items(cls, "variants", inputs.get("variants"), high=10)

    @model_validator(mode="after")
    def _count(self, info: ValidationInfo) -> AdCopy:
        wanted = _inputs(info).get("variants")
        if isinstance(wanted, int) and len(self.variants) != min(max(wanted, 1), 10):
            raise ValueError(f"{len(self.variants)} variants were written; {min(max(wanted, 1), 10)} were asked for")
        return self


def ad_copy(model: ModelLike = None, *, ref: str = AD_COPY, **chain_kwargs: Any) -> Runnable[AdCopyInput, Any]:
    """``AdCopyInput -> list[AdVariant]``."""
    return task_chain(
        ref, AdCopyInput, AdCopy, name="marketing.ad_copy", pick=lambda o: o.variants, model=model, **chain_kwargs
    )


class SocialPostInput(TaskInput):
    """What to post, where, and in whose voice."""

    platform: Literal["x", "linkedin", "instagram"]
    topic: str
    brand: str | None = None
    audience: str | None = None
    tone: Literal["professional", "conversational", "playful", "inspirational"] | None = None
    cta: str | None = None
    link: str | None = None
    emoji: bool | None = None
    hashtags: list[str] | None = None


class SocialPost(TextOutput):
    """A post within its platform's character limit (X 280, LinkedIn 3,000, Instagram 2,200)."""

    platform: Literal["x", "linkedin", "instagram"]

    @model_validator(mode="before")
    @classmethod
    def _platform(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "platform" not in data and "platform" in _inputs(info):
            return {**data, "platform": _inputs(info)["platform"]}
        return data

    @model_validator(mode="after")
    def _limit(self) -> SocialPost:
        limit = PLATFORM_LIMITS[self.platform]
        if len(self.text) > limit:
            raise ValueError(f"the post has {len(self.text)} characters; {self.platform} allows {limit}: shorten it")
        return self

    @property
    def characters(self) -> int:
        """Length of the post in characters."""
        return len(self.text)


def social_post(
    model: ModelLike = None, *, ref: str = SOCIAL_POST, **chain_kwargs: Any
) -> Runnable[SocialPostInput, SocialPost]:
    """``SocialPostInput -> SocialPost`` (character limit enforced, one repair attempt)."""
    return task_chain(ref, SocialPostInput, SocialPost, name="marketing.social_post", model=model, **chain_kwargs)


class SeoArticleInput(TaskInput):
    """A brief for a search-optimised article."""

    topic: str
    primary_keyword: str
    audience: str
    secondary_keywords: list[str] | None = None
    search_intent: Literal["informational", "commercial", "transactional", "navigational"] | None = None
    word_count: int | None = Field(None, ge=100)
    facts: list[str] | None = None
    brand: str | None = None
    cta: str | None = None
    include_faq: bool | None = None


class SeoArticle(TextOutput):
    """A Markdown article: meta description, ``#`` title, the primary keyword used; missing secondaries listed."""

    meta_description: str = ""
    title: str = ""
    missing_keywords: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or "text" not in data:
            return data
        text = str(data["text"])
        meta = re.search(r"(?m)^Meta description:\s*(.+)$", text)
        title = re.search(r"(?m)^# (.+)$", text)
        inputs = _inputs(info)
        lowered = text.lower()
        missing = [k for k in inputs.get("secondary_keywords") or [] if k.lower() not in lowered]
        return {
            "meta_description": meta.group(1).strip() if meta else "",
            "title": title.group(1).strip() if title else "",
            "missing_keywords": missing,
            **data,
        }

    @model_validator(mode="after")
    def _keyword(self, info: ValidationInfo) -> SeoArticle:
        if not self.title:
            raise ValueError("the article has no '# ' title line")
        keyword = str(_inputs(info).get("primary_keyword") or "")
        if keyword and keyword.lower() not in self.text.lower():
            raise ValueError(f"the primary keyword {keyword!r} does not appear in the article")
        return self


def seo_article(
    model: ModelLike = None, *, ref: str = SEO_ARTICLE, **chain_kwargs: Any
) -> Runnable[SeoArticleInput, SeoArticle]:
    """``SeoArticleInput -> SeoArticle`` (title and primary keyword checked, one repair attempt)."""
    return task_chain(ref, SeoArticleInput, SeoArticle, name="marketing.seo_article", model=model, **chain_kwargs)
