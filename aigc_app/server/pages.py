"""The HTML pages: the playground and the report viewer (plain HTML/CSS/JS from ./static, no CDN)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
