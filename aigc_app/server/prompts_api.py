"""/v1/prompts: list, show and render the served prompt library with typed inputs."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
