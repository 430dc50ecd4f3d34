"""The HTML pages: the playground and the report viewer (plain HTML/CSS/JS from ./static, no CDN, no build step).

Each page is a shell (one header, one stylesheet, the page's fragment and script from ``static/``) whose script
talks to the JSON APIs: /v1/prompts, /v1/models, /v1/chat/completions, /v1/score, /v1/cases and /v1/runs. Nothing is
fetched from another origin (the Content-Security-Policy says so), so the pages work offline. When the server has an
API key, the security middleware lets a browser in with its session cookie (``/login``); pages hold no key.
"""

from __future__ import annotations

import re
from functools import cache
from html import escape
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

__all__ = ["PAGES", "router"]

router = APIRouter(tags=["pages"], include_in_schema=False)

PAGES: dict[str, tuple[str, str]] = {  # page -> (title, nav label)
    "index": ("aigc", "Home"),
    "playground": ("Playground · aigc", "Playground"),
    "runs": ("Runs · aigc", "Runs"),
    "run": ("Run · aigc", ""),
    "compare": ("Compare runs · aigc", "Compare"),
}
_NAV = {"index": "/", "playground": "/playground", "runs": "/runs", "compare": "/compare"}
_ASSET = re.compile(r"^[a-z][a-z0-9_-]*\.(css|js)$")
_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


@cache
def _static(name: str) -> str:
    return resources.files("aigc_app.server").joinpath("static", name).read_text(encoding="utf-8")


def _page(name: str) -> HTMLResponse:
    title, _ = PAGES[name]
    current = "runs" if name == "run" else name
    links = "".join(
        f'<a href="{href}"{" aria-current=page" if key == current else ""}>{escape(PAGES[key][1])}</a>'
        for key, href in _NAV.items()
        if key != "index"
    )
    script = f'<script src="/static/{name}.js" defer></script>'
    html = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="/static/app.css">'
        f'<script src="/static/common.js" defer></script>{script}'
        f'</head><body data-page="{name}"><header class="top"><a class="brand" href="/">aigc</a>'
        f'<nav aria-label="Pages">{links}</nav></header><main id="main">{_static(name + ".html")}</main></body></html>'
    )
    return HTMLResponse(html, headers=_HEADERS)


@router.get("/", response_class=HTMLResponse)
def home() -> HTMLResponse:
    return _page("index")


@router.get("/playground", response_class=HTMLResponse)
def playground() -> HTMLResponse:
    return _page("playground")


@router.get("/runs", response_class=HTMLResponse)
def runs() -> HTMLResponse:
    return _page("runs")


@router.get("/runs/{ref}", response_class=HTMLResponse)
def run(ref: str) -> HTMLResponse:
    return _page("run")


@router.get("/compare", response_class=HTMLResponse)
def compare() -> HTMLResponse:
    return _page("compare")


@router.get("/index.html")
def index_html() -> RedirectResponse:
    return RedirectResponse("/")


@router.get("/static/{name}")
def static(name: str) -> Response:
    """One stylesheet or script of the pages (a fixed folder; names with a path or another type are a 404)."""
    match = _ASSET.match(name)
    if match is None:
        raise HTTPException(404, f"no static file {name!r}")
    try:
        text = _static(name)
    except (FileNotFoundError, IsADirectoryError):
        raise HTTPException(404, f"no static file {name!r}") from None
    return Response(text, media_type=_TYPES[match.group(1)], headers={"Cache-Control": "no-cache", **_HEADERS})
