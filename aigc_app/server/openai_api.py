"""The OpenAI-compatible API: /v1/chat/completions (JSON and SSE), /v1/models and /v1/moderations."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
