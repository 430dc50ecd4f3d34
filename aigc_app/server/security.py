"""Who may use the server, and how much they may send.

- **Binding.** :func:`check_bind`: a loopback address (127.0.0.1, ::1, localhost) needs nothing; any other
  address needs an API key, or the server refuses to start (:class:`InsecureBind`).
- **The key.** With ``ServeSettings.api_key`` set, every route except ``/health`` and ``/login`` requires it
  (:class:`SecurityMiddleware`, installed on the whole app by :func:`install_security`; route code, pages
  included, does nothing of its own). Accepted, compared in constant time:

  - ``Authorization: Bearer <key>`` (what the openai client and curl send);
  - the session cookie ``aigc_session`` (HttpOnly, SameSite=Strict), set by the ``/login`` form (POST ``key``)
    or by a one-time exchange: ``GET /any/page?key=<key>`` sets the cookie and redirects to the same URL
    without ``key``. The cookie holds an HMAC of the key, never the key.

  A request without a valid key gets 401 in OpenAI's error shape; a browser asking for HTML (GET with
  ``Accept: text/html``) is redirected to ``/login?next=<path>`` instead. :func:`require_key` is the same check as
  a FastAPI dependency, for routers mounted on an app without the middleware.
- **Other web sites.** A request whose ``Origin`` is not this server gets 403 (no page elsewhere can drive the
  server through a visitor's browser); without a key, a ``Host`` that is not a loopback name gets 403 (DNS
  rebinding).
- **Size.** A request body over ``ServeSettings.max_body_bytes`` gets 413 (declared or streamed).

The key is never written into a page, a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import urllib.parse
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aigc_app.server.errors import ApiError, error_body
from aigc_app.server.settings import ServeSettings
from prompts.errors import AigcError

__all__ = [
    "SESSION_COOKIE",
    "InsecureBind",
    "SecurityMiddleware",
    "check_bind",
    "install_security",
    "is_loopback",
    "require_key",
]

SESSION_COOKIE = "aigc_session"
OPEN_PATHS = frozenset({"/health", "/login"})
_KEY_ENV = "AIGC_SERVE_API_KEY"


class InsecureBind(AigcError, ValueError):
    """A non-loopback address without an API key."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve a non-loopback address without a key."""
    if not is_loopback(host) and not api_key:
        raise InsecureBind(
            f"refusing to listen on {host} without an API key: anyone who can reach this machine could use its "
            f"models. Pass --api-key KEY (or set {_KEY_ENV}, or serve.api_key in aigc.yaml), or bind 127.0.0.1"
        )


def session_token(key: str) -> str:
    """The cookie value for ``key``: an HMAC, so the cookie never carries the key itself."""
    return hmac.new(key.encode(), b"aigc-serve-session-v1", hashlib.sha256).hexdigest()


def authorized(headers: dict[str, str], cookies: dict[str, str], key: str) -> bool:
    """Whether a request carries ``key`` (bearer header or session cookie); constant-time comparisons."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode()):
        return True
    cookie = cookies.get(SESSION_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_token(key).encode())


def require_key(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the served key (no-op when none is set)."""
    key = request.app.state.settings.api_key
    if key is not None and not authorized(dict(request.headers), dict(request.cookies), key.get_secret_value()):
        raise ApiError(401, _MISSING_KEY, code="invalid_api_key")


_MISSING_KEY = (
    "missing or wrong API key: send the header 'Authorization: Bearer <key>' (the openai client's api_key), "
    "or sign in at /login"
)


class _TooLarge(Exception):
    pass


class SecurityMiddleware:
    """ASGI middleware: the body size limit and the API key check (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.key = settings.api_key.get_secret_value() if settings.api_key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = _foreign(request, with_key=self.key is not None)
        if refusal:
            await self._error(send, ApiError(403, refusal, code="forbidden_origin"))
            return
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._error(send, self._too_large())
            return
        if self.key is not None and scope["path"] not in OPEN_PATHS:
            if "key" in request.query_params and request.method == "GET":
                await self._exchange(request, send)
                return
            if not authorized(dict(request.headers), dict(request.cookies), self.key):
                await self._refuse(request, send)
                return
        await self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, failing with 413 once a streamed body passes the limit."""
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._error(send, self._too_large())

    def _too_large(self) -> ApiError:
        return ApiError(413, f"request body over the server's limit of {self.max_body} bytes", code="body_too_large")

    async def _exchange(self, request: Request, send: Send) -> None:
        """``?key=`` in a GET: set the session cookie and redirect to the same URL without the key."""
        if not hmac.compare_digest(request.query_params["key"].encode(), self.key.encode()):  # type: ignore[union-attr]
            await self._refuse(request, send)
            return
        query = urllib.parse.urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "key"])
        target = request.url.path + (f"?{query}" if query else "")
        await _send(send, 303, b"", [(b"location", target.encode()), self._cookie()])

    def _cookie(self) -> tuple[bytes, bytes]:
        value = f"{SESSION_COOKIE}={session_token(self.key or '')}; HttpOnly; SameSite=Strict; Path=/"
        return (b"set-cookie", value.encode())

    async def _refuse(self, request: Request, send: Send) -> None:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if wants_page:
            target = "/login?" + urllib.parse.urlencode({"next": request.url.path})
            await _send(send, 303, b"", [(b"location", target.encode())])
            return
        await self._error(send, ApiError(401, _MISSING_KEY, code="invalid_api_key"))

    async def _error(self, send: Send, error: ApiError) -> None:
        import json

        headers = [(b"content-type", b"application/json")]
        if error.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await _send(send, error.status, json.dumps(error_body(error, self.key)).encode(), headers)


async def login(request: Request) -> Any:
    """GET: the sign-in form; POST (form field ``key``): set the session cookie and go to ``next``."""
    from fastapi.responses import HTMLResponse, RedirectResponse

    target = _local_path(request.query_params.get("next", "/"))
    secret = request.app.state.settings.api_key
    if request.method == "POST":
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("key") or [""])[0]
        if secret is None or hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            response = RedirectResponse(target, status_code=303)
            if secret is not None:
                token = session_token(secret.get_secret_value())
                response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict")
            return response
        return HTMLResponse(_login_page(target, "Wrong key."), status_code=401)
    return HTMLResponse(_login_page(target, ""))


def _foreign(request: Request, *, with_key: bool) -> str | None:
    """Why a request from another web site (or a rebound DNS name) is refused, or None.

    A browser sends ``Origin`` with every cross-origin POST and fetch; clients such as openai send none. A page
    on another site must not drive this server through the visitor's browser (its cookie included). Without a
    key, the server answers only to loopback names in ``Host``: a DNS name rebound to 127.0.0.1 is refused.
    """
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and urllib.parse.urlsplit(origin).netloc != host:
        return f"cross-origin request from {origin} refused: open the page from this server itself"
    if origin == "null" and request.method not in ("GET", "HEAD"):
        return "request from an opaque origin refused"
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if not with_key and host and not is_loopback(name):
        return (
            f"Host {host!r} is not a loopback name: this server has no API key and answers to localhost, "
            f"127.0.0.1 and ::1 only (set an API key to serve other names)"
        )
    return None


def _local_path(target: str) -> str:
    """Only paths on this server are redirect targets (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _login_page(target: str, problem: str) -> str:
    action = html.escape("/login?" + urllib.parse.urlencode({"next": target}))
    note = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>aigc: sign in</title></head>'
        "<body><main><h1>Sign in to aigc serve</h1>"
        f'{note}<form method="post" action="{action}"><label for="key">API key</label> '
        '<input id="key" name="key" type="password" autocomplete="current-password" autofocus required> '
        '<button type="submit">Sign in</button></form></main></body></html>'
    )


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_security(app: FastAPI, settings: ServeSettings) -> None:
    """Add the key check and body limit to every route of ``app``, and the /login form."""
    app.add_middleware(SecurityMiddleware, settings=settings)
    app.add_api_route("/login", login, methods=["GET", "POST"], include_in_schema=False)
