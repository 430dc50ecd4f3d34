"""/v1/runs: list, show, compare and download reports of the runs in the results store."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
